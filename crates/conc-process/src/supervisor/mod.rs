//! Keeping named processes running: restart policies, backoff, a restart
//! intensity limit, lifecycle events and graceful shutdown.

mod builder;
mod child;
mod event;
mod lifecycle;
mod metrics;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use conc_core::backoff::Backoff;
use conc_core::config::{self, ConfigError};
use conc_core::time::{Clock, Timeline};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

pub use self::builder::SupervisorBuilder;
use self::child::{Child, Factory, Live};
pub use self::event::{ChildState, GiveUpReason, RestartPolicy, SupervisorEvent};
pub use self::metrics::{ChildMetrics, SupervisorMetrics};
use crate::{Process, ProcessError};

/// Settings shared by the children of a supervisor.
#[derive(Debug)]
struct Config {
    policy: RestartPolicy,
    backoff: Backoff,
    max_restarts: u32,
    period: Duration,
    reset_after: Duration,
    shutdown_grace: Duration,
    /// Uptimes, the intensity window and `reset_after` are read here.
    timeline: Timeline<Arc<dyn Clock>>,
}

/// What the children of one generation are told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Run,
    /// Stop: `SIGTERM`, then `SIGKILL` after the grace or at `kill_at`, whichever is sooner.
    Stop {
        kill_at: Option<Instant>,
    },
}

/// A supervised child: its name, factory and shared state.
struct Entry {
    name: String,
    factory: Factory,
    child: Arc<Child>,
}

struct Inner {
    /// Whether the supervisor is stopped (by a lifecycle stop or a shutdown).
    stopped: bool,
    /// The order to the children started since the last start; a start
    /// opens a new channel, so a late loop of an earlier generation can never
    /// see `Run` again.
    order: watch::Sender<Order>,
    children: Vec<Entry>,
}

/// Keeps named processes running (supervisord, systemd's `Restart=`, OTP's
/// one-for-one), restarting them by a [`RestartPolicy`] after a
/// [`Backoff`] delay (jitter included, from `conc-core`), and giving up when
/// a process restarts more than `max_restarts` times within `period`.
///
/// Each child is made by a factory called for every start. Long-running
/// children should usually be [`quiet`](Process::quiet) or send their output
/// to a callback, since captured output is kept for the whole run.
///
/// A supervisor runs from `build` until [`shutdown`](Self::shutdown), a
/// [`Lifecycle::stop`](conc_core::lifecycle::Lifecycle::stop) (so a
/// [`Registry`](conc_core::lifecycle::Registry) stops it with the rest of an
/// application) or its drop. It reports through [`events`](Self::events),
/// [`metrics`](Self::metrics) and the `conc.process.*` metrics.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::backoff::Backoff;
/// use conc_process::{Process, RestartPolicy, Supervisor, SupervisorEvent};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let supervisor = Supervisor::builder()
///     .restart(RestartPolicy::OnFailure)
///     .backoff(Backoff::exponential(Duration::from_millis(10)).max_delay(Duration::from_secs(5)).build()?)
///     .intensity(3, Duration::from_secs(60))
///     .build()?;
/// let mut events = supervisor.events();
/// supervisor.supervise("flaky", || Process::new("false"))?;
/// loop {
///     if let SupervisorEvent::GaveUp { restarts, .. } = events.recv().await? {
///         assert_eq!(restarts, 3);
///         break;
///     }
/// }
/// supervisor.shutdown().await;
/// # Ok(()) }
/// ```
#[must_use = "dropping a Supervisor stops its children"]
pub struct Supervisor {
    name: String,
    config: Arc<Config>,
    events: broadcast::Sender<SupervisorEvent>,
    /// Supervision loops alive, across generations, so a stop can wait for them.
    live: Arc<watch::Sender<usize>>,
    inner: Mutex<Inner>,
}

impl Supervisor {
    /// A builder with the defaults (listed at [`SupervisorBuilder`]).
    ///
    /// ```
    /// use conc_process::Supervisor;
    ///
    /// let supervisor = Supervisor::builder().build()?;
    /// assert_eq!(supervisor.name(), "supervisor");
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn builder() -> SupervisorBuilder {
        SupervisorBuilder::new()
    }

