//! Bad input never panics, aborts or hangs: every public constructor and
//! builder setter of the crate, fed edge values (0, 1, the limits and one
//! past them, `u32::MAX`, `usize::MAX / 2`, `usize::MAX - 1`, `usize::MAX`,
//! `Duration::MAX`, `u64::MAX` seconds), each call in `catch_unwind`. A
//! setting is either refused by `build` with a `ConfigError` naming the
//! field, the value and the limit, or accepted, and then a fan-out built
//! from it runs a few items to the end on a paused clock (so a hang that
//! waits shows as a timeout, not as a stuck test).
//!
//! Covered, 35 in all: `FanOut::builder`; `FanOutBuilder::{workers, batch,
//! queue, timeout, balance, ordered, unordered, on_error, recover, build}`;
//! `Balance::{RoundRobin, LeastLoaded, Custom}`; `Recovery::{new, retry,
//! dead_letter}`; `DeadLetterQueue::new`; `FanOut::{process_stream,
//! try_process_stream, process_batch}`; `FanIn::{new, with_strategy, add,
//! add_with_priority, remove, handle}`; `FanInHandle::{add,
//! add_with_priority, remove}`; `RoundRobin::default`; `Priority::default`;
//! `FanPattern::{new, fan_in, run}`.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use conc_core::backoff::Backoff;
use conc_core::config::ConfigError;
use conc_fan::{
    Balance, DeadLetterQueue, ErrorPolicy, FanIn, FanOut, FanPattern, InputKey, Priority, Recovery,
    RoundRobin,
};
use futures::StreamExt;
use proptest::prelude::*;

/// The most workers, items per batch and batches per queue.
const LIMIT: usize = 65_536;

/// Edge sizes, the small valid ones weighted up so that about one case in
/// six is accepted and run.
fn sizes() -> impl Strategy<Value = usize> {
    prop_oneof![
        1 => Just(0),
        3 => Just(1),
        3 => Just(2),
        1 => Just(LIMIT),
        1 => Just(LIMIT + 1),
        1 => Just(u32::MAX as usize),
        1 => Just(usize::MAX / 2),
        1 => Just(usize::MAX - 1),
        1 => Just(usize::MAX),
    ]
}

fn durations() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::from_nanos(1)),
        Just(Duration::from_millis(1)),
        Just(Duration::from_secs(3_600)),
        Just(Duration::from_secs(u64::MAX)),
        Just(Duration::MAX),
    ]
}

fn counts() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0), Just(1), Just(u32::MAX / 2), Just(u32::MAX - 1), Just(u32::MAX)]
}

/// Runs `call`, failing the test with `what` and the panic's message if it panics.
fn no_panic<T>(what: &str, call: impl FnOnce() -> T) -> T {
    match std::panic::catch_unwind(AssertUnwindSafe(call)) {
        Ok(value) => value,
        Err(panic) => panic!("{what} panicked: {}", conc_core::driver::panic_message(&*panic)),
    }
}

fn paused() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap()
}

/// Checks that `error` names `field`, the value it was given and a rule.
fn names(error: &ConfigError, field: &str, value: impl std::fmt::Debug) {
    assert_eq!(error.field, field, "{error}");
    assert_eq!(error.value, format!("{value:?}"), "{error}");
    assert!(error.reason.starts_with("must"), "{error}");
}

#[derive(Debug, Clone)]
struct Settings {
    workers: usize,
    batch: usize,
    queue: usize,
    timeout: Option<Duration>,
    balance: u8,
    pick: usize,
    ordered: bool,
    skip: bool,
    retry: Option<(Duration, Option<u32>)>,
    dead_letters: Option<usize>,
}

fn settings() -> impl Strategy<Value = Settings> {
    (
        (sizes(), sizes(), sizes(), proptest::option::of(durations())),
        (0_u8..3, sizes(), any::<bool>(), any::<bool>()),
        (
            proptest::option::of((durations(), proptest::option::of(counts()))),
            proptest::option::of(sizes()),
        ),
    )
        .prop_map(
            |(
                (workers, batch, queue, timeout),
                (balance, pick, ordered, skip),
                (retry, dead_letters),
            )| {
                Settings {
                    workers,
                    batch,
                    queue,
                    timeout,
                    balance,
                    pick,
                    ordered,
                    skip,
                    retry,
                    dead_letters,
                }
            },
        )
}

/// Calls made to `work`, by every case.
static CALLS: AtomicU64 = AtomicU64::new(0);

