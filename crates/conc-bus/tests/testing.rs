//! `conc_bus::testing`: the bus in fake mode (recording, except,
//! serialize-and-restore, assertions and their messages) and the
//! job-interaction fake (a handler unit-tested without a worker).

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use conc_bus::testing::{
    BusFake, DispatchedJob, FakeContext, FakeContextBuilder, HandlerOutcome, round_trip,
};
use conc_bus::{
    Bus, Command, DecodeError, DispatchError, EnqueueError, Job, JobContext, JobError, JobId,
    JobOptions, MemoryQueue, Queue, QueueError, Refusal,
};
use serde::{Deserialize, Serialize};
use static_assertions::assert_impl_all;

assert_impl_all!(BusFake: Send, Sync, Clone);
assert_impl_all!(FakeContext: Send, Sync);
assert_impl_all!(HandlerOutcome: Send, Sync);
assert_impl_all!(DispatchedJob: Send, Sync);
assert_impl_all!(FakeContextBuilder: Send, Sync);

#[test]
fn the_fake_bus_futures_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let (bus, _fake) = Bus::builder().fake();
    assert_send(&bus.dispatch_to_queue(Welcome { user: 1 }));
    assert_send(&bus.dispatch(Ping));
    let fake = FakeContext::new();
    assert_send(&fake.run(async { Ok(()) }));
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Welcome {
    user: u64,
}

impl Job for Welcome {
    const NAME: &'static str = "welcome";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Invoice {
    order: u64,
    cents: u64,
}

impl Job for Invoice {
    const NAME: &'static str = "invoice";
    fn options() -> JobOptions {
        JobOptions::new().queue("billing").priority(3)
    }
}

/// Its `token` is not written to the payload, so it reads back as the default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct WithSecret {
    user: u64,
    #[serde(skip)]
    token: String,
}

impl Job for WithSecret {
    const NAME: &'static str = "with-secret";
}

/// Written without its `id`, which reading requires: it never reads back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Broken {
    #[serde(skip_serializing)]
    id: u64,
}

impl Job for Broken {
    const NAME: &'static str = "broken";
}

#[derive(Debug, Clone, PartialEq)]
struct PlaceOrder {
    items: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("empty cart")]
struct EmptyCart;

impl Command for PlaceOrder {
    type Output = u64;
    type Error = EmptyCart;
}

#[derive(Debug, Clone, PartialEq)]
struct Ping;

impl Command for Ping {
    type Output = ();
    type Error = std::convert::Infallible;
}

fn ordering_bus() -> conc_bus::BusBuilder {
    Bus::builder().handle(|order: PlaceOrder| async move {
        if order.items == 0 { Err(EmptyCart) } else { Ok(u64::from(order.items) * 100) }
    })
}

/// The message of the panic `f` raises.
fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("the assertion should fail");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

#[tokio::test]
async fn jobs_are_recorded_not_pushed_and_excepted_types_really_go() {
    let queue = Queue::new(MemoryQueue::new());
    let (bus, fake) = Bus::builder().queue(&queue).fake();
    fake.except::<Invoice>();

    let id = bus.dispatch_to_queue(Welcome { user: 7 }).await.unwrap();
    bus.dispatch_to_queue(Invoice { order: 1, cents: 500 }).await.unwrap();

    assert_eq!(queue.size("default").await.unwrap().total(), 0, "the faked job was not pushed");
    assert_eq!(queue.size("billing").await.unwrap().ready, 1, "the excepted job was");
    fake.assert_dispatched_times::<Welcome>(1);
    fake.assert_not_dispatched::<Invoice>();
    let recorded = fake.dispatched_jobs();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].envelope.id, id);
    assert_eq!(
        (recorded[0].envelope.name.as_str(), recorded[0].delay),
        ("welcome", Duration::ZERO)
    );
    assert_eq!(fake.dispatched::<Welcome>(), [Welcome { user: 7 }]);
}

#[tokio::test]
async fn an_excepted_type_without_a_queue_is_handed_back() {
    let (bus, fake) = Bus::builder().fake();
    fake.except::<Welcome>();
    match bus.dispatch_to_queue(Welcome { user: 1 }).await {
        Err(EnqueueError::NoQueue { job }) => assert_eq!(job, Welcome { user: 1 }),
        other => panic!("expected no queue, got {other:?}"),
    }
    fake.assert_nothing_dispatched();
}

