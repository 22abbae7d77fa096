//! The shared state machine behind every handle and permit of one breaker.
//!
//! One state word (generation and state code) decides admission with a single
//! atomic load on the closed path. Transitions are rare and happen under a
//! small mutex that guards nothing but the transition itself (no user code
//! runs under it): the thread that wins writes the open deadline, the time the
//! state was entered and resets the window, then publishes the new state word
//! with a release store. An outcome is recorded only when the state word still
//! equals the one its permit was issued under, so a call admitted before a
//! transition never counts in the state after it.
//!
//! Half-open keeps two words tagged with the generation: the probes issued
//! (a CAS refuses the `N+1`-th) and the probe outcomes (the record that makes
//! the count reach `N` decides between closing and opening again).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use crate::loom::sync::Mutex;
use crate::loom::sync::atomic::{AtomicU64, Ordering};

use super::config::{BreakerConfig, HalfOpenTimeout, ppm};
use super::event::{BreakerEvent, Subscriber, TransitionReason};
use super::metrics::{BreakerMetrics, Handles};
use super::state::{
    BreakerState, CLOSED, DISABLED, FORCED_OPEN, HALF_OPEN, METRICS_ONLY, OPEN, code_of,
    generation_of, pack,
};
use super::window::{CALL, FAIL, SLOW, Totals, Window};
use super::{CallOutcome, Rejected};
use crate::time::SharedClock;
use conc_core::metrics::StripedCounter;
use conc_core::time::{Timeline, saturating_nanos as nanos};

/// A start time meaning "not measured".
pub(crate) const NO_START: u64 = u64::MAX;
/// The states that admit every call: closed, disabled, metrics-only.
const ADMIT_ALL: u64 = (1 << CLOSED) | (1 << DISABLED) | (1 << METRICS_ONLY);

const HO_FIELD: u32 = 13;
const HO_MASK: u64 = (1 << HO_FIELD) - 1;
const HO_GEN_MASK: u64 = (1 << 24) - 1;

/// What an admission was given: the state word it was admitted under, its
/// start stamp and whether it holds a half-open probe slot.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Admission {
    pub(crate) word: u64,
    pub(crate) start: u64,
    pub(crate) probe: bool,
}

/// What only transitions touch.
#[derive(Debug)]
pub(crate) struct Cold {
    pub(crate) config: BreakerConfig,
    consecutive_opens: u32,
}

pub(crate) struct Shared {
    state: AtomicU64,
    window: Window,
    probes: AtomicU64,
    half_open: AtomicU64,
    since: AtomicU64,
    open_until: AtomicU64,
    /// Striped: rejections come in bursts from every thread at once.
    not_permitted: StripedCounter,
    failure_ppm: AtomicU64,
    slow_ppm: AtomicU64,
    slow_nanos: AtomicU64,
    minimum_calls: AtomicU64,
    half_open_calls: AtomicU64,
    max_half_open_nanos: AtomicU64,
    half_open_timeout_target: AtomicU64,
    cold: Mutex<Cold>,
    clock: Timeline<SharedClock>,
    subscribers: Box<[Subscriber]>,
    pub(crate) name: Arc<str>,
    handles: Handles,
    /// Events built and handed to `emit`, for the test that none is built
    /// without subscribers.
    #[cfg(test)]
    pub(crate) events_built: AtomicU64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.name)
            .field("state", &self.state())
            .field("window", &self.window)
            .field("subscribers", &self.subscribers.len())
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Parts {
    pub(crate) config: BreakerConfig,
    pub(crate) window: Window,
    pub(crate) clock: Timeline<SharedClock>,
    pub(crate) subscribers: Vec<Subscriber>,
    pub(crate) name: Arc<str>,
    pub(crate) initial: BreakerState,
}

