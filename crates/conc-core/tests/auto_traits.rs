//! Every public type is `Send + Sync` (or just `Send`) where it should be.

use conc_core::config::ConfigError;
use conc_core::driver::{PortableTask, Task, TaskError};
use conc_core::item::{DeadLetter, DeadLetterQueue, ErrorPolicy, ItemError, Origin, StartError};
use conc_core::lifecycle::{
    ComponentStatus, Registry, RegistryError, RegistryMetrics, ShutdownReport, StopError,
};
use conc_core::metrics::{MetricDescriptor, MetricEntry, MetricKind, MetricValue};
use conc_core::recent::RecentLog;
use conc_core::time::{ClockError, CoarseClock, ManualClock, SystemClock, Timeline};
use static_assertions::assert_impl_all;

assert_impl_all!(SystemClock: Send, Sync, Clone, Copy, Unpin);
assert_impl_all!(CoarseClock: Send, Sync, Clone, Unpin);
assert_impl_all!(ManualClock: Send, Sync, Clone, Unpin, Default);
assert_impl_all!(ClockError: Send, Sync, std::error::Error);
assert_impl_all!(Timeline: Send, Sync, Clone, Default);
assert_impl_all!(Timeline<ManualClock>: Send, Sync, Clone);

assert_impl_all!(ConfigError: Send, Sync, Clone, Eq, std::error::Error);
assert_impl_all!(ItemError: Send, Sync, std::error::Error);
assert_impl_all!(ErrorPolicy: Send, Sync, Copy, Default, Eq);
assert_impl_all!(Origin: Send, Sync, Clone, Eq, std::hash::Hash);
assert_impl_all!(DeadLetter<String>: Send, Sync);
assert_impl_all!(DeadLetterQueue<String>: Send, Sync, Clone);
assert_impl_all!(RecentLog<u8>: Send, Sync, Clone);
assert_impl_all!(StartError<Vec<u8>, ItemError>: Send, Sync, std::error::Error);

assert_impl_all!(MetricDescriptor: Send, Sync, Copy);
assert_impl_all!(MetricKind: Send, Sync, Copy);
assert_impl_all!(MetricEntry: Send, Sync, Copy);
assert_impl_all!(MetricValue: Send, Sync, Copy);

assert_impl_all!(Registry: Send, Sync, Default);
assert_impl_all!(RegistryError: Send, Sync, std::error::Error);
assert_impl_all!(StopError: Send, Sync, std::error::Error);
assert_impl_all!(ShutdownReport: Send, Sync);
assert_impl_all!(ComponentStatus: Send, Sync, Clone);
assert_impl_all!(RegistryMetrics: Send, Sync, Clone);

// A task owns a `FnOnce + Send` closure: it moves between threads but is not shared.
assert_impl_all!(Task: Send, Unpin);
assert_impl_all!(PortableTask: Send, Sync, Clone);
assert_impl_all!(TaskError: Send, Sync, std::error::Error);
