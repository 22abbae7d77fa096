//! The process-management pitfalls of the research notes, each with real processes.

mod common;

use std::time::Duration;

use common::{alive, eventually, exists, kill};
use conc_process::{Containment, ExitStatus, Process, ProcessError, Signal, TimeoutKind};

const MIB: usize = 1024 * 1024;
const LIMIT: Duration = Duration::from_secs(20);

/// Pitfall 1: a child filling both pipes while we feed its input never deadlocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mib_on_both_pipes_and_input_without_deadlock() {
    let output = Process::shell("head -c 1048576 /dev/zero; head -c 1048576 /dev/zero >&2")
        .run()
        .await
        .unwrap();
    assert!(output.successful());
    assert_eq!(output.stdout().len(), MIB);
    assert_eq!(output.stderr().len(), MIB);

    // cat echoes its input: the input pipe and the output pipe are full at once.
    let input: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8).collect();
    let output = Process::new("cat").input(input.clone()).run().await.unwrap();
    assert_eq!(output.stdout(), &input[..]);

    // Both streams interleaved by the child itself.
    let output = Process::shell(
        "i=0; while [ $i -lt 2000 ]; do echo out-$i; echo err-$i >&2; i=$((i+1)); done",
    )
    .run()
    .await
    .unwrap();
    assert_eq!(output.stdout_str().lines().count(), 2000);
    assert_eq!(output.stderr_str().lines().count(), 2000);
}

/// Pitfall 2: a child that exits without reading its input is not an error.
#[tokio::test]
async fn early_exit_with_unread_input_is_not_an_error() {
    let big = vec![b'x'; 8 * MIB];
    let output = Process::new("head").args(["-c", "10"]).input(big.clone()).run().await.unwrap();
    assert!(output.successful(), "{output:?}");
    assert_eq!(output.stdout(), b"xxxxxxxxxx");

    let output = Process::new("true").input(big).run().await.unwrap();
    assert!(output.successful());
}

/// Pitfall 8: the child gets the default SIGPIPE disposition back.
#[tokio::test]
async fn broken_pipe_inside_the_child_is_quiet() {
    let output = Process::shell("yes | head -1").run().await.unwrap();
    assert!(output.successful());
    assert_eq!(output.stdout_str(), "y\n");
    assert_eq!(output.stderr_str(), "");
}

/// Pitfall 3: a grandchild that keeps the output pipe open does not hang the
/// run; the result says so.
#[tokio::test]
async fn grandchild_holding_the_pipe_does_not_hang_the_run() {
    let output = Process::shell("sleep 60 & echo $!")
        .drain_grace(Duration::from_millis(300))
        .run()
        .await
        .unwrap();
    let grandchild: u32 = output.stdout_str().trim().parse().unwrap();
    assert!(output.successful());
    assert!(output.output_held_open(), "the grandchild holds stdout");
    assert!(alive(grandchild), "an ordinary exit leaves descendants alone");
    kill(grandchild);

    // Without a grandchild the pipes close with the child.
    let output = Process::new("echo").arg("hi").run().await.unwrap();
    assert!(!output.output_held_open());
}

/// Pitfall 4: a timeout kills the whole process group, grandchildren included;
/// with containment off the same grandchild survives (so the check can fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_kills_grandchildren() {
    let script = "sleep 60 & echo $!; wait";
    let err = Process::shell(script).timeout(Duration::from_secs(1)).run().await.unwrap_err();
    let ProcessError::TimedOut { kind: TimeoutKind::Total, output, .. } = err else {
        panic!("{err}")
    };
    let grandchild: u32 = output.stdout_str().trim().parse().unwrap();
    assert!(
        eventually(LIMIT, || !alive(grandchild)).await,
        "grandchild {grandchild} survived the timeout"
    );
    assert!(!output.output_held_open());

    let err = Process::shell(script)
        .timeout(Duration::from_secs(1))
        .containment(Containment::None)
        .drain_grace(Duration::from_millis(100))
        .run()
        .await
        .unwrap_err();
    let ProcessError::TimedOut { output, .. } = err else { panic!("{err}") };
    let grandchild: u32 = output.stdout_str().trim().parse().unwrap();
    assert!(alive(grandchild), "without a process group the grandchild escapes");
    assert!(output.output_held_open());
    kill(grandchild);
}

