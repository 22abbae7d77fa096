//! tower `Layer`s and `Service`s for every primitive of the crate.
//!
//! | layer | service | refuses with (from `call`) |
//! |---|---|---|
//! | [`CircuitBreakerLayer`] | [`CircuitBreakerService`] | [`Rejected`] |
//! | [`BulkheadLayer`] | [`BulkheadService`] | [`BulkheadError`] |
//! | [`RetryLayer`] | [`RetryService`] | the inner service's last error |
//! | [`TimeoutLayer`] | [`TimeoutService`] | [`Elapsed`] |
//! | [`LoadShedLayer`] | [`LoadShedService`] | [`Shed`] |
//! | [`FallbackLayer`] | [`FallbackService`] | the failure no handler answered |
//!
//! All follow the tower contract:
//!
//! - `poll_ready` is driven before every call of the inner service, internal
//!   retries included: [`RetryService`] waits for the inner `poll_ready` (on a
//!   clone owned by the response future) before each retry.
//! - The breaker and the bulkhead take the admission (a breaker permit, a
//!   bulkhead slot) in `poll_ready` and keep it in *this* service instance
//!   until `call`, so N clones can never spend one slot; a clone starts with
//!   no admission of its own.
//! - A refusal is returned from `call` as an error, never from `poll_ready`
//!   (which `Buffer` and balancers treat as fatal), and the refused request
//!   never reaches the inner service. When the breaker or bulkhead refuses,
//!   `poll_ready` is `Ready` at once and the inner service's `poll_ready` is
//!   not polled. The load shedder decides in `call`.
//! - A bulkhead with a wait queue makes `poll_ready` `Pending` while waiting,
//!   with the task's waker registered; a bulkhead without one refuses at once.
//! - Dropping the response future drops the inner future and releases what
//!   the call holds: a breaker probe slot is given back without an outcome, a
//!   bulkhead slot is freed, load units are returned. Dropping a service
//!   holding an unused admission releases it.
//!
//! Errors are [`BoxError`]s: the inner service's error, or the refusal
//! (downcast to tell them apart; [`FallbackService`] does it for you).
//! Response futures are hand-written: no allocation per call. (A bulkhead
//! service waiting in the bulkhead's queue boxes that wait.)

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use conc_core::{BoxError, BoxFuture};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::retry::RunState;
use crate::{
    Bulkhead, BulkheadError, BulkheadPermit, CircuitBreaker, Elapsed, Fallback, LoadPermit,
    LoadShedder, OwnedPermit, Rejected, ResilienceError, Retry, Shed, Timeout,
};

/// `call` without a successful `poll_ready` first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("service called before poll_ready returned ready")]
pub struct NotReady;

/// Wraps services in a [`CircuitBreakerService`] sharing one breaker.
///
/// # Examples
///
/// ```
/// use conc_resilience::{CircuitBreaker, CircuitBreakerLayer};
/// use tower::{Layer, Service, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::BoxError> {
/// let breaker = CircuitBreaker::builder().build()?;
/// let mut service = CircuitBreakerLayer::new(breaker.clone())
///     .layer(service_fn(|name: &'static str| async move { Ok::<_, std::io::Error>(format!("hello {name}")) }));
/// let reply = service.ready().await?.call("world").await?;
/// assert_eq!(reply, "hello world");
/// assert_eq!(breaker.metrics().calls, 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CircuitBreakerLayer {
    breaker: CircuitBreaker,
}

impl CircuitBreakerLayer {
    /// A layer guarding every service it wraps with `breaker`.
    pub fn new(breaker: CircuitBreaker) -> Self {
        Self { breaker }
    }
}

impl<S> Layer<S> for CircuitBreakerLayer {
    type Service = CircuitBreakerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService { inner, breaker: self.breaker.clone(), admission: None }
    }
}

/// A service guarded by a circuit breaker. See the [module docs](self) for the contract.
pub struct CircuitBreakerService<S> {
    inner: S,
    breaker: CircuitBreaker,
    admission: Option<Result<OwnedPermit, Rejected>>,
}

impl<S: fmt::Debug> fmt::Debug for CircuitBreakerService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerService")
            .field("inner", &self.inner)
            .field("breaker", &self.breaker)
            .field("admission", &self.admission)
            .finish()
    }
}