impl Shared {
    pub(crate) fn new(parts: Parts) -> Self {
        let handles = Handles::new(&parts.name);
        let shared = Self {
            state: AtomicU64::new(pack(0, parts.initial.code())),
            window: parts.window,
            probes: AtomicU64::new(0),
            half_open: AtomicU64::new(0),
            since: AtomicU64::new(0),
            open_until: AtomicU64::new(0),
            not_permitted: StripedCounter::new(),
            failure_ppm: AtomicU64::new(0),
            slow_ppm: AtomicU64::new(0),
            slow_nanos: AtomicU64::new(NO_START),
            minimum_calls: AtomicU64::new(0),
            half_open_calls: AtomicU64::new(0),
            max_half_open_nanos: AtomicU64::new(0),
            half_open_timeout_target: AtomicU64::new(OPEN),
            cold: Mutex::new(Cold { config: parts.config.clone(), consecutive_opens: 0 }),
            clock: parts.clock,
            subscribers: parts.subscribers.into_boxed_slice(),
            name: parts.name,
            handles,
            #[cfg(test)]
            events_built: AtomicU64::new(0),
        };
        shared.apply(&parts.config);
        if parts.initial == BreakerState::Open {
            let mut cold = shared.lock();
            cold.consecutive_opens = 1;
            let wait = cold.config.wait_in_open.wait(1);
            let now = shared.now();
            shared.since.store(now, Ordering::Relaxed);
            shared.open_until.store(now.saturating_add(nanos(wait)), Ordering::Relaxed);
        }
        shared.handles.state.set(parts.initial.gauge_value());
        shared
    }

    pub(crate) fn lock(&self) -> crate::loom::sync::MutexGuard<'_, Cold> {
        self.cold.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Copies the hot settings of `config` into their atomics.
    fn apply(&self, config: &BreakerConfig) {
        self.failure_ppm.store(ppm(config.failure_rate_threshold), Ordering::Relaxed);
        let (slow_nanos, slow_ppm) = match config.slow_call {
            Some((duration, ratio)) => (nanos(duration), ppm(ratio)),
            None => (NO_START, u64::MAX),
        };
        self.slow_nanos.store(slow_nanos, Ordering::Relaxed);
        self.slow_ppm.store(slow_ppm, Ordering::Relaxed);
        self.minimum_calls.store(u64::from(config.minimum_calls), Ordering::Relaxed);
        self.half_open_calls
            .store(u64::from(config.permitted_calls_in_half_open), Ordering::Relaxed);
        let (max, target) = match config.max_wait_in_half_open {
            Some((wait, HalfOpenTimeout::Open)) => (nanos(wait), OPEN),
            Some((wait, HalfOpenTimeout::Closed)) => (nanos(wait), CLOSED),
            None => (0, OPEN),
        };
        self.max_half_open_nanos.store(max, Ordering::Relaxed);
        self.half_open_timeout_target.store(target, Ordering::Relaxed);
    }

    pub(crate) fn config(&self) -> BreakerConfig {
        self.lock().config.clone()
    }

    pub(crate) fn update(&self, config: BreakerConfig) {
        let mut cold = self.lock();
        self.apply(&config);
        cold.config = config;
    }

    /// Nanoseconds since the breaker's origin. Kept out of line: the closed
    /// path of a count window without slow-call detection never reads the
    /// clock, and inlining the clock's match would bloat it.
    #[inline(never)]
    fn now(&self) -> u64 {
        self.clock.now()
    }

    /// The start stamp of a call: the time when slow calls are detected.
    #[inline]
    fn start(&self) -> u64 {
        if self.slow_nanos.load(Ordering::Relaxed) == NO_START { NO_START } else { self.now() }
    }

    /// Admission, or the rejection.
    #[inline]
    pub(crate) fn acquire(&self) -> Result<Admission, Rejected> {
        let word = self.state.load(Ordering::Acquire);
        if (1 << code_of(word)) & ADMIT_ALL != 0 {
            return Ok(Admission { word, start: self.start(), probe: false });
        }
        match self.admit_slow(word, true) {
            Ok(admission) => Ok(admission),
            Err(refusal) => Err(self.reject(refusal)),
        }
    }

