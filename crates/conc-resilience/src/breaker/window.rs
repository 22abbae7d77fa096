//! Lock-free sliding windows of call outcomes.
//!
//! The count window is a ring of outcome bytes with running totals packed in
//! one word: a record is one `fetch_add` for the ring position, one `swap` of
//! the slot and, only when the outcome replaced differs from the new one, one
//! `fetch_add` of the difference to the totals. A success recorded into a full
//! window of successes (a healthy breaker's steady state) is one read of the
//! totals and writes nothing. The totals are the sum of the
//! slots once every record in flight has finished; the record whose totals
//! update comes last sees them exact, so the decision to open is never missed.
//! A reader racing a record can see a field briefly out of range (a slot's
//! subtraction landing before its addition); such readings are recognised and
//! skipped.
//!
//! The time window is a ring of buckets, each stamped with the tick (bucket
//! number since the breaker's origin) it counts for. A record adds to the
//! bucket of the current tick, first resetting it when it still holds an old
//! tick; totals are summed over the buckets still inside the window.

use crate::loom::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};

/// An outcome byte: the call was recorded.
pub(crate) const CALL: u8 = 1;
/// An outcome byte: the call failed.
pub(crate) const FAIL: u8 = 2;
/// An outcome byte: the call was slow.
pub(crate) const SLOW: u8 = 4;

const FIELD: u32 = 21;
const MASK: u64 = (1 << FIELD) - 1;

/// Calls, failures and slow calls in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Totals {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
}

const fn encode(outcome: u8) -> u64 {
    (outcome & CALL) as u64
        | ((((outcome & FAIL) >> 1) as u64) << FIELD)
        | ((((outcome & SLOW) >> 2) as u64) << (2 * FIELD))
}

const fn decode(word: u64) -> Totals {
    Totals {
        calls: word & MASK,
        failures: (word >> FIELD) & MASK,
        slow: (word >> (2 * FIELD)) & MASK,
    }
}

/// The window of a breaker: by count or by time.
#[derive(Debug)]
pub(crate) enum Window {
    Count(CountWindow),
    Time(TimeWindow),
}

impl Window {
    /// Records `outcome` at `now` (nanoseconds since the origin; unused by a
    /// count window). Returns the totals after the record when they may have
    /// changed in a way worth evaluating, `None` when they certainly did not.
    #[inline]
    pub(crate) fn record(&self, now: u64, outcome: u8) -> Option<Totals> {
        match self {
            Self::Count(window) => window.record(outcome),
            Self::Time(window) => window.record(now, outcome),
        }
    }

    /// The totals now.
    pub(crate) fn totals(&self, now: u64) -> Totals {
        match self {
            Self::Count(window) => window.totals(),
            Self::Time(window) => window.totals(now / window.bucket_nanos),
        }
    }

    /// The number of calls the window can hold, `u64::MAX` for a time window.
    pub(crate) fn capacity(&self) -> u64 {
        match self {
            Self::Count(window) => u64::from(window.size),
            Self::Time(_) => u64::MAX,
        }
    }

    /// Whether the window is a count window full of plain successes, which
    /// another plain success leaves as it is.
    #[inline]
    pub(crate) fn full_of_successes(&self) -> bool {
        match self {
            Self::Count(window) => window.full_of_successes(),
            Self::Time(_) => false,
        }
    }

    /// Whether recording needs the time.
    pub(crate) fn needs_time(&self) -> bool {
        matches!(self, Self::Time(_))
    }

    /// Forgets every recorded call.
    pub(crate) fn reset(&self) {
        match self {
            Self::Count(window) => window.reset(),
            Self::Time(window) => window.reset(),
        }
    }
}

/// The last `size` outcomes.
#[derive(Debug)]
pub(crate) struct CountWindow {
    head: AtomicU32,
    totals: AtomicU64,
    slots: Box<[AtomicU8]>,
    size: u32,
    /// The totals word of a full window of plain successes.
    all_successes: u64,
    /// Lemire's constant for a fast `% size`.
    magic: u64,
}

impl CountWindow {
    pub(crate) fn new(size: u32) -> Self {
        debug_assert!(size > 0);
        Self {
            head: AtomicU32::new(0),
            totals: AtomicU64::new(0),
            slots: (0..size).map(|_| AtomicU8::new(0)).collect(),
            size,
            all_successes: encode(CALL) * u64::from(size),
            magic: (u64::MAX / u64::from(size)).wrapping_add(1),
        }
    }