/// Odd items fail every other call made to the processor, so a retried item
/// soon succeeds; every item waits once before it answers.
async fn work(n: u64) -> Result<u64, String> {
    let call = CALLS.fetch_add(1, Relaxed);
    tokio::task::yield_now().await;
    if n % 2 == 1 && call.is_multiple_of(2) { Err(format!("{n} failed")) } else { Ok(n) }
}

/// The fan-out every case builds.
type Fan = FanOut<u64, fn(u64) -> WorkFuture>;

fn build(s: &Settings) -> Result<Fan, ConfigError> {
    let mut builder = no_panic("FanOut::builder", FanOut::builder);
    builder = no_panic("workers", || builder.workers(s.workers));
    builder = no_panic("batch", || builder.batch(s.batch));
    builder = no_panic("queue", || builder.queue(s.queue));
    if let Some(timeout) = s.timeout {
        builder = no_panic("timeout", || builder.timeout(timeout));
    }
    let pick = s.pick;
    let balance = match s.balance {
        0 => Balance::RoundRobin,
        1 => Balance::LeastLoaded,
        _ => Balance::Custom(Arc::new(move |_: &[usize]| pick)),
    };
    builder = no_panic("balance", || builder.balance(balance));
    builder = if s.ordered {
        no_panic("ordered", || builder.ordered())
    } else {
        no_panic("unordered", || builder.unordered())
    };
    let policy = if s.skip { ErrorPolicy::Skip } else { ErrorPolicy::Fail };
    builder = no_panic("on_error", || builder.on_error(policy));
    if s.retry.is_some() || s.dead_letters.is_some() {
        let mut recovery = no_panic("Recovery::new", Recovery::new);
        if let Some((delay, retries)) = s.retry {
            let mut backoff = Backoff::fixed(delay);
            if let Some(retries) = retries {
                backoff = backoff.max_retries(retries);
            }
            if let Ok(backoff) = backoff.build() {
                recovery = no_panic("Recovery::retry", || recovery.retry(backoff));
            }
        }
        if let Some(capacity) = s.dead_letters {
            let queue = no_panic("DeadLetterQueue::new", || DeadLetterQueue::new(capacity));
            recovery = no_panic("Recovery::dead_letter", || recovery.dead_letter(queue));
        }
        builder = no_panic("recover", || builder.recover(recovery));
    }
    no_panic("build", || builder.build(boxed_work as fn(u64) -> WorkFuture))
}

type WorkFuture = std::pin::Pin<Box<dyn Future<Output = Result<u64, String>> + Send>>;

fn boxed_work(n: u64) -> WorkFuture {
    Box::pin(work(n))
}