/// Pitfall 6: no zombies, whether handles are waited for or dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zombies_are_reaped() {
    let mut pids = Vec::new();
    for _ in 0..20 {
        let handle = Process::new("sleep").arg("60").start().await.unwrap();
        pids.push(handle.pid());
        drop(handle);
    }
    assert!(
        eventually(LIMIT, || pids.iter().all(|&pid| !exists(pid))).await,
        "dropped children left zombies"
    );

    for _ in 0..20 {
        let output = Process::new("true").run().await.unwrap();
        assert!(!exists(output.pid()), "a finished run left a zombie");
    }
}

/// Pitfall 9: a timeout fires although nobody polls the handle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpolled_timeout_fires() {
    let handle =
        Process::new("sleep").arg("60").timeout(Duration::from_millis(100)).start().await.unwrap();
    let pid = handle.pid();
    assert!(eventually(LIMIT, || !exists(pid)).await, "nobody polled, and the process lived on");
    assert!(!handle.is_running());
    let err = handle.wait().await.unwrap_err();
    assert!(matches!(err, ProcessError::TimedOut { kind: TimeoutKind::Total, .. }), "{err}");
}

/// Pitfall 11: the timeout error carries everything read before the kill.
#[tokio::test]
async fn timeout_keeps_partial_output() {
    let err = Process::shell(
        "for i in 1 2 3 4 5 6 7 8 9 10; do echo line $i; done; echo oops >&2; sleep 60",
    )
    .timeout(Duration::from_secs(1))
    .run()
    .await
    .unwrap_err();
    let ProcessError::TimedOut { kind, after, output } = err else { panic!("{err}") };
    assert_eq!(kind, TimeoutKind::Total);
    assert_eq!(after, Duration::from_secs(1));
    assert_eq!(output.stdout_str().lines().count(), 10);
    assert_eq!(output.stdout_str().lines().last(), Some("line 10"));
    assert_eq!(output.stderr_str(), "oops\n");
    assert_eq!(output.status(), ExitStatus::Signaled(Signal::KILL));
}

/// Pitfall 12: stop sends TERM, and KILL only after the grace; the result
/// reports the signal, not a made-up exit code.
#[tokio::test]
async fn graceful_stop_escalates() {
    let mut stubborn =
        Process::shell("trap '' TERM; echo ready; sleep 60 & wait").start().await.unwrap();
    assert!(stubborn.wait_until(|_, chunk| chunk.starts_with(b"ready")).await);
    let output = stubborn.stop(Duration::from_millis(200)).await.unwrap();
    assert_eq!(output.status(), ExitStatus::Signaled(Signal::KILL));

    let polite = Process::new("sleep").arg("60").start().await.unwrap();
    let output = polite.stop(Duration::from_secs(30)).await.unwrap();
    assert_eq!(output.status(), ExitStatus::Signaled(Signal::TERM));
    assert_eq!(output.signal(), Some(Signal::TERM));
    assert_eq!(output.exit_code(), None);
}

/// Durations too long to add to the clock mean "no deadline", not a panic
/// in the driving task.
#[tokio::test]
async fn huge_durations_mean_no_deadline() {
    let output = Process::new("echo")
        .arg("hi")
        .timeout(Duration::MAX)
        .idle_timeout(Duration::MAX)
        .drain_grace(Duration::MAX)
        .run()
        .await
        .unwrap();
    assert_eq!(output.status(), ExitStatus::Code(0));
    assert_eq!(output.stdout_str(), "hi\n");

    let mut polite =
        Process::new("sh").arg("-c").arg("echo ready; exec sleep 60").start().await.unwrap();
    assert!(polite.wait_until(|_, chunk| chunk.starts_with(b"ready")).await);
    let output = polite.stop(Duration::MAX).await.unwrap();
    assert_eq!(output.status(), ExitStatus::Signaled(Signal::TERM));
}

