//! Bad input never panics, aborts or hangs: every public constructor and
//! builder setter of the crate, fed edge values (0, 1, the limits and one
//! past them, `u32::MAX`, `usize::MAX / 2`, `usize::MAX - 1`, `usize::MAX`,
//! `Duration::MAX`, `u64::MAX` seconds, empty names, names with NUL bytes,
//! repeated names), each call in `catch_unwind`. A pipeline is either
//! refused by `build` with a `ConfigError` naming the stage, the field, the
//! value and the limit, or accepted; accepted edges (the limits
//! themselves, `Duration::MAX` timeouts and delays, `u32::MAX` retries)
//! then run a few items to the end on a paused clock (so a hang that waits
//! shows as a timeout, not as a stuck test).
//!
//! Covered, 25 in all: `Pipeline::builder`; `PipelineBuilder::{stage, map,
//! blocking, filter, then, build}`; `Stage::{new, map, blocking, name,
//! concurrency, buffer, ordered, unordered, spawn, hand_off_batch, timeout,
//! on_error, retry, dead_letter}`; `DeadLetterQueue::new`;
//! `Pipeline::{process_batch, process_stream, try_process_stream}`.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use conc_core::backoff::Backoff;
use conc_core::config::ConfigError;
use conc_pipeline::{DeadLetterQueue, ErrorPolicy, Pipeline, Stage};
use futures::StreamExt;
use proptest::prelude::*;

const MAX_CONCURRENCY: usize = 65_536;
const MAX_BUFFER: usize = 1 << 20;
const MAX_HAND_OFF_BATCH: usize = 65_536;

/// Edge sizes, the small valid ones weighted up.
fn sizes() -> impl Strategy<Value = usize> {
    prop_oneof![
        1 => Just(0),
        4 => Just(1),
        4 => Just(2),
        1 => Just(MAX_CONCURRENCY),
        1 => Just(MAX_CONCURRENCY + 1),
        1 => Just(MAX_BUFFER),
        1 => Just(MAX_BUFFER + 1),
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

fn names() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => Just("parse".to_owned()),
        2 => Just("price".to_owned()),
        2 => Just("ship".to_owned()),
        2 => Just("bill".to_owned()),
        1 => Just(String::new()),
        1 => Just("\0".to_owned()),
        1 => Just("a\0b".to_owned()),
        1 => Just("é".repeat(10_000)),
    ]
}

/// Runs `call`, failing the test with `what` and the panic's message if it panics.
fn no_panic<T>(what: &str, call: impl FnOnce() -> T) -> T {
    match std::panic::catch_unwind(AssertUnwindSafe(call)) {
        Ok(value) => value,
        Err(panic) => panic!("{what} panicked: {}", conc_core::driver::panic_message(&*panic)),
    }
}

#[derive(Debug, Clone)]
struct StageSettings {
    kind: u8,
    name: String,
    concurrency: usize,
    buffer: usize,
    ordered: bool,
    spawn: bool,
    hand_off_batch: Option<usize>,
    timeout: Option<Duration>,
    skip: bool,
    retry: Option<(Duration, Option<u32>)>,
    dead_letters: Option<usize>,
}

fn stage_settings() -> impl Strategy<Value = StageSettings> {
    (
        (0_u8..3, names(), sizes(), sizes()),
        (any::<bool>(), any::<bool>(), proptest::option::of(sizes())),
        (proptest::option::of(durations()), any::<bool>()),
        (
            proptest::option::of((durations(), proptest::option::of(counts()))),
            proptest::option::of(sizes()),
        ),
    )
        .prop_map(
            |(
                (kind, name, concurrency, buffer),
                (ordered, spawn, hand_off_batch),
                (timeout, skip),
                (retry, dead_letters),
            )| StageSettings {
                kind,
                name,
                concurrency,
                buffer,
                ordered,
                spawn,
                hand_off_batch,
                timeout,
                skip,
                retry,
                dead_letters,
            },
        )
}

/// Calls made to the processors, by every case.
static CALLS: AtomicU64 = AtomicU64::new(0);

/// Odd items fail every other call, so a retried item soon succeeds.
fn fails(n: u64) -> bool {
    n % 2 == 1 && CALLS.fetch_add(1, Relaxed).is_multiple_of(2)
}

