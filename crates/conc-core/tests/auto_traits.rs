//! Every public type is `Send + Sync` (or just `Send`) where it should be.

use conc_core::driver::{PortableTask, Task, TaskError};
use conc_core::lifecycle::{
    ComponentStatus, Registry, RegistryError, RegistryMetrics, ShutdownReport, StartError,
    StopError,
};
use conc_core::metrics::{MetricDescriptor, MetricEntry, MetricKind, MetricValue};
use conc_core::time::{ClockError, CoarseClock, ManualClock, SystemClock};
use static_assertions::assert_impl_all;

assert_impl_all!(SystemClock: Send, Sync, Clone, Copy, Unpin);
assert_impl_all!(CoarseClock: Send, Sync, Clone, Unpin);
assert_impl_all!(ManualClock: Send, Sync, Clone, Unpin, Default);
assert_impl_all!(ClockError: Send, Sync, std::error::Error);

assert_impl_all!(MetricDescriptor: Send, Sync, Copy);
assert_impl_all!(MetricKind: Send, Sync, Copy);
assert_impl_all!(MetricEntry: Send, Sync, Copy);
assert_impl_all!(MetricValue: Send, Sync, Copy);

assert_impl_all!(Registry: Send, Sync, Default);
assert_impl_all!(RegistryError: Send, Sync, std::error::Error);
assert_impl_all!(StopError: Send, Sync, std::error::Error);
assert_impl_all!(StartError: Send, Sync, std::error::Error);
assert_impl_all!(ShutdownReport: Send, Sync);
assert_impl_all!(ComponentStatus: Send, Sync, Clone);
assert_impl_all!(RegistryMetrics: Send, Sync, Clone);

// A task owns a `FnOnce + Send` closure: it moves between threads but is not shared.
assert_impl_all!(Task: Send, Unpin);
assert_impl_all!(PortableTask: Send, Sync, Clone);
assert_impl_all!(TaskError: Send, Sync, std::error::Error);
