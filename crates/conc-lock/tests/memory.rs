//! The in-memory backend: the conformance suite, and what only memory can show
//! deterministically (expiry on a manual clock, bounded memory).

mod conformance;

use conc_lock::LockStore;

conformance::suite!(|| async {
    Some((LockStore::memory(), Box::new(()) as conformance::KeepAlive))
});
