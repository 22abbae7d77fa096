//! Metric names and their descriptions.

use std::collections::HashSet;

use conc_core::metrics::{self, ALL, MetricEntry, MetricKind, MetricValue};
use metrics_util::debugging::DebuggingRecorder;

const CRATES: &[&str] =
    &["pool", "pipeline", "fan", "ratelimit", "resilience", "lock", "bus", "process"];

#[test]
fn names_are_unique_dotted_lowercase_and_namespaced() {
    let mut seen = HashSet::new();
    for metric in ALL {
        assert!(seen.insert(metric.name), "{} declared twice", metric.name);
        let parts: Vec<_> = metric.name.split('.').collect();
        assert!(parts.len() >= 3, "{} is not conc.<crate>.<thing>", metric.name);
        assert_eq!(parts[0], "conc", "{}", metric.name);
        assert!(CRATES.contains(&parts[1]), "{} names an unknown crate", metric.name);
        assert!(
            parts
                .iter()
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c == '_')),
            "{} is not dotted lowercase",
            metric.name
        );
        assert!(!metric.description.is_empty());
        assert!(!metric.description.ends_with('.'), "{}: no trailing period", metric.name);
    }
    assert!(ALL.len() >= CRATES.len());
}

#[test]
fn describe_metrics_registers_every_unit_and_description() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    ::metrics::with_local_recorder(&recorder, || {
        metrics::describe_metrics();
        for metric in ALL {
            match metric.kind {
                MetricKind::Counter => ::metrics::counter!(metric.name).increment(1),
                MetricKind::Gauge => ::metrics::gauge!(metric.name).set(1.0),
                MetricKind::Histogram => ::metrics::histogram!(metric.name).record(1.0),
                _ => unreachable!("every kind is handled above"),
            }
        }
    });
    let snapshot = snapshotter.snapshot().into_vec();
    assert_eq!(snapshot.len(), ALL.len());
    for (key, unit, description, _value) in snapshot {
        let name = key.key().name().to_owned();
        let metric = ALL.iter().find(|m| m.name == name).unwrap();
        assert_eq!(unit, Some(metric.unit), "{name}");
        assert_eq!(description.as_deref(), Some(metric.description), "{name}");
    }
}

#[test]
fn entries_render_name_and_value() {
    let entry = MetricEntry::new(metrics::POOL_TASKS_COMPLETED, MetricValue::Count(9));
    assert_eq!(entry.to_string(), "conc.pool.tasks.completed=9");
    assert_eq!(MetricValue::Gauge(0.25).to_string(), "0.25");
}