    fn with(name: String, config: Config, event_capacity: usize) -> Self {
        let (events, _) = broadcast::channel(event_capacity);
        Self {
            name,
            config: Arc::new(config),
            events,
            live: Arc::new(watch::Sender::new(0)),
            inner: Mutex::new(Inner {
                stopped: false,
                order: watch::Sender::new(Order::Run),
                children: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The supervisor's name (its [`Lifecycle`](conc_core::lifecycle::Lifecycle) name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Subscribes to lifecycle events. Subscribe before
    /// [`supervise`](Self::supervise) to see a child's first start.
    pub fn events(&self) -> broadcast::Receiver<SupervisorEvent> {
        self.events.subscribe()
    }

    /// Starts keeping `name` running, calling `factory` for each start. On a
    /// stopped supervisor the child is recorded and starts with the next
    /// [`Lifecycle::start`](conc_core::lifecycle::Lifecycle::start).
    ///
    /// # Errors
    ///
    /// [`ProcessError::Config`] naming `name` if it is empty, has a NUL byte
    /// or is supervised already; [`ProcessError::Spawn`] if called outside a
    /// tokio runtime (the child is driven by a task spawned on it).
    pub fn supervise(
        &self,
        name: impl Into<String>,
        factory: impl Fn() -> Process + Send + Sync + 'static,
    ) -> Result<(), ProcessError> {
        let name = name.into();
        config::name("name", &name)?;
        let mut inner = self.lock();
        if inner.children.iter().any(|entry| entry.name == name) {
            return Err(ConfigError::new(
                "name",
                &name,
                "must be unique: it is supervised already",
            )
            .into());
        }
        let state = if inner.stopped { ChildState::Stopped } else { ChildState::Starting };
        let child = Arc::new(Child::new(name.clone(), state));
        let entry = Entry { name, factory: Arc::new(factory), child };
        if !inner.stopped {
            let runtime =
                tokio::runtime::Handle::try_current().map_err(|_| ProcessError::Spawn {
                    program: entry.name.clone(),
                    source: std::io::Error::other(
                        "supervise must be called within a tokio runtime",
                    ),
                })?;
            self.spawn_loop(&runtime, &entry, inner.order.subscribe());
        }
        inner.children.push(entry);
        Ok(())
    }

    /// Spawns the supervision loop of `entry` on `runtime`.
    fn spawn_loop(
        &self,
        runtime: &tokio::runtime::Handle,
        entry: &Entry,
        order: watch::Receiver<Order>,
    ) {
        let live = Live::enter(Arc::clone(&self.live));
        runtime.spawn(child::keep_running(
            entry.name.clone(),
            Arc::clone(&entry.factory),
            Arc::clone(&self.config),
            Arc::clone(&entry.child),
            self.events.clone(),
            order,
            live,
        ));
    }

    /// A snapshot of every supervised process, in the order they were added.
    pub fn metrics(&self) -> SupervisorMetrics {
        let inner = self.lock();
        SupervisorMetrics {
            children: inner
                .children
                .iter()
                .map(|entry| entry.child.snapshot(&self.config.timeline))
                .collect(),
        }
    }

    /// Orders every child to stop (`SIGTERM` to its group, `SIGKILL` after
    /// the grace or at `kill_at`), and waits until every supervision loop
    /// has ended.
    async fn stop_children(&self, kill_at: Option<Instant>) {
        {
            let mut inner = self.lock();
            inner.stopped = true;
            inner.order.send_modify(|order| {
                let kill_at = match *order {
                    Order::Run => kill_at,
                    Order::Stop { kill_at: earlier } => crate::time::earlier(earlier, kill_at),
                };
                *order = Order::Stop { kill_at };
            });
        }
        let mut live = self.live.subscribe();
        // The sender lives in `self`, so this ends when the loops do.
        let _ = live.wait_for(|live| *live == 0).await;
    }

    /// Stops every process (`SIGTERM` to its group, `SIGKILL` after the
    /// shutdown grace), stops restarting them, and waits until all are down.
    pub async fn shutdown(self) {
        self.stop_children(None).await;
    }
}

impl Drop for Supervisor {
    /// Dropping a supervisor shuts it down without waiting: each process is
    /// still stopped gracefully by its own task.
    fn drop(&mut self) {
        self.lock().order.send_modify(|order| {
            if *order == Order::Run {
                *order = Order::Stop { kill_at: None };
            }
        });
    }
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("children", &self.metrics())
            .finish_non_exhaustive()
    }
}
