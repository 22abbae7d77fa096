//! What a guarded service's `poll_ready` decided for its next call, shared by
//! the breaker's and the bulkhead's services.
//!
//! No admission is taken before `call`, so a service readied for a request
//! that never comes (a cancelled request in an idle `Buffer`) holds nothing.

/// What `poll_ready` decided; `R` is the refusal.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "tower"), allow(dead_code))]
pub(crate) enum Readiness<R> {
    /// `poll_ready` has not answered `Ready` since the last call.
    Unpolled,
    /// An admission would be granted and the inner service is ready.
    Inner,
    /// (Bulkhead only.) No slot was free but the queue had room: the
    /// response future waits for a slot, then for the inner service (on a
    /// clone), then calls it.
    Queue,
    /// Refused: `call` answers with this (counted then), and the inner
    /// service was not polled.
    Refused(R),
}