    /// Whether a call would be admitted now, taking nothing: the refusal it
    /// would get (not counted yet, see [`reject`](Self::reject)) or `Ok`.
    /// Due transitions happen, as for [`state`](Self::state).
    #[cfg(feature = "tower")]
    #[inline]
    pub(crate) fn peek(&self) -> Result<(), Rejected> {
        let word = self.state.load(Ordering::Acquire);
        if (1 << code_of(word)) & ADMIT_ALL != 0 {
            return Ok(());
        }
        self.admit_slow(word, false).map(drop)
    }

    /// Admission past the closed path; with `take` false, nothing is taken
    /// and the admission returned is not to be used.
    #[cold]
    #[inline(never)]
    fn admit_slow(&self, mut word: u64, take: bool) -> Result<Admission, Rejected> {
        loop {
            match code_of(word) {
                FORCED_OPEN => {
                    return Err(Rejected { state: BreakerState::ForcedOpen, retry_after: None });
                }
                OPEN => {
                    let now = self.now();
                    let until = self.open_until.load(Ordering::Relaxed);
                    if now < until {
                        let retry_after = Some(Duration::from_nanos(until - now));
                        return Err(Rejected { state: BreakerState::Open, retry_after });
                    }
                    self.transition(word, HALF_OPEN, TransitionReason::WaitElapsed);
                }
                HALF_OPEN => {
                    let max = self.max_half_open_nanos.load(Ordering::Relaxed);
                    if max != 0
                        && self.now().saturating_sub(self.since.load(Ordering::Relaxed)) >= max
                    {
                        let target = self.half_open_timeout_target.load(Ordering::Relaxed);
                        self.transition(word, target, TransitionReason::HalfOpenTimedOut);
                    } else if self.probe_free(word, take) {
                        return Ok(Admission { word, start: self.start(), probe: take });
                    } else {
                        return Err(Rejected { state: BreakerState::HalfOpen, retry_after: None });
                    }
                }
                _ => return Ok(Admission { word, start: self.start(), probe: false }),
            }
            word = self.state.load(Ordering::Acquire);
        }
    }

    /// Whether a half-open probe slot of the generation of `word` is free;
    /// with `take`, takes it.
    fn probe_free(&self, word: u64, take: bool) -> bool {
        if take {
            return self.take_probe(word);
        }
        let generation = generation_of(word) & 0xffff_ffff;
        let current = self.probes.load(Ordering::Acquire);
        let issued = if current >> 32 == generation { current & 0xffff_ffff } else { 0 };
        issued < self.half_open_calls.load(Ordering::Relaxed)
    }

