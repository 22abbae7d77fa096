//! Typed processors: one function, many inputs, over a pool.

use std::fmt;
use std::sync::Arc;

use conc_core::BoxFuture;

use crate::error::{collect_batch, collect_batch_async};
use crate::{AsyncPool, Batch, BatchError, BlockingPool, SubmitError, TaskHandle, TaskOptions};

/// The function a blocking processor runs.
pub(crate) type ProcessFn<I, O> = Arc<dyn Fn(I) -> O + Send + Sync>;

/// The function an async processor runs.
pub(crate) type AsyncProcessFn<I, O> = Arc<dyn Fn(I) -> BoxFuture<'static, O> + Send + Sync>;

/// A typed processor over a [`BlockingPool`]: one function, many inputs.
/// Made by [`BlockingPool::processor`]; cloning shares the pool and the function.
///
/// # Examples
///
/// ```
/// use conc_pool::BlockingPool;
///
/// let pool = BlockingPool::builder().workers(3).build()?;
/// let upper = pool.processor(|s: &'static str| s.to_uppercase());
/// let batch = upper.submit_batch(["a", "b", "c"]).unwrap();
/// let out: Vec<String> = batch.join().into_iter().collect::<Result<_, _>>()?;
/// assert_eq!(out, ["A", "B", "C"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a processor does nothing until inputs are submitted to it"]
pub struct Processor<I, O> {
    pool: BlockingPool,
    process: ProcessFn<I, O>,
}

/// A typed processor over an [`AsyncPool`]: one async function, many inputs.
/// Made by [`AsyncPool::processor`]; cloning shares the pool and the function.
///
/// # Examples
///
/// ```
/// use conc_pool::AsyncPool;
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let pool = AsyncPool::builder().workers(2).build()?;
/// let lengths = pool.processor(|s: String| async move { s.len() });
/// let batch = lengths.submit_batch(["ab".to_owned(), "cde".to_owned()]).await.unwrap();
/// assert_eq!(batch.await, [Ok(2), Ok(3)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a processor does nothing until inputs are submitted to it"]
pub struct AsyncProcessor<I, O> {
    pool: AsyncPool,
    process: AsyncProcessFn<I, O>,
}

/// Construction, cloning, `Debug` and the pool accessor, the same for both.
macro_rules! processor_common {
    ($processor:ident, $pool:ident, $function:ident) => {
        impl<I, O> $processor<I, O> {
            pub(crate) fn new(pool: $pool, process: $function<I, O>) -> Self {
                Self { pool, process }
            }

            /// The pool underneath.
            pub fn pool(&self) -> &$pool {
                &self.pool
            }
        }

        impl<I, O> Clone for $processor<I, O> {
            fn clone(&self) -> Self {
                Self { pool: self.pool.clone(), process: Arc::clone(&self.process) }
            }
        }

        impl<I, O> fmt::Debug for $processor<I, O> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($processor))
                    .field("pool", &self.pool)
                    .finish_non_exhaustive()
            }
        }
    };
}

processor_common!(Processor, BlockingPool, ProcessFn);
processor_common!(AsyncProcessor, AsyncPool, AsyncProcessFn);

impl<I: Send + 'static, O: Send + 'static> Processor<I, O> {
    /// Processes `input` on the pool.
    ///
    /// # Errors
    ///
    /// As [`BlockingPool::submit`], with the input handed back.
    pub fn submit(&self, input: I) -> Result<TaskHandle<O>, SubmitError<I>> {
        self.submit_with(TaskOptions::new(), input)
    }

    /// Processes `input` with a priority and a deadline.
    ///
    /// # Errors
    ///
    /// As [`BlockingPool::submit`], with the input handed back.
    pub fn submit_with(
        &self,
        options: TaskOptions,
        input: I,
    ) -> Result<TaskHandle<O>, SubmitError<I>> {
        let process = Arc::clone(&self.process);
        self.pool
            .submit_inner(options, (input, process), true, |(input, process), _| process(input))
            .map_err(|error| error.map(|(input, _)| input))
    }

    /// Processes every input; outputs in input order.
    ///
    /// # Errors
    ///
    /// As [`BlockingPool::submit_batch`], with the inputs handed back.
    pub fn submit_batch(
        &self,
        inputs: impl IntoIterator<Item = I>,
    ) -> Result<Batch<O>, BatchError<O, I>> {
        collect_batch(inputs, |input| self.submit(input))
    }
}

impl<I: Send + 'static, O: Send + 'static> AsyncProcessor<I, O> {
    /// Processes `input` on the pool.
    ///
    /// # Errors
    ///
    /// As [`AsyncPool::submit`], with the input handed back.
    pub async fn submit(&self, input: I) -> Result<TaskHandle<O>, SubmitError<I>> {
        self.submit_with(TaskOptions::new(), input).await
    }

    /// Processes `input` with a priority and a deadline.
    ///
    /// # Errors
    ///
    /// As [`AsyncPool::submit`], with the input handed back.
    pub async fn submit_with(
        &self,
        options: TaskOptions,
        input: I,
    ) -> Result<TaskHandle<O>, SubmitError<I>> {
        let process = Arc::clone(&self.process);
        self.pool.submit_made(options, input, move |input| process(input)).await
    }

    /// Processes every input; outputs in input order.
    ///
    /// # Errors
    ///
    /// As [`AsyncPool::submit_batch`], with the inputs handed back.
    pub async fn submit_batch(
        &self,
        inputs: impl IntoIterator<Item = I>,
    ) -> Result<Batch<O>, BatchError<O, I>> {
        collect_batch_async(inputs, |input| self.submit(input)).await
    }
}
