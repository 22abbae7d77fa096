//! Loom model of the bulkhead's slots.

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use crate::Bulkhead;

/// Three threads take and give back slots of a two-slot bulkhead: never more
/// than two hold one at once, and every slot comes back.
#[test]
fn loom_permits_never_exceed_the_limit() {
    loom::model(|| {
        let bulkhead = Bulkhead::builder().max_concurrent(2).build().unwrap();
        let holding = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let bulkhead = bulkhead.clone();
                let holding = Arc::clone(&holding);
                thread::spawn(move || {
                    if let Ok(permit) = bulkhead.try_acquire() {
                        let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
                        assert!(now <= 2, "{now} holders of a two-slot bulkhead");
                        holding.fetch_sub(1, Ordering::SeqCst);
                        drop(permit);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(bulkhead.metrics().available, 2);
    });
}
