//! The builder and the running handle against real processes.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{alive, eventually, kill};
use conc_process::{
    ExitStatus, Process, ProcessError, ProcessOutput, RunningProcess, Signal, Stream,
};

static_assertions::assert_impl_all!(Process: Send);
static_assertions::assert_impl_all!(RunningProcess: Send, Sync);
static_assertions::assert_impl_all!(ProcessOutput: Send, Sync, Clone);
static_assertions::assert_impl_all!(ProcessError: Send, Sync, std::error::Error);

#[tokio::test]
async fn exit_codes_and_signals_are_reported_as_such() {
    let output = Process::shell("echo out; echo err >&2; exit 3").run().await.unwrap();
    assert_eq!(output.status(), ExitStatus::Code(3));
    assert!(output.failed());
    assert_eq!(output.stdout_str(), "out\n");
    assert_eq!(output.stderr_str(), "err\n");
    assert!(output.pid() > 0);

    let err = output.check().unwrap_err();
    let ProcessError::Failed { output } = &err else { panic!("{err}") };
    assert_eq!(output.exit_code(), Some(3));
    assert_eq!(err.to_string(), "`/bin/sh` failed: exit code 3");

    let output = Process::shell("kill -KILL $$").run().await.unwrap();
    assert_eq!(output.status(), ExitStatus::Signaled(Signal::KILL));
    assert_eq!(output.exit_code(), None);
}

