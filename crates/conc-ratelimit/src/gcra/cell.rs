//! The GCRA state of one limiter or key: its theoretical arrival time (TAT) in
//! one atomic word, updated by compare-and-swap.
//!
//! Times are nanoseconds since the owning limiter's origin. A TAT at or before
//! `now` means "fully replenished", exactly like a key never seen, which is
//! what makes evicting such keys safe.

use crate::loom::sync::atomic::{AtomicU64, Ordering};

/// One GCRA cell: 8 bytes.
#[derive(Debug)]
pub(crate) struct GcraCell {
    tat: AtomicU64,
}

/// The parameters a cell is charged with: times in nanoseconds.
/// How a charge writes a cell's new TAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// Other threads may charge the cell at the same time: a
    /// compare-and-swap, repeated when another charge got in between.
    Shared,
    /// No other thread can read or write the cell until this charge is over
    /// (a keyed limiter holds the write lock of the cell's shard): a plain
    /// store, one atomic read-modify-write fewer.
    Exclusive,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Params {
    /// Time one unit is worth.
    pub(crate) emission: u64,
    /// `emission × burst`: how far ahead of now the TAT may run after a charge.
    pub(crate) tolerance: u64,
    /// Units admitted at once from rest: the most one charge may take.
    pub(crate) burst: u32,
}

impl GcraCell {
    pub(crate) fn new() -> Self {
        Self { tat: AtomicU64::new(0) }
    }

    /// Charges `cost` nanoseconds (`n × emission`, at most the tolerance) at
    /// `now`: `Ok(new_tat)` when admitted, `Err(wait)` with the exact wait
    /// until the same charge would be admitted. A refusal writes nothing.
    ///
    /// Orderings are `Relaxed`: the cell guards no other memory, and all
    /// read-modify-writes of one atomic are totally ordered anyway.
    #[inline]
    pub(crate) fn charge(&self, now: u64, cost: u64, tolerance: u64) -> Result<u64, u64> {
        self.charge_as(Write::Shared, now, cost, tolerance)
    }

    /// [`charge`](Self::charge), writing the new TAT as `write` says.
    #[inline]
    pub(crate) fn charge_as(
        &self,
        write: Write,
        now: u64,
        cost: u64,
        tolerance: u64,
    ) -> Result<u64, u64> {
        let mut current = self.tat.load(Ordering::Relaxed);
        loop {
            let new_tat = current.max(now).saturating_add(cost);
            let allowed_at = new_tat.saturating_sub(tolerance);
            if allowed_at > now {
                return Err(allowed_at - now);
            }
            if let Write::Exclusive = write {
                self.tat.store(new_tat, Ordering::Relaxed);
                return Ok(new_tat);
            }
            match self.tat.compare_exchange_weak(
                current,
                new_tat,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(new_tat),
                Err(actual) => current = actual,
            }
        }
    }

    /// [`charge`](Self::charge) at `first`, a reading just taken, reading
    /// `now()` once more when refused. A thread preempted between its clock
    /// read and the charge holds a reading older than the TAT other threads
    /// wrote since; measured against that stale reading the charge would be
    /// refused early. The second read costs only refusals.
    #[inline]
    pub(crate) fn charge_from(
        &self,
        write: Write,
        first: u64,
        now: impl Fn() -> u64,
        cost: u64,
        tolerance: u64,
    ) -> Result<u64, u64> {
        self.charge_as(write, first, cost, tolerance).or_else(|wait| {
            let later = now();
            if later > first { self.charge_as(write, later, cost, tolerance) } else { Err(wait) }
        })
    }

    /// Charges as many units as are available now, up to `max`, at least one:
    /// `Ok((granted, new_tat))`, or `Err(wait)` for a single unit.
    pub(crate) fn charge_up_to(
        &self,
        now: u64,
        max: u64,
        params: Params,
    ) -> Result<(u64, u64), u64> {
        let mut current = self.tat.load(Ordering::Relaxed);
        loop {
            let tat = current.max(now);
            // Units that fit: (now + tolerance − tat) / emission.
            let room = now.saturating_add(params.tolerance).saturating_sub(tat) / params.emission;
            if room == 0 {
                let allowed_at =
                    tat.saturating_add(params.emission).saturating_sub(params.tolerance);
                return Err(allowed_at.saturating_sub(now).max(1));
            }
            let granted = room.min(max);
            let new_tat = tat.saturating_add(granted * params.emission);
            match self.tat.compare_exchange_weak(
                current,
                new_tat,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok((granted, new_tat)),
                Err(actual) => current = actual,
            }
        }
    }

    /// The stored TAT (0 when never charged or reset).
    #[inline]
    pub(crate) fn tat(&self) -> u64 {
        self.tat.load(Ordering::Relaxed)
    }

    /// Forgets every charge.
    pub(crate) fn reset(&self) {
        self.tat.store(0, Ordering::Relaxed);
    }

    /// Whether the cell is fully replenished at `now`: indistinguishable from
    /// a fresh cell.
    #[inline]
    pub(crate) fn is_idle(&self, now: u64) -> bool {
        self.tat() <= now
    }
}

/// Units admitted at once from a cell with TAT `tat` at `now`.
#[inline]
pub(crate) fn remaining(tat: u64, now: u64, params: Params) -> u64 {
    now.saturating_add(params.tolerance).saturating_sub(tat.max(now)) / params.emission
}

/// The wait before `cost` nanoseconds of charge would be admitted, without charging.
#[inline]
pub(crate) fn wait_for(tat: u64, now: u64, cost: u64, tolerance: u64) -> u64 {
    tat.max(now).saturating_add(cost).saturating_sub(tolerance).saturating_sub(now)
}

#[cfg(all(test, not(conc_loom)))]
mod charge_from_tests {
    use super::{GcraCell, Write};

    #[test]
    fn a_stale_reading_is_read_again_before_refusing() {
        // One unit per 10 ns, burst 1: a charge at 1 000 leaves the TAT at 1 010.
        let cell = GcraCell::new();
        cell.charge(1_000, 10, 10).unwrap();
        // Refused at the stale reading 500; admitted at the fresh 1 010.
        assert_eq!(cell.charge_from(Write::Shared, 500, || 1_010, 10, 10), Ok(1_020));
    }

    #[test]
    fn a_refusal_at_the_same_reading_stands() {
        let cell = GcraCell::new();
        cell.charge(1_000, 10, 10).unwrap();
        assert_eq!(cell.charge_from(Write::Shared, 1_005, || 1_005, 10, 10), Err(5));
        assert_eq!(
            cell.charge_from(Write::Shared, 500, || 1_004, 10, 10),
            Err(6),
            "the wait is from the fresh reading"
        );
    }
}
