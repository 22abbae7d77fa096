//! [`JobHandlers`]: the table from a job's name (and payload version) to the code
//! that decodes and runs it.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use conc_core::BoxFuture;
use serde::de::DeserializeOwned;

use super::context::JobContext;
use super::error::{DecodeError, JobError};
use super::options::JobOptions;
use super::{Envelope, Job};

/// Turns an older payload (JSON) into the current job type, boxed.
type Upcaster = Arc<dyn Fn(&str) -> Result<Box<dyn Any + Send>, String> + Send + Sync>;

/// A job type's handler with its type erased: decodes a payload (upcasting
/// older versions) and runs it.
pub(crate) trait ErasedHandler: Send + Sync {
    /// The job type's options (for the backoff policy set on the type).
    fn options(&self) -> JobOptions;

    /// Decodes `envelope`'s payload and starts the handler on it.
    fn start(
        &self,
        envelope: &Envelope,
        upcasters: Option<&HashMap<u32, Upcaster>>,
        ctx: JobContext,
    ) -> Result<BoxFuture<'static, Result<(), JobError>>, DecodeError>;
}

struct TypedHandler<J, F> {
    /// Shared with each attempt's future, which calls it when first polled
    /// (after the middleware let the attempt through).
    handler: Arc<F>,
    _job: std::marker::PhantomData<fn(J)>,
}

impl<J, F, Fut> ErasedHandler for TypedHandler<J, F>
where
    J: Job,
    F: Fn(J, JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobError>> + Send + 'static,
{
    fn options(&self) -> JobOptions {
        J::options()
    }

    fn start(
        &self,
        envelope: &Envelope,
        upcasters: Option<&HashMap<u32, Upcaster>>,
        ctx: JobContext,
    ) -> Result<BoxFuture<'static, Result<(), JobError>>, DecodeError> {
        let job = decode::<J>(envelope, upcasters)?;
        let handler = Arc::clone(&self.handler);
        Ok(Box::pin(async move { handler(job, ctx).await }))
    }
}

/// `envelope`'s payload as a `J`, upcast from an older version when needed.
fn decode<J: Job>(
    envelope: &Envelope,
    upcasters: Option<&HashMap<u32, Upcaster>>,
) -> Result<J, DecodeError> {
    let payload_error = |message: String| DecodeError::Payload {
        name: envelope.name.clone(),
        version: envelope.version,
        message,
    };
    if envelope.version == J::VERSION {
        return serde_json::from_str(&envelope.payload).map_err(|e| payload_error(e.to_string()));
    }
    let upcast = upcasters.and_then(|map| map.get(&envelope.version)).ok_or_else(|| {
        DecodeError::UnknownVersion {
            name: envelope.name.clone(),
            version: envelope.version,
            current: J::VERSION,
        }
    })?;
    let boxed = upcast(&envelope.payload).map_err(payload_error)?;
    boxed.downcast::<J>().map(|job| *job).map_err(|_| {
        payload_error(format!("the upcaster did not produce a `{}`", std::any::type_name::<J>()))
    })
}

