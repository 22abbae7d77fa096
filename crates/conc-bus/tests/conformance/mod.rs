//! The conformance suite every queue backend passes.
//!
//! A test file instantiates it with a factory making a fresh, empty backend
//! on a clock the suite moves by hand, and whatever keeps it alive:
//!
//! ```ignore
//! mod conformance;
//! conformance::suite!(|clock: ManualClock| async move {
//!     let backend = MemoryQueue::builder().clock(clock).build().unwrap();
//!     Some((backend, Box::new(()) as conformance::KeepAlive))
//! });
//! ```
//!
//! Each check is a `pub async fn check<B: QueueBackend>(t: T<B>)`. Time is the
//! backend's clock, a `ManualClock` the checks advance: nothing here sleeps.

#![allow(dead_code, reason = "each test binary uses the part of the suite it instantiates")]
#![allow(unreachable_pub, reason = "the checks are the suite's interface to the macro")]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use conc_bus::{
    Envelope, FailReason, FailedQuery, Job, JobId, JobOptions, Lease, LeaseLost, PushError, Pushed,
    Queue, QueueBackend, ReserveRequest, Reserved, Selection, Settlement, Transition,
};
use conc_core::time::ManualClock;
use serde::{Deserialize, Serialize};

/// What keeps a backend's resources alive for the length of a test.
pub type KeepAlive = Box<dyn std::any::Any + Send>;

/// The backend under test and its clock.
pub struct T<B> {
    pub backend: Arc<B>,
    pub clock: ManualClock,
}

/// Declares one `#[tokio::test]` per check, each on a fresh backend from `$factory`.
macro_rules! suite {
    ($factory:expr) => {
        $crate::conformance::suite!(@tests $factory;
            push_then_reserve_returns_the_job,
            queues_are_taken_in_order_and_priorities_highest_first,
            delayed_jobs_wait_until_due,
            reserve_takes_at_most_max,
            paused_queues_are_skipped_until_resumed,
            ack_deletes_and_a_second_ack_is_refused,
            a_stale_lease_is_refused_and_changes_nothing,
            expired_leases_come_back_with_attempts_counted,
            a_retry_comes_back_after_its_delay_with_its_history,
            a_job_that_keeps_crashing_its_worker_fails_as_abandoned,
            retries_stop_at_max_attempts_and_max_exceptions,
            releases_do_not_count_as_exceptions,
            fail_stores_the_job_with_its_reason,
            retried_failed_jobs_keep_id_and_history,
            forget_flush_and_prune_failed_jobs,
            failed_jobs_page_and_filter,
            extend_keeps_a_lease_past_its_first_expiry,
            progress_and_checkpoints_reach_the_next_attempt,
            a_duplicate_push_stores_nothing_and_hands_back,
            a_bounded_queue_refuses_and_hands_back,
            size_peek_and_clear,
            a_passed_deadline_fails_at_reservation,
            settle_answers_each_transition_in_order,
            concurrent_reservers_never_share_a_job,
            recovery_is_bounded_but_complete,
            typed_pushes_hand_the_job_back,
            worker_beats_are_listed_replaced_removed_and_expire,
            paused_queues_are_read_in_order,
        );
    };
    (@tests $factory:expr; $($check:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let clock = conc_core::time::ManualClock::new();
                let factory = $factory;
                let Some((backend, _keep_alive)) = factory(clock.clone()).await else { return };
                $crate::conformance::$check($crate::conformance::T {
                    backend: std::sync::Arc::new(backend),
                    clock,
                })
                .await;
            }
        )*
    };
}
pub(crate) use suite;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    pub text: String,
}

impl Job for Note {
    const NAME: &'static str = "note";
}

const LEASE: Duration = Duration::from_secs(30);

impl<B: QueueBackend> T<B> {
    fn envelope(&self, text: &str, options: &JobOptions) -> Envelope {
        Envelope::new(&Note { text: text.into() }, options, self.backend.now()).unwrap()
    }

    async fn push(&self, text: &str, options: JobOptions) -> JobId {
        let envelope = self.envelope(text, &options);
        let id = envelope.id;
        let at = self.backend.now();
        self.backend.push(vec![Pushed::new(envelope, at)]).await.unwrap();
        id
    }