#[tokio::test]
async fn pushes_through_the_bus_queue_are_recorded_with_their_options() {
    let real = Queue::new(MemoryQueue::new());
    let (bus, fake) = Bus::builder().queue(&real).fake();
    fake.except::<Invoice>();
    let queue = bus.queue().expect("a fake bus has its queue");
    queue
        .dispatch(Welcome { user: 1 })
        .on_queue("mail")
        .delay(Duration::from_secs(90))
        .priority(4)
        .await
        .unwrap();
    queue.push_bulk(vec![Welcome { user: 2 }, Welcome { user: 3 }]).await.unwrap();
    queue.push(Invoice { order: 9, cents: 1 }).await.unwrap();

    fake.assert_dispatched_times::<Welcome>(3);
    fake.assert_pushed_on_with::<Welcome>("mail", |w| w.user == 1);
    fake.assert_pushed_on::<Welcome>("default");
    let first = &fake.dispatched_jobs()[0];
    assert_eq!((first.delay, first.envelope.priority), (Duration::from_secs(90), 4));
    assert_eq!(fake.dispatched::<Welcome>().iter().map(|w| w.user).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(real.size("billing").await.unwrap().ready, 1, "the excepted push went through");
    assert_eq!(real.size("mail").await.unwrap().total(), 0);
    // Reads and steering go to the real queue.
    assert_eq!(queue.size("billing").await.unwrap().ready, 1);
}

#[tokio::test]
async fn commands_are_recorded_and_still_run_their_handlers() {
    let runs = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&runs);
    let (bus, fake) = Bus::builder()
        .handle(move |order: PlaceOrder| {
            seen.fetch_add(1, Ordering::SeqCst);
            async move { if order.items == 0 { Err(EmptyCart) } else { Ok(42) } }
        })
        .validate(
            |order: &PlaceOrder| {
                if order.items > 100 { Err(Refusal::new("too many items")) } else { Ok(()) }
            },
        )
        .fake();

    assert_eq!(bus.dispatch(PlaceOrder { items: 2 }).await.unwrap(), 42);
    assert!(matches!(bus.dispatch(PlaceOrder { items: 0 }).await, Err(DispatchError::Failed(_))));
    assert!(matches!(
        bus.dispatch(PlaceOrder { items: 500 }).await,
        Err(DispatchError::Invalid { .. })
    ));
    assert!(matches!(bus.dispatch(Ping).await, Err(DispatchError::NoHandler(Ping))));

    assert_eq!(runs.load(Ordering::SeqCst), 2, "the refused one never reached the handler");
    fake.assert_command_dispatched_times::<PlaceOrder>(3);
    fake.assert_command_dispatched_with(|o: &PlaceOrder| o.items == 500);
    fake.assert_command_not_dispatched_with(|o: &PlaceOrder| o.items == 7);
    fake.assert_command_dispatched::<Ping>();
    assert_eq!(
        fake.commands::<PlaceOrder>(),
        [PlaceOrder { items: 2 }, PlaceOrder { items: 0 }, PlaceOrder { items: 500 }]
    );
    assert_eq!(fake.command_names(), ["PlaceOrder", "PlaceOrder", "PlaceOrder", "Ping"]);
    fake.assert_nothing_dispatched();

    let clone = fake.clone();
    clone.clear();
    fake.assert_no_command_dispatched();
}

#[tokio::test]
async fn the_fake_runs_the_commands_through_the_layers_too() {
    let (bus, fake) = ordering_bus().trace().fake();
    assert_eq!(bus.dispatch(PlaceOrder { items: 3 }).await.unwrap(), 300);
    fake.assert_command_dispatched::<PlaceOrder>();
}

#[tokio::test]
async fn a_payload_that_does_not_round_trip_fails_the_dispatch_and_comes_back() {
    let (bus, fake) = Bus::builder().fake();
    match bus.dispatch_to_queue(Broken { id: 5 }).await {
        Err(EnqueueError::Encode { job, error: DecodeError::RoundTrip { name, message } }) => {
            assert_eq!(job, Broken { id: 5 }, "the job is handed back");
            assert_eq!(name, "broken");
            assert!(message.contains("missing field `id`"), "{message}");
        }
        other => panic!("expected a round-trip failure, got {other:?}"),
    }
    fake.assert_nothing_dispatched();
    assert!(round_trip(&Broken { id: 5 }).is_err());

    // Turned off, the job is recorded as given.
    fake.serialize_and_restore(false);
    bus.dispatch_to_queue(Broken { id: 5 }).await.unwrap();
    fake.assert_dispatched::<Broken>();
}