/// The first setting out of range, in the order `build` checks them.
fn first_bad(s: &Settings) -> Option<(&'static str, String)> {
    let range = |value: usize| !(1..=LIMIT).contains(&value);
    if range(s.workers) {
        return Some(("workers", format!("{:?}", s.workers)));
    }
    if range(s.batch) {
        return Some(("batch", format!("{:?}", s.batch)));
    }
    if range(s.queue) {
        return Some(("queue", format!("{:?}", s.queue)));
    }
    match s.timeout {
        Some(Duration::ZERO) => Some(("timeout", format!("{:?}", Duration::ZERO))),
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_fan_out_settings_are_refused_by_name_or_run_to_the_end(s in settings()) {
        match (build(&s), first_bad(&s)) {
            // 65,536 workers are 65,536 tasks per run: `edge_windows_and_limits_run`
            // runs that once; here it is built only.
            (Ok(_), None) if s.workers == LIMIT => {}
            (Ok(fan_out), None) => {
                // Items 0..6 on a paused clock; a hang would run into the timeout.
                let done = paused().block_on(async {
                    let batch = no_panic("process_batch", || fan_out.process_batch((0..6).collect()));
                    let results = tokio::time::timeout(Duration::from_secs(86_400 * 3_650), batch)
                        .await
                        .expect("process_batch hung");
                    prop_assert_eq!(results.len(), 6);
                    let stream = no_panic("try_process_stream", || {
                        fan_out.try_process_stream(futures::stream::iter(0..6))
                    });
                    let stream = stream.expect("a runtime is there");
                    let out = tokio::time::timeout(Duration::from_secs(86_400 * 3_650), stream.count())
                        .await
                        .expect("process_stream hung");
                    prop_assert!(out <= 6);
                    Ok(())
                });
                done?;
            }
            (Err(error), Some((field, value))) => {
                prop_assert_eq!(&*error.field, field, "{}", error);
                prop_assert_eq!(&error.value, &value);
                prop_assert!(
                    error.reason.starts_with("must be at least 1")
                        || error.reason == format!("must be at most {LIMIT}")
                        || error.reason == "must be longer than zero",
                    "{}", error
                );
            }
            (Ok(_), Some(bad)) => prop_assert!(false, "{bad:?} was accepted"),
            (Err(error), None) => prop_assert!(false, "refused: {error}"),
        }
    }

    #[test]
    fn a_fan_in_takes_any_priority_and_any_key(
        priorities in proptest::collection::vec(counts(), 1..6),
        removals in proptest::collection::vec((0_usize..8, any::<bool>()), 0..6),
        strategy in 0_u8..2,
    ) {
        let total = futures::executor::block_on(async {
            let mut fan_in = if strategy == 0 {
                no_panic("FanIn::with_strategy", || FanIn::with_strategy(RoundRobin::default()))
            } else {
                no_panic("FanIn::with_strategy", || FanIn::with_strategy(Priority::default()))
            };
            let handle = no_panic("FanIn::handle", || fan_in.handle());
            let mut keys: Vec<InputKey> = Vec::new();
            for (i, &priority) in priorities.iter().enumerate() {
                let items = futures::stream::iter([priority; 3]);
                keys.push(if i % 2 == 0 {
                    no_panic("FanIn::add_with_priority", || fan_in.add_with_priority(items, priority))
                } else {
                    no_panic("FanInHandle::add_with_priority", || handle.add_with_priority(items, priority))
                });
            }
            keys.push(no_panic("FanIn::add", || fan_in.add(futures::stream::iter([0_u32]))));
            keys.push(no_panic("FanInHandle::add", || handle.add(futures::stream::iter([1_u32]))));
            for &(index, direct) in &removals {
                let key = keys[index % keys.len()];
                if direct {
                    let _ = no_panic("FanIn::remove", || fan_in.remove(key));
                } else {
                    no_panic("FanInHandle::remove", || handle.remove(key));
                }
            }
            drop(handle);
            fan_in.count().await
        });
        prop_assert!(total <= priorities.len() * 3 + 2);
    }
}

#[test]
fn edge_windows_and_limits_run() {
    // The largest accepted settings together: the window is computed and
    // allocated lazily, and a run of a few items ends.
    let fan_out = FanOut::builder()
        .workers(LIMIT)
        .batch(LIMIT)
        .queue(LIMIT)
        .balance(Balance::LeastLoaded)
        .build(|n: u64| async move { Ok::<_, std::io::Error>(n) })
        .unwrap();
    let results = paused().block_on(fan_out.process_batch((0..4).collect()));
    assert!(results.iter().all(Result::is_ok));

    let fan_in = no_panic("FanIn::new", FanIn::<u64>::new);
    let fan_out = FanOut::builder()
        .batch(LIMIT)
        .queue(LIMIT)
        .build(|n: u64| async move { Ok::<_, std::io::Error>(n) })
        .unwrap();
    let pattern = no_panic("FanPattern::new", || FanPattern::new(fan_in, fan_out));
    let mut pattern = pattern;
    no_panic("FanPattern::fan_in", || pattern.fan_in().add(futures::stream::iter(0..3)));
    let out =
        paused().block_on(async { no_panic("FanPattern::run", || pattern.run()).count().await });
    assert_eq!(out, 3);

    // Outside a runtime: an error and the input back, no panic.
    let fan_out =
        FanOut::builder().build(|n: u64| async move { Ok::<_, std::io::Error>(n) }).unwrap();
    let rejected =
        no_panic("try_process_stream", || fan_out.try_process_stream(futures::stream::iter(0..3)));
    let Err(rejected) = rejected else { panic!("started without a runtime") };
    names(
        &FanOut::builder()
            .workers(0)
            .build(|n: u64| async move { Ok::<_, std::io::Error>(n) })
            .unwrap_err(),
        "workers",
        0_usize,
    );
    assert_eq!(futures::executor::block_on(rejected.into_input().count()), 3);
    let stream = no_panic("process_stream", || fan_out.process_stream(futures::stream::iter(0..3)));
    assert_eq!(futures::executor::block_on(stream.count()), 1, "one NoRuntime error");
}
