//! Sealed payloads through a SQLite file: a round trip, key rotation, a
//! wrong key and a tampered ciphertext sent to the failed store with an
//! error naming the key, and no plaintext in the file.

use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use conc_bus::encryption::Keyring;
use conc_bus::{
    EnqueueError, Envelope, FailReason, FailedQuery, Job, JobContext, JobError, JobHandlers,
    JobOptions, Pushed, Queue, QueueBackend, SqliteQueue, Worker,
};
use serde::{Deserialize, Serialize};

static_assertions::assert_impl_all!(Keyring: Send, Sync, std::fmt::Debug);
static_assertions::assert_impl_all!(conc_bus::encryption::KeyringBuilder: Send, Sync, std::fmt::Debug);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Charge {
    card: String,
}

impl Job for Charge {
    const NAME: &'static str = "charge";
    fn options() -> JobOptions {
        JobOptions::new().encrypted(true)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Plain {
    note: String,
}

impl Job for Plain {
    const NAME: &'static str = "plain";
}

const CARD: &str = "4111-1111-1111-1111";

fn old_key() -> Keyring {
    Keyring::new("2026-06", [1; 32]).unwrap()
}

fn rotated() -> Keyring {
    Keyring::builder().seal_with("2026-12", [2; 32]).open_with("2026-06", [1; 32]).build().unwrap()
}

/// The cards the handlers saw.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    fn handlers(&self, keyring: Option<Keyring>) -> JobHandlers {
        let seen = self.clone();
        let handlers = JobHandlers::new().handle(move |job: Charge, _: JobContext| {
            seen.0.lock().unwrap().push(job.card);
            async { Ok::<(), JobError>(()) }
        });
        match keyring {
            Some(keyring) => handlers.keyring(keyring),
            None => handlers,
        }
    }
    fn cards(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

async fn work(backend: &SqliteQueue, handlers: JobHandlers) {
    let worker = Worker::builder(backend.clone(), handlers).stop_when_empty(true).build().unwrap();
    worker.run().await.unwrap();
}

/// The database file and its write-ahead log, as bytes.
fn raw_bytes(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    let wal = path.with_extension("db-wal");
    if wal.exists() {
        bytes.extend(std::fs::read(wal).unwrap());
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle.as_bytes())
}

#[tokio::test]
async fn a_sealed_job_round_trips_and_the_file_never_holds_its_payload() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let backend = SqliteQueue::open(&path).unwrap();
    let queue = Queue::new(backend.clone()).with_keyring(old_key());
    let id = queue.push(Charge { card: CARD.into() }).await.unwrap();
    queue.push(Plain { note: "visible-note".into() }).await.unwrap();

    // The stored envelope names its key and keeps its settings readable.
    let stored = backend.peek("default", 10).await.unwrap();
    let sealed = stored.iter().find(|e| e.id == id).unwrap();
    assert_eq!(sealed.key_id.as_deref(), Some("2026-06"));
    assert_eq!((sealed.queue.as_str(), sealed.max_attempts), ("default", 3));
    assert!(!sealed.payload.contains(CARD));
    assert_eq!(conc_bus_visible(sealed), None);

    let bytes = raw_bytes(&path);
    assert!(contains(&bytes, "visible-note"), "the unsealed job is in the file: the search works");
    assert!(!contains(&bytes, CARD), "the card number is not in the file");

    let seen = Seen::default();
    let handlers =
        seen.handlers(Some(old_key())).handle(|_: Plain, _: JobContext| async { Ok(()) });
    work(&backend, handlers).await;
    assert_eq!(seen.cards(), [CARD]);
    assert!(queue.failed(&FailedQuery::new()).await.unwrap().is_empty());
}

/// What the admin tools show of a payload (conc-bus-cli's rule, restated
/// here: a sealed payload is hidden).
fn conc_bus_visible(envelope: &Envelope) -> Option<&str> {
    if envelope.is_sealed() { None } else { Some(&envelope.payload) }
}

#[tokio::test]
async fn keys_rotate_without_draining_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let backend = SqliteQueue::open(dir.path().join("jobs.db")).unwrap();
    // Sealed with the old key before the rotation.
    let before = Queue::new(backend.clone()).with_keyring(old_key());
    before.push(Charge { card: "old".into() }).await.unwrap();
    // After: the new key seals, the old one still opens.
    let after = Queue::new(backend.clone()).with_keyring(rotated());
    let id = after.push(Charge { card: "new".into() }).await.unwrap();
    let stored = backend.peek("default", 10).await.unwrap();
    assert_eq!(stored.iter().find(|e| e.id == id).unwrap().key_id.as_deref(), Some("2026-12"));