#[tokio::test]
async fn the_decoded_job_is_what_is_recorded() {
    let (bus, fake) = Bus::builder().fake();
    bus.dispatch_to_queue(WithSecret { user: 1, token: "s3cret".into() }).await.unwrap();
    // The token never reaches the queue: a test reading it sees what a worker would.
    assert_eq!(fake.dispatched::<WithSecret>(), [WithSecret { user: 1, token: String::new() }]);
    fake.assert_not_dispatched_with(|job: &WithSecret| !job.token.is_empty());

    fake.clear();
    fake.serialize_and_restore(false);
    bus.dispatch_to_queue(WithSecret { user: 2, token: "s3cret".into() }).await.unwrap();
    fake.assert_dispatched_with(|job: &WithSecret| job.token == "s3cret");
}

#[tokio::test]
async fn a_pushed_payload_that_does_not_decode_fails_the_test_that_reads_it() {
    let (bus, fake) = Bus::builder().fake();
    bus.queue().unwrap().push(Broken { id: 1 }).await.unwrap();
    let message = panic_message(|| fake.assert_dispatched::<Broken>());
    assert!(
        message.starts_with("serialize-and-restore: job `broken` does not survive"),
        "{message}"
    );
    assert!(message.contains("missing field `id`"), "{message}");
    let message = panic_message(|| drop(fake.dispatched::<Broken>()));
    assert!(message.contains("serialize-and-restore"), "{message}");
    // Other types are unaffected.
    fake.assert_not_dispatched::<Welcome>();
}

#[tokio::test]
async fn round_trip_compares_maps_whatever_their_order() {
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Tags(HashMap<String, u32>);
    impl Job for Tags {
        const NAME: &'static str = "tags";
    }
    let tags = Tags((0..64).map(|i| (format!("k{i}"), i)).collect());
    assert_eq!(round_trip(&tags).unwrap(), tags);
}

#[tokio::test]
async fn each_job_assertion_says_what_was_recorded_when_it_fails() {
    let (bus, fake) = Bus::builder().fake();
    fake.assert_nothing_dispatched();
    let message = panic_message(|| fake.assert_dispatched::<Welcome>());
    assert_eq!(
        message,
        "expected a job `welcome` to be dispatched, but none was; dispatched: no job"
    );

    bus.dispatch_to_queue(Welcome { user: 1 }).await.unwrap();
    bus.dispatch_to_queue(Welcome { user: 2 }).await.unwrap();
    bus.dispatch_to_queue(Invoice { order: 5, cents: 10 }).await.unwrap();

    assert_eq!(
        panic_message(|| fake.assert_dispatched_with(|w: &Welcome| w.user == 9)),
        "expected a job `welcome` matching the predicate to be dispatched, but none of the 2 \
         dispatched matched: {\"user\":1} on `default`, {\"user\":2} on `default`"
    );
    assert_eq!(
        panic_message(|| fake.assert_dispatched_with(|_: &Broken| true)),
        "expected a job `broken` matching the predicate to be dispatched, but none was; \
         dispatched: `welcome` ×2 on `default`, `invoice` ×1 on `billing`"
    );
    assert_eq!(
        panic_message(|| fake.assert_dispatched_times::<Welcome>(3)),
        "expected `welcome` to be dispatched 3 time(s), but it was dispatched 2 time(s); \
         dispatched: `welcome` ×2 on `default`, `invoice` ×1 on `billing`"
    );
    assert_eq!(
        panic_message(|| fake.assert_not_dispatched::<Invoice>()),
        "expected no job `invoice` to be dispatched, but it was dispatched 1 time(s): \
         {\"order\":5,\"cents\":10} on `billing`"
    );
    assert_eq!(
        panic_message(|| fake.assert_not_dispatched_with(|w: &Welcome| w.user == 2)),
        "expected no job `welcome` matching the predicate to be dispatched, but 1 of the 2 \
         dispatched matched: {\"user\":1} on `default`, {\"user\":2} on `default`"
    );
    assert_eq!(
        panic_message(|| fake.assert_nothing_dispatched()),
        "expected no job to be dispatched, but 3 job(s) were: `welcome` ×2 on `default`, \
         `invoice` ×1 on `billing`"
    );
    assert_eq!(
        panic_message(|| fake.assert_pushed_on::<Invoice>("default")),
        "expected a job `invoice` pushed on queue `default`, but none was; the 1 dispatched went \
         to: {\"order\":5,\"cents\":10} on `billing`"
    );
    assert_eq!(
        panic_message(|| fake.assert_pushed_on_with("billing", |i: &Invoice| i.cents > 100)),
        "expected a job `invoice` matching the predicate pushed on queue `billing`, but none of \
         the 1 there matched: {\"order\":5,\"cents\":10} on `billing`"
    );
    assert!(
        panic_message(|| fake.assert_pushed_on::<Broken>("x"))
            .starts_with("expected a job `broken` pushed on queue `x`, but none was dispatched")
    );
    // The passing forms, for contrast.
    fake.assert_dispatched::<Welcome>();
    fake.assert_pushed_on_with("billing", |i: &Invoice| i.order == 5);
}

