//! [`BusBuilder`]: handlers, hooks, layers and the queue of a [`Bus`].

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use conc_core::BoxError;
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt};

use super::admission::Admission;
use super::erased::{Entry, Hook, Router};
use super::trace::DispatchTraceLayer;
use super::{Bus, Command, Dispatch, Inner, Refusal, Reply};
use crate::queue::{AnyBackend, Queue, QueueBackend};
use crate::testing::BusFake;
use crate::testing::fake::{FakeBackend, Recorder};

/// The stack as each layer sees it.
type Stack = BoxCloneSyncService<Dispatch, Reply, BoxError>;

/// Wraps the stack built so far in one more layer.
type Wrap = Box<dyn FnOnce(Stack) -> Stack + Send>;

/// Configures a [`Bus`]: one handler per command type, authorization and
/// validation hooks per command type, tower layers around every dispatch,
/// and the queue jobs are pushed onto.
///
/// Layers run in the order they are added, the first added outermost (as in
/// `tower::ServiceBuilder`); the hooks run before all of them.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_bus::{Bus, Command, MemoryQueue, Queue};
///
/// #[derive(Clone)]
/// struct Ping;
/// impl Command for Ping { type Output = &'static str; type Error = std::convert::Infallible; }
///
/// let bus = Bus::builder()
///     .handle(|_: Ping| async { Ok("pong") })
///     .trace()
///     .layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(5)))
///     .queue(&Queue::new(MemoryQueue::new()))
///     .build();
/// assert!(bus.handles::<Ping>());
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct BusBuilder {
    entries: HashMap<TypeId, Entry>,
    authorizers: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
    validators: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
    layers: Vec<Wrap>,
    admissions: Vec<Arc<dyn Admission>>,
    map_error: Option<Arc<dyn Fn(BoxError) -> BoxError + Send + Sync>>,
    queue: Option<Queue<AnyBackend>>,
}

impl fmt::Debug for BusBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusBuilder")
            .field("handlers", &self.entries.len())
            .field("layers", &self.layers.len())
            .field("queue", &self.queue.is_some())
            .finish_non_exhaustive()
    }
}

/// Adds `hook` to the hooks of `C` in `hooks`.
fn add_hook<C: Command>(hooks: &mut HashMap<TypeId, Box<dyn Any + Send + Sync>>, hook: Hook<C>) {
    let list = hooks.entry(TypeId::of::<C>()).or_insert_with(|| Box::new(Vec::<Hook<C>>::new()));
    if let Some(list) = list.downcast_mut::<Vec<Hook<C>>>() {
        list.push(hook);
    }
}

impl BusBuilder {
    pub(super) fn new() -> Self {
        Self {
            entries: HashMap::new(),
            authorizers: HashMap::new(),
            validators: HashMap::new(),
            layers: Vec::new(),
            admissions: Vec::new(),
            map_error: None,
            queue: None,
        }
    }

    /// Registers `handler` for commands of type `C` (named by the closure's
    /// argument), replacing any handler registered for `C` before.
    pub fn handle<C, F, Fut>(mut self, handler: F) -> Self
    where
        C: Command,
        F: Fn(C) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<C::Output, C::Error>> + Send + 'static,
    {
        self.entries.insert(TypeId::of::<C>(), Entry::new(handler));
        self
    }

    /// Adds an authorization hook for `C`: a command it refuses is not
    /// handled and comes back in [`DispatchError::Unauthorized`](super::DispatchError::Unauthorized).
    /// Hooks run in the order added; authorization runs before validation.
    pub fn authorize<C, F>(mut self, hook: F) -> Self
    where
        C: Command,
        F: Fn(&C) -> Result<(), Refusal> + Send + Sync + 'static,
    {
        add_hook::<C>(&mut self.authorizers, Arc::new(hook));
        self
    }

    /// Adds a validation hook for `C`: a command it refuses is not handled
    /// and comes back in [`DispatchError::Invalid`](super::DispatchError::Invalid).
    pub fn validate<C, F>(mut self, hook: F) -> Self
    where
        C: Command,
        F: Fn(&C) -> Result<(), Refusal> + Send + Sync + 'static,
    {
        add_hook::<C>(&mut self.validators, Arc::new(hook));
        self
    }

    /// Adds a tower layer around every dispatch (any layer over a
    /// `Service<Dispatch, Response = Reply>`: tower's own, conc-resilience's,
    /// conc-ratelimit's, yours). A layer that refuses in `poll_ready` hands
    /// the command back as [`DispatchError::Rejected`](super::DispatchError::Rejected).
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<Stack> + Send + 'static,
        L::Service: Service<Dispatch, Response = Reply> + Clone + Send + Sync + 'static,
        <L::Service as Service<Dispatch>>::Error: Into<BoxError>,
        <L::Service as Service<Dispatch>>::Future: Send + 'static,
    {
        self.layers.push(Box::new(move |inner: Stack| {
            BoxCloneSyncService::new(layer.layer(inner).map_err(Into::into))
        }));
        self
    }

    /// Adds the tracing layer: a `dispatch` span per command, carrying its
    /// type, and a debug event with the outcome and the time it took.
    pub fn trace(self) -> Self {
        self.layer(DispatchTraceLayer::new())
    }

    /// Puts every dispatch behind `breaker` (feature `resilience`): while
    /// the circuit is open a command is refused before its handler and
    /// handed back in [`DispatchError::Rejected`](super::DispatchError::Rejected)
    /// (whose error is the breaker's `Rejected`, saying when to try again);
    /// every other outcome of a dispatch counts, an error as a failure. For
    /// a breaker per command type, or one that classifies errors, add a
    /// `CircuitBreakerLayer` with [`layer`](Self::layer).
    #[cfg(feature = "resilience")]
    #[cfg_attr(docsrs, doc(cfg(feature = "resilience")))]
    pub fn breaker(mut self, breaker: conc_resilience::CircuitBreaker) -> Self {
        self.admissions.push(Arc::new(breaker));
        self
    }