    #[inline]
    fn slot_of(&self, index: u32) -> usize {
        // Lemire, "Faster remainder by direct computation": exact for 32-bit operands.
        let low = self.magic.wrapping_mul(u64::from(index));
        ((u128::from(low) * u128::from(self.size)) >> 64) as usize
    }

    #[inline]
    fn record(&self, outcome: u8) -> Option<Totals> {
        // A full window of plain successes stays one after another plain
        // success wherever it lands: nothing to write, and no ring position
        // to take (the slots are indistinguishable). A record in flight that
        // has not reached the totals yet is ordered after this one.
        if outcome == CALL && self.full_of_successes() {
            return None;
        }
        let index = self.head.fetch_add(1, Ordering::Relaxed);
        let slot = &self.slots[self.slot_of(index)];
        // The steady state replaces an outcome with the same outcome: a read
        // is enough, and keeps the slot's cache line shared between cores. (A
        // writer racing on the same slot, N records ahead, may then win the
        // slot for both; the totals still match the slots.)
        if slot.load(Ordering::Acquire) == outcome {
            return None;
        }
        let old = slot.swap(outcome, Ordering::AcqRel);
        if old == outcome {
            return None;
        }
        let delta = encode(outcome).wrapping_sub(encode(old));
        let after = self.totals.fetch_add(delta, Ordering::AcqRel).wrapping_add(delta);
        self.consistent(after)
    }

    #[inline]
    fn full_of_successes(&self) -> bool {
        self.totals.load(Ordering::Acquire) == self.all_successes
    }

    #[inline]
    fn consistent(&self, word: u64) -> Option<Totals> {
        let totals = decode(word);
        let sane = word >> (3 * FIELD) == 0
            && totals.calls <= u64::from(self.size)
            && totals.failures <= totals.calls
            && totals.slow <= totals.calls;
        sane.then_some(totals)
    }

    fn totals(&self) -> Totals {
        self.consistent(self.totals.load(Ordering::Acquire)).unwrap_or_else(|| self.recount())
    }

    /// Sums the slots: the answer when the running totals are mid-update.
    fn recount(&self) -> Totals {
        let mut totals = Totals::default();
        for slot in &*self.slots {
            let outcome = slot.load(Ordering::Acquire);
            totals.calls += u64::from(outcome & CALL);
            totals.failures += u64::from((outcome & FAIL) >> 1);
            totals.slow += u64::from((outcome & SLOW) >> 2);
        }
        totals
    }

    fn reset(&self) {
        for slot in &*self.slots {
            slot.store(0, Ordering::Relaxed);
        }
        self.head.store(0, Ordering::Relaxed);
        self.totals.store(0, Ordering::Release);
    }
}

const EMPTY: u64 = u64::MAX;

#[derive(Debug)]
struct Bucket {
    calls: AtomicU64,
    failures: AtomicU64,
    slow: AtomicU64,
}

/// The outcomes of the last `buckets × bucket_nanos` nanoseconds.
///
/// Running totals are kept beside the buckets, so a record is two
/// `fetch_add`s (bucket and totals) plus a load of the newest tick. The first
/// record of a new tick sweeps the buckets that aged out: it swaps each one's
/// counts to zero and subtracts them from the totals. A record racing a sweep
/// can leave the totals briefly inconsistent; such readings are recognised
/// and skipped, and the totals are exact again once both finish.
#[derive(Debug)]
pub(crate) struct TimeWindow {
    buckets: Box<[Bucket]>,
    bucket_nanos: u64,
    newest: AtomicU64,
    calls: AtomicU64,
    failures: AtomicU64,
    slow: AtomicU64,
}

impl TimeWindow {
    pub(crate) fn new(duration_nanos: u64, buckets: u32) -> Self {
        Self {
            buckets: (0..buckets)
                .map(|_| Bucket {
                    calls: AtomicU64::new(0),
                    failures: AtomicU64::new(0),
                    slow: AtomicU64::new(0),
                })
                .collect(),
            bucket_nanos: (duration_nanos / u64::from(buckets)).max(1),
            newest: AtomicU64::new(EMPTY),
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            slow: AtomicU64::new(0),
        }
    }