impl<S: Clone> Clone for CircuitBreakerService<S> {
    /// A clone shares the breaker but not this instance's admission.
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), breaker: self.breaker.clone(), admission: None }
    }
}

impl<S, Request> Service<Request> for CircuitBreakerService<S>
where
    S: Service<Request>,
    S::Response: 'static,
    S::Error: Into<BoxError> + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = CircuitBreakerFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        let admission = self.admission.get_or_insert_with(|| self.breaker.try_acquire_owned());
        match admission {
            Err(_) => Poll::Ready(Ok(())),
            Ok(_) => self.inner.poll_ready(cx).map_err(Into::into),
        }
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let state = match self.admission.take() {
            None => Guarded::NotReady { done: false },
            Some(Err(rejected)) => Guarded::Refused { error: Some(rejected) },
            Some(Ok(permit)) => {
                Guarded::Admitted { future: self.inner.call(request), permit: Some(permit) }
            }
        };
        CircuitBreakerFuture { state }
    }
}

pin_project! {
    /// The response future of a [`CircuitBreakerService`]: the refusal, or
    /// the inner response, recorded in the breaker when it completes (a
    /// dropped future gives its permit back without an outcome).
    ///
    /// # Panics
    ///
    /// When polled again after it completed.
    #[derive(Debug)]
    pub struct CircuitBreakerFuture<F> {
        #[pin]
        state: Guarded<F, OwnedPermit, Rejected>,
    }
}

impl<F, T, E> Future for CircuitBreakerFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    T: 'static,
    E: 'static,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().state.poll_with(cx, OwnedPermit::record)
    }
}

pin_project! {
    /// A call guarded by an admission: not ready, refused, or running with its permit.
    #[derive(Debug)]
    #[project = GuardedProj]
    enum Guarded<F, P, R> {
        NotReady { done: bool },
        Refused { error: Option<R> },
        Admitted { #[pin] future: F, permit: Option<P> },
    }
}

impl<F, P, R> Guarded<F, P, R> {
    /// Polls the call; `finish` gets the permit and the result when it completes.
    fn poll_with<T, E>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        finish: impl FnOnce(P, &Result<T, E>),
    ) -> Poll<Result<T, BoxError>>
    where
        F: Future<Output = Result<T, E>>,
        E: Into<BoxError>,
        R: std::error::Error + Send + Sync + 'static,
    {
        const DONE: &str = "response future polled after completion";
        match self.project() {
            GuardedProj::NotReady { done } => {
                assert!(!*done, "{DONE}");
                *done = true;
                Poll::Ready(Err(NotReady.into()))
            }
            GuardedProj::Refused { error } => Poll::Ready(Err(error.take().expect(DONE).into())),
            GuardedProj::Admitted { future, permit } => {
                let result = std::task::ready!(future.poll(cx));
                finish(permit.take().expect(DONE), &result);
                Poll::Ready(result.map_err(Into::into))
            }
        }
    }
}

/// Wraps services in a [`BulkheadService`] sharing one bulkhead.
///
/// # Examples
///
/// ```
/// use conc_resilience::{Bulkhead, BulkheadLayer};
/// use tower::{Layer, Service, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::BoxError> {
/// let bulkhead = Bulkhead::builder().max_concurrent(4).build()?;
/// let mut service = BulkheadLayer::new(bulkhead.clone())
///     .layer(service_fn(|n: u32| async move { Ok::<_, std::io::Error>(n * 2) }));
/// assert_eq!(service.ready().await?.call(21).await?, 42);
/// assert_eq!(bulkhead.snapshot().available, 4);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct BulkheadLayer {
    bulkhead: Bulkhead,
}

impl BulkheadLayer {
    /// A layer running every service it wraps inside `bulkhead`.
    pub fn new(bulkhead: Bulkhead) -> Self {
        Self { bulkhead }
    }
}

impl<S> Layer<S> for BulkheadLayer {
    type Service = BulkheadService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BulkheadService { inner, bulkhead: self.bulkhead.clone(), admission: Admission::None }
    }
}

