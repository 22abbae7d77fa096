//! Bad input never panics, aborts or hangs: every public constructor and
//! builder setter of the crate, fed edge values (0, 1, MAX, MAX − 1, MAX / 2,
//! `u32::MAX`, `Duration::MAX`, `u64::MAX` seconds, names, arguments and
//! environment with NUL bytes), then built and run. Each call runs inside
//! `catch_unwind` under a time limit, and a panic hook counts panics on any
//! thread or task (a panic in a driver task would otherwise only show as a
//! cancelled run). A refused value is fine; a panic, an abort or a hang is not.
//!
//! Covered (67 constructors and setters, plus the calls that use what they
//! built): `Process::{new, shell, arg, args, current_dir, env, envs,
//! env_remove, env_clear, input, input_reader, timeout, idle_timeout, quiet,
//! tty, on_output, on_line, drain_grace, containment, limit_cpu, limit_memory,
//! limit_open_files, parent_death_signal}` then `run`, `start`, `signal`,
//! `stop`; `Pipe::{new, pipe, timeout}` then `run`; `ProcessPool::builder`,
//! `ProcessPoolBuilder::{name, concurrency, fail_fast, on_event, runner,
//! build}` then `run`, `stop`, `start`; `Supervisor::builder`,
//! `SupervisorBuilder::{name, restart, backoff, intensity, reset_after,
//! shutdown_grace, event_capacity, clock, build}` then `supervise`,
//! `metrics`, `reset_metrics`, `stop`, `start`, `shutdown`;
//! `ProcessDriver::builder`, `ProcessDriverBuilder::{program, concurrency,
//! timeout, build}` then `run`; `Handlers::{new, handler}`, `driver::task`,
//! `driver::decode`; `FakeResult::{success, exit_code, signaled, stdout,
//! stderr, after}`, `FakeRunner::{new, on, on_sequence,
//! prevent_stray_processes}` then `run`, `run_pipe`; `ProcessOutput::{new,
//! with_stdout, with_stderr, with_duration}`; `Signal::from_raw`.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use conc_core::backoff::Backoff;
use conc_core::lifecycle::Lifecycle;
use conc_core::metrics::MetricsSource;
use conc_core::time::ManualClock;
use conc_process::driver::{self, Handlers, ProcessDriver};
use conc_process::{
    Containment, ExitStatus, FakeResult, FakeRunner, Pipe, Process, ProcessError, ProcessOutput,
    ProcessPool, ProcessRunner, RestartPolicy, Signal, Supervisor,
};
use proptest::prelude::*;
use tokio::runtime::Runtime;

/// How long one call may take before it counts as a hang.
const LIMIT: Duration = Duration::from_secs(20);

static PANICS: AtomicUsize = AtomicUsize::new(0);
/// The properties run one at a time, so a panic is charged to the right one.
static SERIAL: Mutex<()> = Mutex::new(());

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // A failed property panics in this file when it reports; that is
            // the test's own panic, not the crate's.
            if info.location().is_none_or(|at| !at.file().ends_with("edge_values.rs")) {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            report(info);
        }));
    });
}

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
    })
}

/// The limit on a paused clock, which jumps to the next timer when idle: a
/// fake that takes "forever" (tokio's far future is 30 years) still ends
/// before it, and a future stuck on nothing at all meets it at once.
const PAUSED_LIMIT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Runs `work` on `runtime` within [`LIMIT`], inside `catch_unwind`; fails
/// on a panic (here, or on any other thread meanwhile) or a hang.
fn survive<F: Future>(
    runtime: &Runtime,
    what: &str,
    work: impl FnOnce() -> F,
) -> Result<F::Output, TestCaseError> {
    survive_within(runtime, LIMIT, what, work)
}

