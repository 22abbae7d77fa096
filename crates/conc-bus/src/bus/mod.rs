//! The in-process command bus: typed commands, one handler each, hooks that
//! refuse a command with it handed back, and a tower stack around every
//! dispatch (Laravel's `Bus::dispatchSync`, `MediatR`'s `Send`).

mod admission;
mod builder;
mod erased;
mod error;
mod trace;

pub use builder::BusBuilder;
pub use erased::{Dispatch, HandlerPanicked, Reply};
pub use error::{DispatchError, Refusal};
pub use trace::{DispatchTrace, DispatchTraceLayer, future};

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::future::poll_fn;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use conc_core::BoxError;
use futures::FutureExt;
use tower::Service;
use tower::util::BoxCloneSyncService;

use self::erased::{Entry, Hook, TypedHandler};
use crate::id::JobId;
use crate::job::Job;
use crate::queue::{AnyBackend, EnqueueError, Queue};
use crate::testing::fake::Recorder;

/// A command: a request with exactly one handler, dispatched in process.
///
/// `Output` is what the handler answers and `Error` how it fails; commands
/// are plain data, `Clone` so that a retry layer can run the handler again
/// (the first attempt gets the command itself, a clone is made only when a
/// layer keeps a copy).
///
/// # Examples
///
/// ```
/// use conc_bus::Command;
///
/// #[derive(Debug, Clone)]
/// struct CreateOrder { customer: u64, items: Vec<u32> }
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("out of stock")]
/// struct OutOfStock;
///
/// impl Command for CreateOrder {
///     type Output = u64; // the order's id
///     type Error = OutOfStock;
/// }
///
/// let order = CreateOrder { customer: 7, items: vec![1, 2] };
/// let _: Result<u64, OutOfStock> = Err(OutOfStock);
/// assert_eq!((order.customer, order.items.len()), (7, 2));
/// ```
pub trait Command: Clone + Send + 'static {
    /// What the handler answers.
    type Output: Send + 'static;
    /// How the handler fails.
    type Error: std::error::Error + Send + Sync + 'static;
}

/// The short name of a command type, for messages.
pub(crate) fn short_name<C: 'static>() -> &'static str {
    let full = std::any::type_name::<C>();
    full.rsplit("::").next().unwrap_or(full)
}

/// The in-process command bus.
///
/// Each command type has one handler, registered on the [`BusBuilder`];
/// [`dispatch`](Self::dispatch) runs the command's authorization and
/// validation hooks, then the handler through the bus's tower stack, and
/// answers the handler's output. A command that no handler takes, or that a
/// hook or a layer refuses before the handler got it, is handed back in the
/// error. Panics in handlers are caught and reported.
///
/// The bus also pushes jobs onto its queue
/// ([`dispatch_to_queue`](Self::dispatch_to_queue)), so one value serves both.
/// Clones share everything.
///
/// # Examples
///
/// ```
/// use conc_bus::{Bus, Command, DispatchError, Refusal};
///
/// #[derive(Debug, Clone)]
/// struct Transfer { from: u32, to: u32, cents: u64 }
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("insufficient funds")]
/// struct Insufficient;
///
/// impl Command for Transfer {
///     type Output = u64;
///     type Error = Insufficient;
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let bus = Bus::builder()
///     .handle(|t: Transfer| async move {
///         if t.cents > 10_000 { Err(Insufficient) } else { Ok(10_000 - t.cents) }
///     })
///     .validate(|t: &Transfer| {
///         if t.from == t.to { Err(Refusal::new("from and to are the same account")) } else { Ok(()) }
///     })
///     .build();
///
/// assert_eq!(bus.dispatch(Transfer { from: 1, to: 2, cents: 2_500 }).await.unwrap(), 7_500);
/// assert!(matches!(
///     bus.dispatch(Transfer { from: 1, to: 2, cents: 20_000 }).await,
///     Err(DispatchError::Failed(Insufficient))
/// ));
/// let refused = bus.dispatch(Transfer { from: 3, to: 3, cents: 1 }).await.unwrap_err();
/// assert_eq!(refused.into_command().map(|t| t.from), Some(3));
/// # }
/// ```
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

struct Inner {
    entries: Arc<HashMap<TypeId, Entry>>,
    /// `Vec<Hook<C>>` per command type.
    authorizers: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
    validators: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
    /// The middleware around the router; `None` when no layer was added.
    stack: Option<BoxCloneSyncService<Dispatch, Reply, BoxError>>,
    /// Checked before the stack, in order: a refusal hands the command back.
    admissions: Vec<Arc<dyn admission::Admission>>,
    map_error: Option<Arc<dyn Fn(BoxError) -> BoxError + Send + Sync>>,
    queue: Option<Queue<AnyBackend>>,
    /// The recorder of a bus made by [`BusBuilder::fake`].
    fake: Option<Arc<Recorder>>,
}

impl Bus {
    /// A builder to register handlers, hooks, layers and a queue.
    pub fn builder() -> BusBuilder {
        BusBuilder::new()
    }

