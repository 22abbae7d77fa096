//! The bus in fake mode: [`BusFake`] records what a [`Bus`](crate::Bus) made
//! by [`BusBuilder::fake`](crate::BusBuilder::fake) was given, and asserts on
//! it (Laravel's `Bus::fake()`).

mod assert;
mod backend;
mod recorder;

pub(crate) use backend::FakeBackend;
pub(crate) use recorder::Recorder;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use self::recorder::{visit_commands, visit_jobs};
use crate::bus::Command;
use crate::job::{DecodeError, Envelope, Job};

/// A job a fake bus recorded instead of pushing: its envelope (id, name,
/// version, queue, priority, limits, payload) and the delay it was pushed with.
///
/// # Examples
///
/// ```
/// use conc_bus::{Bus, Job};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Reindex { shard: u8 }
/// impl Job for Reindex { const NAME: &'static str = "reindex"; }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (bus, fake) = Bus::builder().fake();
/// let id = bus.dispatch_to_queue(Reindex { shard: 3 }).await?;
/// let jobs = fake.dispatched_jobs();
/// assert_eq!(jobs[0].envelope.id, id);
/// assert_eq!(jobs[0].envelope.payload, r#"{"shard":3}"#);
/// assert_eq!(jobs[0].envelope.queue, "default");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DispatchedJob {
    /// The job as a backend would have stored it.
    pub envelope: Envelope,
    /// How long after the dispatch it would have become available.
    pub delay: Duration,
}

/// Serializes `job` with its [`Job`] impl and decodes it back: the decoded
/// job, or why it does not survive the trip (it does not serialize, its
/// payload does not decode, or the decoded job serializes differently). A job
/// that fails this would fail in a worker too; a fake bus runs it on every
/// recorded job.
///
/// # Examples
///
/// ```
/// use conc_bus::Job;
/// use conc_bus::testing::round_trip;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// struct Resize { width: u32 }
/// impl Job for Resize { const NAME: &'static str = "resize"; }
///
/// #[derive(Serialize, Deserialize)]
/// struct Ratio { value: f64 }
/// impl Job for Ratio { const NAME: &'static str = "ratio"; }
///
/// assert_eq!(round_trip(&Resize { width: 640 })?, Resize { width: 640 });
/// // NaN is written as `null`, which does not read back as a number.
/// assert!(round_trip(&Ratio { value: f64::NAN }).is_err());
/// # Ok::<(), conc_bus::DecodeError>(())
/// ```
pub fn round_trip<J: Job>(job: &J) -> Result<J, DecodeError> {
    let failed = |message: String| DecodeError::RoundTrip { name: J::NAME.to_owned(), message };
    let json = serde_json::to_string(job).map_err(|error| DecodeError::Encode {
        name: J::NAME.to_owned(),
        message: error.to_string(),
    })?;
    let back: J = serde_json::from_str(&json)
        .map_err(|error| failed(format!("its payload {json} does not decode: {error}")))?;
    let again = serde_json::to_string(&back)
        .map_err(|error| failed(format!("it decodes but does not serialize again: {error}")))?;
    if again != json {
        // Compared as values, so that the order of a map's keys does not matter.
        let first: Result<serde_json::Value, _> = serde_json::from_str(&json);
        let second: Result<serde_json::Value, _> = serde_json::from_str(&again);
        if first.ok() != second.ok() {
            return Err(failed(format!("it reads back as {again}, not {json}")));
        }
    }
    Ok(back)
}

/// The recorder of a bus in fake mode, made with it by
/// [`BusBuilder::fake`](crate::BusBuilder::fake): what the bus was given,
/// assertions over it, and the fake's settings.
///
/// - Jobs given to [`Bus::dispatch_to_queue`](crate::Bus::dispatch_to_queue)
///   or pushed onto [`Bus::queue`](crate::Bus::queue) are recorded and not
///   pushed, except the types named with [`except`](Self::except).
/// - Serialize-and-restore is on by default: a job dispatched with
///   `dispatch_to_queue` makes a [`round_trip`] through its payload, the
///   decoded job is what is recorded, and a job that does not survive the
///   trip fails the dispatch ([`EnqueueError::Encode`](crate::EnqueueError::Encode),
///   the job handed back). A job pushed through `bus.queue()` is recorded as
///   its envelope and decoded when the test reads it as its type; one that
///   does not decode fails that read.
/// - Commands given to [`Bus::dispatch`](crate::Bus::dispatch) are recorded
///   (a clone, before the hooks run) and still run their handlers.
///
/// The `assert_*` methods panic with a message that lists what was recorded;
/// the predicates they take run under the fake's lock and must not call the
/// fake. Clones share the records.
///
/// # Examples
///
/// ```
/// use conc_bus::{Bus, Job, MemoryQueue, Queue};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Serialize, Deserialize)]
/// struct Welcome { user: u64 }
/// impl Job for Welcome { const NAME: &'static str = "welcome"; }
///
/// #[derive(Serialize, Deserialize)]
/// struct Audit { event: String }
/// impl Job for Audit { const NAME: &'static str = "audit"; }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let queue = Queue::new(MemoryQueue::new());
/// let (bus, fake) = Bus::builder().queue(&queue).fake();
/// fake.except::<Audit>(); // audits really go to the queue
///
/// bus.dispatch_to_queue(Welcome { user: 7 }).await?;
/// bus.dispatch_to_queue(Audit { event: "signup".into() }).await?;
///
/// fake.assert_dispatched_times::<Welcome>(1);
/// fake.assert_not_dispatched::<Audit>();
/// assert_eq!(fake.dispatched::<Welcome>()[0].user, 7);
/// assert_eq!(queue.size("default").await?.ready, 1); // the audit only
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct BusFake {
    recorder: Arc<Recorder>,
}