fn survive_within<F: Future>(
    runtime: &Runtime,
    limit: Duration,
    what: &str,
    work: impl FnOnce() -> F,
) -> Result<F::Output, TestCaseError> {
    let before = PANICS.load(Ordering::SeqCst);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(async { tokio::time::timeout(limit, work()).await })
    }));
    let after = PANICS.load(Ordering::SeqCst);
    match outcome {
        Err(_) => Err(TestCaseError::fail(format!("{what}: panicked"))),
        Ok(_) if after != before => Err(TestCaseError::fail(format!("{what}: a task panicked"))),
        Ok(Err(_)) => Err(TestCaseError::fail(format!("{what}: still running after {limit:?}"))),
        Ok(Ok(output)) => Ok(output),
    }
}

/// Runs a synchronous call inside `catch_unwind`.
fn survive_sync<T>(what: &str, work: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    let before = PANICS.load(Ordering::SeqCst);
    let outcome = catch_unwind(AssertUnwindSafe(work));
    if outcome.is_err() || PANICS.load(Ordering::SeqCst) != before {
        return Err(TestCaseError::fail(format!("{what}: panicked")));
    }
    outcome.map_err(|_| TestCaseError::fail(format!("{what}: panicked")))
}

fn durations() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::from_nanos(1)),
        Just(Duration::from_millis(1)),
        Just(Duration::from_secs(1)),
        Just(Duration::MAX),
        Just(Duration::MAX.saturating_sub(Duration::from_nanos(1))),
        Just(Duration::MAX / 2),
        Just(Duration::from_secs(u64::MAX)),
        Just(Duration::from_secs(u64::from(u32::MAX))),
        Just(Duration::from_nanos(u64::MAX)),
        any::<u64>().prop_map(Duration::from_nanos),
    ]
}

fn usizes() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(2),
        Just(usize::MAX),
        Just(usize::MAX - 1),
        Just(usize::MAX / 2),
        Just(u32::MAX as usize),
        Just(65_536),
        Just(65_537),
        any::<usize>(),
    ]
}

fn u32s() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(u32::MAX),
        Just(u32::MAX - 1),
        Just(u32::MAX / 2),
        any::<u32>()
    ]
}

fn u64s() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        Just(u64::MAX / 2),
        Just(u64::from(u32::MAX)),
        any::<u64>(),
    ]
}

fn i32s() -> impl Strategy<Value = i32> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(-1),
        Just(i32::MIN),
        Just(i32::MAX),
        Just(64),
        Just(65),
        any::<i32>()
    ]
}

/// Names, arguments, keys and values: empty, NUL bytes, `=`, long, odd.
fn texts() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("a".to_owned()),
        Just("a\0b".to_owned()),
        Just("\0".to_owned()),
        Just("=".to_owned()),
        Just("a=b".to_owned()),
        Just("*".to_owned()),
        Just(" ".to_owned()),
        Just("é\u{FFFD}".to_owned()),
        Just("x".repeat(5_000)),
        "[a-z\0=* ]{0,8}",
    ]
}

/// Mostly a plain word, sometimes an edge text: so that most cases get past
/// the checks of one setting to exercise the next ones and the spawn.
fn mostly_plain() -> impl Strategy<Value = String> {
    prop_oneof![4 => "[A-Z][A-Z_]{0,6}", 1 => texts()]
}

/// A program that runs fast when it runs at all, or an odd one.
fn programs() -> impl Strategy<Value = String> {
    prop_oneof![3 => Just("true".to_owned()), 1 => Just("cat".to_owned()), 1 => texts()]
}

#[derive(Debug, Clone)]
#[allow(clippy::struct_excessive_bools, reason = "one field per setter, as a strategy draws them")]
struct ProcessSettings {
    shell: bool,
    program: String,
    arg: String,
    dir: Option<String>,
    key: String,
    value: String,
    remove: String,
    clear: bool,
    input: Option<String>,
    reader: bool,
    timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    drain_grace: Duration,
    quiet: bool,
    tty: bool,
    callbacks: bool,
    grouped: bool,
    cpu: Option<Duration>,
    memory: Option<u64>,
    files: Option<u64>,
    death: Option<i32>,
}

