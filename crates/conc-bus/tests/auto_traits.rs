//! Every public type is `Send` and `Sync` where it should be.

use conc_bus::{
    AnyBackend, AttemptRecord, Bus, BusBuilder, Dispatch, DispatchError, DispatchTrace,
    DispatchTraceLayer, EnqueueError, Envelope, FailReason, FailedJob, FailedQuery, JobContext,
    JobError, JobHandlers, JobId, JobOptions, Lease, LeaseLost, LeaseToken, MemoryQueue,
    MemoryQueueBuilder, PushError, Pushed, Queue, QueueError, QueueSize, Refusal, Reply,
    Reservation, Reserved, Selection, Settlement, Transition, Worker, WorkerBuilder, WorkerEvent,
    WorkerHealth, WorkerMetrics,
};
use static_assertions::{assert_impl_all, assert_not_impl_any};

#[derive(Clone)]
struct Ping;
impl conc_bus::Command for Ping {
    type Output = ();
    type Error = std::convert::Infallible;
}

assert_impl_all!(Bus: Send, Sync, Clone);
assert_impl_all!(BusBuilder: Send);
assert_impl_all!(Dispatch: Send, Clone);
assert_impl_all!(Reply: Send);
assert_impl_all!(DispatchTraceLayer: Send, Sync, Clone, Copy);
assert_impl_all!(DispatchTrace<()>: Send, Sync, Clone);
assert_impl_all!(DispatchError<Ping>: Send, Sync, std::error::Error);
assert_impl_all!(Refusal: Send, Sync, Clone, std::error::Error);

assert_impl_all!(JobId: Send, Sync, Copy, Ord, std::hash::Hash);
assert_impl_all!(JobOptions: Send, Sync, Clone);
assert_impl_all!(JobContext: Send, Sync, Clone);
assert_impl_all!(JobError: Send, Sync);
assert_not_impl_any!(JobError: std::error::Error);
assert_impl_all!(JobHandlers: Send, Sync, Clone);
assert_impl_all!(Envelope: Send, Sync, Clone);
assert_impl_all!(AttemptRecord: Send, Sync, Clone);

assert_impl_all!(Queue<MemoryQueue>: Send, Sync, Clone);
assert_impl_all!(Queue<AnyBackend>: Send, Sync, Clone);
assert_impl_all!(MemoryQueue: Send, Sync, Clone);
assert_impl_all!(MemoryQueueBuilder: Send, Sync);
assert_impl_all!(AnyBackend: Send, Sync, Clone);
assert_impl_all!(EnqueueError<Ping>: Send, Sync, std::error::Error);
assert_impl_all!(PushError: Send, Sync, std::error::Error);
assert_impl_all!(QueueError: Send, Sync, std::error::Error);
assert_impl_all!(LeaseLost: Send, Sync, Copy, std::error::Error);
assert_impl_all!(Lease: Send, Sync, Clone);
assert_impl_all!(LeaseToken: Send, Sync, Copy);
assert_impl_all!(Reserved: Send, Sync, Clone);
assert_impl_all!(Reservation: Send, Sync);
assert_impl_all!(Pushed: Send, Sync, Clone);
assert_impl_all!(QueueSize: Send, Sync, Copy);
assert_impl_all!(Transition: Send, Sync, Clone);
assert_impl_all!(Settlement: Send, Sync, Copy);
assert_impl_all!(FailedJob: Send, Sync, Clone);
assert_impl_all!(FailedQuery: Send, Sync, Clone);
assert_impl_all!(FailReason: Send, Sync, Copy, std::error::Error);
assert_impl_all!(Selection: Send, Sync, Clone);

assert_impl_all!(Worker<MemoryQueue>: Send, Sync, Clone);
assert_impl_all!(WorkerBuilder<MemoryQueue>: Send);
assert_impl_all!(WorkerEvent: Send, Sync, Clone);
assert_impl_all!(WorkerMetrics: Send, Sync, Clone);
assert_impl_all!(WorkerHealth: Send, Sync, Clone);

/// The futures users await from the bus, the queue and the worker are `Send`,
/// so they run inside `tokio::spawn`.
#[test]
fn the_public_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    let bus = Bus::builder().build();
    send(&bus.dispatch(Ping));
    let queue = Queue::new(MemoryQueue::new());
    send(&queue.size("default"));
    send(&queue.failed(&FailedQuery::new()));
    let worker = Worker::builder(MemoryQueue::new(), JobHandlers::new()).build().unwrap();
    send(&worker.run());
    send(&worker.stopped());
}

assert_impl_all!(conc_bus::batch::BatchProgress: Send, Sync, Clone, std::fmt::Debug);
assert_impl_all!(conc_bus::batch::ArchivedBatch: Send, Sync, Clone, std::fmt::Debug);
assert_impl_all!(conc_bus::batch::WorkflowError: Send, Sync, std::error::Error);