#[tokio::test]
async fn a_missing_program_is_named() {
    let err = Process::new("conc-no-such-program").arg("x").run().await.unwrap_err();
    assert!(
        matches!(&err, ProcessError::NotFound { program } if program == "conc-no-such-program"),
        "{err}"
    );
    assert_eq!(err.to_string(), "program `conc-no-such-program` not found");

    let err = Process::new("true").current_dir("/no/such/dir").run().await.unwrap_err();
    assert_eq!(err.config().map(|config| &*config.field), Some("current_dir"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("not-executable");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    let err = Process::new(&script).run().await.unwrap_err();
    assert!(matches!(err, ProcessError::PermissionDenied { .. }), "{err}");
}

#[tokio::test]
async fn bad_settings_are_refused_naming_the_field() {
    let cases: Vec<(Process, &str)> = vec![
        (Process::new(""), "program"),
        (Process::new("true").timeout(Duration::ZERO), "timeout"),
        (Process::new("true").idle_timeout(Duration::ZERO), "idle_timeout"),
        (Process::new("true").limit_cpu(Duration::from_millis(10)), "limit_cpu"),
        (Process::new("true").limit_memory(0), "limit_memory"),
        (Process::new("true").limit_open_files(0), "limit_open_files"),
        (Process::new("true").tty(true).input("x"), "input"),
        (Process::new("true").limit_cpu(Duration::from_millis(1500)), "limit_cpu"),
        (Process::new("tr\0ue"), "program"),
        (Process::new("echo").arg("a\0b"), "args"),
        (Process::new("true").current_dir("/tm\0p"), "current_dir"),
        (Process::new("true").env("A\0", "x"), "env"),
        (Process::new("true").env("A", "x\0"), "env"),
        (Process::new("true").env("A=B", "x"), "env"),
        (Process::new("true").env("", "x"), "env"),
        (Process::new("true").env_remove("A\0"), "env"),
        (Process::new("true").parent_death_signal(Signal::from_raw(0)), "parent_death_signal"),
        (Process::new("true").parent_death_signal(Signal::from_raw(-1)), "parent_death_signal"),
        (Process::new("true").parent_death_signal(Signal::from_raw(1000)), "parent_death_signal"),
    ];
    for (process, field) in cases {
        let err = process.run().await.unwrap_err();
        assert!(err.config().is_some_and(|config| config.field == field), "{field}: {err}");
    }
}

#[tokio::test]
async fn working_directory_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let output = Process::new("pwd").current_dir(dir.path()).run().await.unwrap();
    assert_eq!(output.stdout_str().trim(), dir.path().canonicalize().unwrap().to_str().unwrap());

    // SAFETY-free way to have an inherited variable: PATH is always there.
    let output = Process::shell(r#"printf '%s|%s|%s' "$CONC_A" "${PATH:+set}" "${HOME:-unset}""#)
        .env("CONC_A", "one")
        .env_remove("HOME")
        .run()
        .await
        .unwrap();
    assert_eq!(output.stdout_str(), "one|set|unset");

    let output = Process::new("/usr/bin/env")
        .env("CONC_B", "two")
        .env_clear()
        .env("CONC_C", "three")
        .run()
        .await
        .unwrap();
    let mut lines: Vec<_> = output.stdout_str().lines().map(str::to_owned).collect();
    lines.sort();
    assert_eq!(lines, ["CONC_B=two", "CONC_C=three"]);
}

#[tokio::test]
async fn input_from_bytes_and_from_a_reader() {
    let output = Process::new("wc").arg("-l").input("a\nb\nc\n").run().await.unwrap();
    assert_eq!(output.stdout_str().trim(), "3");

    let reader: &[u8] = b"streamed input";
    let output = Process::new("cat").input_reader(reader).run().await.unwrap();
    assert_eq!(output.stdout_str(), "streamed input");

    // Without input, standard input is at end of file at once.
    let output = Process::new("cat").timeout(Duration::from_secs(30)).run().await.unwrap();
    assert!(output.successful());
}

#[tokio::test]
async fn callbacks_get_tagged_chunks_and_lines() {
    let chunks = Arc::new(Mutex::new(Vec::new()));
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (chunk_sink, line_sink) = (Arc::clone(&chunks), Arc::clone(&lines));
    let output =
        Process::shell("printf 'a\\nb'; printf 'e1\\r\\n' >&2; sleep 0.1; printf 'c\\nlast'")
            .on_output(move |stream, bytes| {
                chunk_sink.lock().unwrap().push((stream, bytes.to_vec()));
            })
            .on_line(move |stream, line| line_sink.lock().unwrap().push((stream, line.to_owned())))
            .run()
            .await
            .unwrap();
    assert_eq!(output.stdout_str(), "a\nbc\nlast");
    let stdout: Vec<u8> = chunks
        .lock()
        .unwrap()
        .iter()
        .filter(|(s, _)| *s == Stream::Stdout)
        .flat_map(|(_, b)| b.clone())
        .collect();
    assert_eq!(stdout, b"a\nbc\nlast");
    let mut lines = lines.lock().unwrap().clone();
    lines.sort();
    let expected = [
        (Stream::Stdout, "a"),
        (Stream::Stdout, "bc"),
        (Stream::Stdout, "last"),
        (Stream::Stderr, "e1"),
    ];
    let mut expected: Vec<_> = expected.iter().map(|(s, l)| (*s, (*l).to_owned())).collect();
    expected.sort();
    assert_eq!(lines, expected);
}

#[tokio::test]
async fn a_panicking_callback_kills_the_process_and_fails_the_run() {
    let err = Process::shell("echo boom; sleep 60")
        .on_line(|_, line| assert_ne!(line, "boom", "callback refused the line"))
        .run()
        .await
        .unwrap_err();
    let ProcessError::CallbackPanicked { program, message } = err else { panic!("{err}") };
    assert_eq!(program, "/bin/sh");
    assert!(message.contains("callback refused the line"), "{message}");
}

#[tokio::test]
async fn quiet_mode_keeps_nothing() {
    let output = Process::shell("echo out; echo err >&2").quiet().run().await.unwrap();
    assert!(output.successful());
    assert!(output.stdout().is_empty() && output.stderr().is_empty());

    // Callbacks still see the output in quiet mode.
    let seen = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&seen);
    let output = Process::new("echo")
        .arg("hi")
        .quiet()
        .on_line(move |_, line| sink.lock().unwrap().push_str(line))
        .run()
        .await
        .unwrap();
    assert!(output.stdout().is_empty());
    assert_eq!(*seen.lock().unwrap(), "hi");
}

#[tokio::test]
async fn tty_mode_inherits_the_terminal() {
    let output = Process::new("true").tty(true).run().await.unwrap();
    assert!(output.successful());
    assert!(output.stdout().is_empty());
}

#[tokio::test]
async fn running_handle_reports_progress() {
    let mut handle = Process::shell("echo one; read line; echo two; echo \"$line\" >&2; sleep 60")
        .input("from stdin\n")
        .start()
        .await
        .unwrap();
    assert!(handle.pid() > 0);
    assert_eq!(handle.program(), "/bin/sh");
    // Stderr is written last, so once it is seen all of stdout was read.
    assert!(
        handle
            .wait_until(|stream, chunk| stream == Stream::Stderr && chunk.ends_with(b"stdin\n"))
            .await
    );
    assert!(handle.is_running());
    assert_eq!(handle.output(), b"one\ntwo\n");
    assert_eq!(handle.latest_output(), b"one\ntwo\n");
    assert_eq!(handle.latest_output(), b"");
    assert_eq!(handle.latest_error_output(), b"from stdin\n");
    assert_eq!(handle.error_output(), b"from stdin\n");

    handle.signal(Signal::USR1).await.unwrap();
    let output = handle.wait().await.unwrap();
    assert_eq!(output.status(), ExitStatus::Signaled(Signal::USR1));
}

#[tokio::test]
async fn wait_until_returns_false_when_the_process_ends_first() {
    let mut handle = Process::new("echo").arg("something else").start().await.unwrap();
    assert!(!handle.wait_until(|_, chunk| chunk.starts_with(b"never")).await);
    assert!(!handle.is_running());
    let err = handle.signal(Signal::TERM).await.unwrap_err();
    assert!(matches!(err, ProcessError::NotRunning { signal: Signal::TERM, .. }), "{err}");
    let output = handle.wait().await.unwrap();
    assert_eq!(output.stdout_str(), "something else\n");

    // A chunk written just before the exit is still shown to the predicate.
    let mut handle = Process::new("echo").arg("ready").start().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(handle.wait_until(|_, chunk| chunk.starts_with(b"ready")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_handle_kills_the_group_and_detach_does_not() {
    let mut handle = Process::shell("sleep 60 & echo $!; wait").start().await.unwrap();
    assert!(handle.wait_until(|_, chunk| chunk.ends_with(b"\n")).await);
    let grandchild: u32 = String::from_utf8(handle.output()).unwrap().trim().parse().unwrap();
    let pid = handle.pid();
    drop(handle);
    assert!(eventually(Duration::from_secs(20), || !alive(pid) && !alive(grandchild)).await);

    let handle = Process::new("sleep").arg("60").start().await.unwrap();
    let pid = handle.pid();
    handle.detach();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(alive(pid), "a detached process runs on");
    kill(pid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_run_future_kills_the_process() {
    let marker = tempfile::NamedTempFile::new().unwrap();
    let path = marker.path().to_owned();
    let run =
        tokio::spawn(Process::shell("echo $$ > \"$1\"; exec sleep 60").arg("sh").arg(&path).run());
    // Cancel the run once the child has written its pid.
    let written = || std::fs::read_to_string(&path).is_ok_and(|text| text.ends_with('\n'));
    assert!(eventually(Duration::from_secs(20), written).await);
    run.abort();
    let pid: u32 = std::fs::read_to_string(&path).unwrap().trim().parse().unwrap();
    assert!(
        eventually(Duration::from_secs(20), || !alive(pid)).await,
        "cancelled run left {pid} running"
    );
}

#[tokio::test]
async fn resource_limits_apply_in_the_child() {
    let output = Process::shell("ulimit -n").limit_open_files(32).run().await.unwrap();
    assert_eq!(output.stdout_str().trim(), "32");
    let output = Process::shell("ulimit -v").limit_memory(512 * 1024 * 1024).run().await.unwrap();
    assert_eq!(output.stdout_str().trim(), (512 * 1024).to_string());
    let output = Process::shell("ulimit -t").limit_cpu(Duration::from_secs(7)).run().await.unwrap();
    assert_eq!(output.stdout_str().trim(), "7");

    // Past the CPU limit the kernel stops the child.
    let output = Process::shell("while :; do :; done")
        .limit_cpu(Duration::from_secs(1))
        .timeout(Duration::from_secs(60))
        .run()
        .await
        .unwrap();
    assert!(matches!(output.signal(), Some(Signal::XCPU | Signal::KILL)), "{output:?}");
}

/// Pitfall 14: the parent-death signal is tied to the spawning thread; a
/// child started from a thread that then exits must survive.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_death_signal_survives_the_spawning_thread() {
    let runtime = tokio::runtime::Handle::current();
    let handle = std::thread::spawn(move || {
        runtime
            .block_on(Process::new("sleep").arg("60").parent_death_signal(Signal::KILL).start())
            .unwrap()
    })
    .join()
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(alive(handle.pid()), "the child died with the thread that started it");
    assert!(handle.is_running());

    drop(handle);
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_kernel_reports_cpu_and_memory_of_each_run() {
    let output =
        Process::shell("i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done").run().await.unwrap();
    let usage = output.usage().expect("pidfd and waitid are available on Linux 5.3+");
    assert!(usage.user_cpu + usage.system_cpu > Duration::ZERO, "{usage:?}");
    assert!(usage.max_rss_bytes > 0);
    assert!(ProcessOutput::new("x", ExitStatus::Code(0)).usage().is_none());
}

/// No timeout and no idle timeout unless set: on tokio's paused clock any
/// timer would fire at once while the child runs (time jumps to it), so a
/// one-second child that completes had no timer. With a timeout set, the
/// same run is cut short, which shows the check can fail.
#[tokio::test(start_paused = true)]
async fn no_timeout_unless_one_is_set() {
    let output = Process::new("sleep").arg("1").quiet().run().await.unwrap();
    assert!(output.successful(), "{output:?}");
    let handle = Process::new("sleep").arg("1").quiet().start().await.unwrap();
    assert!(handle.wait().await.unwrap().successful());

    let err = Process::new("sleep")
        .arg("1")
        .quiet()
        .timeout(Duration::from_secs(3600))
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, ProcessError::TimedOut { .. }), "{err}");
}

/// The process group of `pid`, from `/proc`.
#[cfg(target_os = "linux")]
fn process_group(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let (_, rest) = stat.rsplit_once(')').unwrap();
    rest.split_whitespace().nth(2).unwrap().parse().unwrap()
}

/// Each child leads a process group of its own; `Containment::None` keeps it in ours.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn each_child_leads_its_own_process_group() {
    let child = Process::new("sleep").arg("60").quiet().start().await.unwrap();
    assert_eq!(process_group(child.pid()), child.pid());
    let shared = Process::new("sleep")
        .arg("60")
        .quiet()
        .containment(conc_process::Containment::None)
        .start()
        .await
        .unwrap();
    assert_eq!(process_group(shared.pid()), process_group(std::process::id()));
}

/// Quiet without callbacks or an idle timeout: no pipes at all, output to
/// `/dev/null`; captured output goes through pipes.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_quiet_process_writes_to_dev_null_through_no_pipe() {
    let target = |pid: u32, fd: u32| {
        std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap().display().to_string()
    };
    let quiet = Process::new("sleep").arg("60").quiet().start().await.unwrap();
    for fd in 0..=2 {
        assert_eq!(target(quiet.pid(), fd), "/dev/null", "fd {fd}");
    }
    let captured = Process::new("sleep").arg("60").start().await.unwrap();
    assert!(target(captured.pid(), 1).starts_with("pipe:"), "{}", target(captured.pid(), 1));
    let watched = Process::new("sleep").arg("60").quiet().on_line(|_, _| {}).start().await.unwrap();
    assert!(target(watched.pid(), 1).starts_with("pipe:"), "a callback needs the pipe");
}

/// A relative program path with a `/` is resolved against `current_dir`.
#[tokio::test]
async fn a_relative_program_path_is_resolved_against_the_working_directory() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("bin")).unwrap();
    let tool = dir.path().join("bin/tool");
    std::fs::write(&tool, "#!/bin/sh\necho tool ran\n").unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = Process::new("./bin/tool").current_dir(dir.path()).run().await.unwrap();
    assert_eq!(output.stdout_str(), "tool ran\n");
}

