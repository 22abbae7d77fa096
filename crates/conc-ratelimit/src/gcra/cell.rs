//! The GCRA state of one limiter or key: its theoretical arrival time (TAT) in
//! one atomic word, updated by compare-and-swap, or by a plain store where
//! the caller has the cell to itself ([`CellRef::Alone`]).
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
        let mut current = self.tat.load(Ordering::Relaxed);
        loop {
            let new_tat = next_tat(current, now, cost, tolerance)?;
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

    /// [`charge`](Self::charge) with the cell to itself: a plain load and
    /// store, no read-modify-write.
    #[inline]
    fn charge_alone(&mut self, now: u64, cost: u64, tolerance: u64) -> Result<u64, u64> {
        let new_tat = next_tat(self.tat(), now, cost, tolerance)?;
        self.tat.store(new_tat, Ordering::Relaxed);
        Ok(new_tat)
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
            let (granted, new_tat) = grant(current, now, max, params)?;
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

    /// [`charge_up_to`](Self::charge_up_to) with the cell to itself.
    fn charge_up_to_alone(
        &mut self,
        now: u64,
        max: u64,
        params: Params,
    ) -> Result<(u64, u64), u64> {
        let (granted, new_tat) = grant(self.tat(), now, max, params)?;
        self.tat.store(new_tat, Ordering::Relaxed);
        Ok((granted, new_tat))
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

/// The TAT after charging `cost` at `now` a cell whose TAT is `current`, or
/// the wait until that charge would be admitted.
#[inline]
fn next_tat(current: u64, now: u64, cost: u64, tolerance: u64) -> Result<u64, u64> {
    let new_tat = current.max(now).saturating_add(cost);
    let allowed_at = new_tat.saturating_sub(tolerance);
    if allowed_at > now { Err(allowed_at - now) } else { Ok(new_tat) }
}

/// The units (up to `max`) a cell whose TAT is `current` grants at `now` and
/// its TAT after them, or the wait for a single unit.
#[inline]
fn grant(current: u64, now: u64, max: u64, params: Params) -> Result<(u64, u64), u64> {
    let tat = current.max(now);
    // Units that fit: (now + tolerance − tat) / emission.
    let room = now.saturating_add(params.tolerance).saturating_sub(tat) / params.emission;
    if room == 0 {
        let allowed_at = tat.saturating_add(params.emission).saturating_sub(params.tolerance);
        return Err(allowed_at.saturating_sub(now).max(1));
    }
    let granted = room.min(max);
    Ok((granted, tat.saturating_add(granted * params.emission)))
}

/// A cell as a charge reaches it.
#[derive(Debug)]
pub(crate) enum CellRef<'a> {
    /// Other threads may charge the cell at the same time: each charge is a
    /// compare-and-swap, repeated when another got in between.
    Shared(&'a GcraCell),
    /// Nobody else can reach the cell until the borrow ends (a keyed
    /// limiter holds its shard's write lock), as the `&mut` proves: a charge
    /// is a plain load and store, one atomic read-modify-write fewer.
    Alone(&'a mut GcraCell),
}

impl CellRef<'_> {
    /// As [`GcraCell::charge`].
    #[inline]
    pub(crate) fn charge(&mut self, now: u64, cost: u64, tolerance: u64) -> Result<u64, u64> {
        match self {
            Self::Shared(cell) => cell.charge(now, cost, tolerance),
            Self::Alone(cell) => cell.charge_alone(now, cost, tolerance),
        }
    }

    /// [`charge`](Self::charge) at `first`, a reading just taken, reading
    /// `now()` once more when refused. A thread preempted between its clock
    /// read and the charge holds a reading older than the TAT other threads
    /// wrote since; measured against that stale reading the charge would be
    /// refused early. The second read costs only refusals.
    #[inline]
    pub(crate) fn charge_from(
        &mut self,
        first: u64,
        now: impl Fn() -> u64,
        cost: u64,
        tolerance: u64,
    ) -> Result<u64, u64> {
        match self.charge(first, cost, tolerance) {
            Ok(tat) => Ok(tat),
            Err(wait) => self.charge_again(first, wait, now, cost, tolerance),
        }
    }

    /// The refused half of [`charge_from`](Self::charge_from), out of line so
    /// that the admitting half stays small enough to inline into every caller.
    /// Not marked cold: a saturated limiter refuses most of its calls.
    #[inline(never)]
    fn charge_again(
        &mut self,
        first: u64,
        wait: u64,
        now: impl Fn() -> u64,
        cost: u64,
        tolerance: u64,
    ) -> Result<u64, u64> {
        let later = now();
        if later > first { self.charge(later, cost, tolerance) } else { Err(wait) }
    }

    /// As [`GcraCell::charge_up_to`].
    pub(crate) fn charge_up_to(
        &mut self,
        now: u64,
        max: u64,
        params: Params,
    ) -> Result<(u64, u64), u64> {
        match self {
            Self::Shared(cell) => cell.charge_up_to(now, max, params),
            Self::Alone(cell) => cell.charge_up_to_alone(now, max, params),
        }
    }

    /// The stored TAT.
    #[inline]
    pub(crate) fn tat(&self) -> u64 {
        match self {
            Self::Shared(cell) => cell.tat(),
            Self::Alone(cell) => cell.tat(),
        }
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
mod alone_tests {
    use proptest::prelude::*;

    use super::{CellRef, GcraCell, Params};

    proptest! {
        /// A cell charged alone (plain store) and one charged shared
        /// (compare-and-swap) answer every sequence of charges and batches
        /// alike and end at the same TAT.
        #[test]
        fn alone_and_shared_charges_agree(
            steps in proptest::collection::vec((0_u64..2_000, 1_u64..40, 0_u64..6, any::<bool>()), 1..60),
        ) {
            let params = Params { emission: 10, tolerance: 100, burst: 10 };
            let shared = GcraCell::new();
            let mut alone = GcraCell::new();
            let mut now = 0;
            for (advance, cost, max, batch) in steps {
                now += advance;
                let (a, b) = if batch && max > 0 {
                    (
                        CellRef::Shared(&shared).charge_up_to(now, max, params),
                        CellRef::Alone(&mut alone).charge_up_to(now, max, params),
                    )
                } else {
                    (
                        CellRef::Shared(&shared).charge(now, cost, params.tolerance).map(|tat| (1, tat)),
                        CellRef::Alone(&mut alone).charge(now, cost, params.tolerance).map(|tat| (1, tat)),
                    )
                };
                prop_assert_eq!(a, b);
                prop_assert_eq!(shared.tat(), alone.tat());
            }
        }
    }
}

#[cfg(all(test, not(conc_loom)))]
mod charge_from_tests {
    use super::{CellRef, GcraCell};

    #[test]
    fn a_stale_reading_is_read_again_before_refusing() {
        // One unit per 10 ns, burst 1: a charge at 1 000 leaves the TAT at 1 010.
        let cell = GcraCell::new();
        cell.charge(1_000, 10, 10).unwrap();
        // Refused at the stale reading 500; admitted at the fresh 1 010.
        assert_eq!(CellRef::Shared(&cell).charge_from(500, || 1_010, 10, 10), Ok(1_020));
    }

    #[test]
    fn a_refusal_at_the_same_reading_stands() {
        let cell = GcraCell::new();
        cell.charge(1_000, 10, 10).unwrap();
        assert_eq!(CellRef::Shared(&cell).charge_from(1_005, || 1_005, 10, 10), Err(5));
        assert_eq!(
            CellRef::Shared(&cell).charge_from(500, || 1_004, 10, 10),
            Err(6),
            "the wait is from the fresh reading"
        );
    }
}
