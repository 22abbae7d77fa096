//! What the crate logs through `tracing`, as its docs say: breaker
//! transitions at info level, a span per `Stack` run at debug level, and a
//! retry that stops at debug level. Captured by a minimal subscriber.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use conc_core::backoff::Backoff;
use conc_resilience::{CircuitBreaker, Retry, Stack};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// `(kind, level, target, name)` of every span and event seen.
type Seen = Arc<Mutex<Vec<(&'static str, Level, String, String)>>>;

struct Capture(Seen);

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let meta = span.metadata();
        self.0.lock().unwrap().push((
            "span",
            *meta.level(),
            meta.target().to_owned(),
            meta.name().to_owned(),
        ));
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        self.0.lock().unwrap().push((
            "event",
            *meta.level(),
            meta.target().to_owned(),
            meta.name().to_owned(),
        ));
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// `(kind, level, target)` of what `run` logs, with the span's name for a span.
fn seen_while(run: impl FnOnce()) -> Vec<(&'static str, Level, String)> {
    let seen = Seen::default();
    tracing::subscriber::with_default(Capture(Arc::clone(&seen)), run);
    let seen = seen.lock().unwrap();
    seen.iter()
        .map(|(kind, level, target, name)| {
            let target = if *kind == "span" { format!("{target} {name}") } else { target.clone() };
            (*kind, *level, target)
        })
        .collect()
}

#[test]
fn breaker_transitions_are_logged_at_info() {
    let seen = seen_while(|| {
        let breaker = CircuitBreaker::builder().build().unwrap();
        breaker.try_acquire().unwrap().success();
        breaker.force_open();
    });
    assert_eq!(seen, [("event", Level::INFO, "conc_resilience::breaker".to_owned())]);
}

#[test]
fn every_stack_run_has_a_debug_span_and_a_stopped_retry_a_debug_event() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let seen = seen_while(|| {
        runtime.block_on(async {
            let retry = Retry::builder()
                .backoff(Backoff::fixed(Duration::from_millis(1)).build().unwrap())
                .max_attempts(1)
                .build()
                .unwrap();
            let stack = Stack::builder().retry(retry).build();
            let _: Result<(), _> = stack.run(|_| async { Err::<(), _>("down") }).await;
        });
    });
    assert_eq!(
        seen,
        [
            ("span", Level::DEBUG, "conc_resilience::stack resilience_stack".to_owned()),
            ("event", Level::DEBUG, "conc_resilience::retry".to_owned()),
        ]
    );
}