    async fn reserve_from(&self, queues: &[&str], max: usize) -> Vec<Reserved> {
        let queues: Vec<String> = queues.iter().map(|q| (*q).to_owned()).collect();
        let request = ReserveRequest::new(&queues, max, LEASE);
        self.backend.reserve(request).await.unwrap().jobs
    }

    async fn reserve(&self, max: usize) -> Vec<Reserved> {
        self.reserve_from(&["default"], max).await
    }

    async fn one(&self) -> Reserved {
        let mut jobs = self.reserve(1).await;
        assert_eq!(jobs.len(), 1, "expected one job");
        jobs.remove(0)
    }

    async fn settle(&self, lease: &Lease, transition: Transition) -> Result<Settlement, LeaseLost> {
        self.backend.settle(vec![(lease.clone(), transition)]).await.unwrap().remove(0)
    }

    fn text(reserved: &Reserved) -> String {
        serde_json::from_str::<Note>(&reserved.envelope.payload).unwrap().text
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

fn retry(delay: Duration, error: &str) -> Transition {
    Transition::Retry { delay, error: error.into(), timed_out: false }
}

pub async fn push_then_reserve_returns_the_job<B: QueueBackend>(t: T<B>) {
    let id = t.push("hello", JobOptions::new()).await;
    let job = t.one().await;
    assert_eq!(job.envelope.id, id);
    assert_eq!(job.envelope.name, "note");
    assert_eq!(T::<B>::text(&job), "hello");
    assert_eq!(job.attempt, 1);
    assert_eq!(job.lease.job, id);
    assert_eq!(job.lease.queue, "default");
    assert_eq!(job.lease.expires_at, t.backend.now() + 30_000);
    assert!(t.reserve(1).await.is_empty(), "a leased job is not reserved twice");
}

pub async fn queues_are_taken_in_order_and_priorities_highest_first<B: QueueBackend>(t: T<B>) {
    t.push("low-1", JobOptions::new().queue("low")).await;
    t.push("d-p0-a", JobOptions::new()).await;
    t.push("d-p5", JobOptions::new().priority(5)).await;
    t.push("d-p0-b", JobOptions::new()).await;
    t.push("d-p9", JobOptions::new().priority(9)).await;
    let jobs = t.reserve_from(&["default", "low"], 10).await;
    let order: Vec<String> = jobs.iter().map(T::<B>::text).collect();
    assert_eq!(order, ["d-p9", "d-p5", "d-p0-a", "d-p0-b", "low-1"]);
}

pub async fn delayed_jobs_wait_until_due<B: QueueBackend>(t: T<B>) {
    let at = t.backend.now() + 5_000;
    let envelope = t.envelope("later", &JobOptions::new());
    t.backend.push(vec![Pushed::new(envelope, at)]).await.unwrap();
    assert!(t.reserve(1).await.is_empty());
    assert_eq!(t.backend.size("default").await.unwrap().delayed, 1);
    t.advance(Duration::from_millis(4_999));
    assert!(t.reserve(1).await.is_empty());
    t.advance(Duration::from_millis(1));
    assert_eq!(T::<B>::text(&t.one().await), "later");
}

pub async fn reserve_takes_at_most_max<B: QueueBackend>(t: T<B>) {
    for i in 0..5 {
        t.push(&i.to_string(), JobOptions::new()).await;
    }
    let jobs = t.reserve(3).await;
    let texts: Vec<String> = jobs.iter().map(T::<B>::text).collect();
    assert_eq!(texts, ["0", "1", "2"]);
    assert_eq!(t.reserve(10).await.len(), 2);
    let tokens: HashSet<_> = jobs.iter().map(|j| j.lease.token).collect();
    assert_eq!(tokens.len(), 3, "every reservation has its own token");
}

pub async fn paused_queues_are_skipped_until_resumed<B: QueueBackend>(t: T<B>) {
    t.push("a", JobOptions::new()).await;
    t.push("b", JobOptions::new().queue("other")).await;
    t.backend.set_paused("default", true).await.unwrap();
    assert!(t.backend.size("default").await.unwrap().paused);
    let jobs = t.reserve_from(&["default", "other"], 10).await;
    assert_eq!(jobs.iter().map(T::<B>::text).collect::<Vec<_>>(), ["b"]);
    t.backend.set_paused("default", false).await.unwrap();
    assert_eq!(T::<B>::text(&t.one().await), "a");
}

pub async fn ack_deletes_and_a_second_ack_is_refused<B: QueueBackend>(t: T<B>) {
    let id = t.push("x", JobOptions::new()).await;
    let job = t.one().await;
    assert_eq!(t.settle(&job.lease, Transition::Ack).await, Ok(Settlement::Acked));
    assert_eq!(t.settle(&job.lease, Transition::Ack).await, Err(LeaseLost::new(id)));
    assert_eq!(t.backend.size("default").await.unwrap().total(), 0);
    assert_eq!(t.backend.failed_count(None).await.unwrap(), 0);
}

pub async fn a_stale_lease_is_refused_and_changes_nothing<B: QueueBackend>(t: T<B>) {
    t.push("x", JobOptions::new()).await;
    let first = t.one().await;
    t.advance(LEASE);
    let second = t.one().await;
    assert_eq!(second.attempt, 2);
    assert!(second.lease.token > first.lease.token);
    for transition in [
        Transition::Ack,
        retry(Duration::ZERO, "late"),
        Transition::Release { delay: Duration::ZERO },
        Transition::Fail { reason: FailReason::Fatal, error: "late".into() },
        Transition::Extend { lease: LEASE },
        Transition::Progress(50),
        Transition::Checkpoint("1".into()),
    ] {
        assert!(t.settle(&first.lease, transition).await.is_err());
    }
    // Nothing changed: the current holder's lease, progress and checkpoint stand.
    assert_eq!(t.backend.size("default").await.unwrap().reserved, 1);
    assert_eq!(t.backend.failed_count(None).await.unwrap(), 0);
    assert_eq!(t.settle(&second.lease, Transition::Ack).await, Ok(Settlement::Acked));
}

pub async fn expired_leases_come_back_with_attempts_counted<B: QueueBackend>(t: T<B>) {
    t.push("x", JobOptions::new().max_attempts(5)).await;
    let first = t.one().await;
    t.advance(Duration::from_millis(29_999));
    assert!(t.reserve(1).await.is_empty(), "not expired yet");
    t.advance(Duration::from_millis(1));
    let again = t.one().await;
    assert_eq!(again.envelope.id, first.envelope.id);
    assert_eq!(again.attempt, 2);
}

pub async fn a_retry_comes_back_after_its_delay_with_its_history<B: QueueBackend>(t: T<B>) {
    t.push("x", JobOptions::new().max_attempts(3)).await;
    let job = t.one().await;
    let now = t.backend.now();
    let settled = t.settle(&job.lease, retry(Duration::from_secs(10), "smtp down")).await;
    assert_eq!(settled, Ok(Settlement::Requeued { available_at: now + 10_000 }));
    assert!(t.reserve(1).await.is_empty());
    t.advance(Duration::from_secs(10));
    let again = t.one().await;
    assert_eq!(again.attempt, 2);
    assert_eq!(again.envelope.exceptions, 1);
    assert_eq!(again.envelope.history.len(), 1);
    assert_eq!(again.envelope.history[0].attempt, 1);
    assert_eq!(again.envelope.history[0].error, "smtp down");
    assert_eq!(again.envelope.history[0].at, now);
}

pub async fn a_job_that_keeps_crashing_its_worker_fails_as_abandoned<B: QueueBackend>(t: T<B>) {
    let id = t.push("x", JobOptions::new().max_attempts(2)).await;
    t.one().await;
    t.advance(LEASE);
    assert_eq!(t.one().await.attempt, 2);
    t.advance(LEASE);
    let queues = vec!["default".to_owned()];
    let request = ReserveRequest::new(&queues, 1, LEASE);
    let reservation = t.backend.reserve(request).await.unwrap();
    assert!(reservation.jobs.is_empty());
    assert_eq!(reservation.dead.len(), 1);
    let failed = t.backend.failed_job(id).await.unwrap().expect("stored as failed");
    assert_eq!(failed.reason, FailReason::Abandoned);
    assert_eq!(failed.attempts, 2);
    assert!(failed.error.contains("max_attempts (2)"), "{}", failed.error);
}

pub async fn retries_stop_at_max_attempts_and_max_exceptions<B: QueueBackend>(t: T<B>) {
    let a = t.push("a", JobOptions::new().max_attempts(2)).await;
    let job = t.one().await;
    assert!(matches!(
        t.settle(&job.lease, retry(Duration::ZERO, "1")).await,
        Ok(Settlement::Requeued { .. })
    ));
    let job = t.one().await;
    assert_eq!(
        t.settle(&job.lease, retry(Duration::ZERO, "2")).await,
        Ok(Settlement::Dead(FailReason::AttemptsExhausted))
    );
    assert_eq!(t.backend.failed_job(a).await.unwrap().unwrap().error, "2");

    let b = t.push("b", JobOptions::new().max_attempts(10).max_exceptions(1)).await;
    let job = t.one().await;
    assert_eq!(
        t.settle(&job.lease, retry(Duration::ZERO, "once")).await,
        Ok(Settlement::Dead(FailReason::TooManyExceptions))
    );
    let failed = t.backend.failed_job(b).await.unwrap().unwrap();
    assert_eq!(failed.reason, FailReason::TooManyExceptions);
    assert_eq!(failed.envelope.exceptions, 1);
}

pub async fn releases_do_not_count_as_exceptions<B: QueueBackend>(t: T<B>) {
    let id = t.push("x", JobOptions::new().max_attempts(3).max_exceptions(1)).await;
    for attempt in 1..=2 {
        let job = t.one().await;
        assert_eq!(job.attempt, attempt);
        let settled =
            t.settle(&job.lease, Transition::Release { delay: Duration::from_secs(1) }).await;
        assert!(matches!(settled, Ok(Settlement::Requeued { .. })), "{settled:?}");
        t.advance(Duration::from_secs(1));
    }
    let job = t.one().await;
    assert_eq!(job.envelope.exceptions, 0);
    let settled = t.settle(&job.lease, Transition::Release { delay: Duration::ZERO }).await;
    assert_eq!(settled, Ok(Settlement::Dead(FailReason::ReleasedOut)));
    assert_eq!(t.backend.failed_job(id).await.unwrap().unwrap().reason, FailReason::ReleasedOut);
}

pub async fn fail_stores_the_job_with_its_reason<B: QueueBackend>(t: T<B>) {
    let id = t.push("x", JobOptions::new()).await;
    let job = t.one().await;
    let failed_at = t.backend.now();
    let fail = Transition::Fail { reason: FailReason::Fatal, error: "card declined".into() };
    assert_eq!(t.settle(&job.lease, fail).await, Ok(Settlement::Dead(FailReason::Fatal)));
    assert_eq!(t.backend.size("default").await.unwrap().total(), 0);
    let failed = t.backend.failed_job(id).await.unwrap().unwrap();
    assert_eq!(
        (failed.reason, failed.attempts, failed.failed_at),
        (FailReason::Fatal, 1, failed_at)
    );
    assert_eq!(failed.error, "card declined");
    assert_eq!(failed.envelope.payload, r#"{"text":"x"}"#);
    assert_eq!(failed.envelope.history.last().unwrap().error, "card declined");
    assert_eq!(t.backend.failed_count(None).await.unwrap(), 1);
    assert_eq!(t.backend.failed_count(Some("default")).await.unwrap(), 1);
    assert_eq!(t.backend.failed_count(Some("other")).await.unwrap(), 0);
}

async fn fail_one<B: QueueBackend>(t: &T<B>, text: &str, options: JobOptions) -> JobId {
    let queue = options.queue_name().to_owned();
    let id = t.push(text, options).await;
    let job = t.reserve_from(&[&queue], 1).await.remove(0);
    let fail = Transition::Fail { reason: FailReason::Fatal, error: format!("{text} failed") };
    t.settle(&job.lease, fail).await.unwrap();
    id
}

pub async fn retried_failed_jobs_keep_id_and_history<B: QueueBackend>(t: T<B>) {
    let id = fail_one(&t, "x", JobOptions::new().max_attempts(2)).await;
    let retried = t.backend.retry_failed(&Selection::Ids(vec![id])).await.unwrap();
    assert_eq!(retried, [id]);
    assert_eq!(t.backend.failed_count(None).await.unwrap(), 0);
    let job = t.one().await;
    assert_eq!(job.envelope.id, id);
    assert_eq!(job.attempt, 1, "attempts start over");
    assert_eq!(job.envelope.exceptions, 0);
    assert_eq!(job.envelope.history.len(), 1, "the history is kept");
    assert_eq!(job.envelope.history[0].error, "x failed");
    assert!(t.backend.retry_failed(&Selection::Ids(vec![id])).await.unwrap().is_empty());
}

pub async fn forget_flush_and_prune_failed_jobs<B: QueueBackend>(t: T<B>) {
    let old = fail_one(&t, "old", JobOptions::new()).await;
    t.advance(Duration::from_secs(3600));
    let mail = fail_one(&t, "mail", JobOptions::new().queue("mail")).await;
    let other = fail_one(&t, "other", JobOptions::new()).await;
    let cutoff = t.backend.now() - 1_000;
    assert_eq!(t.backend.forget_failed(&Selection::FailedBefore(cutoff)).await.unwrap(), 1);
    assert!(t.backend.failed_job(old).await.unwrap().is_none());
    assert_eq!(t.backend.retry_failed(&Selection::Queue("mail".into())).await.unwrap(), [mail]);
    assert_eq!(t.backend.forget_failed(&Selection::Ids(vec![other])).await.unwrap(), 1);
    assert_eq!(t.backend.forget_failed(&Selection::Ids(vec![other])).await.unwrap(), 0);
    fail_one(&t, "a", JobOptions::new()).await;
    fail_one(&t, "b", JobOptions::new()).await;
    assert_eq!(t.backend.forget_failed(&Selection::All).await.unwrap(), 2);
    assert_eq!(t.backend.failed_count(None).await.unwrap(), 0);
}

pub async fn failed_jobs_page_and_filter<B: QueueBackend>(t: T<B>) {
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(fail_one(&t, &format!("d{i}"), JobOptions::new()).await);
    }
    let m = fail_one(&t, "m", JobOptions::new().queue("mail")).await;
    let first = t.backend.failed(&FailedQuery::new().queue("default").limit(2)).await.unwrap();
    assert_eq!(first.iter().map(|f| f.envelope.id).collect::<Vec<_>>(), ids[..2]);
    let next = FailedQuery::new().queue("default").after(first[1].envelope.id).limit(10);
    let rest = t.backend.failed(&next).await.unwrap();
    assert_eq!(rest.iter().map(|f| f.envelope.id).collect::<Vec<_>>(), ids[2..]);
    let mail = t.backend.failed(&FailedQuery::new().queue("mail")).await.unwrap();
    assert_eq!(mail.iter().map(|f| f.envelope.id).collect::<Vec<_>>(), [m]);
    assert_eq!(t.backend.failed(&FailedQuery::new().name("note")).await.unwrap().len(), 6);
    assert!(t.backend.failed(&FailedQuery::new().name("other")).await.unwrap().is_empty());
}

pub async fn extend_keeps_a_lease_past_its_first_expiry<B: QueueBackend>(t: T<B>) {
    t.push("x", JobOptions::new()).await;
    let job = t.one().await;
    t.advance(Duration::from_secs(20));
    let extended = t.settle(&job.lease, Transition::Extend { lease: LEASE }).await;
    assert_eq!(extended, Ok(Settlement::Extended { expires_at: t.backend.now() + 30_000 }));
    t.advance(Duration::from_secs(20));
    assert!(t.reserve(1).await.is_empty(), "the extended lease still holds");
    assert_eq!(t.settle(&job.lease, Transition::Ack).await, Ok(Settlement::Acked));
}

pub async fn progress_and_checkpoints_reach_the_next_attempt<B: QueueBackend>(t: T<B>) {
    t.push("x", JobOptions::new()).await;
    let job = t.one().await;
    assert_eq!(t.settle(&job.lease, Transition::Progress(40)).await, Ok(Settlement::Saved));
    let checkpoint = Transition::Checkpoint(r#"{"row":400}"#.into());
    assert_eq!(t.settle(&job.lease, checkpoint).await, Ok(Settlement::Saved));
    t.settle(&job.lease, retry(Duration::ZERO, "crash")).await.unwrap();
    let again = t.one().await;
    assert_eq!(again.envelope.progress, Some(40));
    assert_eq!(again.envelope.checkpoint.as_deref(), Some(r#"{"row":400}"#));
}

pub async fn a_duplicate_push_stores_nothing_and_hands_back<B: QueueBackend>(t: T<B>) {
    let first = t.envelope("a", &JobOptions::new());
    let now = t.backend.now();
    t.backend.push(vec![Pushed::new(first.clone(), now)]).await.unwrap();
    let fresh = t.envelope("b", &JobOptions::new());
    let err = t
        .backend
        .push(vec![Pushed::new(fresh.clone(), now), Pushed::new(first.clone(), now)])
        .await
        .unwrap_err();
    assert!(matches!(err, PushError::Duplicate { id, .. } if id == first.id));
    let back = err.into_jobs();
    assert_eq!(back.len(), 2);
    assert_eq!(back[0].envelope, fresh);
    assert_eq!(
        t.backend.size("default").await.unwrap().ready,
        1,
        "nothing of the batch was stored"
    );
    // A duplicate inside one batch is refused too.
    let twice = vec![Pushed::new(fresh.clone(), now), Pushed::new(fresh, now)];
    assert!(matches!(t.backend.push(twice).await, Err(PushError::Duplicate { .. })));
}

pub async fn a_bounded_queue_refuses_and_hands_back<B: QueueBackend>(t: T<B>) {
    t.backend.set_capacity("default", Some(2)).await.unwrap();
    t.push("a", JobOptions::new()).await;
    t.push("b", JobOptions::new()).await;
    let envelope = t.envelope("c", &JobOptions::new());
    let err = t.backend.push(vec![Pushed::new(envelope.clone(), 0)]).await.unwrap_err();
    assert!(matches!(&err, PushError::Full { queue, capacity: 2, .. } if queue == "default"));
    assert_eq!(err.into_jobs()[0].envelope, envelope);
    // A reserved job no longer counts against the bound.
    let job = t.one().await;
    t.backend.push(vec![Pushed::new(envelope, 0)]).await.unwrap();
    t.settle(&job.lease, Transition::Ack).await.unwrap();
    t.backend.set_capacity("default", None).await.unwrap();
    t.push("d", JobOptions::new()).await;
    assert_eq!(t.backend.size("default").await.unwrap().ready, 3);
    assert!(t.backend.set_capacity("default", Some(0)).await.is_err());
}

pub async fn size_peek_and_clear<B: QueueBackend>(t: T<B>) {
    t.push("a", JobOptions::new()).await;
    t.push("b", JobOptions::new().priority(3)).await;
    t.push("c", JobOptions::new()).await;
    let envelope = t.envelope("later", &JobOptions::new());
    t.backend.push(vec![Pushed::new(envelope, t.backend.now() + 60_000)]).await.unwrap();
    let peeked: Vec<String> = t
        .backend
        .peek("default", 2)
        .await
        .unwrap()
        .iter()
        .map(|e| serde_json::from_str::<Note>(&e.payload).unwrap().text)
        .collect();
    assert_eq!(peeked, ["b", "a"]);
    let held = t.one().await;
    t.advance(Duration::from_millis(250));
    let size = t.backend.size("default").await.unwrap();
    assert_eq!((size.ready, size.delayed, size.reserved), (2, 1, 1));
    assert_eq!(size.oldest_wait_ms, 250);
    assert_eq!(t.backend.clear("default").await.unwrap(), 3);
    let size = t.backend.size("default").await.unwrap();
    assert_eq!((size.ready, size.delayed, size.reserved), (0, 0, 1));
    assert_eq!(t.settle(&held.lease, Transition::Ack).await, Ok(Settlement::Acked));
    t.push("m", JobOptions::new().queue("mail")).await;
    let queues = t.backend.queues().await.unwrap();
    assert!(queues.contains(&"mail".to_owned()) && queues.contains(&"default".to_owned()));
    assert_eq!(t.backend.size("nowhere").await.unwrap().total(), 0);
}

pub async fn a_passed_deadline_fails_at_reservation<B: QueueBackend>(t: T<B>) {
    let deadline = std::time::UNIX_EPOCH + Duration::from_millis(t.backend.now() + 1_000);
    let id = t.push("x", JobOptions::new().max_attempts(10).retry_until(deadline)).await;
    let job = t.one().await;
    t.settle(&job.lease, retry(Duration::from_millis(500), "first")).await.unwrap();
    t.advance(Duration::from_millis(1_001));
    let queues = vec!["default".to_owned()];
    let request = ReserveRequest::new(&queues, 1, LEASE);
    let reservation = t.backend.reserve(request).await.unwrap();
    assert!(reservation.jobs.is_empty());
    assert_eq!(t.backend.failed_job(id).await.unwrap().unwrap().reason, FailReason::DeadlinePassed);
}

pub async fn settle_answers_each_transition_in_order<B: QueueBackend>(t: T<B>) {
    for text in ["a", "b", "c"] {
        t.push(text, JobOptions::new()).await;
    }
    let jobs = t.reserve(3).await;
    let stale = Lease::new(JobId::new(), "default", jobs[0].lease.token, jobs[0].lease.expires_at);
    let batch = vec![
        (jobs[0].lease.clone(), Transition::Ack),
        (stale, Transition::Ack),
        (jobs[1].lease.clone(), Transition::Release { delay: Duration::ZERO }),
        (jobs[2].lease.clone(), Transition::Progress(10)),
    ];
    let results = t.backend.settle(batch).await.unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[0], Ok(Settlement::Acked));
    assert!(results[1].is_err());
    assert!(matches!(results[2], Ok(Settlement::Requeued { .. })));
    assert_eq!(results[3], Ok(Settlement::Saved));
}

pub async fn concurrent_reservers_never_share_a_job<B: QueueBackend>(t: T<B>) {
    const JOBS: usize = 400;
    let now = t.backend.now();
    let pushed: Vec<Pushed> = (0..JOBS)
        .map(|i| Pushed::new(t.envelope(&i.to_string(), &JobOptions::new()), now))
        .collect();
    t.backend.push(pushed).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let backend = Arc::clone(&t.backend);
            tokio::spawn(async move {
                let queues = vec!["default".to_owned()];
                let mut mine = Vec::new();
                loop {
                    let request = ReserveRequest::new(&queues, 7, LEASE);
                    let jobs = backend.reserve(request).await.unwrap().jobs;
                    if jobs.is_empty() {
                        return mine;
                    }
                    let batch = jobs.iter().map(|j| (j.lease.clone(), Transition::Ack)).collect();
                    for settled in backend.settle(batch).await.unwrap() {
                        assert_eq!(settled, Ok(Settlement::Acked));
                    }
                    mine.extend(jobs.into_iter().map(|j| j.envelope.id));
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for task in tasks {
        for id in task.await.unwrap() {
            assert!(seen.insert(id), "job {id} reserved twice");
        }
    }
    assert_eq!(seen.len(), JOBS);
}

pub async fn recovery_is_bounded_but_complete<B: QueueBackend>(t: T<B>) {
    const JOBS: usize = 2_500;
    let now = t.backend.now();
    let pushed: Vec<Pushed> = (0..JOBS)
        .map(|i| Pushed::new(t.envelope(&i.to_string(), &JobOptions::new()), now))
        .collect();
    t.backend.push(pushed).await.unwrap();
    assert_eq!(t.reserve(JOBS).await.len(), JOBS);
    t.advance(LEASE);
    let mut again = 0;
    for _ in 0..10 {
        again += t.reserve(JOBS).await.len();
    }
    assert_eq!(again, JOBS, "every expired lease comes back within a few reservations");
}

pub async fn typed_pushes_hand_the_job_back<B: QueueBackend>(t: T<B>) {
    let queue = Queue::from_arc(Arc::clone(&t.backend));
    queue.set_capacity("tiny", Some(1)).await.unwrap();
    let note = Note { text: "first".into() };
    queue.dispatch(note).on_queue("tiny").await.unwrap();
    let err = queue.dispatch(Note { text: "second".into() }).on_queue("tiny").await.unwrap_err();
    assert!(matches!(err, conc_bus::EnqueueError::Full { capacity: 1, .. }));
    assert_eq!(err.into_job().text, "second");
    let err = queue.dispatch(Note { text: "x".into() }).on_queue("").await.unwrap_err();
    assert!(
        matches!(&err, conc_bus::EnqueueError::Invalid { error, .. } if error.field == "queue")
    );
    let ids =
        queue.push_bulk(vec![Note { text: "1".into() }, Note { text: "2".into() }]).await.unwrap();
    assert_eq!(ids.len(), 2);
}

/// A beat of worker `id` recorded now, beating every second.
fn beat_of<B: QueueBackend>(t: &T<B>, id: &str, processed: u64) -> conc_bus::WorkerBeat {
    let mut beat = conc_bus::WorkerBeat::new(id, format!("worker {id}"));
    beat.host = "host-a".into();
    beat.pid = 4242;
    beat.queues = vec!["mail".into(), "default".into()];
    beat.concurrency = 8;
    beat.started_at = t.backend.now();
    beat.beat_at = t.backend.now();
    beat.interval_ms = 1_000;
    beat.processed = processed;
    beat
}

pub async fn worker_beats_are_listed_replaced_removed_and_expire<B: QueueBackend>(t: T<B>) {
    assert!(t.backend.workers().await.unwrap().is_empty());
    let a = beat_of(&t, "a", 1);
    let b = beat_of(&t, "b", 2);
    t.backend.record_worker(&a).await.unwrap();
    t.backend.record_worker(&b).await.unwrap();
    assert_eq!(t.backend.workers().await.unwrap(), vec![a.clone(), b.clone()]);

    // A later beat of the same worker replaces the first.
    t.clock.advance(Duration::from_secs(2));
    let mut a2 = beat_of(&t, "a", 61);
    (a2.previous_beat_at, a2.previous_processed) = (a.beat_at, a.processed);
    t.backend.record_worker(&a2).await.unwrap();
    let listed = t.backend.workers().await.unwrap();
    assert_eq!(listed, vec![a2.clone(), b.clone()], "b is 2 s old: within its 3 s window");
    assert_eq!(listed[0].jobs_per_minute(), Some(1_800.0));

    // b misses its third beat: gone, and deleted from the store.
    t.clock.advance(Duration::from_millis(1_001));
    assert_eq!(t.backend.workers().await.unwrap(), vec![a2.clone()]);
    assert!(!t.backend.remove_worker("b").await.unwrap(), "pruned already");

    // A graceful stop removes a worker at once.
    assert!(t.backend.remove_worker("a").await.unwrap());
    assert!(t.backend.workers().await.unwrap().is_empty());
    assert!(!t.backend.remove_worker("a").await.unwrap());
}

pub async fn paused_queues_are_read_in_order<B: QueueBackend>(t: T<B>) {
    let queue = Queue::from_arc(Arc::clone(&t.backend));
    queue.dispatch(Note { text: "a".into() }).on_queue("mail").await.unwrap();
    t.backend.set_paused("mail", true).await.unwrap();
    t.backend.set_paused("reports", true).await.unwrap();
    t.backend.set_paused("reports", false).await.unwrap();
    let asked = ["mail", "reports", "never-seen", "mail"].map(str::to_owned);
    assert_eq!(t.backend.paused_queues(&asked).await.unwrap(), [true, false, false, true]);
    assert!(t.backend.paused_queues(&[]).await.unwrap().is_empty());
}
