//! [`Fallback`]: the handlers, and the tower service they become around an
//! inner service.

use std::fmt;
use std::sync::Arc;

use conc_core::BoxError;
use conc_core::metrics::FALLBACK_USED;

use crate::{ErrorKind, ResilienceError};

type Handler<T, E> = Arc<dyn Fn(&ResilienceError<E>) -> Option<T> + Send + Sync>;

/// The handlers and the counter every clone shares.
struct Shared<T, E> {
    handlers: Vec<Handler<T, E>>,
    used: metrics::Counter,
}

impl<T, E> Clone for Shared<T, E> {
    fn clone(&self) -> Self {
        Self { handlers: self.handlers.clone(), used: self.used.clone() }
    }
}

/// Answers failed calls with a value instead, chosen by the kind of failure.
///
/// `Fallback<T, E>` answers failures of type
/// [`ResilienceError<E>`](ResilienceError) with a `T`. With the `tower`
/// feature a `FallbackLayer` turns an inner service
/// `S` into a `Fallback<S::Response, BoxError, S>`: a tower `Service` whose
/// failed responses are answered by the same handlers. Cheap to clone: clones
/// share the handlers.
///
/// # Examples
///
/// ```
/// use conc_resilience::{ErrorKind, Fallback, ResilienceError};
///
/// let fallback: Fallback<&str, std::io::Error> = Fallback::new()
///     .on(ErrorKind::BreakerOpen, |_| "cached page")
///     .on_inner(|error: &std::io::Error| (error.kind() == std::io::ErrorKind::NotFound).then_some("empty page"));
/// let refused = conc_resilience::CircuitBreaker::builder().build()?;
/// refused.force_open();
/// let rejected = refused.try_acquire().unwrap_err();
/// assert_eq!(fallback.apply(Err(ResilienceError::BreakerOpen(rejected))).unwrap(), "cached page");
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
pub struct Fallback<T, E = BoxError, S = ()> {
    shared: Arc<Shared<T, E>>,
    pub(super) inner: S,
}

impl<T, E, S: Clone> Clone for Fallback<T, E, S> {
    fn clone(&self) -> Self {
        Self { shared: Arc::clone(&self.shared), inner: self.inner.clone() }
    }
}

impl<T, E, S: fmt::Debug> fmt::Debug for Fallback<T, E, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallback")
            .field("handlers", &self.shared.handlers.len())
            .field("inner", &self.inner)
            .finish()
    }
}

impl<T, E> Default for Fallback<T, E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, E> Fallback<T, E> {
    /// A fallback that handles nothing yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::{Fallback, ResilienceError};
    ///
    /// let fallback: Fallback<u32, &str> = Fallback::new();
    /// assert_eq!(fallback.apply(Err(ResilienceError::Inner("down"))), Err(ResilienceError::Inner("down")));
    /// ```
    pub fn new() -> Self {
        let shared = Shared { handlers: Vec::new(), used: metrics::counter!(FALLBACK_USED) };
        Self { shared: Arc::new(shared), inner: () }
    }

    fn push(mut self, handler: Handler<T, E>) -> Self {
        Arc::make_mut(&mut self.shared).handlers.push(handler);
        self
    }

    /// Answers failures of `kind` with `value(&error)`. Handlers are tried in
    /// the order added; the first that answers wins.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_resilience::{Elapsed, ErrorKind, Fallback, ResilienceError};
    ///
    /// let fallback: Fallback<u32, ()> = Fallback::new().on(ErrorKind::Timeout, |_| 0);
    /// let timed_out = ResilienceError::Timeout(Elapsed { after: Duration::from_secs(1) });
    /// assert_eq!(fallback.apply(Err(timed_out)), Ok(0));
    /// ```
    #[must_use]
    pub fn on(
        self,
        kind: ErrorKind,
        value: impl Fn(&ResilienceError<E>) -> T + Send + Sync + 'static,
    ) -> Self {
        self.push(Arc::new(move |error| (error.kind() == kind).then(|| value(error))))
    }

    /// Answers every rejection (breaker open, bulkhead full, shed) with `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::{Fallback, LoadShedder, ResilienceError};
    ///
    /// let fallback: Fallback<u32, ()> = Fallback::new().on_rejection(|_| 0);
    /// let shed = LoadShedder::builder(1).build()?.try_admit(2).unwrap_err();
    /// assert_eq!(fallback.apply(Err(ResilienceError::Shed(shed))), Ok(0));
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    #[must_use]
    pub fn on_rejection(
        self,
        value: impl Fn(&ResilienceError<E>) -> T + Send + Sync + 'static,
    ) -> Self {
        self.push(Arc::new(move |error| error.kind().is_rejection().then(|| value(error))))
    }

    /// Answers the operation's own errors for which `value` returns `Some`.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::{Fallback, ResilienceError};
    ///
    /// let fallback: Fallback<u32, &str> = Fallback::new().on_inner(|error| (*error == "empty").then_some(0));
    /// assert_eq!(fallback.apply(Err(ResilienceError::Inner("empty"))), Ok(0));
    /// assert!(fallback.apply(Err(ResilienceError::Inner("down"))).is_err());
    /// ```
    #[must_use]
    pub fn on_inner(self, value: impl Fn(&E) -> Option<T> + Send + Sync + 'static) -> Self {
        self.push(Arc::new(move |error| match error {
            ResilienceError::Inner(inner) => value(inner),
            _ => None,
        }))
    }
}

impl<T, E, S> Fallback<T, E, S> {
    /// The same handlers around `inner`.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn wrap<I>(&self, inner: I) -> Fallback<T, E, I> {
        Fallback { shared: Arc::clone(&self.shared), inner }
    }

    /// Replaces a handled failure with its fallback value; passes everything else through.
    ///
    /// # Errors
    ///
    /// The failure, when no handler answers it.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::{Fallback, ResilienceError};
    ///
    /// let fallback: Fallback<u32, &str> = Fallback::new().on_inner(|_| Some(0));
    /// assert_eq!(fallback.apply(Ok(5)), Ok(5));
    /// assert_eq!(fallback.apply(Err(ResilienceError::Inner("down"))), Ok(0));
    /// ```
    pub fn apply(&self, result: Result<T, ResilienceError<E>>) -> Result<T, ResilienceError<E>> {
        match result {
            Ok(value) => Ok(value),
            Err(error) => match self.shared.handlers.iter().find_map(|handler| handler(&error)) {
                Some(value) => {
                    self.shared.used.increment(1);
                    Ok(value)
                }
                None => Err(error),
            },
        }
    }
}
