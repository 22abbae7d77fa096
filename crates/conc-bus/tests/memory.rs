//! The memory backend: the conformance suite on a manual clock.

mod conformance;

use conc_bus::MemoryQueue;
use conc_core::time::ManualClock;

conformance::suite!(|clock: ManualClock| async move {
    let backend = MemoryQueue::builder().clock(clock).build().unwrap();
    Some((backend, Box::new(()) as conformance::KeepAlive))
});

mod workflows;

workflows::suite!(|clock: ManualClock| async move {
    let backend = MemoryQueue::builder().clock(clock).build().unwrap();
    Some((backend, Box::new(()) as workflows::KeepAlive))
});