    /// Retries failed dispatches with conc-resilience's `Retry` (feature
    /// `resilience`), running the handler again with a clone of the command.
    #[cfg(feature = "resilience")]
    #[cfg_attr(docsrs, doc(cfg(feature = "resilience")))]
    pub fn retry(self, retry: conc_resilience::Retry) -> Self {
        self.layer(conc_resilience::RetryLayer::new(retry))
    }

    /// Bounds every dispatch with conc-resilience's `Timeout` (feature
    /// `resilience`); a dispatch that runs out of time fails with its `Elapsed`.
    #[cfg(feature = "resilience")]
    #[cfg_attr(docsrs, doc(cfg(feature = "resilience")))]
    pub fn timeout(self, timeout: conc_resilience::Timeout) -> Self {
        self.layer(conc_resilience::TimeoutLayer::new(timeout))
    }

    /// Admits at most the rate of `limiter` across all commands (feature
    /// `ratelimit`); a command over it is refused before its handler and
    /// handed back in [`DispatchError::Rejected`](super::DispatchError::Rejected)
    /// (whose error is a `RateLimitError` with the wait).
    #[cfg(feature = "ratelimit")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ratelimit")))]
    pub fn rate_limit<L>(self, limiter: Arc<L>) -> Self
    where
        L: conc_ratelimit::Limiter<Key = ()> + 'static,
    {
        self.rate_limit_by(limiter, |_| ())
    }

    /// Admits commands at the rate of a keyed `limiter` (feature
    /// `ratelimit`), the key made from the command's type name (say, one
    /// limit per command type: `|name| name`).
    #[cfg(feature = "ratelimit")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ratelimit")))]
    pub fn rate_limit_by<L, F>(mut self, limiter: Arc<L>, key: F) -> Self
    where
        L: conc_ratelimit::Limiter + 'static,
        F: Fn(&'static str) -> L::Key + Send + Sync + 'static,
    {
        let admission = super::admission::rate::RateAdmission { limiter, key };
        self.admissions.push(Arc::new(admission));
        self
    }

    /// Maps the errors of layers (not the handlers' own errors) before the
    /// caller sees them, e.g. a timeout into a domain error.
    pub fn map_error<F>(mut self, map: F) -> Self
    where
        F: Fn(BoxError) -> BoxError + Send + Sync + 'static,
    {
        self.map_error = Some(Arc::new(map));
        self
    }

    /// The queue [`Bus::dispatch_to_queue`] pushes onto. Defaults to none.
    pub fn queue<B: QueueBackend>(mut self, queue: &Queue<B>) -> Self {
        let front = Queue::new(AnyBackend::from_arc(Arc::clone(queue.backend())));
        self.queue = Some(front);
        self
    }

    /// The bus in fake mode, for tests, and the recorder to assert on
    /// (Laravel's `Bus::fake()`). Code that takes a [`Bus`] needs no change:
    ///
    /// - jobs given to [`Bus::dispatch_to_queue`] or pushed onto
    ///   [`Bus::queue`] are recorded and not pushed, except the types named
    ///   with [`BusFake::except`], which really go to the queue set with
    ///   [`queue`](Self::queue);
    /// - each recorded job goes through a round trip of its payload first
    ///   (serialize-and-restore, on by default): the decoded job is what is
    ///   recorded, and one that does not read back fails the dispatch;
    /// - commands given to [`Bus::dispatch`] are recorded and still run their
    ///   handlers, hooks and layers, so their output reaches the caller.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{Bus, Command, Job};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Debug, Clone)]
    /// struct PlaceOrder { items: u32 }
    /// impl Command for PlaceOrder { type Output = u64; type Error = std::convert::Infallible; }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct SendReceipt { order: u64 }
    /// impl Job for SendReceipt { const NAME: &'static str = "send-receipt"; }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (bus, fake) = Bus::builder().handle(|_: PlaceOrder| async { Ok(42) }).fake();
    ///
    /// let order = bus.dispatch(PlaceOrder { items: 2 }).await?; // the handler runs
    /// bus.dispatch_to_queue(SendReceipt { order }).await?; // recorded, not pushed
    ///
    /// fake.assert_command_dispatched_with(|c: &PlaceOrder| c.items == 2);
    /// fake.assert_dispatched_with(|job: &SendReceipt| job.order == 42);
    /// # Ok(()) }
    /// ```
    pub fn fake(mut self) -> (Bus, BusFake) {
        let real = self.queue.take();
        let recorder = Arc::new(Recorder::new(real));
        let backend = FakeBackend::new(Arc::clone(&recorder));
        self.queue = Some(Queue::new(AnyBackend::new(backend)));
        let bus = self.assemble(Some(Arc::clone(&recorder)));
        (bus, BusFake::new(recorder))
    }

    /// The bus.
    pub fn build(self) -> Bus {
        self.assemble(None)
    }

    fn assemble(self, fake: Option<Arc<Recorder>>) -> Bus {
        let entries = Arc::new(self.entries);
        let stack = if self.layers.is_empty() {
            None
        } else {
            let router = Router { entries: Arc::clone(&entries) };
            let mut stack = BoxCloneSyncService::new(router);
            for wrap in self.layers.into_iter().rev() {
                stack = wrap(stack);
            }
            Some(stack)
        };
        let inner = Inner {
            entries,
            authorizers: self.authorizers,
            validators: self.validators,
            stack,
            admissions: self.admissions,
            map_error: self.map_error,
            queue: self.queue,
            fake,
        };
        Bus { inner: Arc::new(inner) }
    }
}