fn stage(s: &StageSettings) -> Stage<u64, u64> {
    let name = s.name.clone();
    let mut stage = match s.kind {
        0 => no_panic("Stage::new", || {
            Stage::new(name, |n: u64| async move {
                tokio::task::yield_now().await;
                if fails(n) { Err("odd") } else { Ok(n) }
            })
        }),
        1 => no_panic("Stage::map", || Stage::map(name, |n: u64| async move { n })),
        _ => no_panic("Stage::blocking", || {
            Stage::blocking(name, |n: u64| if fails(n) { Err("odd") } else { Ok(n) })
        }),
    };
    assert_eq!(no_panic("Stage::name", || stage.name().to_owned()), s.name);
    stage = no_panic("concurrency", || stage.concurrency(s.concurrency));
    stage = no_panic("buffer", || stage.buffer(s.buffer));
    stage = if s.ordered {
        no_panic("ordered", || stage.ordered())
    } else {
        no_panic("unordered", || stage.unordered())
    };
    if s.spawn {
        stage = no_panic("spawn", || stage.spawn());
    }
    if let Some(batch) = s.hand_off_batch {
        stage = no_panic("hand_off_batch", || stage.hand_off_batch(batch));
    }
    if let Some(timeout) = s.timeout {
        stage = no_panic("timeout", || stage.timeout(timeout));
    }
    let policy = if s.skip { ErrorPolicy::Skip } else { ErrorPolicy::Fail };
    stage = no_panic("on_error", || stage.on_error(policy));
    if let Some((delay, retries)) = s.retry {
        let mut backoff = Backoff::fixed(delay);
        if let Some(retries) = retries {
            backoff = backoff.max_retries(retries);
        }
        if let Ok(backoff) = backoff.build() {
            stage = no_panic("retry", || stage.retry(backoff));
        }
    }
    if let Some(capacity) = s.dead_letters {
        let queue = no_panic("DeadLetterQueue::new", || DeadLetterQueue::new(capacity));
        stage = no_panic("dead_letter", || stage.dead_letter(queue));
    }
    stage
}

/// The first setting of the stage at `position` that `build` refuses, as
/// (field, value).
fn first_bad(s: &StageSettings, position: usize) -> Option<(String, String)> {
    let part = format!("stage `{}`", s.name);
    if s.name.is_empty() || s.name.contains('\0') {
        return Some((format!("stage {position} name"), format!("{:?}", s.name)));
    }
    if !(1..=MAX_CONCURRENCY).contains(&s.concurrency) {
        return Some((format!("{part} concurrency"), format!("{:?}", s.concurrency)));
    }
    if s.buffer > MAX_BUFFER {
        return Some((format!("{part} buffer"), format!("{:?}", s.buffer)));
    }
    if let Some(batch) = s.hand_off_batch.filter(|b| !(1..=MAX_HAND_OFF_BATCH).contains(b)) {
        return Some((format!("{part} hand_off_batch"), format!("{batch:?}")));
    }
    match s.timeout {
        Some(Duration::ZERO) => Some((format!("{part} timeout"), format!("{:?}", Duration::ZERO))),
        _ => None,
    }
}

fn paused() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap()
}

/// Builds the pipeline of `first`, a filter, and a shorthand stage (`stage`,
/// `map` or `blocking`, by `shorthand`) with `second`'s name, concurrency
/// and buffer.
fn build(
    first: &StageSettings,
    second: &StageSettings,
    shorthand: u8,
) -> Result<Pipeline<u64, u64>, ConfigError> {
    let builder = no_panic("Pipeline::builder", Pipeline::builder);
    let builder = no_panic("then", || builder.then(stage(first)));
    let builder = no_panic("filter", || builder.filter(|n| n % 5 != 4));
    let name = second.name.clone();
    let (concurrency, buffer) = (second.concurrency, second.buffer);
    let builder = match shorthand {
        0 => {
            no_panic("stage", || {
                builder.stage(name, concurrency, buffer, |n: u64| async move {
                    Ok::<_, std::io::Error>(n)
                })
            })
        }
        1 => no_panic("map", || builder.map(name, concurrency, buffer, |n: u64| async move { n })),
        _ => no_panic("blocking", || {
            builder.blocking(name, concurrency, buffer, |n: u64| Ok::<_, std::io::Error>(n))
        }),
    };
    no_panic("build", || builder.build())
}

