//! Fan-in then fan-out: merge many sources, process the items on N workers.

use std::fmt;
use std::future::Future;

use conc_core::BoxError;

use crate::fan_in::FanIn;
use crate::fan_out::{FanOut, FanOutStream};

/// Merges many sources with a [`FanIn`] and processes the merged items on
/// the workers of a [`FanOut`]: the process-and-merge pattern in one value.
/// Sources can still be added through the fan-in's
/// [`handle`](FanIn::handle) while it runs.
///
/// # Examples
///
/// ```
/// use conc_fan::{FanIn, FanOut, FanPattern};
/// use futures::StreamExt;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::config::ConfigError> {
/// let mut sources = FanIn::new();
/// sources.add(futures::stream::iter([1, 2, 3]));
/// sources.add(futures::stream::iter([10, 20]));
/// let workers = FanOut::builder().workers(2).build(|n: u32| async move { Ok::<_, std::io::Error>(n * 2) })?;
/// let mut doubled: Vec<u32> =
///     FanPattern::new(sources, workers).run().map(Result::unwrap).collect().await;
/// doubled.sort();
/// assert_eq!(doubled, [2, 4, 6, 20, 40]);
/// # Ok(()) }
/// ```
#[must_use = "a fan pattern does nothing until `run` is called"]
pub struct FanPattern<T, F> {
    fan_in: FanIn<T>,
    fan_out: FanOut<T, F>,
}

impl<T, F> fmt::Debug for FanPattern<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FanPattern")
            .field("fan_in", &self.fan_in)
            .field("fan_out", &self.fan_out)
            .finish()
    }
}

impl<T: Send + 'static, F> FanPattern<T, F> {
    /// Pairs a fan-in of sources with a fan-out of workers.
    pub fn new(fan_in: FanIn<T>, fan_out: FanOut<T, F>) -> Self {
        Self { fan_in, fan_out }
    }

    /// The fan-in, to add sources before running.
    pub fn fan_in(&mut self) -> &mut FanIn<T> {
        &mut self.fan_in
    }

    /// Starts the workers; the stream yields each merged item's result, in
    /// merge order unless the fan-out is unordered.
    pub fn run<Out, E, Fut>(self) -> FanOutStream<Out>
    where
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Out, E>> + Send + 'static,
        E: Into<BoxError> + 'static,
        Out: Send + 'static,
    {
        self.fan_out.process_stream(self.fan_in)
    }
}
