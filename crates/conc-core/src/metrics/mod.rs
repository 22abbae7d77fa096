//! Metric names, their descriptions, and the [`MetricsSource`] snapshot trait.
//!
//! Components emit through the [`metrics`](https://docs.rs/metrics) facade
//! only; they never install a recorder. Names are dotted and lowercase,
//! `conc.<crate>.<thing>`, and every name is a constant here, listed with its
//! kind, unit and description in [`ALL`]. An application that wants the
//! descriptions in its exporter calls [`describe_metrics()`] once after
//! installing its recorder.
//!
//! Each component also implements [`MetricsSource`]: a cheap typed snapshot
//! for health checks and tests that works without any recorder.
//!
//! # Examples
//!
//! ```
//! use conc_core::metrics::{self, ALL};
//!
//! // After installing a recorder (metrics-exporter-prometheus, …):
//! metrics::describe_metrics();
//! assert!(ALL.iter().all(|m| m.name.starts_with("conc.")));
//! ```

mod names;
mod source;
mod striped;

pub use names::*;
pub use source::{MetricEntry, MetricValue, MetricsSnapshot, MetricsSource};
pub use striped::StripedCounter;

/// Registers the unit and description of every metric in [`ALL`] with the
/// currently installed recorder (global or thread-local).
///
/// Calling it is optional and idempotent; without a recorder it does nothing.
///
/// # Examples
///
/// ```
/// conc_core::metrics::describe_metrics();
/// ```
pub fn describe_metrics() {
    for metric in ALL {
        match metric.kind {
            MetricKind::Counter => {
                ::metrics::describe_counter!(metric.name, metric.unit, metric.description);
            }
            MetricKind::Gauge => {
                ::metrics::describe_gauge!(metric.name, metric.unit, metric.description);
            }
            MetricKind::Histogram => {
                ::metrics::describe_histogram!(metric.name, metric.unit, metric.description);
            }
        }
    }
}