enum Admission {
    None,
    Waiting(BoxFuture<'static, Result<BulkheadPermit, BulkheadError>>),
    Admitted(BulkheadPermit),
    Refused(BulkheadError),
}

impl fmt::Debug for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Waiting(_) => f.write_str("Waiting"),
            Self::Admitted(permit) => f.debug_tuple("Admitted").field(permit).finish(),
            Self::Refused(error) => f.debug_tuple("Refused").field(error).finish(),
        }
    }
}

/// A service run inside a bulkhead. See the [module docs](self) for the contract.
pub struct BulkheadService<S> {
    inner: S,
    bulkhead: Bulkhead,
    admission: Admission,
}

impl<S: fmt::Debug> fmt::Debug for BulkheadService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkheadService")
            .field("inner", &self.inner)
            .field("bulkhead", &self.bulkhead)
            .field("admission", &self.admission)
            .finish()
    }
}

impl<S: Clone> Clone for BulkheadService<S> {
    /// A clone shares the bulkhead but not this instance's slot.
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            bulkhead: self.bulkhead.clone(),
            admission: Admission::None,
        }
    }
}

impl<S, Request> Service<Request> for BulkheadService<S>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BulkheadFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        loop {
            match &mut self.admission {
                Admission::None => {
                    self.admission = if self.bulkhead.has_queue() {
                        let bulkhead = self.bulkhead.clone();
                        Admission::Waiting(Box::pin(async move { bulkhead.acquire().await }))
                    } else {
                        match self.bulkhead.try_acquire() {
                            Ok(permit) => Admission::Admitted(permit),
                            Err(error) => Admission::Refused(error),
                        }
                    };
                }
                Admission::Waiting(wait) => match wait.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(permit)) => self.admission = Admission::Admitted(permit),
                    Poll::Ready(Err(error)) => self.admission = Admission::Refused(error),
                },
                Admission::Admitted(_) => return self.inner.poll_ready(cx).map_err(Into::into),
                Admission::Refused(_) => return Poll::Ready(Ok(())),
            }
        }
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let state = match std::mem::replace(&mut self.admission, Admission::None) {
            Admission::None | Admission::Waiting(_) => Guarded::NotReady { done: false },
            Admission::Refused(error) => Guarded::Refused { error: Some(error) },
            Admission::Admitted(permit) => {
                Guarded::Admitted { future: self.inner.call(request), permit: Some(permit) }
            }
        };
        BulkheadFuture { state }
    }
}

pin_project! {
    /// The response future of a [`BulkheadService`]: the refusal, or the
    /// inner response holding its slot until it completes or is dropped.
    ///
    /// # Panics
    ///
    /// When polled again after it completed.
    #[derive(Debug)]
    pub struct BulkheadFuture<F> {
        #[pin]
        state: Guarded<F, BulkheadPermit, BulkheadError>,
    }
}

impl<F, T, E> Future for BulkheadFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().state.poll_with(cx, |permit, _| drop(permit))
    }
}

/// Wraps services in a [`RetryService`] retrying by one [`Retry`] policy.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
/// use conc_core::backoff::Backoff;
/// use conc_resilience::{Retry, RetryLayer};
/// use tower::{Layer, Service, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), conc_core::BoxError> {
/// let retry = Retry::builder()
///     .backoff(Backoff::fixed(Duration::from_millis(10)).build()?)
///     .max_attempts(3)
///     .build()?;
/// let calls = Arc::new(AtomicU32::new(0));
/// let counted = Arc::clone(&calls);
/// let mut service = RetryLayer::new(retry).layer(service_fn(move |n: u32| {
///     let attempt = counted.fetch_add(1, Ordering::SeqCst) + 1;
///     async move { if attempt < 3 { Err(std::io::Error::other("flaky")) } else { Ok(n + 1) } }
/// }));
/// assert_eq!(service.ready().await?.call(41).await?, 42);
/// assert_eq!(calls.load(Ordering::SeqCst), 3);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RetryLayer {
    retry: Retry,
}

impl RetryLayer {
    /// A layer retrying every service it wraps by `retry`.
    pub fn new(retry: Retry) -> Self {
        Self { retry }
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = RetryService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryService { inner, retry: self.retry.clone() }
    }
}

