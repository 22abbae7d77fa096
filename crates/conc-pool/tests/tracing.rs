//! Worker threads are named after the pool, and every worker (thread or
//! task) runs inside a `conc_pool.worker` span naming the pool.

use std::sync::{Arc, Mutex, PoisonError};

use conc_pool::{AsyncPool, BlockingPool};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Keeps the name and the `pool` field of every span opened.
#[derive(Default, Clone)]
struct Spans(Arc<Mutex<Vec<(String, String)>>>);

struct PoolField(String);

impl Visit for PoolField {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "pool" {
            self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for Spans {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut pool = PoolField(String::new());
        span.record(&mut pool);
        let mut spans = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        spans.push((span.metadata().name().to_owned(), pool.0));
        Id::from_u64(spans.len() as u64)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Spans {
    fn worker_spans(&self, pool: &str) -> usize {
        let spans = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        spans.iter().filter(|(name, field)| name == "conc_pool.worker" && field == pool).count()
    }
}

#[test]
fn workers_run_in_a_span_naming_their_pool() {
    let spans = Spans::default();
    tracing::subscriber::set_global_default(spans.clone()).unwrap();

    let pool = BlockingPool::builder().name("resize").workers(2).build().unwrap();
    let name = pool.submit(|| std::thread::current().name().map(str::to_owned)).unwrap();
    let name = name.join().unwrap().unwrap();
    assert!(name == "resize-0" || name == "resize-1", "thread {name}");
    assert!(pool.shutdown(std::time::Duration::from_secs(5)).is_clean());
    assert_eq!(spans.worker_spans("resize"), 2);

    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    runtime.block_on(async {
        let pool = AsyncPool::builder().name("fetch").workers(3).build().unwrap();
        assert_eq!(pool.submit(async { 1 }).await.unwrap().await, Ok(1));
        assert!(pool.shutdown(std::time::Duration::from_secs(5)).await.is_clean());
    });
    assert_eq!(spans.worker_spans("fetch"), 3);
}