/// Lines with invalid UTF-8 reach `on_line` with `U+FFFD` in place.
#[tokio::test]
async fn invalid_utf8_in_a_line_is_replaced() {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let output = Process::shell(r"printf 'a\377b\n'")
        .on_line(move |_, line| sink.lock().unwrap().push(line.to_owned()))
        .run()
        .await
        .unwrap();
    assert_eq!(output.stdout(), b"a\xffb\n", "the captured bytes are kept as they are");
    assert_eq!(*lines.lock().unwrap(), ["a\u{FFFD}b"]);
}

/// `wait_until` shows each chunk once across calls; on a quiet process
/// (nothing captured) it waits for the end.
#[tokio::test]
async fn wait_until_shows_each_chunk_once() {
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let mut handle = Process::shell(
        r#"echo first; while [ ! -e "$1" ]; do sleep 0.02; done; echo second; sleep 60"#,
    )
    .arg("sh")
    .arg(&go)
    .start()
    .await
    .unwrap();
    assert!(handle.wait_until(|_, chunk| chunk.starts_with(b"first")).await);
    // Only now is "second" written, in a chunk of its own.
    std::fs::write(&go, "").unwrap();
    let mut shown = Vec::new();
    assert!(
        handle
            .wait_until(|_, chunk| {
                shown.push(chunk.to_vec());
                chunk.ends_with(b"second\n")
            })
            .await
    );
    assert!(shown.iter().all(|chunk| !chunk.starts_with(b"first")), "{shown:?}");

    let mut quiet = Process::new("echo").arg("unseen").quiet().start().await.unwrap();
    assert!(!quiet.wait_until(|_, _| true).await, "nothing is captured, so the end comes first");
    assert!(!quiet.is_running());
}