#[tokio::test]
async fn long_lists_are_cut_short() {
    let (bus, fake) = Bus::builder().fake();
    for user in 0..12 {
        bus.dispatch_to_queue(Welcome { user }).await.unwrap();
    }
    let message = panic_message(|| fake.assert_not_dispatched::<Welcome>());
    assert!(message.ends_with("{\"user\":9} on `default`, and 2 more"), "{message}");
}

#[tokio::test]
async fn each_command_assertion_says_what_was_recorded_when_it_fails() {
    let (bus, fake) = ordering_bus().fake();
    assert_eq!(
        panic_message(|| fake.assert_command_dispatched::<PlaceOrder>()),
        "expected a command `PlaceOrder` to be dispatched, but none was; dispatched: no command"
    );
    bus.dispatch(PlaceOrder { items: 1 }).await.unwrap();
    bus.dispatch(PlaceOrder { items: 2 }).await.unwrap();
    let _ = bus.dispatch(Ping).await;
    assert_eq!(
        panic_message(|| fake.assert_command_dispatched_with(|o: &PlaceOrder| o.items > 5)),
        "expected a command `PlaceOrder` matching the predicate to be dispatched, but none of \
         the 2 dispatched matched; dispatched: `PlaceOrder` ×2, `Ping` ×1"
    );
    assert_eq!(
        panic_message(|| fake.assert_command_dispatched_times::<Ping>(2)),
        "expected `Ping` to be dispatched 2 time(s), but it was dispatched 1 time(s); \
         dispatched: `PlaceOrder` ×2, `Ping` ×1"
    );
    assert_eq!(
        panic_message(|| fake.assert_command_not_dispatched::<PlaceOrder>()),
        "expected no command `PlaceOrder` to be dispatched, but it was dispatched 2 time(s)"
    );
    assert_eq!(
        panic_message(|| fake.assert_command_not_dispatched_with(|o: &PlaceOrder| o.items == 2)),
        "expected no command `PlaceOrder` matching the predicate to be dispatched, but 1 of the \
         2 dispatched matched"
    );
    assert_eq!(
        panic_message(|| fake.assert_no_command_dispatched()),
        "expected no command to be dispatched, but 3 command(s) were: `PlaceOrder` ×2, `Ping` ×1"
    );
}

#[tokio::test]
async fn a_real_bus_records_nothing_and_pushes_for_real() {
    let queue = Queue::new(MemoryQueue::new());
    let bus = Bus::builder().queue(&queue).build();
    bus.dispatch_to_queue(Welcome { user: 1 }).await.unwrap();
    assert_eq!(queue.size("default").await.unwrap().ready, 1);
    assert!(format!("{bus:?}").contains("fake: false"));
}

// The job-interaction fake.

/// Imports `rows` rows, a checkpoint after each, resuming where the last
/// attempt stopped; reports progress at the end.
async fn import(rows: u32, ctx: JobContext) -> Result<(), JobError> {
    let start: u32 = ctx.resume_from().unwrap_or(0);
    for row in start..rows {
        ctx.stop_if_cancelled()?;
        ctx.checkpoint(&(row + 1)).await?;
    }
    ctx.progress(100).await?;
    Ok(())
}

