//! A promise of the bulkhead's docs that needs its insides to check: the
//! queue's lock is taken only when someone waits.

use std::sync::mpsc;
use std::time::Duration;

use crate::Bulkhead;

/// Slots are taken and given back while another thread holds the queue's lock.
#[test]
fn the_uncontended_path_takes_no_queue_lock() {
    let bulkhead = Bulkhead::builder()
        .max_concurrent(2)
        .max_queued(4)
        .max_wait(Duration::from_secs(1))
        .build()
        .unwrap();
    let held = bulkhead.shared.queue.lock();
    let (done, finished) = mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for _ in 0..1_000 {
                drop(bulkhead.try_acquire().unwrap());
            }
            done.send(()).unwrap();
        });
        // A guard against a hang, not a measurement: no lock is needed at all.
        let result = finished.recv_timeout(Duration::from_secs(60));
        drop(held);
        assert!(result.is_ok(), "taking a free slot waited for the queue's lock");
    });
}