impl fmt::Debug for BusFake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BusFake").field(&self.recorder).finish()
    }
}

impl BusFake {
    pub(crate) fn new(recorder: Arc<Recorder>) -> Self {
        Self { recorder }
    }

    /// Lets jobs of type `J` really go to the bus's queue (they are not
    /// recorded). Without a queue their dispatch fails with
    /// [`EnqueueError::NoQueue`](crate::EnqueueError::NoQueue), as on a real
    /// bus. Defaults to no type.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{Bus, Job, MemoryQueue, Queue};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Ping;
    /// impl Job for Ping { const NAME: &'static str = "ping"; }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let queue = Queue::new(MemoryQueue::new());
    /// let (bus, fake) = Bus::builder().queue(&queue).fake();
    /// fake.except::<Ping>();
    /// bus.dispatch_to_queue(Ping).await?;
    /// fake.assert_nothing_dispatched();
    /// assert_eq!(queue.size("default").await?.ready, 1);
    /// # Ok(()) }
    /// ```
    pub fn except<J: Job>(&self) -> &Self {
        self.recorder.lock().except.insert(J::NAME);
        self
    }

    /// Turns serialize-and-restore on or off. Off, a job is recorded as it
    /// was given, and one whose payload does not read back is not refused.
    /// Defaults to on.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{Bus, Job};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Ratio { value: f64 }
    /// impl Job for Ratio { const NAME: &'static str = "ratio"; }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let (bus, fake) = Bus::builder().fake();
    /// assert!(bus.dispatch_to_queue(Ratio { value: f64::NAN }).await.is_err());
    /// fake.serialize_and_restore(false);
    /// assert!(bus.dispatch_to_queue(Ratio { value: f64::NAN }).await.is_ok());
    /// # }
    /// ```
    pub fn serialize_and_restore(&self, on: bool) -> &Self {
        self.recorder.lock().restore = on;
        self
    }

    /// The recorded jobs of type `J`, in the order they were dispatched (with
    /// serialize-and-restore on, as decoded from their payloads).
    ///
    /// # Panics
    ///
    /// When a job of `J`'s name pushed through `bus.queue()` does not decode
    /// as a `J`: serialize-and-restore failing the test.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{Bus, Job};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Clone, Serialize, Deserialize)]
    /// struct Ping(u8);
    /// impl Job for Ping { const NAME: &'static str = "ping"; }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (bus, fake) = Bus::builder().fake();
    /// bus.dispatch_to_queue(Ping(1)).await?;
    /// bus.dispatch_to_queue(Ping(2)).await?;
    /// assert_eq!(fake.dispatched::<Ping>().iter().map(|p| p.0).collect::<Vec<_>>(), [1, 2]);
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn dispatched<J: Job + Clone>(&self) -> Vec<J> {
        let state = self.recorder.lock();
        let mut out = Vec::new();
        if let Err(error) = visit_jobs::<J>(&state, |_, job| out.push(job.clone())) {
            drop(state);
            panic!("serialize-and-restore: {error}");
        }
        out
    }

    /// Every recorded job, of any type, in the order they were dispatched.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::Bus;
    ///
    /// let (_bus, fake) = Bus::builder().fake();
    /// assert!(fake.dispatched_jobs().is_empty());
    /// ```
    pub fn dispatched_jobs(&self) -> Vec<DispatchedJob> {
        self.recorder.lock().jobs.iter().map(|record| record.job.clone()).collect()
    }

    /// The recorded commands of type `C`, in the order they were dispatched.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{Bus, Command};
    ///
    /// #[derive(Debug, Clone, PartialEq)]
    /// struct Ping(u8);
    /// impl Command for Ping { type Output = (); type Error = std::convert::Infallible; }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let (bus, fake) = Bus::builder().handle(|_: Ping| async { Ok(()) }).fake();
    /// bus.dispatch(Ping(1)).await.unwrap();
    /// assert_eq!(fake.commands::<Ping>(), [Ping(1)]);
    /// # }
    /// ```
    pub fn commands<C: Command>(&self) -> Vec<C> {
        let state = self.recorder.lock();
        let mut out = Vec::new();
        visit_commands::<C>(&state, |command| out.push(command.clone()));
        out
    }

    /// The type names of every recorded command, in the order they were
    /// dispatched.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{Bus, Command};
    ///
    /// #[derive(Clone)]
    /// struct Ping;
    /// impl Command for Ping { type Output = (); type Error = std::convert::Infallible; }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let (bus, fake) = Bus::builder().fake();
    /// let _ = bus.dispatch(Ping).await; // no handler: refused, still recorded
    /// assert_eq!(fake.command_names(), ["Ping"]);
    /// # }
    /// ```
    pub fn command_names(&self) -> Vec<&'static str> {
        self.recorder.lock().commands.iter().map(|record| record.name).collect()
    }

    /// Forgets everything recorded so far (the settings stay).
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{Bus, Job};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Ping;
    /// impl Job for Ping { const NAME: &'static str = "ping"; }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (bus, fake) = Bus::builder().fake();
    /// bus.dispatch_to_queue(Ping).await?;
    /// fake.clear();
    /// fake.assert_nothing_dispatched();
    /// # Ok(()) }
    /// ```
    pub fn clear(&self) {
        let mut state = self.recorder.lock();
        state.jobs.clear();
        state.commands.clear();
    }
}