/// A detached process is no longer killed on drop, but its timeout still applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_process_keeps_its_timeout() {
    let handle =
        Process::new("sleep").arg("60").timeout(Duration::from_millis(300)).start().await.unwrap();
    let pid = handle.pid();
    handle.detach();
    assert!(eventually(Duration::from_secs(20), || !alive(pid)).await, "the timeout still fired");
}

/// `signal` reaches the process itself, not its group: the grandchild a
/// script started lives on (unlike with `stop`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_reaches_the_process_not_its_group() {
    let mut handle = Process::shell("sleep 60 & echo $!; wait").start().await.unwrap();
    assert!(handle.wait_until(|_, chunk| chunk.ends_with(b"\n")).await);
    let grandchild: u32 = String::from_utf8(handle.output()).unwrap().trim().parse().unwrap();
    handle.signal(Signal::KILL).await.unwrap();
    let output = handle.wait().await.unwrap();
    assert_eq!(output.signal(), Some(Signal::KILL));
    assert!(alive(grandchild), "the signal went to the shell only");
    kill(grandchild);
}

/// A tty process shares the parent's standard streams.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_tty_process_inherits_the_parent_streams() {
    let handle = Process::new("sleep").arg("60").tty(true).start().await.unwrap();
    for fd in 0..=2 {
        let ours = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok();
        let its = std::fs::read_link(format!("/proc/{}/fd/{fd}", handle.pid())).ok();
        assert_eq!(its, ours, "fd {fd}");
    }
}

/// The kernel's usage counts the descendants a process waited for: a shell
/// whose child does the work reports about the work's CPU time.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn usage_counts_the_children_a_process_waited_for() {
    let work = "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done";
    let cpu = |output: ProcessOutput| {
        let usage = output.usage().unwrap();
        usage.user_cpu + usage.system_cpu
    };
    let direct = cpu(Process::shell(work).run().await.unwrap());
    let nested = cpu(Process::shell(format!("sh -c '{work}'; true")).run().await.unwrap());
    assert!(nested >= direct / 2, "nested {nested:?} against direct {direct:?}");
}