/// A service whose failed calls are retried by a [`Retry`] policy.
///
/// The first attempt goes to the instance `poll_ready` readied; every retry
/// first waits for the inner service to be ready again (its `poll_ready`, on
/// the instance owned by the response future, a clone left in its place), so a retry never skips the inner
/// service's backpressure. The request is cloned for each attempt.
///
/// Which outcomes are retried is the policy's: its `retry_if` predicates see
/// the inner service's error type. The error is the inner service's last
/// error (or a readiness error met before a retry), as a [`BoxError`].
#[derive(Debug, Clone)]
pub struct RetryService<S> {
    inner: S,
    retry: Retry,
}

impl<S, Request> Service<Request> for RetryService<S>
where
    S: Service<Request> + Clone,
    S::Response: 'static,
    S::Error: Into<BoxError> + 'static,
    Request: Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = RetryFuture<S, Request>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The readied instance moves into the future; this one keeps a fresh clone.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let state = RetryState::Calling { future: inner.call(request.clone()) };
        RetryFuture { state, inner, request, run: self.retry.begin(), retry: self.retry.clone() }
    }
}

pin_project! {
    /// The response future of a [`RetryService`]: attempts, the delays
    /// between them, and the wait for the inner service's readiness before
    /// each retry.
    ///
    /// # Panics
    ///
    /// When polled again after it completed.
    pub struct RetryFuture<S, Request>
    where
        S: Service<Request>,
    {
        #[pin]
        state: RetryState<S::Future>,
        inner: S,
        request: Request,
        run: RunState,
        retry: Retry,
    }
}

impl<S, Request> fmt::Debug for RetryFuture<S, Request>
where
    S: Service<Request>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryFuture")
            .field("attempt", &self.run.attempt())
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

pin_project! {
    #[project = RetryStateProj]
    enum RetryState<F> {
        Calling { #[pin] future: F },
        Sleeping { #[pin] sleep: tokio::time::Sleep },
        Readying,
        Done,
    }
}

impl<S, Request> Future for RetryFuture<S, Request>
where
    S: Service<Request>,
    S::Response: 'static,
    S::Error: Into<BoxError> + 'static,
    Request: Clone,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                RetryStateProj::Calling { future } => {
                    let result = std::task::ready!(future.poll(cx));
                    let delay = if this.retry.should_retry(&result) {
                        this.retry.plan_retry(this.run)
                    } else {
                        None
                    };
                    if let Some(delay) = delay {
                        this.state.set(RetryState::Sleeping { sleep: tokio::time::sleep(delay) });
                    } else {
                        this.state.set(RetryState::Done);
                        return Poll::Ready(result.map_err(Into::into));
                    }
                }
                RetryStateProj::Sleeping { sleep } => {
                    std::task::ready!(sleep.poll(cx));
                    this.retry.begin_retry(this.run);
                    this.state.set(RetryState::Readying);
                }
                RetryStateProj::Readying => match std::task::ready!(this.inner.poll_ready(cx)) {
                    Ok(()) => {
                        let future = this.inner.call(this.request.clone());
                        this.state.set(RetryState::Calling { future });
                    }
                    Err(error) => {
                        this.state.set(RetryState::Done);
                        return Poll::Ready(Err(error.into()));
                    }
                },
                RetryStateProj::Done => panic!("RetryFuture polled after completion"),
            }
        }
    }
}

/// Wraps services in a [`TimeoutService`] bounding each call by one [`Timeout`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_resilience::{Elapsed, Timeout, TimeoutLayer};
/// use tower::{Layer, Service, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), conc_core::BoxError> {
/// let mut service = TimeoutLayer::new(Timeout::new(Duration::from_secs(1))?)
///     .layer(service_fn(|delay: Duration| async move {
///         tokio::time::sleep(delay).await;
///         Ok::<_, std::io::Error>("done")
///     }));
/// assert_eq!(service.ready().await?.call(Duration::from_millis(10)).await?, "done");
/// let error = service.ready().await?.call(Duration::from_secs(5)).await.unwrap_err();
/// assert_eq!(error.downcast_ref::<Elapsed>(), Some(&Elapsed { after: Duration::from_secs(1) }));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TimeoutLayer {
    timeout: Timeout,
}

impl TimeoutLayer {
    /// A layer bounding every call of the services it wraps by `timeout`.
    pub fn new(timeout: Timeout) -> Self {
        Self { timeout }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = TimeoutService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TimeoutService { inner, timeout: self.timeout.clone() }
    }
}