    fn span(&self) -> u64 {
        self.buckets.len() as u64
    }

    /// Makes `tick` the newest tick, sweeping the buckets that left the window.
    /// Returns the newest tick after the call (a later one if another caller
    /// moved it further).
    fn advance(&self, tick: u64) -> u64 {
        let mut newest = self.newest.load(Ordering::Acquire);
        loop {
            if newest != EMPTY && newest >= tick {
                return newest;
            }
            match self.newest.compare_exchange(newest, tick, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(seen) => newest = seen,
            }
        }
        // Ticks newest+1 ..= tick enter the window; the buckets they reuse
        // held ticks that are now out of it.
        let first = if newest == EMPTY { tick.saturating_sub(self.span() - 1) } else { newest + 1 };
        let count = (tick - first + 1).min(self.span());
        for step in 0..count {
            let bucket = &self.buckets[((tick - step) % self.span()) as usize];
            let calls = bucket.calls.swap(0, Ordering::AcqRel);
            let failures = bucket.failures.swap(0, Ordering::AcqRel);
            let slow = bucket.slow.swap(0, Ordering::AcqRel);
            self.calls.fetch_sub(calls, Ordering::AcqRel);
            self.failures.fetch_sub(failures, Ordering::AcqRel);
            self.slow.fetch_sub(slow, Ordering::AcqRel);
        }
        tick
    }

    pub(crate) fn record(&self, now: u64, outcome: u8) -> Option<Totals> {
        let mut tick = now / self.bucket_nanos;
        let newest = self.newest.load(Ordering::Acquire);
        if newest == EMPTY || tick > newest {
            self.advance(tick);
        } else if newest - tick >= self.span() {
            // A reading so late its bucket has left the window: count it now.
            tick = newest;
        }
        let bucket = &self.buckets[(tick % self.span()) as usize];
        bucket.calls.fetch_add(1, Ordering::AcqRel);
        let calls = self.calls.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
        let mut failures = 0;
        let mut slow = 0;
        if outcome & FAIL != 0 {
            bucket.failures.fetch_add(1, Ordering::AcqRel);
            failures = self.failures.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
        } else {
            failures = self.failures.load(Ordering::Acquire).max(failures);
        }
        if outcome & SLOW != 0 {
            bucket.slow.fetch_add(1, Ordering::AcqRel);
            slow = self.slow.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
        } else {
            slow = self.slow.load(Ordering::Acquire).max(slow);
        }
        let totals = Totals { calls, failures, slow };
        (failures <= calls && slow <= calls && calls < 1 << 62).then_some(totals)
    }

    /// The totals at `tick`, sweeping buckets that left the window first.
    pub(crate) fn totals(&self, tick: u64) -> Totals {
        self.advance(tick);
        let calls = self.calls.load(Ordering::Acquire);
        let totals = Totals {
            calls,
            failures: self.failures.load(Ordering::Acquire),
            slow: self.slow.load(Ordering::Acquire),
        };
        if totals.failures <= calls && totals.slow <= calls && calls < 1 << 62 {
            totals
        } else {
            self.recount()
        }
    }

    /// Sums the buckets: the answer while the running totals are mid-update.
    fn recount(&self) -> Totals {
        let mut totals = Totals::default();
        for bucket in &*self.buckets {
            totals.calls += bucket.calls.load(Ordering::Acquire);
            totals.failures += bucket.failures.load(Ordering::Acquire);
            totals.slow += bucket.slow.load(Ordering::Acquire);
        }
        totals
    }

