//! [`WorkerBeat`]: what a worker records in its backend every few seconds, so
//! that an admin command or a dashboard in another process sees it.

use serde::{Deserialize, Serialize};

/// How many heartbeat intervals a worker may miss before it counts as gone:
/// a beat older than this many of its worker's intervals is not listed, and
/// the backend deletes it.
pub const MISSED_BEATS: u64 = 3;

/// Where a worker is in its life, as its heartbeat says.
///
/// # Examples
///
/// ```
/// use conc_bus::BeatState;
///
/// assert_eq!(BeatState::Stopping.to_string(), "stopping");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BeatState {
    /// Taking and running jobs.
    #[default]
    Running,
    /// Running, but every queue it takes from is paused: it takes nothing.
    Paused,
    /// Finishing its jobs; takes no new ones.
    Stopping,
}

impl std::fmt::Display for BeatState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Stopping => "stopping",
        })
    }
}

/// A worker's heartbeat: who and where it is, what it takes, and what it has
/// done since it started, as of its last beat. Workers record one every
/// [`heartbeat_interval`](crate::WorkerBuilder::heartbeat_interval) through
/// [`QueueBackend::record_worker`](crate::QueueBackend::record_worker);
/// [`QueueBackend::workers`](crate::QueueBackend::workers) lists the live
/// ones, in any process that opens the same store.
///
/// Counts are cumulative since the worker started, so a reader computes a
/// rate from one beat: the beat carries the count and time of the beat before
/// it ([`jobs_per_minute`](Self::jobs_per_minute)).
///
/// # Examples
///
/// ```
/// use conc_bus::{BeatState, WorkerBeat};
///
/// let mut beat = WorkerBeat::new("w-1", "mailer");
/// beat.queues = vec!["mail".into()];
/// (beat.interval_ms, beat.beat_at) = (5_000, 60_000);
/// (beat.previous_beat_at, beat.previous_processed, beat.processed) = (55_000, 10, 30);
/// (beat.previous_failed, beat.failed) = (1, 2);
/// assert_eq!(beat.jobs_per_minute(), Some(240.0));
/// assert_eq!(beat.failed_per_minute(), Some(12.0));
/// assert_eq!(beat.expires_at(), 75_000);
/// assert!(!beat.is_gone(75_000));
/// assert!(beat.is_gone(75_001));
/// assert_eq!(beat.state, BeatState::Running);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkerBeat {
    /// Unique per started worker (a restarted worker has a new one).
    pub id: String,
    /// The worker's name ([`WorkerBuilder::name`](crate::WorkerBuilder::name)).
    pub name: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// The queues it takes from, in priority order.
    pub queues: Vec<String>,
    /// How many jobs it runs at once, at most.
    pub concurrency: u64,
    /// Running, paused (every one of its queues is) or stopping.
    pub state: BeatState,
    /// When it started, in Unix milliseconds (the backend's clock).
    pub started_at: u64,
    /// When it recorded this beat, in Unix milliseconds (the backend's clock).
    pub beat_at: u64,
    /// Its heartbeat interval, in milliseconds.
    pub interval_ms: u64,
    /// Jobs it processed (succeeded) since it started.
    pub processed: u64,
    /// Attempts that failed since it started.
    pub failed: u64,
    /// Jobs running now.
    pub busy: u64,
    /// When it recorded the beat before this one (0 for its first beat).
    pub previous_beat_at: u64,
    /// [`processed`](Self::processed) at the beat before this one.
    pub previous_processed: u64,
    /// [`failed`](Self::failed) at the beat before this one.
    pub previous_failed: u64,
}

impl WorkerBeat {
    /// A beat of worker `id` named `name`, every other field zero or empty.
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Self {
        Self { id: id.into(), name: name.into(), ..Self::default() }
    }

    /// When it counts as gone: [`MISSED_BEATS`] intervals after this beat.
    pub fn expires_at(&self) -> u64 {
        self.beat_at.saturating_add(self.interval_ms.saturating_mul(MISSED_BEATS))
    }

    /// Whether at `now` (Unix ms) its worker counts as gone.
    pub fn is_gone(&self, now: u64) -> bool {
        now > self.expires_at()
    }

    /// Jobs processed per minute between the previous beat and this one;
    /// `None` for a first beat.
    pub fn jobs_per_minute(&self) -> Option<f64> {
        self.per_minute(self.processed, self.previous_processed)
    }

    /// Failed attempts per minute between the previous beat and this one;
    /// `None` for a first beat.
    pub fn failed_per_minute(&self) -> Option<f64> {
        self.per_minute(self.failed, self.previous_failed)
    }

    fn per_minute(&self, now: u64, before: u64) -> Option<f64> {
        if self.previous_beat_at == 0 || self.beat_at <= self.previous_beat_at {
            return None;
        }
        let minutes = (self.beat_at - self.previous_beat_at) as f64 / 60_000.0;
        Some(now.saturating_sub(before) as f64 / minutes)
    }
}

/// `beats` without the gone ones at `now`, sorted by host, pid, name, id.
pub(crate) fn live(beats: impl IntoIterator<Item = WorkerBeat>, now: u64) -> Vec<WorkerBeat> {
    let mut out: Vec<WorkerBeat> = beats.into_iter().filter(|beat| !beat.is_gone(now)).collect();
    sort(&mut out);
    out
}

/// Sorts beats by host, pid, name, id.
pub(crate) fn sort(beats: &mut [WorkerBeat]) {
    beats.sort_by(|a, b| (&a.host, a.pid, &a.name, &a.id).cmp(&(&b.host, b.pid, &b.name, &b.id)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_beat_has_no_rate_and_gone_ones_are_left_out() {
        let mut beat = WorkerBeat::new("a", "w");
        (beat.beat_at, beat.interval_ms, beat.processed) = (1_000, 100, 5);
        assert_eq!(beat.jobs_per_minute(), None);
        let mut old = WorkerBeat::new("b", "w");
        (old.beat_at, old.interval_ms) = (500, 100);
        let listed = live([old, beat.clone()], 1_250);
        assert_eq!(listed, vec![beat]);
    }

    #[test]
    fn round_trips_through_json() {
        let mut beat = WorkerBeat::new("a", "w");
        beat.state = BeatState::Stopping;
        let text = serde_json::to_string(&beat).expect("serializes");
        assert!(text.contains("\"stopping\""), "{text}");
        assert_eq!(serde_json::from_str::<WorkerBeat>(&text).expect("parses"), beat);
    }
}