    /// Dispatches `command` to its handler; the handler's output.
    ///
    /// # Errors
    ///
    /// [`DispatchError::NoHandler`], `Unauthorized`, `Invalid` and `Rejected`
    /// hand the command back; `Failed` carries the handler's error,
    /// `Panicked` its panic message, `Middleware` a layer's error.
    pub async fn dispatch<C: Command>(&self, command: C) -> Result<C::Output, DispatchError<C>> {
        let inner = &*self.inner;
        if let Some(fake) = &inner.fake {
            fake.record_command(&command);
        }
        let Some(entry) = inner.entries.get(&TypeId::of::<C>()) else {
            return Err(DispatchError::NoHandler(command));
        };
        if let Some(refusal) = run_hooks(&inner.authorizers, &command) {
            return Err(DispatchError::Unauthorized { command, refusal });
        }
        if let Some(refusal) = run_hooks(&inner.validators, &command) {
            return Err(DispatchError::Invalid { command, refusal });
        }
        let mut tickets = Vec::new();
        for admission in &inner.admissions {
            match admission.admit(std::any::type_name::<C>()) {
                Ok(ticket) => tickets.extend(ticket),
                Err(error) => {
                    // The tickets taken so far are dropped unused.
                    return Err(DispatchError::Rejected { command, error: self.map_error(error) });
                }
            }
        }
        let result = self.handle(entry, command).await;
        for ticket in tickets {
            ticket.record(result.is_ok());
        }
        result
    }

    /// Runs `command`'s handler, through the stack when there is one.
    async fn handle<C: Command>(
        &self,
        entry: &Entry,
        command: C,
    ) -> Result<C::Output, DispatchError<C>> {
        match &self.inner.stack {
            None => {
                let Some(handler) = entry.typed.downcast_ref::<TypedHandler<C>>() else {
                    return Err(DispatchError::Middleware("the bus lost a handler's type".into()));
                };
                match AssertUnwindSafe(handler(command)).catch_unwind().await {
                    Ok(Ok(output)) => Ok(output),
                    Ok(Err(error)) => Err(DispatchError::Failed(error)),
                    Err(panic) => Err(DispatchError::Panicked(conc_core::driver::panic_message(
                        panic.as_ref(),
                    ))),
                }
            }
            Some(stack) => self.through_stack(stack.clone(), command).await,
        }
    }

    async fn through_stack<C: Command>(
        &self,
        mut stack: BoxCloneSyncService<Dispatch, Reply, BoxError>,
        command: C,
    ) -> Result<C::Output, DispatchError<C>> {
        if let Err(error) = poll_fn(|cx| stack.poll_ready(cx)).await {
            return Err(DispatchError::Rejected { command, error: self.map_error(error) });
        }
        match stack.call(Dispatch::new(command)).await {
            Ok(reply) => reply.into_output::<C::Output>().ok_or_else(|| {
                DispatchError::Middleware("a layer answered with another type's output".into())
            }),
            Err(error) => Err(match error.downcast::<C::Error>() {
                Ok(failed) => DispatchError::Failed(*failed),
                Err(error) => match error.downcast::<HandlerPanicked>() {
                    Ok(panicked) => DispatchError::Panicked(panicked.0),
                    Err(error) => DispatchError::Middleware(self.map_error(error)),
                },
            }),
        }
    }

    fn map_error(&self, error: BoxError) -> BoxError {
        match &self.inner.map_error {
            Some(map) => map(error),
            None => error,
        }
    }

    /// Pushes `job` onto the bus's queue with its type's options; its id.
    ///
    /// On a bus made by [`BusBuilder::fake`] the job is recorded instead
    /// (after a round trip through its payload) unless its type was named
    /// with [`BusFake::except`](crate::testing::BusFake::except).
    ///
    /// # Errors
    ///
    /// [`EnqueueError::NoQueue`] when the bus was built without a queue; any
    /// refusal of the queue. The job is handed back either way.
    pub async fn dispatch_to_queue<J: Job>(&self, job: J) -> Result<JobId, EnqueueError<J>> {
        if let Some(fake) = &self.inner.fake {
            return fake.dispatch_job(job).await;
        }
        match &self.inner.queue {
            Some(queue) => queue.push(job).await,
            None => Err(EnqueueError::NoQueue { job }),
        }
    }

    /// The bus's queue, for dispatches with options overridden
    /// (`bus.queue()?.dispatch(job).delay(..).await`). On a bus made by
    /// [`BusBuilder::fake`] it is always there and records what is pushed
    /// onto it (a payload is decoded back when the test reads it as its type).
    pub fn queue(&self) -> Option<&Queue<AnyBackend>> {
        self.inner.queue.as_ref()
    }

    /// Whether a handler is registered for `C`.
    pub fn handles<C: Command>(&self) -> bool {
        self.inner.entries.contains_key(&TypeId::of::<C>())
    }
}

/// The first refusal of `command`'s hooks in `hooks`.
fn run_hooks<C: Command>(
    hooks: &HashMap<TypeId, Box<dyn Any + Send + Sync>>,
    command: &C,
) -> Option<Refusal> {
    let hooks = hooks.get(&TypeId::of::<C>())?.downcast_ref::<Vec<Hook<C>>>()?;
    hooks.iter().find_map(|hook| hook(command).err())
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bus")
            .field("handlers", &self.inner.entries.len())
            .field("layered", &self.inner.stack.is_some())
            .field("queue", &self.inner.queue.is_some())
            .field("fake", &self.inner.fake.is_some())
            .finish()
    }
}