/// The table workers run jobs from: for each job name, the handler of its
/// current payload version and the upcasters of older versions. Clones share
/// the handlers, so one table can serve many workers.
///
/// A handler is any `Fn(J, JobContext) -> impl Future<Output = Result<(), JobError>>`,
/// an `async fn` included. A payload whose name has no handler, or whose
/// version has neither the handler nor an upcaster, goes to the failed store
/// with a [`DecodeError`]; nothing panics.
///
/// # Examples
///
/// ```
/// use conc_bus::{JobHandlers, Job, JobContext, JobError};
/// use serde::{Deserialize, Serialize};
///
/// /// The payload before version 2 had one `name` field.
/// #[derive(Deserialize)]
/// struct GreetV1 { name: String }
///
/// #[derive(Serialize, Deserialize)]
/// struct Greet { first: String, last: String }
/// impl Job for Greet {
///     const NAME: &'static str = "greet";
///     const VERSION: u32 = 2;
/// }
///
/// let handlers = JobHandlers::new()
///     .handle(|job: Greet, _ctx: JobContext| async move {
///         println!("hello {} {}", job.first, job.last);
///         Ok::<(), JobError>(())
///     })
///     .upcast(1, |old: GreetV1| {
///         let (first, last) = old.name.split_once(' ').unwrap_or((&old.name, ""));
///         Greet { first: first.into(), last: last.into() }
///     });
/// assert!(handlers.knows("greet"));
/// ```
#[derive(Default, Clone)]
pub struct JobHandlers {
    handlers: HashMap<&'static str, Arc<dyn ErasedHandler>>,
    upcasters: HashMap<&'static str, HashMap<u32, Upcaster>>,
    /// Middleware, outermost first; `Some(name)` for one job type's.
    layers: Vec<(Option<&'static str>, crate::middleware::ErasedLayer)>,
    /// Middleware that jobs ask for by name ([`JobOptions::through`]).
    named: HashMap<String, crate::middleware::ErasedLayer>,
    #[cfg(feature = "encryption")]
    keyring: Option<Arc<crate::encryption::Keyring>>,
}

impl JobHandlers {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` for jobs of type `J` (by [`Job::NAME`]), replacing
    /// any handler registered for that name before.
    #[must_use]
    pub fn handle<J, F, Fut>(mut self, handler: F) -> Self
    where
        J: Job,
        F: Fn(J, JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobError>> + Send + 'static,
    {
        let typed =
            TypedHandler::<J, F> { handler: Arc::new(handler), _job: std::marker::PhantomData };
        self.handlers.insert(J::NAME, Arc::new(typed));
        self
    }

    /// Registers how a payload of `J` written as `version` (an older shape,
    /// `Old`) becomes a `J`.
    #[must_use]
    pub fn upcast<J, Old, F>(mut self, version: u32, upcast: F) -> Self
    where
        J: Job,
        Old: DeserializeOwned,
        F: Fn(Old) -> J + Send + Sync + 'static,
    {
        let upcaster: Upcaster = Arc::new(move |payload: &str| {
            let old: Old = serde_json::from_str(payload).map_err(|e| e.to_string())?;
            Ok(Box::new(upcast(old)) as Box<dyn Any + Send>)
        });
        self.upcasters.entry(J::NAME).or_default().insert(version, upcaster);
        self
    }

    /// Adds `layer` as job middleware around every job's attempts, inside
    /// the layers added before it (the first added is the outermost). See
    /// [`middleware`](crate::middleware).
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::middleware::SkipIfBatchCancelledLayer;
    /// use conc_bus::{JobHandlers, MemoryQueue, Queue};
    ///
    /// let queue = Queue::new(MemoryQueue::new());
    /// let handlers = JobHandlers::new().layer(SkipIfBatchCancelledLayer::new(queue));
    /// # let _ = handlers;
    /// ```
    #[must_use]
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: tower::Layer<crate::middleware::JobService> + Send + Sync + 'static,
        L::Service: tower::Service<crate::middleware::JobRequest, Response = (), Error = JobError>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as tower::Service<crate::middleware::JobRequest>>::Future: Send + 'static,
    {
        self.layers.push((None, crate::middleware::erase(layer)));
        self
    }

    /// Adds `layer` as job middleware around the attempts of jobs of type
    /// `J` only (Laravel's `middleware()` on a job class), in the same order
    /// as [`layer`](Self::layer).
    #[must_use]
    pub fn layer_for<J, L>(mut self, layer: L) -> Self
    where
        J: Job,
        L: tower::Layer<crate::middleware::JobService> + Send + Sync + 'static,
        L::Service: tower::Service<crate::middleware::JobRequest, Response = (), Error = JobError>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as tower::Service<crate::middleware::JobRequest>>::Future: Send + 'static,
    {
        self.layers.push((Some(J::NAME), crate::middleware::erase(layer)));
        self
    }

    /// Registers `layer` as the middleware named `name`: it runs around the
    /// attempts of the jobs that ask for it by name, whatever their type —
    /// dispatched with [`through`](crate::PendingDispatch::through), typed
    /// with [`JobOptions::through`](crate::JobOptions::through), or members
    /// of a batch dispatched [`through`](crate::batch::PendingBatch::through)
    /// it (one rate limit shared by a whole batch: a
    /// [`RateLimitedLayer`](crate::middleware::RateLimitedLayer) keyed by the
    /// batch's id). Named layers run inside the layers of
    /// [`layer`](Self::layer) and [`layer_for`](Self::layer_for), in the order
    /// the job names them. Registering a name again replaces its layer. A job
    /// that names a middleware the table lacks goes to the failed store with
    /// [`DecodeError::UnknownMiddleware`]: register every name on every worker
    /// of the queues that carry it.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::middleware::SkipIfBatchCancelledLayer;
    /// use conc_bus::{JobHandlers, MemoryQueue, Queue};
    ///
    /// let queue = Queue::new(MemoryQueue::new());
    /// let handlers =
    ///     JobHandlers::new().named_layer("skip-cancelled", SkipIfBatchCancelledLayer::new(queue));
    /// assert!(handlers.knows_middleware("skip-cancelled"));
    /// ```
    #[must_use]
    pub fn named_layer<L>(mut self, name: impl Into<String>, layer: L) -> Self
    where
        L: tower::Layer<crate::middleware::JobService> + Send + Sync + 'static,
        L::Service: tower::Service<crate::middleware::JobRequest, Response = (), Error = JobError>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as tower::Service<crate::middleware::JobRequest>>::Future: Send + 'static,
    {
        self.named.insert(name.into(), crate::middleware::erase(layer));
        self
    }