#[tokio::test]
async fn a_fake_context_carries_what_the_test_chose() {
    let fake = FakeContext::builder()
        .job::<Invoice>()
        .id(JobId::from_u128(77))
        .attempt(4)
        .lease_token(9)
        .checkpoint(&3_u32)
        .build()
        .unwrap();
    let ctx = fake.context();
    assert_eq!(ctx.id(), JobId::from_u128(77));
    assert_eq!((ctx.name(), ctx.queue(), ctx.attempt()), ("invoice", "billing", 4));
    assert_eq!(ctx.lease_token().get(), 9);
    assert_eq!(ctx.resume_from::<u32>(), Some(3));

    let plain = FakeContext::new();
    assert_eq!(
        (plain.context().name(), plain.context().queue(), plain.context().attempt()),
        ("job", "default", 1)
    );
    let named = FakeContext::builder().name("custom").queue("q").build().unwrap();
    assert_eq!((named.context().name(), named.context().queue()), ("custom", "q"));
}

#[tokio::test]
async fn progress_and_checkpoints_are_recorded_and_resumed_from() {
    let fake = FakeContext::builder().cancel_after_checkpoints(2).build().unwrap();
    let outcome = fake.run(import(5, fake.context())).await;
    outcome.assert_failed_with(|e| e.to_string() == "the job was asked to stop");
    assert_eq!(fake.checkpoints::<u32>(), [1, 2]);
    fake.assert_checkpoint(&2_u32);
    fake.assert_progress(&[]);
    assert!(fake.context().is_cancelled());

    let next = fake.next_attempt();
    assert_eq!((next.context().attempt(), next.context().lease_token().get()), (2, 2));
    assert_eq!(next.context().id(), fake.context().id());
    next.run(import(5, next.context())).await.assert_succeeded();
    assert_eq!(next.checkpoints::<u32>(), [3, 4, 5]);
    assert_eq!(next.last_checkpoint::<u32>(), Some(5));
    next.assert_progress(&[100]);

    // An attempt that saves nothing passes its own checkpoint on.
    let third = FakeContext::builder().checkpoint(&5_u32).build().unwrap();
    third.run(import(5, third.context())).await.assert_succeeded();
    third.assert_no_checkpoint();
    assert_eq!(third.next_attempt().context().resume_from::<u32>(), Some(5));
}

#[tokio::test]
async fn a_lost_lease_refuses_progress_and_checkpoints() {
    let fake = FakeContext::new();
    fake.context().progress(10).await.unwrap();
    fake.lose_lease();
    let err = fake.context().progress(20).await.unwrap_err();
    assert!(matches!(err, QueueError::LeaseLost(_)));
    assert!(fake.context().checkpoint(&1).await.is_err());
    fake.run(import(3, fake.context()))
        .await
        .assert_failed_with(|e| e.to_string().contains("lease"));
    fake.assert_progress(&[10]);
    fake.assert_no_checkpoint();
}

#[tokio::test]
async fn cancellation_is_in_the_test_s_hands() {
    let fake = FakeContext::new();
    let ctx = fake.context();
    assert!(ctx.stop_if_cancelled().is_ok());
    let waiter = tokio::spawn(async move { ctx.cancelled().await });
    fake.cancel();
    waiter.await.unwrap();
    assert!(fake.context().is_cancelled());
}

#[tokio::test]
async fn outcomes_read_the_result_as_a_worker_does() {
    let fake = FakeContext::new();
    fake.outcome(Ok(())).assert_succeeded();
    fake.outcome(Ok(())).assert_not_failed();
    fake.outcome(Err(JobError::release(Duration::from_secs(3))))
        .assert_released_after(Duration::from_secs(3));
    fake.outcome(Err(JobError::retry("flaky"))).assert_failed();
    fake.outcome(Err(JobError::fatal(EmptyCart)))
        .assert_failed_fatally_with(|e| e.downcast_ref::<EmptyCart>().is_some());
    let panicked = fake.run(async { panic!("boom") }).await;
    assert!(matches!(&panicked, HandlerOutcome::Panicked(m) if m == "boom"));
    panicked.assert_failed();

    // A release asked through the context counts when the handler returns Ok.
    fake.context().release(Duration::from_secs(8));
    assert_eq!(fake.released(), Some(Duration::from_secs(8)));
    let released = fake.outcome(Ok(()));
    released.assert_released();
    released.assert_not_failed();
    assert_eq!(released.to_string(), "was released for 8s");
}

