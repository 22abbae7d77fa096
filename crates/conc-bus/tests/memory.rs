//! The memory backend: the conformance and workflow suites on a manual
//! clock, and the workflow suite through `AnyBackend`.

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

/// The workflow suite again through [`conc_bus::AnyBackend::with_workflows`]:
/// every workflow call (timeouts, subscriptions, archive, recovery included)
/// reaches the backend behind it.
mod any_backend {
    use conc_bus::{AnyBackend, MemoryQueue};
    use conc_core::time::ManualClock;

    crate::workflows::suite!(|clock: ManualClock| async move {
        let backend = MemoryQueue::builder().clock(clock).build().unwrap();
        Some((AnyBackend::with_workflows(backend), Box::new(()) as crate::workflows::KeepAlive))
    });
}
