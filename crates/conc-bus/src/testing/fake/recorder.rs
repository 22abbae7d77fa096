//! [`Recorder`]: what a fake bus saw — the jobs it kept from the queue and
//! the commands it dispatched — and the settings of the fake.

use std::any::{Any, TypeId};
use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::DispatchedJob;
use crate::bus::{Command, short_name};
use crate::clock::WallClock;
use crate::id::JobId;
use crate::job::{DecodeError, Envelope, Job};
use crate::queue::{AnyBackend, EnqueueError, Pushed, Queue};

/// One recorded job: what was pushed, and the value the test reads when it
/// was dispatched with its type known (decoded from the payload otherwise).
pub(crate) struct JobRecord {
    pub(crate) job: DispatchedJob,
    pub(crate) value: Option<Box<dyn Any + Send>>,
}

/// One recorded command.
pub(crate) struct CommandRecord {
    pub(crate) type_id: TypeId,
    pub(crate) name: &'static str,
    pub(crate) value: Box<dyn Any + Send>,
}

/// What the fake holds behind its lock.
pub(crate) struct State {
    /// Names of the job types that really go to the queue.
    pub(crate) except: BTreeSet<&'static str>,
    /// Whether recorded jobs make a round trip through their payload.
    pub(crate) restore: bool,
    pub(crate) jobs: Vec<JobRecord>,
    pub(crate) commands: Vec<CommandRecord>,
}

/// The state shared by a fake bus, its fake queue and its [`BusFake`](super::BusFake).
pub(crate) struct Recorder {
    /// The queue the bus was built with: where excepted jobs go.
    pub(crate) real: Option<Queue<AnyBackend>>,
    clock: WallClock,
    state: Mutex<State>,
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Recorder")
            .field("jobs", &state.jobs.len())
            .field("commands", &state.commands.len())
            .field("except", &state.except)
            .field("restore", &state.restore)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    pub(crate) fn new(real: Option<Queue<AnyBackend>>) -> Self {
        let state = State {
            except: BTreeSet::new(),
            restore: true,
            jobs: Vec::new(),
            commands: Vec::new(),
        };
        Self { real, clock: WallClock::default(), state: Mutex::new(state) }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // Only the recorder's own bookkeeping and the test's predicates run
        // under the lock; a predicate that panicked leaves whole records.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Unix milliseconds: the real queue's clock, else the system's.
    pub(crate) fn now(&self) -> u64 {
        match &self.real {
            Some(queue) => crate::queue::QueueBackend::now(&**queue.backend()),
            None => self.clock.now(),
        }
    }

    /// Whether jobs named `name` really go to the queue.
    pub(crate) fn excepts(&self, name: &str) -> bool {
        self.lock().except.contains(name)
    }

    /// Records a clone of `command`.
    pub(crate) fn record_command<C: Command>(&self, command: &C) {
        let record = CommandRecord {
            type_id: TypeId::of::<C>(),
            name: short_name::<C>(),
            value: Box::new(command.clone()),
        };
        self.lock().commands.push(record);
    }

    /// Records pushed envelopes (their type is not known here).
    pub(crate) fn record_pushed(&self, jobs: Vec<Pushed>) {
        let mut state = self.lock();
        for pushed in jobs {
            let delay = Duration::from_millis(
                pushed.available_at.saturating_sub(pushed.envelope.created_at),
            );
            let job = DispatchedJob { envelope: pushed.envelope, delay };
            state.jobs.push(JobRecord { job, value: None });
        }
    }

    /// A job given to `Bus::dispatch_to_queue` on a fake bus: pushed for real
    /// when its type is excepted, else recorded (after a round trip when on).
    pub(crate) async fn dispatch_job<J: Job>(&self, job: J) -> Result<JobId, EnqueueError<J>> {
        let (excepted, restore) = {
            let state = self.lock();
            (state.except.contains(J::NAME), state.restore)
        };
        if excepted {
            return match &self.real {
                Some(queue) => queue.push(job).await,
                None => Err(EnqueueError::NoQueue { job }),
            };
        }
        let options = J::options();
        if let Err(error) = options.check() {
            return Err(EnqueueError::Invalid { job, error });
        }
        let value = if restore {
            match super::round_trip(&job) {
                Ok(value) => value,
                Err(error) => return Err(EnqueueError::Encode { job, error }),
            }
        } else {
            job
        };
        let envelope = match Envelope::new(&value, &options, self.now()) {
            Ok(envelope) => envelope,
            Err(error) => return Err(EnqueueError::Encode { job: value, error }),
        };
        let id = envelope.id;
        let job = DispatchedJob { envelope, delay: options.delay };
        self.lock().jobs.push(JobRecord { job, value: Some(Box::new(value)) });
        Ok(id)
    }
}

/// Calls `visit` with every recorded job named like `J`, as a `J`: the value
/// recorded with it, or its payload decoded (a job pushed through the bus's
/// queue, whose type the fake did not know).
pub(crate) fn visit_jobs<J: Job>(
    state: &State,
    mut visit: impl FnMut(&DispatchedJob, &J),
) -> Result<(), DecodeError> {
    for record in state.jobs.iter().filter(|record| record.job.envelope.name == J::NAME) {
        if let Some(value) = record.value.as_ref().and_then(|value| value.downcast_ref::<J>()) {
            visit(&record.job, value);
        } else {
            let decoded = decode_payload::<J>(&record.job.envelope)?;
            visit(&record.job, &decoded);
        }
    }
    Ok(())
}

/// `envelope`'s payload as a `J`.
fn decode_payload<J: Job>(envelope: &Envelope) -> Result<J, DecodeError> {
    serde_json::from_str(&envelope.payload).map_err(|error| DecodeError::RoundTrip {
        name: envelope.name.clone(),
        message: format!("its payload {} does not decode: {error}", envelope.payload),
    })
}

/// Calls `visit` with every recorded command of type `C`.
pub(crate) fn visit_commands<C: Command>(state: &State, mut visit: impl FnMut(&C)) {
    let type_id = TypeId::of::<C>();
    for record in state.commands.iter().filter(|record| record.type_id == type_id) {
        if let Some(command) = record.value.downcast_ref::<C>() {
            visit(command);
        }
    }
}