    /// Takes one of the half-open probe slots of the generation of `word`.
    fn take_probe(&self, word: u64) -> bool {
        let generation = generation_of(word) & 0xffff_ffff;
        let permits = self.half_open_calls.load(Ordering::Relaxed);
        let mut current = self.probes.load(Ordering::Acquire);
        loop {
            let issued = if current >> 32 == generation { current & 0xffff_ffff } else { 0 };
            if issued >= permits {
                return false;
            }
            let next = (generation << 32) | (issued + 1);
            match self.probes.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(seen) => current = seen,
            }
        }
    }

    /// Gives back a probe slot of the generation of `word`, if that
    /// generation is still the current half-open one.
    pub(crate) fn release_probe(&self, word: u64) {
        let generation = generation_of(word) & 0xffff_ffff;
        let mut current = self.probes.load(Ordering::Acquire);
        loop {
            let issued = current & 0xffff_ffff;
            if current >> 32 != generation || issued == 0 {
                return;
            }
            match self.probes.compare_exchange_weak(
                current,
                current - 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }

    /// Counts `refusal` (the counter, the metric, the event) and returns it.
    #[cold]
    pub(crate) fn reject(&self, refusal: Rejected) -> Rejected {
        self.not_permitted.increment();
        self.handles.rejected.increment(1);
        if !self.subscribers.is_empty() {
            let Rejected { state, retry_after } = refusal;
            self.emit(&BreakerEvent::Rejected { state, retry_after });
        }
        refusal
    }

    /// Records the outcome of a call admitted under `word`.
    ///
    /// A healthy breaker's steady state, an untimed success recorded into a
    /// full count window of successes with no subscriber, changes nothing but
    /// the success metric: it is decided here, inlined into the caller, and
    /// everything else goes out of line.
    #[inline]
    pub(crate) fn record(&self, word: u64, start: u64, probe: bool, outcome: CallOutcome) {
        if outcome == CallOutcome::Success
            && start == NO_START
            && code_of(word) == CLOSED
            && self.subscribers.is_empty()
            && self.window.full_of_successes()
            && self.state.load(Ordering::Acquire) == word
        {
            self.handles.success.increment(1);
            return;
        }
        self.record_any(word, start, probe, outcome);
    }

    #[inline(never)]
    fn record_any(&self, word: u64, start: u64, probe: bool, outcome: CallOutcome) {
        if self.state.load(Ordering::Acquire) != word {
            // The state changed since admission: the outcome belongs to a
            // state that is gone. A probe slot of a gone generation needs no
            // release either.
            return;
        }
        match code_of(word) {
            HALF_OPEN if probe => self.record_probe(word, start, outcome),
            DISABLED | HALF_OPEN => {}
            code => self.record_closed(word, code, start, outcome),
        }
    }

    #[inline]
    fn outcome_bits(
        &self,
        start: u64,
        outcome: CallOutcome,
        needs_now: bool,
    ) -> (u8, u64, Option<Duration>) {
        let mut bits = CALL;
        if outcome == CallOutcome::Failure {
            bits |= FAIL;
        }
        if start == NO_START && !needs_now {
            return (bits, 0, None);
        }
        let now = self.now();
        if start == NO_START {
            return (bits, now, None);
        }
        let took = now.saturating_sub(start);
        if took >= self.slow_nanos.load(Ordering::Relaxed) {
            bits |= SLOW;
        }
        (bits, now, Some(Duration::from_nanos(took)))
    }

    #[inline]
    fn record_closed(&self, word: u64, code: u64, start: u64, outcome: CallOutcome) {
        if outcome == CallOutcome::Ignore {
            self.ignored();
            return;
        }
        let (bits, now, took) = self.outcome_bits(start, outcome, self.window.needs_time());
        self.call_recorded(bits, took);
        if let Some(totals) = self.window.record(now, bits)
            && let Some(reason) = self.exceeded(totals, self.window.capacity())
        {
            if code == CLOSED {
                self.transition(word, OPEN, reason);
            } else if !self.subscribers.is_empty() {
                self.emit(&BreakerEvent::ThresholdExceeded { reason });
            }
        }
    }

    #[inline]
    fn call_recorded(&self, bits: u8, took: Option<Duration>) {
        if bits & FAIL == 0 {
            self.handles.success.increment(1);
            if !self.subscribers.is_empty() {
                self.emit(&BreakerEvent::Success { duration: took });
            }
        } else {
            self.handles.failure.increment(1);
            if !self.subscribers.is_empty() {
                self.emit(&BreakerEvent::Failure { duration: took });
            }
        }
    }

    fn ignored(&self) {
        self.handles.ignored.increment(1);
        if !self.subscribers.is_empty() {
            self.emit(&BreakerEvent::Ignored);
        }
    }

    /// Which threshold `totals` reach, if any, once the minimum is met.
    #[inline]
    fn exceeded(&self, totals: Totals, capacity: u64) -> Option<TransitionReason> {
        let minimum = self.minimum_calls.load(Ordering::Relaxed).min(capacity);
        if totals.calls == 0 || totals.calls < minimum {
            return None;
        }
        self.rates_exceeded(totals)
    }

    fn rates_exceeded(&self, totals: Totals) -> Option<TransitionReason> {
        let failure_ppm = self.failure_ppm.load(Ordering::Relaxed);
        let rate = |count: u64| count as f64 / totals.calls as f64;
        if u128::from(totals.failures) * 1_000_000
            >= u128::from(failure_ppm) * u128::from(totals.calls)
        {
            return Some(TransitionReason::FailureRate {
                rate: rate(totals.failures),
                threshold: failure_ppm as f64 / 1e6,
                calls: totals.calls,
            });
        }
        let slow_ppm = self.slow_ppm.load(Ordering::Relaxed);
        if slow_ppm != u64::MAX
            && u128::from(totals.slow) * 1_000_000
                >= u128::from(slow_ppm) * u128::from(totals.calls)
        {
            return Some(TransitionReason::SlowCallRate {
                rate: rate(totals.slow),
                threshold: slow_ppm as f64 / 1e6,
                calls: totals.calls,
            });
        }
        None
    }

    fn record_probe(&self, word: u64, start: u64, outcome: CallOutcome) {
        if outcome == CallOutcome::Ignore {
            self.release_probe(word);
            self.ignored();
            return;
        }
        let (bits, _, took) = self.outcome_bits(start, outcome, false);
        self.call_recorded(bits, took);
        let generation = generation_of(word) & HO_GEN_MASK;
        let mut current = self.half_open.load(Ordering::Acquire);
        let totals = loop {
            let mut totals = Totals::default();
            if current >> (3 * HO_FIELD) == generation {
                totals.calls = current & HO_MASK;
                totals.failures = (current >> HO_FIELD) & HO_MASK;
                totals.slow = (current >> (2 * HO_FIELD)) & HO_MASK;
            }
            if totals.calls >= HO_MASK {
                return;
            }
            totals.calls += 1;
            totals.failures += u64::from((bits & FAIL) >> 1);
            totals.slow += u64::from((bits & SLOW) >> 2);
            let next = (generation << (3 * HO_FIELD))
                | (totals.slow << (2 * HO_FIELD))
                | (totals.failures << HO_FIELD)
                | totals.calls;
            match self.half_open.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break totals,
                Err(seen) => current = seen,
            }
        };
        if totals.calls < self.half_open_calls.load(Ordering::Relaxed) {
            return;
        }
        match self.rates_exceeded(totals) {
            Some(reason) => self.transition(word, OPEN, reason),
            None => self.transition(
                word,
                CLOSED,
                TransitionReason::ProbesPassed {
                    failure_rate: totals.failures as f64 / totals.calls as f64,
                    slow_rate: totals.slow as f64 / totals.calls as f64,
                },
            ),
        };
    }

    /// Moves from the state word `expected` to state `to`; false when the
    /// state is no longer `expected` (someone else moved it first).
    pub(crate) fn transition(&self, expected: u64, to: u64, reason: TransitionReason) -> bool {
        let mut cold = self.lock();
        if self.state.load(Ordering::Acquire) != expected {
            return false;
        }
        let now = self.now();
        match to {
            OPEN => {
                cold.consecutive_opens = cold.consecutive_opens.saturating_add(1);
                let wait = cold.config.wait_in_open.wait(cold.consecutive_opens);
                self.open_until.store(now.saturating_add(nanos(wait)), Ordering::Relaxed);
            }
            CLOSED | METRICS_ONLY => {
                self.window.reset();
                cold.consecutive_opens = 0;
            }
            _ => {}
        }
        self.since.store(now, Ordering::Relaxed);
        self.state.store(pack(generation_of(expected) + 1, to), Ordering::Release);
        drop(cold);
        self.announce(
            BreakerState::from_code(code_of(expected)),
            BreakerState::from_code(to),
            reason,
        );
        true
    }

    /// Moves to `to` by hand; no event when already there.
    pub(crate) fn transition_to(&self, to: BreakerState) {
        loop {
            let word = self.state.load(Ordering::Acquire);
            if code_of(word) == to.code() {
                return;
            }
            if self.transition(word, to.code(), TransitionReason::Manual) {
                return;
            }
        }
    }

    /// Back to closed with an empty window and zeroed counters.
    pub(crate) fn reset(&self) {
        let mut cold = self.lock();
        let word = self.state.load(Ordering::Acquire);
        self.window.reset();
        self.not_permitted.reset();
        cold.consecutive_opens = 0;
        self.since.store(self.now(), Ordering::Relaxed);
        self.state.store(pack(generation_of(word) + 1, CLOSED), Ordering::Release);
        drop(cold);
        if code_of(word) != CLOSED {
            self.announce(
                BreakerState::from_code(code_of(word)),
                BreakerState::Closed,
                TransitionReason::Manual,
            );
        }
    }

    fn announce(&self, from: BreakerState, to: BreakerState, reason: TransitionReason) {
        tracing::info!(
            target: "conc_resilience::breaker",
            breaker = %self.name,
            %from,
            %to,
            %reason,
            "circuit breaker state changed"
        );
        self.handles.transitions.increment(1);
        self.handles.state.set(to.gauge_value());
        if !self.subscribers.is_empty() {
            self.emit(&BreakerEvent::StateTransition { from, to, reason });
        }
    }

    fn emit(&self, event: &BreakerEvent) {
        #[cfg(test)]
        self.events_built.fetch_add(1, Ordering::Relaxed);
        for subscriber in &*self.subscribers {
            if catch_unwind(AssertUnwindSafe(|| subscriber(event))).is_err() {
                tracing::error!(target: "conc_resilience::breaker", breaker = %self.name, ?event, "event subscriber panicked");
            }
        }
    }

    /// The state now, after any transition that is due (open whose wait has
    /// passed, half-open past its maximum wait).
    pub(crate) fn state(&self) -> BreakerState {
        loop {
            let word = self.state.load(Ordering::Acquire);
            let due = match code_of(word) {
                OPEN => (self.now() >= self.open_until.load(Ordering::Relaxed))
                    .then_some((HALF_OPEN, TransitionReason::WaitElapsed)),
                HALF_OPEN => {
                    let max = self.max_half_open_nanos.load(Ordering::Relaxed);
                    (max != 0
                        && self.now().saturating_sub(self.since.load(Ordering::Relaxed)) >= max)
                        .then(|| {
                            (
                                self.half_open_timeout_target.load(Ordering::Relaxed),
                                TransitionReason::HalfOpenTimedOut,
                            )
                        })
                }
                _ => None,
            };
            match due {
                Some((to, reason)) => {
                    self.transition(word, to, reason);
                }
                None => return BreakerState::from_code(code_of(word)),
            }
        }
    }

    pub(crate) fn metrics(&self) -> BreakerMetrics {
        let word = self.state.load(Ordering::Acquire);
        let code = code_of(word);
        let totals = if code == HALF_OPEN {
            let current = self.half_open.load(Ordering::Acquire);
            if current >> (3 * HO_FIELD) == generation_of(word) & HO_GEN_MASK {
                Totals {
                    calls: current & HO_MASK,
                    failures: (current >> HO_FIELD) & HO_MASK,
                    slow: (current >> (2 * HO_FIELD)) & HO_MASK,
                }
            } else {
                Totals::default()
            }
        } else {
            self.window.totals(self.now())
        };
        let minimum = if code == HALF_OPEN {
            self.half_open_calls.load(Ordering::Relaxed)
        } else {
            self.minimum_calls.load(Ordering::Relaxed).min(self.window.capacity())
        };
        let evaluated = totals.calls > 0 && totals.calls >= minimum;
        let rate = |count: u64| evaluated.then(|| count as f64 / totals.calls as f64);
        BreakerMetrics {
            state: BreakerState::from_code(code),
            failure_rate: rate(totals.failures),
            slow_call_rate: rate(totals.slow),
            calls: totals.calls,
            failed_calls: totals.failures,
            slow_calls: totals.slow,
            not_permitted: self.not_permitted.sum(),
        }
    }

    pub(crate) fn reset_counters(&self) {
        self.not_permitted.reset();
    }

    /// When the current open state ends, if open.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        let word = self.state.load(Ordering::Acquire);
        (code_of(word) == OPEN).then(|| {
            Duration::from_nanos(self.open_until.load(Ordering::Relaxed).saturating_sub(self.now()))
        })
    }
}