/// A service whose calls are bounded by a [`Timeout`].
///
/// The time counts from the first poll of the response future (readiness
/// waits are not included: bound those with the service's own backpressure).
/// When it runs out the inner response future is dropped, releasing whatever
/// it held, and the call fails with [`Elapsed`] as a [`BoxError`].
#[derive(Debug, Clone)]
pub struct TimeoutService<S> {
    inner: S,
    timeout: Timeout,
}

impl<S, Request> Service<Request> for TimeoutService<S>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = TimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        TimeoutFuture {
            response: Running::Running { future: self.inner.call(request) },
            timer: Timer::Unarmed,
            timeout: self.timeout.clone(),
        }
    }
}

pin_project! {
    /// The response future of a [`TimeoutService`]: the inner response, cut
    /// off with [`Elapsed`] when the time runs out.
    ///
    /// The timer is armed only when the inner future first returns
    /// `Pending`; the inner future is dropped as soon as the time is up.
    ///
    /// # Panics
    ///
    /// When polled again after it completed.
    #[derive(Debug)]
    pub struct TimeoutFuture<F> {
        #[pin]
        response: Running<F>,
        #[pin]
        timer: Timer,
        timeout: Timeout,
    }
}

pin_project! {
    /// A future that is dropped in place once it is no longer wanted.
    #[derive(Debug)]
    #[project = RunningProj]
    enum Running<F> {
        Running { #[pin] future: F },
        Dropped,
    }
}

pin_project! {
    /// A timer set on the first wait.
    #[derive(Debug)]
    #[project = TimerProj]
    enum Timer {
        Unarmed,
        Armed { #[pin] sleep: tokio::time::Sleep },
    }
}

impl<F, T, E> Future for TimeoutFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        match this.response.as_mut().project() {
            RunningProj::Running { future } => {
                if let Poll::Ready(result) = future.poll(cx) {
                    this.response.set(Running::Dropped);
                    return Poll::Ready(result.map_err(Into::into));
                }
            }
            RunningProj::Dropped => panic!("TimeoutFuture polled after completion"),
        }
        loop {
            match this.timer.as_mut().project() {
                TimerProj::Unarmed => {
                    this.timer
                        .set(Timer::Armed { sleep: tokio::time::sleep(this.timeout.duration()) });
                }
                TimerProj::Armed { sleep } => {
                    if sleep.poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    this.response.set(Running::Dropped);
                    return Poll::Ready(Err(this.timeout.expired().into()));
                }
            }
        }
    }
}

/// How many load units a request costs, for a [`LoadShedLayer`].
///
/// Implemented by [`OneUnit`] and by every `Fn(&Request) -> u64`.
pub trait LoadUnits<Request> {
    /// The units `request` costs.
    fn units(&self, request: &Request) -> u64;
}

/// Every request costs one load unit: the shedder's maximum is a count of calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OneUnit;

impl<Request> LoadUnits<Request> for OneUnit {
    fn units(&self, _request: &Request) -> u64 {
        1
    }
}

impl<Request, F: Fn(&Request) -> u64> LoadUnits<Request> for F {
    fn units(&self, request: &Request) -> u64 {
        self(request)
    }
}

/// Wraps services in a [`LoadShedService`] sharing one [`LoadShedder`].
///
/// # Examples
///
/// ```
/// use conc_resilience::{LoadShedLayer, LoadShedder, Shed};
/// use tower::{Layer, Service, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::BoxError> {
/// let shedder = LoadShedder::builder(100).build()?;
/// // A request costs one unit per kilobyte, at least one.
/// let mut service = LoadShedLayer::new(shedder.clone())
///     .units(|body: &Vec<u8>| (body.len() as u64 / 1024).max(1))
///     .layer(service_fn(|body: Vec<u8>| async move { Ok::<_, std::io::Error>(body.len()) }));
/// assert_eq!(service.ready().await?.call(vec![0; 4096]).await?, 4096);
/// let error = service.ready().await?.call(vec![0; 200 * 1024]).await.unwrap_err();
/// assert!(matches!(error.downcast_ref::<Shed>(), Some(Shed::Overloaded { units: 200, .. })));
/// assert_eq!(shedder.snapshot().load, 0, "the first call's units came back");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LoadShedLayer<U = OneUnit> {
    shedder: LoadShedder,
    units: U,
}