    let seen = Seen::default();
    work(&backend, seen.handlers(Some(rotated()))).await;
    let mut cards = seen.cards();
    cards.sort();
    assert_eq!(cards, ["new", "old"]);
    assert!(after.failed(&FailedQuery::new()).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_job_whose_key_is_missing_goes_to_the_failed_store_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let backend = SqliteQueue::open(dir.path().join("jobs.db")).unwrap();
    let queue = Queue::new(backend.clone()).with_keyring(old_key());
    queue.push(Charge { card: "a".into() }).await.unwrap();
    queue.push(Charge { card: "b".into() }).await.unwrap();

    // One worker knows only another key; after it, one has no keyring at all.
    let seen = Seen::default();
    let other = Keyring::new("2027-01", [3; 32]).unwrap();
    let worker = Worker::builder(backend.clone(), seen.handlers(Some(other)))
        .stop_when_empty(true)
        .concurrency(1)
        .max_jobs(1)
        .build()
        .unwrap();
    worker.run().await.unwrap();
    work(&backend, seen.handlers(None)).await;

    assert!(seen.cards().is_empty());
    let failed = queue.failed(&FailedQuery::new()).await.unwrap();
    assert_eq!(failed.len(), 2);
    for job in &failed {
        assert_eq!(job.reason, FailReason::Undecodable);
        assert!(job.error.contains("key `2026-06`"), "{}", job.error);
        assert_eq!(job.attempts, 1, "not retried: no retry can open it");
        assert!(job.envelope.is_sealed(), "kept sealed in the failed store");
    }
    let errors: Vec<&str> = failed.iter().map(|job| job.error.as_str()).collect();
    assert!(errors.iter().any(|e| e.contains("holds no key")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("no keyring")), "{errors:?}");

    // Retried once the worker has the key, they run.
    queue.retry_failed(&conc_bus::Selection::All).await.unwrap();
    work(&backend, seen.handlers(Some(old_key()))).await;
    assert_eq!(seen.cards().len(), 2);
}

#[tokio::test]
async fn a_tampered_or_swapped_ciphertext_fails_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let backend = SqliteQueue::open(dir.path().join("jobs.db")).unwrap();
    let queue = Queue::new(backend.clone()).with_keyring(old_key());
    let keyring = old_key();
    let now = backend.now();

    // One bit flipped in the ciphertext.
    let mut tampered =
        Envelope::new(&Charge { card: "x".into() }, &Charge::options(), now).unwrap();
    keyring.seal(&mut tampered).unwrap();
    let mut bytes = STANDARD.decode(&tampered.payload).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    tampered.payload = STANDARD.encode(bytes);
    // Another job's ciphertext under this job's id.
    let mut donor = Envelope::new(&Charge { card: "y".into() }, &Charge::options(), now).unwrap();
    keyring.seal(&mut donor).unwrap();
    let mut swapped = Envelope::new(&Charge { card: "z".into() }, &Charge::options(), now).unwrap();
    keyring.seal(&mut swapped).unwrap();
    swapped.payload = donor.payload.clone();
    queue
        .push_envelopes(vec![Pushed::new(tampered, now), Pushed::new(swapped, now)])
        .await
        .unwrap();

    let seen = Seen::default();
    work(&backend, seen.handlers(Some(old_key()))).await;
    assert!(seen.cards().is_empty());
    let failed = queue.failed(&FailedQuery::new()).await.unwrap();
    assert_eq!(failed.len(), 2);
    for job in failed {
        assert_eq!(job.reason, FailReason::Undecodable);
        assert!(job.error.contains("authentication failed"), "{}", job.error);
        assert!(job.error.contains("`2026-06`"), "{}", job.error);
    }
}