/// `s` with every setting `build` would refuse replaced by the nearest
/// accepted edge, and named `name`: so the accepted edges are run too.
fn accepted(s: &StageSettings, name: &str) -> StageSettings {
    let within = |value: usize, max: usize| value.clamp(1, max);
    StageSettings {
        name: name.to_owned(),
        concurrency: within(s.concurrency, MAX_CONCURRENCY),
        buffer: s.buffer.min(MAX_BUFFER),
        hand_off_batch: s.hand_off_batch.map(|b| within(b, MAX_HAND_OFF_BATCH)),
        timeout: s.timeout.filter(|t| !t.is_zero()),
        ..s.clone()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_bad_setting_is_refused_by_stage_field_value_and_limit(
        first in stage_settings(),
        second in stage_settings(),
        shorthand in 0_u8..3,
    ) {
        let built = build(&first, &second, shorthand);
        // The shorthand stage has only a name, a concurrency and a buffer.
        let second_only = StageSettings { hand_off_batch: None, timeout: None, ..second.clone() };
        let bad = first_bad(&first, 1).or_else(|| first_bad(&second_only, 2)).or_else(|| {
            (first.name == second.name).then(|| ("stage 2 name".to_owned(), format!("{:?}", second.name)))
        });
        match (built, bad) {
            (Ok(_), None) => {}
            (Err(error), Some((field, value))) => check_refusal(&error, &field, &value)?,
            (Ok(_), Some(bad)) => prop_assert!(false, "{bad:?} was accepted"),
            (Err(error), None) => prop_assert!(false, "refused: {error}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_accepted_settings_run_to_the_end(
        first in stage_settings(),
        second in stage_settings(),
        shorthand in 0_u8..3,
    ) {
        let (first, second) = (accepted(&first, "first"), accepted(&second, "second"));
        let pipeline = build(&first, &second, shorthand).expect("accepted settings");
        // Items 0..6 on a paused clock; a hang that waits runs into the timeout.
        let done: Result<(), TestCaseError> = paused().block_on(async {
            let forever = Duration::from_secs(86_400 * 3_650);
            let batch = no_panic("process_batch", || pipeline.process_batch((0..6).collect()));
            let outcomes = tokio::time::timeout(forever, batch).await.expect("process_batch hung");
            prop_assert_eq!(outcomes.len(), 6);
            let stream = no_panic("try_process_stream", || {
                pipeline.try_process_stream(futures::stream::iter(0..6))
            });
            let out = tokio::time::timeout(forever, stream.expect("a runtime is there").count())
                .await
                .expect("process_stream hung");
            prop_assert!(out <= 6);
            Ok(())
        });
        done?;
    }
}

fn check_refusal(error: &ConfigError, field: &str, value: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(&*error.field, field, "{}", error);
    prop_assert_eq!(&error.value, value);
    let limits = [
        "must be at least 1".to_owned(),
        format!("must be at most {MAX_CONCURRENCY}"),
        format!("must be at most {MAX_BUFFER}"),
        "must be longer than zero".to_owned(),
        "must not be empty".to_owned(),
        "must not contain a NUL byte".to_owned(),
        "must be unique: metrics and errors tell stages apart by name".to_owned(),
    ];
    prop_assert!(limits.contains(&error.reason.to_string()), "{}", error);
    Ok(())
}

#[test]
fn the_largest_settings_run() {
    let pipeline = Pipeline::builder()
        .then(
            Stage::map("wide", |n: u64| async move { n })
                .concurrency(MAX_CONCURRENCY)
                .buffer(MAX_BUFFER)
                .spawn()
                .hand_off_batch(MAX_HAND_OFF_BATCH)
                .timeout(Duration::MAX),
        )
        .then(
            Stage::map("wide-unordered", |n: u64| async move { n })
                .concurrency(MAX_CONCURRENCY)
                .unordered()
                .spawn()
                .hand_off_batch(1)
                .buffer(MAX_BUFFER),
        )
        .build()
        .unwrap();
    let out = paused().block_on(async {
        let stream =
            no_panic("process_stream", || pipeline.process_stream(futures::stream::iter(0..1_000)));
        stream.map(Result::unwrap).count().await
    });
    assert_eq!(out, 1_000);
}
