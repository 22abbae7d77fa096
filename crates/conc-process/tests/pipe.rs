//! Pipelines of real processes connected by OS pipes.

use std::time::Duration;

use conc_process::{ExitStatus, Pipe, Process, ProcessError, Signal};

#[tokio::test]
async fn data_flows_through_every_stage() {
    let output = Pipe::new()
        .pipe(Process::new("cat").input("b\nc\na\nb\n"))
        .pipe(Process::new("sort"))
        .pipe(Process::new("uniq").arg("-c"))
        .pipe(Process::new("wc").arg("-l"))
        .run()
        .await
        .unwrap();
    assert!(output.successful());
    assert_eq!(output.stdout_str().trim(), "3");
    assert_eq!(output.statuses(), vec![Some(ExitStatus::Code(0)); 4]);
}

#[tokio::test]
async fn stages_run_at_once_and_stream() {
    // 64 MiB pass through; nothing buffers them whole in between.
    let output = Pipe::new()
        .pipe(Process::new("head").args(["-c", "67108864", "/dev/zero"]))
        .pipe(Process::new("wc").arg("-c"))
        .run()
        .await
        .unwrap();
    assert_eq!(output.stdout_str().trim(), "67108864");
    // The first stage's stdout went to the pipe, not to a capture buffer.
    assert!(output.stages()[0].as_ref().unwrap().stdout().is_empty());
}

#[tokio::test]
async fn each_stage_reports_its_own_status_and_stderr() {
    let output = Pipe::new()
        .pipe(Process::shell("echo data; echo warn >&2; exit 2"))
        .pipe(Process::new("cat"))
        .run()
        .await
        .unwrap();
    assert!(!output.successful());
    assert_eq!(output.statuses(), [Some(ExitStatus::Code(2)), Some(ExitStatus::Code(0))]);
    assert_eq!(output.stages()[0].as_ref().unwrap().stderr_str(), "warn\n");
    assert_eq!(output.stdout_str(), "data\n");

    // A reader that stops early kills its writer with SIGPIPE, as in a shell.
    let output = Pipe::new()
        .pipe(Process::new("yes"))
        .pipe(Process::new("head").arg("-1"))
        .run()
        .await
        .unwrap();
    assert_eq!(output.stdout_str(), "y\n");
    assert_eq!(
        output.statuses(),
        [Some(ExitStatus::Signaled(Signal::PIPE)), Some(ExitStatus::Code(0))]
    );
}

#[tokio::test]
async fn a_pipeline_timeout_stops_every_stage() {
    let output = Pipe::new()
        .pipe(Process::shell("echo partial; exec sleep 60"))
        .pipe(Process::new("cat"))
        .timeout(Duration::from_millis(500))
        .run()
        .await
        .unwrap();
    assert!(!output.successful());
    assert!(matches!(output.stages()[0], Err(ProcessError::TimedOut { .. })));
    // cat saw the data, then end of file when its writer died.
    assert_eq!(output.stdout_str(), "partial\n");
}

#[tokio::test]
async fn bad_pipelines_are_refused() {
    let err = Pipe::new().run().await.unwrap_err();
    assert_eq!(err.config().map(|config| &*config.field), Some("stages"), "{err}");
    let err = Pipe::new()
        .pipe(Process::new("true"))
        .pipe(Process::new("cat").input("x"))
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.config().map(|config| &*config.field), Some("stage 1 input"), "{err}");
    let err = Pipe::new()
        .pipe(Process::new("true"))
        .pipe(Process::new("conc-no-such-program"))
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, ProcessError::NotFound { .. }), "{err}");
}

/// The pipe's timeout caps a stage's own, longer timeout.
#[tokio::test]
async fn the_pipe_timeout_caps_a_longer_stage_timeout() {
    let output = Pipe::new()
        .pipe(Process::new("sleep").arg("60").timeout(Duration::from_secs(3600)))
        .pipe(Process::new("cat"))
        .timeout(Duration::from_millis(300))
        .run()
        .await
        .unwrap();
    let Err(ProcessError::TimedOut { after, .. }) = &output.stages()[0] else {
        panic!("{:?}", output.stages()[0])
    };
    assert_eq!(*after, Duration::from_millis(300));
}
