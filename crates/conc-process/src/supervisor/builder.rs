//! [`SupervisorBuilder`]: the settings of a [`Supervisor`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use conc_core::backoff::{Backoff, Jitter};
use conc_core::config::{self, ConfigError};
use conc_core::time::{Clock, CoarseClock, Timeline};

use super::{Config, RestartPolicy, Supervisor};

/// The name a supervisor has unless [`SupervisorBuilder::name`] sets one.
const DEFAULT_NAME: &str = "supervisor";

/// The most events a subscriber may have buffered: the channel allocates a
/// slot for each (rounded up to a power of two) when the supervisor is built.
const MAX_EVENT_CAPACITY: usize = 1 << 16;

/// Builds a [`Supervisor`].
///
/// | setting | default |
/// |---|---|
/// | [`name`](Self::name) | `"supervisor"` |
/// | [`restart`](Self::restart) | [`RestartPolicy::OnFailure`] |
/// | [`backoff`](Self::backoff) | exponential from 100 ms, doubling, capped at 30 s, full jitter |
/// | [`intensity`](Self::intensity) | 5 restarts per 10 s |
/// | [`reset_after`](Self::reset_after) | 30 s |
/// | [`shutdown_grace`](Self::shutdown_grace) | 10 s |
/// | [`event_capacity`](Self::event_capacity) | 1024 |
/// | [`clock`](Self::clock) | [`CoarseClock::global`] |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_process::Supervisor;
///
/// let supervisor = Supervisor::builder().name("workers").intensity(3, Duration::from_secs(60)).build()?;
/// assert_eq!(supervisor.name(), "workers");
///
/// let err = Supervisor::builder().intensity(0, Duration::from_secs(60)).build().unwrap_err();
/// assert_eq!(err.field, "max_restarts");
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct SupervisorBuilder {
    name: String,
    policy: RestartPolicy,
    backoff: Option<Backoff>,
    max_restarts: u32,
    period: Duration,
    reset_after: Duration,
    shutdown_grace: Duration,
    event_capacity: usize,
    clock: Arc<dyn Clock>,
}

impl SupervisorBuilder {
    pub(super) fn new() -> Self {
        Self {
            name: DEFAULT_NAME.to_owned(),
            policy: RestartPolicy::OnFailure,
            backoff: None,
            max_restarts: 5,
            period: Duration::from_secs(10),
            reset_after: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            event_capacity: 1024,
            clock: Arc::new(CoarseClock::global().clone()),
        }
    }

    /// The supervisor's name, under which a [`Registry`](conc_core::lifecycle::Registry)
    /// knows it. It must not be empty nor contain a NUL byte. Defaults to
    /// `"supervisor"`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The restart policy. Defaults to [`RestartPolicy::OnFailure`].
    pub fn restart(mut self, policy: RestartPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The delay before each restart. Defaults to exponential from 100 ms,
    /// doubling, capped at 30 s, with full jitter. A schedule with
    /// `max_retries` gives up when it runs out.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// Gives up on a process restarted `max_restarts` times within `period`
    /// (systemd's `StartLimitBurst` per `StartLimitIntervalSec`, OTP's
    /// intensity), measured on the supervisor's [`clock`](Self::clock).
    /// `max_restarts` must be at least 1 (use [`RestartPolicy::Never`] for
    /// no restarts) and `period` longer than zero; a period longer than the
    /// clock can count (about 584 years) never expires. Defaults to 5 per 10 s.
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.max_restarts = max_restarts;
        self.period = period;
        self
    }

    /// A run that lasted this long on the supervisor's clock counts as
    /// healthy: the backoff schedule starts over after it. Zero resets it
    /// after every run. Defaults to 30 s.
    pub fn reset_after(mut self, uptime: Duration) -> Self {
        self.reset_after = uptime;
        self
    }

    /// How long a shutdown lets a process handle `SIGTERM` before `SIGKILL`;
    /// a [`Lifecycle::stop`](conc_core::lifecycle::Lifecycle::stop) deadline
    /// that comes sooner shortens it. Zero kills at once; a grace too long for
    /// the clock to represent never escalates. Defaults to 10 s.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Events buffered per subscriber before a slow one starts missing the
    /// oldest; at least 1 and at most 65,536 (the buffer is allocated when the
    /// supervisor is built). Defaults to 1024.
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity;
        self
    }

    /// The clock uptimes, the intensity window and `reset_after` are measured
    /// on (a [`ManualClock`](conc_core::time::ManualClock) in tests). Delays
    /// are waited for on tokio's clock. Defaults to [`CoarseClock::global`].
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Checks the settings and builds the supervisor.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first setting found wrong: `name` (empty,
    /// or with a NUL byte), `max_restarts` (zero), `period` (zero) or
    /// `event_capacity` (zero, or above 65,536).
    pub fn build(self) -> Result<Supervisor, ConfigError> {
        config::name("name", &self.name)?;
        if self.max_restarts == 0 {
            return Err(ConfigError::new(
                "max_restarts",
                0,
                "must be at least 1; use RestartPolicy::Never for no restarts",
            ));
        }
        config::positive("period", self.period)?;
        config::at_least("event_capacity", self.event_capacity, 1)?;
        config::at_most("event_capacity", self.event_capacity, MAX_EVENT_CAPACITY)?;
        let backoff = match self.backoff {
            Some(backoff) => backoff,
            None => Backoff::exponential(Duration::from_millis(100))
                .max_delay(Duration::from_secs(30))
                .jitter(Jitter::Full)
                .build()?,
        };
        let config = Config {
            policy: self.policy,
            backoff,
            max_restarts: self.max_restarts,
            period: self.period,
            reset_after: self.reset_after,
            shutdown_grace: self.shutdown_grace,
            timeline: Timeline::new(self.clock),
        };
        Ok(Supervisor::with(self.name, config, self.event_capacity))
    }
}

impl fmt::Debug for SupervisorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisorBuilder")
            .field("name", &self.name)
            .field("policy", &self.policy)
            .field("backoff", &self.backoff)
            .field("max_restarts", &self.max_restarts)
            .field("period", &self.period)
            .field("reset_after", &self.reset_after)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("event_capacity", &self.event_capacity)
            .field("clock", &self.clock)
            .finish()
    }
}