fn process_settings() -> impl Strategy<Value = ProcessSettings> {
    let os = (
        (prop::bool::weighted(0.2), programs()),
        mostly_plain(),
        prop::option::weighted(0.2, prop_oneof![Just("/tmp".to_owned()), texts()]),
        mostly_plain(),
        mostly_plain(),
        mostly_plain(),
        any::<bool>(),
        prop::option::weighted(0.3, texts()),
        any::<bool>(),
    );
    let time = (
        prop::option::weighted(0.3, durations()),
        prop::option::weighted(0.3, durations()),
        durations(),
        any::<bool>(),
        prop::bool::weighted(0.1),
        any::<bool>(),
        any::<bool>(),
    );
    let limits = (
        prop::option::weighted(0.15, durations()),
        prop::option::weighted(0.15, u64s()),
        prop::option::weighted(0.15, u64s()),
        prop::option::weighted(0.15, i32s()),
    );
    (os, time, limits).prop_map(
        |(
            ((shell, program), arg, dir, key, value, remove, clear, input, reader),
            (timeout, idle_timeout, drain_grace, quiet, tty, callbacks, grouped),
            (cpu, memory, files, death),
        )| ProcessSettings {
            shell,
            program: if tty && program == "cat" { "true".to_owned() } else { program },
            arg,
            dir,
            key,
            value,
            remove,
            clear,
            input,
            reader,
            timeout,
            idle_timeout,
            drain_grace,
            quiet,
            tty,
            callbacks,
            grouped,
            cpu,
            memory,
            files,
            death,
        },
    )
}