    fn reset(&self) {
        for bucket in &*self.buckets {
            bucket.calls.store(0, Ordering::Relaxed);
            bucket.failures.store(0, Ordering::Relaxed);
            bucket.slow.store(0, Ordering::Relaxed);
        }
        self.calls.store(0, Ordering::Relaxed);
        self.failures.store(0, Ordering::Relaxed);
        self.slow.store(0, Ordering::Relaxed);
        self.newest.store(EMPTY, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_remainder_matches_the_operator() {
        for size in [1_u32, 2, 3, 7, 10, 100, 1000, 65_537, (1 << 20) - 1] {
            let window = CountWindow::new(size);
            for index in [0_u32, 1, 2, 99, 100, 101, 12_345, u32::MAX - 1, u32::MAX] {
                assert_eq!(
                    window.slot_of(index),
                    (index % size) as usize,
                    "size {size} index {index}"
                );
            }
        }
    }

    #[test]
    fn count_window_keeps_the_last_calls() {
        let window = CountWindow::new(3);
        assert_eq!(window.record(CALL | FAIL), Some(Totals { calls: 1, failures: 1, slow: 0 }));
        assert_eq!(window.record(CALL), Some(Totals { calls: 2, failures: 1, slow: 0 }));
        assert_eq!(window.record(CALL | SLOW), Some(Totals { calls: 3, failures: 1, slow: 1 }));
        // Replaces the first failure.
        assert_eq!(window.record(CALL), Some(Totals { calls: 3, failures: 0, slow: 1 }));
        // Replaces a success with a success: nothing changed.
        assert_eq!(window.record(CALL), None);
        assert_eq!(window.totals(), Totals { calls: 3, failures: 0, slow: 1 });
        window.reset();
        assert_eq!(window.totals(), Totals::default());
    }

    #[test]
    fn time_window_drops_old_buckets() {
        // Five one-second buckets.
        let window = TimeWindow::new(5_000_000_000, 5);
        let second = 1_000_000_000;
        window.record(0, CALL | FAIL);
        window.record(second, CALL);
        assert_eq!(window.totals(1), Totals { calls: 2, failures: 1, slow: 0 });
        // At 5 s the bucket of second 0 has left the window.
        let at_five = window.record(5 * second, CALL);
        assert_eq!(at_five, Some(Totals { calls: 2, failures: 0, slow: 0 }));
        // At 20 s everything before has left; the reused bucket is reset.
        assert_eq!(
            window.record(20 * second, CALL | SLOW),
            Some(Totals { calls: 1, failures: 0, slow: 1 })
        );
        assert_eq!(window.totals(30), Totals::default());
        // A reading from before the window counts in the newest bucket.
        assert_eq!(
            window.record(2 * second, CALL),
            Some(Totals { calls: 1, failures: 0, slow: 0 })
        );
        window.reset();
        assert_eq!(window.totals(30), Totals::default());
    }

    proptest::proptest! {
        /// A count window's totals always equal those of its last `size` outcomes.
        #[test]
        fn count_window_matches_a_model(size in 1_u32..12, outcomes in proptest::collection::vec(0_u8..4, 0..200)) {
            let window = CountWindow::new(size);
            let mut model = std::collections::VecDeque::new();
            for outcome in outcomes {
                let bits = CALL | ((outcome & 1) * FAIL) | (((outcome >> 1) & 1) * SLOW);
                window.record(bits);
                model.push_back(bits);
                if model.len() > size as usize {
                    model.pop_front();
                }
                let expected = Totals {
                    calls: model.len() as u64,
                    failures: model.iter().filter(|bits| *bits & FAIL != 0).count() as u64,
                    slow: model.iter().filter(|bits| *bits & SLOW != 0).count() as u64,
                };
                proptest::prop_assert_eq!(window.totals(), expected);
            }
        }

        /// A time window's totals always equal those of the records in the last
        /// `buckets` ticks, for records at non-decreasing times.
        #[test]
        fn time_window_matches_a_model(
            buckets in 1_u32..8,
            steps in proptest::collection::vec((0_u64..3_000, 0_u8..4), 0..100),
        ) {
            let bucket_nanos = 1_000_u64;
            let window = TimeWindow::new(bucket_nanos * u64::from(buckets), buckets);
            let mut now = 0;
            let mut model: Vec<(u64, u8)> = Vec::new();
            for (advance, outcome) in steps {
                now += advance;
                let bits = CALL | ((outcome & 1) * FAIL) | (((outcome >> 1) & 1) * SLOW);
                window.record(now, bits);
                let tick = now / bucket_nanos;
                model.push((tick, bits));
                let live: Vec<u8> = model
                    .iter()
                    .filter(|(at, _)| tick - at < u64::from(buckets))
                    .map(|(_, bits)| *bits)
                    .collect();
                let expected = Totals {
                    calls: live.len() as u64,
                    failures: live.iter().filter(|bits| *bits & FAIL != 0).count() as u64,
                    slow: live.iter().filter(|bits| *bits & SLOW != 0).count() as u64,
                };
                proptest::prop_assert_eq!(window.totals(tick), expected);
            }
        }
    }
}
