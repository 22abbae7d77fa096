//! The fake runner: patterns, sequences, stray prevention, assertions; with
//! pools and pipelines.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use conc_process::{
    ExitStatus, FakeResult, FakeRunner, Pipe, Process, ProcessError, ProcessPool, ProcessRunner,
    Signal, Stream, SystemRunner, TimeoutKind,
};

static_assertions::assert_impl_all!(FakeRunner: Send, Sync, Clone);

/// Code under test: takes any runner.
async fn deploy(runner: &dyn ProcessRunner, target: &str) -> Result<String, ProcessError> {
    runner
        .run(Process::new("git").args(["pull", "--ff-only"]).current_dir("/srv/app"))
        .await?
        .check()?;
    let output =
        runner.run(Process::new("deploy").arg(target).env("STAGE", target)).await?.check()?;
    Ok(output.stdout_str().into_owned())
}

#[tokio::test]
async fn patterns_answer_and_runs_are_recorded() {
    let fake = FakeRunner::new()
        .on("git pull *", FakeResult::success())
        .on("deploy *", FakeResult::success().stdout("deployed\n"))
        .prevent_stray_processes();
    assert_eq!(deploy(&fake, "prod").await.unwrap(), "deployed\n");

    fake.assert_ran("git pull*");
    fake.assert_ran_times("deploy prod", 1);
    fake.assert_ran_times("*", 2);
    fake.assert_not_ran("rollback*");
    fake.assert_ran_with("deploy *", |run| {
        run.env == [("STAGE".to_owned(), Some("prod".to_owned()))]
    });
    fake.assert_ran_with("git *", |run| {
        run.current_dir.as_deref() == Some(std::path::Path::new("/srv/app"))
    });
    let runs = fake.runs();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].command_line, "git pull --ff-only");
}

#[tokio::test]
async fn failures_and_signals_are_faked_too() {
    let fake = FakeRunner::new()
        .on("git *", FakeResult::exit_code(128).stderr("fatal: not a git repository\n"))
        .prevent_stray_processes();
    let err = deploy(&fake, "prod").await.unwrap_err();
    let ProcessError::Failed { output } = err else { panic!("{err}") };
    assert_eq!(output.exit_code(), Some(128));
    assert_eq!(output.stderr_str(), "fatal: not a git repository\n");
    fake.assert_not_ran("deploy*");

    let fake = FakeRunner::new().on("*", FakeResult::signaled(Signal::TERM));
    let output = fake.run(Process::new("anything")).await.unwrap();
    assert_eq!(output.status(), ExitStatus::Signaled(Signal::TERM));
}

#[tokio::test]
async fn sequences_answer_in_turn_then_refuse() {
    let fake = FakeRunner::new()
        .on_sequence("flaky", [FakeResult::exit_code(1), FakeResult::success().stdout("ok")]);
    assert_eq!(fake.run(Process::new("flaky")).await.unwrap().exit_code(), Some(1));
    assert_eq!(fake.run(Process::new("flaky")).await.unwrap().stdout_str(), "ok");
    let err = fake.run(Process::new("flaky")).await.unwrap_err();
    assert!(matches!(&err, ProcessError::Fake { command, .. } if command == "flaky"), "{err}");
    assert!(err.to_string().contains("exhausted"));
    fake.assert_ran_times("flaky", 3);
}

#[tokio::test]
async fn strays_run_for_real_unless_prevented() {
    let fake = FakeRunner::new().on("git *", FakeResult::success());
    let output = fake.run(Process::new("echo").arg("real")).await.unwrap();
    assert_eq!(output.stdout_str(), "real\n");
    assert!(output.pid() > 0, "it really ran");

    let fake = fake.prevent_stray_processes();
    let err = fake.run(Process::new("rm").args(["-rf", "build"])).await.unwrap_err();
    assert!(
        matches!(&err, ProcessError::Fake { command, .. } if command == "rm -rf build"),
        "{err}"
    );
    fake.assert_ran("rm -rf build");
}

#[tokio::test]
async fn nothing_ran_is_checkable() {
    let fake = FakeRunner::new();
    fake.assert_nothing_ran();
    let caught = std::panic::catch_unwind(|| fake.assert_ran("git*"));
    assert!(caught.is_err(), "the assertion fails when nothing matched");
}

