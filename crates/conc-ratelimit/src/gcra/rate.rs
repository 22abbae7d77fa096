//! What [`Gcra`](crate::Gcra), [`Keyed`](crate::Keyed) and the
//! [`LeakyBucket`](crate::LeakyBucket)'s meter share: a [`GcraCell`] charged
//! under one set of [`Params`], answered in the crate's terms (units,
//! [`RateLimitError`], [`Decision`]).

use std::time::Duration;

use super::cell::{CellRef, Params, remaining, wait_for};
use crate::stats::Stats;
use crate::time::ns;
use crate::{Decision, Quota, RateLimitError};

impl Params {
    /// The parameters of `quota`.
    pub(crate) fn of(quota: Quota) -> Self {
        Self {
            emission: quota.emission_ns(),
            tolerance: quota.tolerance_ns(),
            burst: quota.burst(),
        }
    }

    /// The charge for `n` units, in nanoseconds.
    ///
    /// # Errors
    ///
    /// [`RateLimitError::ExceedsCapacity`] when `n` is larger than the burst.
    #[inline]
    pub(crate) fn cost(self, n: u32) -> Result<u64, RateLimitError> {
        if n > self.burst {
            return Err(RateLimitError::ExceedsCapacity { requested: n, capacity: self.burst });
        }
        Ok(self.emission * u64::from(n))
    }

    /// Charges `cell` `cost` nanoseconds at `first`, a reading just taken,
    /// reading `now()` again when refused (see [`CellRef::charge_from`]).
    #[inline]
    pub(crate) fn charge(
        self,
        mut cell: CellRef<'_>,
        first: u64,
        now: impl Fn() -> u64,
        cost: u64,
    ) -> Result<(), RateLimitError> {
        cell.charge_from(first, now, cost, self.tolerance).map(drop).map_err(limited)
    }

    /// Charges `cell` as many units as it has at `now`, up to `max` (at
    /// least 1) and at least one.
    pub(crate) fn charge_up_to(
        self,
        mut cell: CellRef<'_>,
        now: u64,
        max: u32,
    ) -> Result<u32, RateLimitError> {
        cell.charge_up_to(now, u64::from(max), self)
            .map(|(granted, _)| granted as u32)
            .map_err(limited)
    }

    /// Charges `cell` `cost` nanoseconds at `now` for a [`decision`]:
    /// `Ok(new_tat)`, or `Err((tat, wait))` with the TAT that refused it.
    ///
    /// [`decision`]: Self::decision
    pub(crate) fn charge_for_decision(
        self,
        mut cell: CellRef<'_>,
        now: u64,
        cost: u64,
    ) -> Result<u64, (u64, u64)> {
        cell.charge(now, cost, self.tolerance).map_err(|wait| (cell.tat(), wait))
    }

    /// Counts a charge's `outcome` (from
    /// [`charge_for_decision`](Self::charge_for_decision)) in `stats` and
    /// reports it as a [`Decision`] named `policy`: limit = burst, window =
    /// the time a full burst takes to replenish. Kept apart from the charge
    /// so that nothing here (an allocation, a metrics recorder) runs while a
    /// keyed limiter holds the key's shard.
    pub(crate) fn decision(
        self,
        policy: &str,
        now: u64,
        outcome: Result<u64, (u64, u64)>,
        stats: &Stats,
    ) -> Decision {
        let (allowed, tat, retry_after) = match outcome {
            Ok(new_tat) => (true, new_tat, 0),
            Err((tat, wait)) => (false, tat, wait),
        };
        stats.count(allowed);
        Decision::new(
            policy,
            allowed,
            self.burst.into(),
            remaining(tat, now, self),
            ns(self.tolerance),
        )
        .with_reset_after(reset_after(tat, now))
        .with_retry_after(ns(retry_after))
    }

    /// Units a cell with TAT `tat` admits at once at `now`.
    pub(crate) fn remaining(self, tat: u64, now: u64) -> u32 {
        remaining(tat, now, self) as u32
    }

    /// How long until a cell with TAT `tat` admits `n` units, from `now`.
    ///
    /// # Errors
    ///
    /// [`RateLimitError::ExceedsCapacity`] when `n` is larger than the burst.
    pub(crate) fn retry_after(
        self,
        tat: u64,
        now: u64,
        n: u32,
    ) -> Result<Duration, RateLimitError> {
        let cost = self.cost(n)?;
        Ok(ns(wait_for(tat, now, cost, self.tolerance)))
    }
}

/// How long until a cell with TAT `tat` is fully replenished, from `now`.
pub(crate) fn reset_after(tat: u64, now: u64) -> Duration {
    ns(tat.saturating_sub(now))
}

/// The refusal for a charge that waits `wait` nanoseconds.
#[inline]
fn limited(wait: u64) -> RateLimitError {
    RateLimitError::Limited { retry_after: ns(wait) }
}