impl<U> fmt::Debug for LoadShedLayer<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadShedLayer").field("shedder", &self.shedder).finish_non_exhaustive()
    }
}

impl LoadShedLayer {
    /// A layer admitting every call of the services it wraps through
    /// `shedder`, at one load unit per request.
    pub fn new(shedder: LoadShedder) -> Self {
        Self { shedder, units: OneUnit }
    }
}

impl<U> LoadShedLayer<U> {
    /// Charges each request the units `units` gives it (a closure
    /// `Fn(&Request) -> u64`, or any [`LoadUnits`]).
    pub fn units<V>(self, units: V) -> LoadShedLayer<V> {
        LoadShedLayer { shedder: self.shedder, units }
    }
}

impl<S, U: Clone> Layer<S> for LoadShedLayer<U> {
    type Service = LoadShedService<S, U>;

    fn layer(&self, inner: S) -> Self::Service {
        LoadShedService { inner, shedder: self.shedder.clone(), units: self.units.clone() }
    }
}

/// A service whose calls are admitted by a [`LoadShedder`].
///
/// `poll_ready` is the inner service's; the shedder decides in `call`, so a
/// shed request fails from `call` with [`Shed`] (as a [`BoxError`]) and is
/// never sent to the inner service, and `poll_ready` never fails for
/// shedding. An admitted call holds its units until its response future
/// completes or is dropped. A shed request leaves the inner service ready,
/// with whatever admission its `poll_ready` reserved, for the next call (or
/// until this service is dropped).
#[derive(Clone)]
pub struct LoadShedService<S, U = OneUnit> {
    inner: S,
    shedder: LoadShedder,
    units: U,
}

impl<S: fmt::Debug, U> fmt::Debug for LoadShedService<S, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadShedService")
            .field("inner", &self.inner)
            .field("shedder", &self.shedder)
            .finish_non_exhaustive()
    }
}

impl<S, U, Request> Service<Request> for LoadShedService<S, U>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
    U: LoadUnits<Request>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = LoadShedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let state = match self.shedder.try_admit(self.units.units(&request)) {
            Err(shed) => ShedState::Shed { shed: Some(shed) },
            Ok(permit) => {
                ShedState::Admitted { future: self.inner.call(request), permit: Some(permit) }
            }
        };
        LoadShedFuture { state }
    }
}

pin_project! {
    /// The response future of a [`LoadShedService`]: the refusal, or the
    /// inner response holding its load units until it completes or is dropped.
    ///
    /// # Panics
    ///
    /// When polled again after it completed.
    #[derive(Debug)]
    pub struct LoadShedFuture<F> {
        #[pin]
        state: ShedState<F>,
    }
}

pin_project! {
    #[derive(Debug)]
    #[project = ShedStateProj]
    enum ShedState<F> {
        Shed { shed: Option<Shed> },
        Admitted { #[pin] future: F, permit: Option<LoadPermit> },
    }
}

impl<F, T, E> Future for LoadShedFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            ShedStateProj::Shed { shed } => Poll::Ready(Err(shed
                .take()
                .expect("LoadShedFuture polled after completion")
                .into())),
            ShedStateProj::Admitted { future, permit } => {
                let result = std::task::ready!(future.poll(cx));
                drop(permit.take());
                Poll::Ready(result.map_err(Into::into))
            }
        }
    }
}

/// Wraps services in a [`FallbackService`] answering failures with a [`Fallback`].
///
/// The fallback sees every failure as a [`ResilienceError<BoxError>`]: the
/// refusals and timeouts of the other layers of this crate (wherever they sit
/// below it in the stack) are recognised by type and get their own
/// [`ErrorKind`](crate::ErrorKind); anything else is [`ResilienceError::Inner`].
///
/// # Examples
///
/// ```
/// use conc_resilience::{CircuitBreaker, CircuitBreakerLayer, ErrorKind, Fallback, FallbackLayer};
/// use tower::{Layer, Service, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::BoxError> {
/// let breaker = CircuitBreaker::builder().build()?;
/// let fallback = Fallback::new().on(ErrorKind::BreakerOpen, |_| "cached page".to_owned());
/// let mut service = FallbackLayer::new(fallback).layer(
///     CircuitBreakerLayer::new(breaker.clone())
///         .layer(service_fn(|path: &'static str| async move { Ok::<_, std::io::Error>(format!("page {path}")) })),
/// );
/// assert_eq!(service.ready().await?.call("/").await?, "page /");
/// breaker.force_open();
/// assert_eq!(service.ready().await?.call("/").await?, "cached page");
/// # Ok(()) }
/// ```
pub struct FallbackLayer<T> {
    fallback: Arc<Fallback<T, BoxError>>,
}