#[tokio::test]
#[should_panic(expected = "expected no runs")]
async fn assert_nothing_ran_fails_after_a_run() {
    let fake = FakeRunner::new().on("*", FakeResult::success());
    fake.run(Process::new("true")).await.unwrap();
    fake.assert_nothing_ran();
}

#[tokio::test]
async fn input_and_callbacks_see_the_fake() {
    let fake =
        FakeRunner::new().on("sort", FakeResult::success().stdout("a\nb\n").stderr("warn\n"));
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    fake.run(
        Process::new("sort")
            .input("b\na\n")
            .on_line(move |stream, line| sink.lock().unwrap().push((stream, line.to_owned()))),
    )
    .await
    .unwrap();
    fake.assert_ran_with("sort", |run| run.input.as_deref() == Some(b"b\na\n"));
    assert_eq!(
        *lines.lock().unwrap(),
        [
            (Stream::Stdout, "a".to_owned()),
            (Stream::Stdout, "b".to_owned()),
            (Stream::Stderr, "warn".to_owned())
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn fake_durations_honour_timeouts_on_a_paused_clock() {
    let fake = FakeRunner::new()
        .on("slow", FakeResult::success().stdout("partial").after(Duration::from_secs(3600)));
    let started = tokio::time::Instant::now();
    let err = fake.run(Process::new("slow").timeout(Duration::from_secs(60))).await.unwrap_err();
    let ProcessError::TimedOut { kind: TimeoutKind::Total, after, output } = err else {
        panic!("{err}")
    };
    assert_eq!(after, Duration::from_secs(60));
    assert_eq!(output.status(), ExitStatus::Signaled(Signal::KILL));
    assert_eq!(started.elapsed(), Duration::from_secs(60));

    let output = fake.run(Process::new("slow")).await.unwrap();
    assert_eq!(output.duration(), Duration::from_secs(3600));
}

#[tokio::test]
async fn pools_run_through_the_fake() {
    let fake = FakeRunner::new()
        .on("test unit", FakeResult::success())
        .on("test integration", FakeResult::exit_code(1))
        .prevent_stray_processes()
        .shared();
    let pool = ProcessPool::builder().concurrency(2).runner(fake.clone()).build().unwrap();
    let results = pool
        .run([
            ("unit", Process::new("test").arg("unit")),
            ("integration", Process::new("test").arg("integration")),
        ])
        .await
        .unwrap();
    assert_eq!(results.failed().collect::<Vec<_>>(), ["integration"]);
    fake.assert_ran_times("test *", 2);
}

#[tokio::test]
async fn pipelines_run_through_the_fake_stage_by_stage() {
    let fake = FakeRunner::new()
        .on("cat access.log", FakeResult::success().stdout("GET /\nPOST /login\nGET /\n"))
        .on("grep GET", FakeResult::success().stdout("GET /\nGET /\n"))
        .on("wc -l", FakeResult::success().stdout("2\n"))
        .prevent_stray_processes();
    let pipeline = Pipe::new()
        .pipe(Process::new("cat").arg("access.log"))
        .pipe(Process::new("grep").arg("GET"))
        .pipe(Process::new("wc").arg("-l"));
    let output = fake.run_pipe(pipeline).await.unwrap();
    assert!(output.successful());
    assert_eq!(output.stdout_str(), "2\n");
    fake.assert_ran_with("wc -l", |run| run.input.as_deref() == Some(b"GET /\nGET /\n"));

    // The system runner runs the same pipeline shape for real.
    let real = SystemRunner
        .run_pipe(
            Pipe::new()
                .pipe(Process::new("printf").arg("x\ny\n"))
                .pipe(Process::new("wc").arg("-l")),
        )
        .await
        .unwrap();
    assert_eq!(real.stdout_str().trim(), "2");
}

/// Patterns are tried in the order added: the first match answers.
#[tokio::test]
async fn the_first_matching_pattern_answers() {
    let fake = FakeRunner::new()
        .on("git *", FakeResult::success().stdout("general"))
        .on("git status", FakeResult::success().stdout("specific"))
        .prevent_stray_processes();
    let output = fake.run(Process::new("git").arg("status")).await.unwrap();
    assert_eq!(output.stdout_str(), "general");
}