fn process(settings: &ProcessSettings) -> Process {
    let s = settings;
    let mut process = if s.shell {
        Process::shell(&s.arg)
    } else {
        Process::new(&s.program).arg(&s.arg).args([&s.arg, &s.value])
    };
    if let Some(dir) = &s.dir {
        process = process.current_dir(dir);
    }
    process = process.env(&s.key, &s.value).envs([(&s.value, &s.key)]).env_remove(&s.remove);
    if s.clear {
        process = process.env_clear();
    }
    if let Some(input) = &s.input {
        process = if s.reader {
            process.input_reader(std::io::Cursor::new(input.clone().into_bytes()))
        } else {
            process.input(input.as_bytes())
        };
    }
    if let Some(timeout) = s.timeout {
        process = process.timeout(timeout);
    }
    if let Some(timeout) = s.idle_timeout {
        process = process.idle_timeout(timeout);
    }
    process = process.drain_grace(s.drain_grace).tty(s.tty);
    if s.quiet {
        process = process.quiet();
    }
    if s.callbacks {
        process = process.on_output(|_, _| {}).on_line(|_, _| {});
    }
    if !s.grouped {
        process = process.containment(Containment::None);
    }
    if let Some(cpu) = s.cpu {
        process = process.limit_cpu(cpu);
    }
    if let Some(bytes) = s.memory {
        process = process.limit_memory(bytes);
    }
    if let Some(files) = s.files {
        process = process.limit_open_files(files);
    }
    if let Some(signal) = s.death {
        process = process.parent_death_signal(Signal::from_raw(signal));
    }
    process
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn processes_run_or_are_refused(
        settings in process_settings(),
        signal in i32s(),
        grace in durations(),
    ) {
        count_panics();
        let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let rt = runtime();
        let built = survive_sync("Process setters", || process(&settings))?;
        let result = survive(rt, "Process::run", || built.run())?;
        let s = &settings;
        // `env_clear` drops the removals made before it, NUL or not.
        let removed = (!s.clear).then_some(&s.remove);
        let nul = [&s.program, &s.arg, &s.key, &s.value]
            .into_iter()
            .chain(removed)
            .chain(&s.dir)
            .any(|text| text.contains('\0'));
        let max_signal = if cfg!(target_os = "linux") { 64 } else { 31 };
        let no_signal = s.death.is_some_and(|number| !(1..=max_signal).contains(&number));
        if (nul && !s.shell) || no_signal {
            prop_assert!(
                matches!(result, Err(ProcessError::Config(_))),
                "a NUL byte or a number that is no signal is refused as a setting: {result:?}"
            );
        }
        let built = process(&settings);
        let _ = survive(rt, "Process::start, signal, stop", || async move {
            let handle = built.start().await?;
            let _ = handle.signal(Signal::from_raw(signal)).await;
            handle.stop(grace).await
        })?;
    }

    #[test]
    fn pipes_run_or_are_refused(
        stages in prop::collection::vec(process_settings(), 0..3),
        timeout in prop::option::of(durations()),
    ) {
        count_panics();
        let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let mut pipe = Pipe::new();
        for stage in &stages {
            pipe = pipe.pipe(process(stage));
        }
        if let Some(timeout) = timeout {
            pipe = pipe.timeout(timeout);
        }
        let _ = survive(runtime(), "Pipe::run", || pipe.run())?;
    }

    #[test]
    fn pools_build_run_and_stop(
        name in texts(),
        concurrency in usizes(),
        fail_fast in any::<bool>(),
        jobs in prop::collection::vec((texts(), programs()), 0..4),
        deadline in durations(),
    ) {
        count_panics();
        let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let built = survive_sync("ProcessPoolBuilder", || {
            ProcessPool::builder()
                .name(name)
                .concurrency(concurrency)
                .fail_fast(fail_fast)
                .on_event(|_| {})
                .runner(Arc::new(conc_process::SystemRunner))
                .build()
        })?;
        let Ok(pool) = built else { return Ok(()) };
        let jobs: Vec<(String, Process)> =
            jobs.into_iter().map(|(name, program)| (name, Process::new(program))).collect();
        let _ = survive(runtime(), "ProcessPool::run", || pool.run(jobs))?;
        let deadline = Instant::now().checked_add(deadline).unwrap_or_else(Instant::now);
        survive(runtime(), "ProcessPool stop and start", || async {
            pool.stop(deadline).await.unwrap();
            pool.start().await.unwrap();
        })?;
    }

    #[test]
    fn supervisors_build_supervise_and_stop(
        name in texts(),
        child in texts(),
        policy in prop_oneof![Just(RestartPolicy::Never), Just(RestartPolicy::OnFailure), Just(RestartPolicy::Always)],
        delay in durations(),
        max_restarts in u32s(),
        period in durations(),
        reset_after in durations(),
        grace in durations(),
        capacity in usizes(),
        program in programs(),
        deadline in durations(),
    ) {
        count_panics();
        let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let built = survive_sync("SupervisorBuilder", || {
            let mut builder = Supervisor::builder()
                .name(name)
                .restart(policy)
                .intensity(max_restarts, period)
                .reset_after(reset_after)
                .shutdown_grace(grace)
                .event_capacity(capacity)
                .clock(ManualClock::new());
            if let Ok(backoff) = Backoff::fixed(delay).build() {
                builder = builder.backoff(backoff);
            }
            builder.build()
        })?;
        if capacity == 0 || capacity > 65_536 {
            prop_assert!(
                matches!(&built, Err(err) if err.field == "event_capacity" || err.field == "name" || err.field == "max_restarts" || err.field == "period"),
                "{built:?}"
            );
        }
        let Ok(supervisor) = built else { return Ok(()) };
        let deadline = Instant::now().checked_add(deadline).unwrap_or_else(Instant::now);
        survive(runtime(), "Supervisor", || async move {
            let _events = supervisor.events();
            // `true` exits at once, so even an endless grace ends.
            let _ = supervisor.supervise(child, move || Process::new(&program).quiet());
            let _ = supervisor.metrics();
            supervisor.reset_metrics();
            supervisor.stop(deadline).await.unwrap();
            supervisor.start().await.unwrap();
            supervisor.shutdown().await;
        })?;
    }

    #[test]
    fn drivers_build_and_run(
        program in prop::option::of(programs()),
        concurrency in usizes(),
        timeout in prop::option::of(durations()),
        handler in texts(),
        input in u64s(),
        output in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        count_panics();
        let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let runs = program.is_some();
        let built = survive_sync("ProcessDriverBuilder", || {
            let mut builder = ProcessDriver::builder().concurrency(concurrency);
            if let Some(program) = &program {
                builder = builder.program(program);
            }
            if let Some(timeout) = timeout {
                builder = builder.timeout(timeout);
            }
            builder.build()
        })?;
        let task = survive_sync("Handlers, task, decode", || {
            let handlers = Handlers::new().handler(handler.clone(), |n: u64| Ok::<_, String>(n));
            let _ = handlers.names().count();
            let _ = driver::decode::<u64>(Box::new(output));
            driver::task(&handler, &input)
        })?;
        if program.as_deref().is_some_and(|program| program.is_empty() || program.contains('\0')) {
            prop_assert!(matches!(&built, Err(ProcessError::Config(_))), "{built:?}");
        }
        let (Ok(driver), Ok(task)) = (built, task) else { return Ok(()) };
        // Without a program the driver re-executes this test binary, which
        // has no handlers: run only drivers given a program.
        if !runs {
            return Ok(());
        }
        survive(runtime(), "ProcessDriver::run", || {
            conc_core::driver::Driver::run(&driver, vec![task])
        })?;
    }

    #[test]
    fn fakes_answer_or_refuse(
        code in i32s(),
        signal in i32s(),
        stdout in texts(),
        after in durations(),
        pattern in texts(),
        program in texts(),
        timeout in prop::option::of(durations()),
        prevent in any::<bool>(),
    ) {
        count_panics();
        let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let fake = survive_sync("FakeResult, FakeRunner", || {
            let answer = FakeResult::exit_code(code).stdout(stdout.clone()).stderr(stdout).after(after);
            let mut fake = FakeRunner::new()
                .on(pattern.clone(), answer)
                .on_sequence(pattern, [FakeResult::success(), FakeResult::signaled(Signal::from_raw(signal))]);
            if prevent {
                fake = fake.prevent_stray_processes();
            }
            fake
        })?;
        let make = || {
            let process = Process::new(&program).on_line(|_, _| {});
            match timeout {
                Some(timeout) => process.timeout(timeout),
                None => process,
            }
        };
        // A fake's duration passes on tokio's clock: paused, it never hangs.
        let paused = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        let _ = survive_within(&paused, PAUSED_LIMIT, "FakeRunner::run", || fake.run(make()))?;
        let _ = survive_within(&paused, PAUSED_LIMIT, "FakeRunner::run_pipe", || {
            fake.run_pipe(Pipe::new().pipe(make()).pipe(make()))
        })?;
        let _ = (fake.runs(), fake.count(&program));
    }

    #[test]
    fn values_are_made_and_shown(
        program in texts(),
        code in i32s(),
        signal in i32s(),
        duration in durations(),
        bytes in prop::collection::vec(any::<u8>(), 0..32),
    ) {
        count_panics();
        let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        survive_sync("ProcessOutput, ExitStatus, Signal", || {
            let signal = Signal::from_raw(signal);
            let _ = (signal.name(), signal.as_raw(), signal.to_string(), format!("{signal:?}"));
            for status in [ExitStatus::Code(code), ExitStatus::Signaled(signal)] {
                let output = ProcessOutput::new(program.clone(), status)
                    .with_stdout(bytes.clone())
                    .with_stderr(bytes.clone())
                    .with_duration(duration);
                let _ = (status.to_string(), output.stdout_str(), format!("{output:?}"));
                if let Err(err) = output.check() {
                    let _ = err.to_string();
                }
            }
        })?;
    }
}