#[test]
fn outcome_assertions_say_what_happened_when_they_fail() {
    let fake = FakeContext::new();
    let failed = || fake.outcome(Err(JobError::retry("smtp down")));
    assert_eq!(
        panic_message(|| failed().assert_succeeded()),
        "expected the job to succeed, but it failed (retryable): smtp down"
    );
    assert_eq!(
        panic_message(|| failed().assert_released()),
        "expected the job to be released, but it failed (retryable): smtp down"
    );
    assert_eq!(
        panic_message(|| failed().assert_failed_fatally()),
        "expected the job to fail fatally, but it failed (retryable): smtp down"
    );
    assert_eq!(
        panic_message(|| failed().assert_failed_with(|e| e.to_string() == "other")),
        "expected the attempt to fail with an error matching the predicate, but it failed \
         (retryable): smtp down"
    );
    assert_eq!(
        panic_message(|| failed().assert_not_failed()),
        "expected the job not to fail, but it failed (retryable): smtp down"
    );
    let fatal = || fake.outcome(Err(JobError::fatal("no such user")));
    assert_eq!(
        panic_message(|| fatal().assert_failed()),
        "expected the attempt to fail (retryable), but it failed fatally: no such user"
    );
    assert_eq!(
        panic_message(|| fatal().assert_failed_with(|_| true)),
        "expected the attempt to fail (retryable), but it failed fatally: no such user"
    );
    assert_eq!(
        panic_message(|| fatal().assert_failed_fatally_with(|e| e.to_string().is_empty())),
        "expected the job to fail fatally with an error matching the predicate, but it failed \
         fatally: no such user"
    );
    let released = || fake.outcome(Err(JobError::release(Duration::from_secs(1))));
    assert_eq!(
        panic_message(|| released().assert_released_after(Duration::from_secs(2))),
        "expected the job to be released for 2s, but it was released for 1s"
    );
    assert_eq!(
        panic_message(|| released().assert_failed_fatally_with(|_| true)),
        "expected the job to fail fatally, but it was released for 1s"
    );
    assert_eq!(
        panic_message(|| fake.outcome(Ok(())).assert_failed()),
        "expected the attempt to fail (retryable), but it succeeded"
    );
}

#[tokio::test]
async fn context_assertions_show_what_the_handler_saved() {
    let fake = FakeContext::new();
    fake.context().progress(40).await.unwrap();
    fake.context().checkpoint(&"page-2").await.unwrap();
    assert_eq!(
        panic_message(|| fake.assert_progress(&[40, 100])),
        "expected the handler to report progress [40, 100], but it reported [40]"
    );
    assert_eq!(
        panic_message(|| fake.assert_checkpoint(&"page-3".to_owned())),
        "expected the last checkpoint to be \"page-3\", but the handler saved \"page-2\""
    );
    assert_eq!(
        panic_message(|| fake.assert_no_checkpoint()),
        "expected no checkpoint, but the handler saved \"page-2\""
    );
    let empty = FakeContext::new();
    assert_eq!(
        panic_message(|| empty.assert_checkpoint(&1)),
        "expected the last checkpoint to be 1, but the handler saved none"
    );
}

#[test]
fn a_fake_context_refuses_bad_settings() {
    let field = |builder: FakeContextBuilder| builder.build().unwrap_err().field;
    assert_eq!(field(FakeContext::builder().attempt(0)), "attempt");
    assert_eq!(field(FakeContext::builder().queue("")), "queue");
    assert_eq!(field(FakeContext::builder().name("")), "name");
    assert_eq!(
        field(FakeContext::builder().cancel_after_checkpoints(0)),
        "cancel_after_checkpoints"
    );
    // A map keyed by pairs has no JSON form.
    let unserializable: HashMap<(u8, u8), u8> = HashMap::from([((1, 2), 3)]);
    let err = FakeContext::builder().checkpoint(&unserializable).build().unwrap_err();
    assert_eq!(err.field, "checkpoint");
    assert!(err.to_string().contains("must serialize"), "{err}");
}

#[tokio::test]
async fn a_fake_context_carries_a_batch_and_a_trigger() {
    use conc_bus::batch::BatchId;
    use conc_bus::job::{Trigger, TriggerKind};
    use conc_bus::testing::FakeContext;

    let batch = BatchId::new();
    let member = FakeContext::builder().batch(batch).build().unwrap();
    assert_eq!(member.context().batch_id(), Some(batch));
    let mut trigger = Trigger::new(TriggerKind::Catch);
    trigger.error = Some("disk full".into());
    let callback = FakeContext::builder().trigger(trigger.clone()).build().unwrap();
    assert_eq!(callback.context().trigger(), Some(&trigger));
    assert_eq!(callback.context().batch_id(), None);
}