/// Pitfall 13: output resets the idle timeout; silence trips it.
#[tokio::test]
async fn idle_timeout_is_reset_by_output() {
    // Twenty outputs 0.2 s apart: four seconds in all, well past the idle
    // timeout, which is still ten times the gap between outputs.
    let output =
        Process::shell("i=0; while [ $i -lt 20 ]; do echo tick; sleep 0.2; i=$((i+1)); done")
            .idle_timeout(Duration::from_secs(2))
            .run()
            .await
            .unwrap();
    assert!(output.successful());
    assert_eq!(output.stdout_str().lines().count(), 20);

    let err = Process::shell("echo hello; sleep 60")
        .idle_timeout(Duration::from_millis(300))
        .run()
        .await
        .unwrap_err();
    let ProcessError::TimedOut { kind: TimeoutKind::Idle, output, .. } = err else {
        panic!("{err}")
    };
    assert_eq!(output.stdout_str(), "hello\n");

    // Idle timeout works in quiet mode too: the output is watched, not kept.
    let err = Process::new("sleep")
        .arg("60")
        .quiet()
        .idle_timeout(Duration::from_millis(100))
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, ProcessError::TimedOut { kind: TimeoutKind::Idle, .. }));
}

/// A handle whose driver task is gone without a result (its runtime shut
/// down) reports `Cancelled` instead of waiting forever.
#[test]
fn a_handle_outliving_its_runtime_is_cancelled() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let running = runtime.block_on(Process::new("sleep").arg("60").start()).unwrap();
    let pid = running.pid();
    drop(runtime);
    // Waited on from another runtime: the first one is gone.
    let other = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let result = other.block_on(running.wait());
    assert!(
        matches!(&result, Err(ProcessError::Cancelled { name }) if name == "sleep"),
        "{result:?}"
    );
    kill(pid);
}

/// `stop()` and a dropped `run()` future signal the whole group: the
/// grandchild a script started goes with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_and_a_dropped_run_reach_grandchildren() {
    let mut handle = Process::shell("sleep 60 & echo $!; wait").start().await.unwrap();
    assert!(handle.wait_until(|_, chunk| chunk.ends_with(b"\n")).await);
    let grandchild: u32 = String::from_utf8(handle.output()).unwrap().trim().parse().unwrap();
    let output = handle.stop(Duration::from_secs(30)).await.unwrap();
    assert_eq!(output.signal(), Some(Signal::TERM));
    assert!(eventually(LIMIT, || !alive(grandchild)).await, "stop left {grandchild} running");

    let marker = tempfile::NamedTempFile::new().unwrap();
    let path = marker.path().to_owned();
    let run = tokio::spawn(
        Process::shell(r#"sleep 60 & echo $! > "$1"; wait"#).arg("sh").arg(&path).run(),
    );
    let written = || std::fs::read_to_string(&path).is_ok_and(|text| text.ends_with('\n'));
    assert!(eventually(LIMIT, written).await);
    run.abort();
    let grandchild: u32 = std::fs::read_to_string(&path).unwrap().trim().parse().unwrap();
    assert!(eventually(LIMIT, || !alive(grandchild)).await, "a dropped run left {grandchild}");
}

/// The default drain grace is 200 ms: on tokio's paused clock, a run whose
/// grandchild holds the pipe ends exactly that long after the child exited.
#[tokio::test(start_paused = true)]
async fn the_default_drain_grace_is_200ms() {
    assert_eq!(conc_process::DEFAULT_DRAIN_GRACE, Duration::from_millis(200));
    let began = tokio::time::Instant::now();
    let output = Process::shell("sleep 60 & echo $!").run().await.unwrap();
    let took = began.elapsed();
    let grandchild: u32 = output.stdout_str().trim().parse().unwrap();
    kill(grandchild);
    assert!(output.output_held_open());
    assert!(took >= Duration::from_millis(200) && took < Duration::from_millis(250), "{took:?}");
}

/// A descendant that leaves the group on purpose (`setsid`) escapes a
/// timeout, as the guide says.
#[allow(clippy::print_stderr, reason = "a test without its tool says why it skipped")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_descendant_in_a_new_session_escapes() {
    if Process::new("setsid").arg("--version").quiet().run().await.is_err() {
        eprintln!("skipped: no setsid(1) on this system");
        return;
    }
    let err = Process::shell("setsid sleep 60 > /dev/null 2>&1 < /dev/null & echo $!; sleep 60")
        .timeout(Duration::from_millis(500))
        .run()
        .await
        .unwrap_err();
    let ProcessError::TimedOut { output, .. } = err else { panic!("{err}") };
    let escaped: u32 = output.stdout_str().trim().parse().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(alive(escaped), "a new session is out of the group's reach");
    kill(escaped);
}