impl<T> FallbackLayer<T> {
    /// A layer answering the failures `fallback` handles.
    pub fn new(fallback: Fallback<T, BoxError>) -> Self {
        Self { fallback: Arc::new(fallback) }
    }
}

impl<T> Clone for FallbackLayer<T> {
    fn clone(&self) -> Self {
        Self { fallback: Arc::clone(&self.fallback) }
    }
}

impl<T> fmt::Debug for FallbackLayer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackLayer").field("fallback", &self.fallback).finish()
    }
}

impl<S, T> Layer<S> for FallbackLayer<T> {
    type Service = FallbackService<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        FallbackService { inner, fallback: Arc::clone(&self.fallback) }
    }
}

/// A service whose failed calls are answered by a [`Fallback`] where it can.
///
/// Only response failures are answered: a readiness error from `poll_ready`
/// is passed on unchanged (tower treats it as the service being broken, and
/// no layer of this crate refuses from `poll_ready`). A failure no handler
/// answers is returned as it came, so it can still be downcast to its type.
pub struct FallbackService<S, T> {
    inner: S,
    fallback: Arc<Fallback<T, BoxError>>,
}

impl<S: Clone, T> Clone for FallbackService<S, T> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), fallback: Arc::clone(&self.fallback) }
    }
}

impl<S: fmt::Debug, T> fmt::Debug for FallbackService<S, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackService")
            .field("inner", &self.inner)
            .field("fallback", &self.fallback)
            .finish()
    }
}

impl<S, Request> Service<Request> for FallbackService<S, S::Response>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = FallbackFuture<S::Future, S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        FallbackFuture { future: self.inner.call(request), fallback: Arc::clone(&self.fallback) }
    }
}

pin_project! {
    /// The response future of a [`FallbackService`]: the inner response, or
    /// the fallback's answer to its failure.
    pub struct FallbackFuture<F, T> {
        #[pin]
        future: F,
        fallback: Arc<Fallback<T, BoxError>>,
    }
}

impl<F: fmt::Debug, T> fmt::Debug for FallbackFuture<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackFuture")
            .field("future", &self.future)
            .field("fallback", &self.fallback)
            .finish()
    }
}

impl<F, T, E> Future for FallbackFuture<F, T>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match std::task::ready!(this.future.poll(cx)) {
            Ok(value) => Poll::Ready(Ok(value)),
            Err(error) => {
                Poll::Ready(this.fallback.apply(Err(classify(error.into()))).map_err(unclassify))
            }
        }
    }
}

/// Tells the refusals and timeouts of this crate's layers from the inner service's errors.
fn classify(error: BoxError) -> ResilienceError<BoxError> {
    let error = match error.downcast::<Rejected>() {
        Ok(rejected) => return ResilienceError::BreakerOpen(*rejected),
        Err(error) => error,
    };
    let error = match error.downcast::<BulkheadError>() {
        Ok(refused) => return ResilienceError::BulkheadFull(*refused),
        Err(error) => error,
    };
    let error = match error.downcast::<Elapsed>() {
        Ok(elapsed) => return ResilienceError::Timeout(*elapsed),
        Err(error) => error,
    };
    match error.downcast::<Shed>() {
        Ok(shed) => ResilienceError::Shed(*shed),
        Err(error) => ResilienceError::Inner(error),
    }
}

/// The failure as the layer below returned it.
fn unclassify(error: ResilienceError<BoxError>) -> BoxError {
    match error {
        ResilienceError::Inner(error) => error,
        ResilienceError::BreakerOpen(rejected) => rejected.into(),
        ResilienceError::BulkheadFull(refused) => refused.into(),
        ResilienceError::Timeout(elapsed) => elapsed.into(),
        ResilienceError::Shed(shed) => shed.into(),
    }
}