    /// Whether a middleware is registered under `name`.
    pub fn knows_middleware(&self, name: &str) -> bool {
        self.named.contains_key(name)
    }

    /// Opens sealed payloads with `keyring` before they are decoded (feature
    /// `encryption`). A sealed job whose key the keyring lacks, or whose
    /// payload fails authentication, goes to the failed store with a
    /// [`DecodeError::Sealed`] naming the key id.
    #[cfg(feature = "encryption")]
    #[cfg_attr(docsrs, doc(cfg(feature = "encryption")))]
    #[must_use]
    pub fn keyring(mut self, keyring: impl Into<Arc<crate::encryption::Keyring>>) -> Self {
        self.keyring = Some(keyring.into());
        self
    }

    /// Whether a handler is registered for `name`.
    pub fn knows(&self, name: &str) -> bool {
        self.handlers.contains_key(name)
    }

    /// The names with a handler, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.handlers.keys().copied().collect();
        names.sort_unstable();
        names
    }

    /// Opens and decodes `envelope` and starts its handler behind the middleware.
    pub(crate) fn start(
        &self,
        envelope: &Arc<Envelope>,
        ctx: JobContext,
    ) -> Result<BoxFuture<'static, Result<(), JobError>>, DecodeError> {
        let handler = self
            .handlers
            .get(envelope.name.as_str())
            .ok_or_else(|| DecodeError::UnknownJob { name: envelope.name.clone() })?;
        let named = envelope
            .middleware
            .iter()
            .map(|middleware| {
                self.named.get(middleware).ok_or_else(|| DecodeError::UnknownMiddleware {
                    name: envelope.name.clone(),
                    middleware: middleware.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let envelope = self.open(envelope)?;
        let run =
            handler.start(&envelope, self.upcasters.get(envelope.name.as_str()), ctx.clone())?;
        let mut layers = self
            .layers
            .iter()
            .filter(|(only, _)| only.is_none_or(|name| name == envelope.name))
            .map(|(_, layer)| layer)
            .chain(named)
            .peekable();
        if layers.peek().is_none() {
            return Ok(run);
        }
        let layers: Vec<_> = layers.collect();
        Ok(crate::middleware::wrap(layers.into_iter(), envelope, ctx, run))
    }

    /// `envelope` with its payload opened when it is sealed.
    #[cfg_attr(
        not(feature = "encryption"),
        allow(clippy::unused_self, reason = "no keyring to read")
    )]
    fn open(&self, envelope: &Arc<Envelope>) -> Result<Arc<Envelope>, DecodeError> {
        if envelope.key_id.is_none() {
            return Ok(Arc::clone(envelope));
        }
        #[cfg(feature = "encryption")]
        {
            let opened = crate::encryption::open_envelope(self.keyring.as_deref(), envelope)?;
            Ok(opened.map_or_else(|| Arc::clone(envelope), Arc::new))
        }
        #[cfg(not(feature = "encryption"))]
        Err(DecodeError::Sealed {
            name: envelope.name.clone(),
            key_id: envelope.key_id.clone().unwrap_or_default(),
            message: "conc-bus was built without the `encryption` feature".to_owned(),
        })
    }

    /// Seals the jobs a running job added to its chain that are marked
    /// encrypted, with this table's keyring, so they are stored like any
    /// push: never in clear. Refused (with the reason) when one is marked
    /// encrypted and there is no keyring to seal it with.
    #[cfg_attr(
        not(feature = "encryption"),
        allow(clippy::unused_self, reason = "no keyring to seal with")
    )]
    pub(crate) fn seal_links(&self, links: &mut [Envelope]) -> Result<(), String> {
        for link in links.iter_mut() {
            let Some(name) = link.unsealed() else { continue };
            #[cfg(feature = "encryption")]
            if let Some(keyring) = &self.keyring {
                keyring.seal_flow(link).map_err(|error| error.to_string())?;
                continue;
            }
            return Err(format!(
                "job `{name}` added to the chain is marked encrypted and the worker's handlers \
                 have no keyring to seal it with"
            ));
        }
        Ok(())
    }

    /// The options the job type named `name` sets, if it has a handler.
    pub(crate) fn options(&self, name: &str) -> Option<JobOptions> {
        self.handlers.get(name).map(|handler| handler.options())
    }
}

impl fmt::Debug for JobHandlers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandlers").field("jobs", &self.names()).finish()
    }
}