#[tokio::test]
async fn a_queue_without_a_keyring_refuses_a_job_marked_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    let backend = SqliteQueue::open(dir.path().join("jobs.db")).unwrap();
    let queue = Queue::new(backend.clone());
    let refused = queue.push(Charge { card: CARD.into() }).await.unwrap_err();
    let message = refused.to_string();
    assert!(message.contains("keyring"), "{message}");
    assert!(matches!(&refused, EnqueueError::Invalid { .. }), "{message}");
    assert_eq!(refused.into_job().card, CARD, "the job is handed back");
    assert_eq!(backend.size("default").await.unwrap().total(), 0);
}

#[tokio::test]
async fn batch_members_and_chain_links_travel_sealed_too() {
    use conc_bus::batch::PendingBatch;
    use conc_bus::chain::Chain;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let backend = SqliteQueue::open(&path).unwrap();
    let queue = Queue::new(backend.clone()).with_keyring(old_key());
    let batch = PendingBatch::new()
        .add(Charge { card: "batch-card-1".into() })
        .add(Charge { card: "batch-card-2".into() });
    let batch = queue.dispatch_batch(batch).await.unwrap();
    let chain = Chain::new(Charge { card: "chain-card-1".into() })
        .then(Charge { card: "chain-card-2".into() });
    queue.dispatch_chain(chain).await.unwrap();

    let bytes = raw_bytes(&path);
    for card in ["batch-card-1", "batch-card-2", "chain-card-1", "chain-card-2"] {
        assert!(!contains(&bytes, card), "{card} is in the file");
    }

    let seen = Seen::default();
    work(&backend, seen.handlers(Some(old_key()))).await;
    let mut cards = seen.cards();
    cards.sort();
    assert_eq!(cards, ["batch-card-1", "batch-card-2", "chain-card-1", "chain-card-2"]);
    assert!(queue.batch(batch).await.unwrap().unwrap().is_finished());
    assert!(queue.failed(&FailedQuery::new()).await.unwrap().is_empty());
}

/// A job marked encrypted dispatched inside the caller's own transaction is
/// sealed as at any push: the file never holds its payload, and a queue
/// without a keyring refuses it and hands it back.
#[tokio::test]
async fn a_job_dispatched_within_a_transaction_is_sealed_too() {
    use conc_bus::rusqlite::{Connection, TransactionBehavior};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let backend = SqliteQueue::open(&path).unwrap();
    let queue = Queue::new(backend.clone()).with_keyring(old_key());
    let mut conn = Connection::open(&path).unwrap();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).unwrap();
    let id = queue.dispatch(Charge { card: CARD.into() }).within(&tx).unwrap();
    tx.commit().unwrap();

    let stored = backend.peek("default", 10).await.unwrap();
    let sealed = stored.iter().find(|e| e.id == id).unwrap();
    assert_eq!(sealed.key_id.as_deref(), Some("2026-06"));
    assert!(!contains(&raw_bytes(&path), CARD), "the card number is not in the file");

    let seen = Seen::default();
    work(&backend, seen.handlers(Some(old_key()))).await;
    assert_eq!(seen.cards(), [CARD]);

    let bare = Queue::new(backend.clone());
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).unwrap();
    match bare.dispatch(Charge { card: CARD.into() }).within(&tx) {
        Err(EnqueueError::Invalid { job, .. }) => assert_eq!(job.card, CARD),
        other => panic!("expected a refusal handing the job back, got {other:?}"),
    }
    tx.rollback().unwrap();
    assert_eq!(backend.size("default").await.unwrap().total(), 0);
}

/// Batches and chains dispatched inside the caller's own transaction travel
/// sealed as well.
#[tokio::test]
async fn batches_and_chains_dispatched_within_a_transaction_are_sealed_too() {
    use conc_bus::batch::PendingBatch;
    use conc_bus::chain::Chain;
    use conc_bus::rusqlite::{Connection, TransactionBehavior};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let backend = SqliteQueue::open(&path).unwrap();
    let queue = Queue::new(backend.clone()).with_keyring(old_key());
    let mut conn = Connection::open(&path).unwrap();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).unwrap();
    let batch = PendingBatch::new().add(Charge { card: "tx-batch-card".into() });
    let batch = queue.dispatch_batch_within(batch, &tx).unwrap();
    let chain = Chain::new(Charge { card: "tx-chain-card-1".into() })
        .then(Charge { card: "tx-chain-card-2".into() });
    queue.dispatch_chain_within(chain, &tx).unwrap();
    tx.commit().unwrap();

    let bytes = raw_bytes(&path);
    for card in ["tx-batch-card", "tx-chain-card-1", "tx-chain-card-2"] {
        assert!(!contains(&bytes, card), "{card} is in the file");
    }
    let seen = Seen::default();
    work(&backend, seen.handlers(Some(old_key()))).await;
    let mut cards = seen.cards();
    cards.sort();
    assert_eq!(cards, ["tx-batch-card", "tx-chain-card-1", "tx-chain-card-2"]);
    assert!(queue.batch(batch).await.unwrap().unwrap().is_finished());
}

/// A job marked encrypted that a running job adds to its chain is sealed with
/// the worker's keyring, like any push; a worker without one fails the job
/// with the reason rather than store the link in clear.
#[tokio::test]
async fn links_a_running_job_adds_are_sealed_or_refused() {
    for with_keyring in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.db");
        let backend = SqliteQueue::open(&path).unwrap();
        let queue = Queue::new(backend.clone());
        queue.push(Plain { note: "adds a charge".into() }).await.unwrap();

        let seen = Seen::default();
        let handlers = seen.handlers(with_keyring.then(old_key)).handle(
            |_: Plain, ctx: JobContext| async move {
                ctx.append_to_chain(Charge { card: "appended-card".into() }).unwrap();
                Ok::<(), JobError>(())
            },
        );
        // Stop after the plain job: the appended link stays in the file.
        let worker = Worker::builder(backend.clone(), handlers).max_jobs(1).build().unwrap();
        worker.run().await.unwrap();
        assert!(!contains(&raw_bytes(&path), "appended-card"), "the link is not in the file");

        if with_keyring {
            let stored = backend.peek("default", 10).await.unwrap();
            assert_eq!(stored.len(), 1, "{stored:?}");
            assert_eq!(stored[0].key_id.as_deref(), Some("2026-06"));
            work(&backend, seen.handlers(Some(old_key()))).await;
            assert_eq!(seen.cards(), ["appended-card"]);
        } else {
            let failed = queue.failed(&FailedQuery::new()).await.unwrap();
            assert_eq!(failed.len(), 1, "{failed:?}");
            assert!(failed[0].error.contains("no keyring to seal it"), "{}", failed[0].error);
            assert_eq!(backend.size("default").await.unwrap().total(), 0);
        }
    }
}

/// A batch callback cannot be sealed (its id is set when it fires), so one
/// marked encrypted is refused rather than stored in clear.
#[tokio::test]
async fn a_batch_callback_marked_encrypted_is_refused() {
    use conc_bus::batch::{PendingBatch, WorkflowError};

    let backend = SqliteQueue::open(tempfile::tempdir().unwrap().path().join("jobs.db")).unwrap();
    let queue = Queue::new(backend.clone()).with_keyring(old_key());
    let batch = PendingBatch::new()
        .add(Plain { note: "member".into() })
        .then(Charge { card: "callback-card".into() });
    match queue.dispatch_batch(batch).await {
        Err(WorkflowError::Invalid(error)) => {
            assert!(error.to_string().contains("charge"), "{error}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(backend.size("default").await.unwrap().total(), 0);
}

/// Raw envelopes pushed into a transaction must come sealed.
#[tokio::test]
async fn push_in_refuses_an_unsealed_job_marked_encrypted() {
    use conc_bus::PushError;
    use conc_bus::rusqlite::{Connection, TransactionBehavior};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let backend = SqliteQueue::open(&path).unwrap();
    let mut conn = Connection::open(&path).unwrap();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).unwrap();
    let envelope =
        Envelope::new(&Charge { card: CARD.into() }, &Charge::options(), backend.now()).unwrap();
    match backend.push_in(&tx, vec![Pushed::new(envelope, backend.now())]) {
        Err(PushError::Invalid { jobs, error }) => {
            assert_eq!(jobs.len(), 1, "handed back");
            assert!(error.to_string().contains("charge"), "{error}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    tx.commit().unwrap();
    assert!(!contains(&raw_bytes(&path), CARD));
}
