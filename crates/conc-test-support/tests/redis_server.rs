//! Behaviour of the `redis-server` harness against a real server.
//!
//! Every test skips (prints why, returns) on a machine without `redis-server`, unless
//! `CONC_REQUIRE_SERVICES=1`, when it fails instead.

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::time::Duration;

use conc_test_support::{
    HarnessError, RedisServer, RedisServerBuilder, require_durable_redis, require_redis,
};
use redis::Commands as _;

fn connect(server: &RedisServer) -> redis::Connection {
    let client = redis::Client::open(server.url()).expect("valid url");
    client.get_connection_with_timeout(Duration::from_secs(5)).expect("connect to the test server")
}

fn ping(server: &RedisServer) -> String {
    redis::cmd("PING").query(&mut connect(server)).expect("PING")
}

/// Whether a process with this pid exists (a zombie counts: it has not been reaped).
fn process_exists(pid: u32) -> bool {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    assert!(pid > 0);
    // SAFETY: kill(2) with signal 0 only checks that the process exists; it touches no
    // memory of ours, and the pid is positive so it names one process, not a group.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[test]
fn public_types_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RedisServer>();
    assert_send_sync::<RedisServerBuilder>();
    assert_send_sync::<HarnessError>();
}

#[test]
fn set_get_round_trip() {
    let Some(redis) = require_redis() else { return };
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{}/", redis.port()));
    assert_eq!(redis.addr().port(), redis.port());
    assert!(redis.addr().ip().is_loopback());
    assert_ne!(redis.port(), 6379);

    let mut con = connect(&redis);
    let () = con.set("greeting", "hello").unwrap();
    let value: String = con.get("greeting").unwrap();
    assert_eq!(value, "hello");

    assert!(redis.dir().is_dir());
    assert!(redis.log().contains("Ready to accept connections"), "{}", redis.log());
}

#[test]
fn durable_restart_keeps_port_and_data() {
    let Some(mut redis) = require_durable_redis() else { return };
    let (port, pid, dir) = (redis.port(), redis.pid(), redis.dir().to_path_buf());
    let () = connect(&redis).set("job:1", "queued").unwrap();

    redis.restart().unwrap();

    assert_eq!(redis.port(), port);
    assert_eq!(redis.dir(), dir);
    assert_ne!(redis.pid(), pid);
    assert!(!process_exists(pid), "the old server process was not reaped");
    let value: Option<String> = connect(&redis).get("job:1").unwrap();
    assert_eq!(value.as_deref(), Some("queued"));
}

#[test]
fn ephemeral_restart_loses_data() {
    let Some(mut redis) = require_redis() else { return };
    let port = redis.port();
    let () = connect(&redis).set("job:1", "queued").unwrap();

    redis.restart().unwrap();

    assert_eq!(redis.port(), port);
    let value: Option<String> = connect(&redis).get("job:1").unwrap();
    assert_eq!(value, None);
}

#[test]
fn pause_times_clients_out_and_resume_recovers() {
    let Some(redis) = require_redis() else { return };
    let mut con = connect(&redis);
    con.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    assert_eq!(redis::cmd("PING").query::<String>(&mut con).unwrap(), "PONG");

    redis.pause().unwrap();
    redis.pause().unwrap(); // pausing twice is harmless

    let err = redis::cmd("PING").query::<String>(&mut con).unwrap_err();
    assert!(err.is_timeout() || err.is_io_error(), "expected a timeout, got {err:?}");

    redis.resume().unwrap();
    redis.resume().unwrap(); // resuming a running server is harmless
    assert_eq!(ping(&redis), "PONG");
}

#[test]
fn restart_of_a_paused_server_works() {
    let Some(mut redis) = require_redis() else { return };
    redis.pause().unwrap();
    redis.restart().unwrap();
    assert_eq!(ping(&redis), "PONG");
}

#[test]
fn kill_then_restart() {
    let Some(mut redis) = require_durable_redis() else { return };
    let (port, pid) = (redis.port(), redis.pid());
    let () = connect(&redis).set("acked", "1").unwrap();

    redis.kill().unwrap();
    // Not "the port refuses connections": a server started concurrently may take it now.
    assert!(!process_exists(pid), "killed server was not reaped");
    assert_eq!(redis.pid(), pid, "pid() keeps the last pid after kill");
    redis.kill().unwrap(); // a second kill is harmless
    assert!(matches!(redis.pause(), Err(HarnessError::NotRunning { pid: p }) if p == pid));
    assert!(matches!(redis.resume(), Err(HarnessError::NotRunning { .. })));

    redis.restart().unwrap();
    assert_eq!(redis.port(), port);
    // appendfsync always: an acknowledged write survives a SIGKILL.
    let value: Option<String> = connect(&redis).get("acked").unwrap();
    assert_eq!(value.as_deref(), Some("1"));
}

#[test]
fn drop_kills_and_reaps_the_process() {
    let Some(redis) = require_redis() else { return };
    let (pid, dir) = (redis.pid(), redis.dir().to_path_buf());
    assert!(process_exists(pid));

    drop(redis);

    // Not "the port refuses connections": a server started concurrently may take it now.
    assert!(!process_exists(pid), "server process {pid} outlived its handle");
    assert!(!dir.exists(), "temp dir {} was not removed", dir.display());
}

#[test]
fn drop_kills_a_paused_server_when_the_test_panics() {
    let Some(redis) = require_redis() else { return };
    let pid = redis.pid();
    redis.pause().unwrap();

    let outcome = panic::catch_unwind(AssertUnwindSafe(move || {
        let _redis = redis;
        panic!("a failing test");
    }));

    assert!(outcome.is_err());
    assert!(!process_exists(pid), "server process {pid} outlived a panicking test");
}

#[test]
fn two_servers_get_distinct_ports_and_dirs() {
    let Some(a) = require_redis() else { return };
    let Some(b) = require_redis() else { return };
    assert_ne!(a.port(), b.port());
    assert_ne!(a.dir(), b.dir());
    assert_ne!(a.pid(), b.pid());

    let () = connect(&a).set("only-in-a", "1").unwrap();
    let in_b: Option<String> = connect(&b).get("only-in-a").unwrap();
    assert_eq!(in_b, None);
}

#[test]
fn builder_passes_extra_options() {
    let Some(redis) = RedisServer::builder().arg("--maxmemory", "10mb").require() else {
        return;
    };
    let reply: Vec<String> =
        redis::cmd("CONFIG").arg("GET").arg("maxmemory").query(&mut connect(&redis)).unwrap();
    assert_eq!(reply, ["maxmemory", "10485760"]);
    let appendonly: Vec<String> =
        redis::cmd("CONFIG").arg("GET").arg("appendonly").query(&mut connect(&redis)).unwrap();
    assert_eq!(appendonly, ["appendonly", "no"]);
}

#[test]
fn durable_servers_write_an_append_only_file() {
    let Some(redis) = require_durable_redis() else { return };
    let config: Vec<String> =
        redis::cmd("CONFIG").arg("GET").arg("appendfsync").query(&mut connect(&redis)).unwrap();
    assert_eq!(config, ["appendfsync", "always"]);
}

#[test]
fn missing_binary_is_reported_by_path() {
    let missing = Path::new("/nonexistent/conc-test-support/redis-server");
    let err = RedisServer::builder().binary(missing).start().unwrap_err();
    let message = err.to_string();
    match err {
        HarnessError::BinaryNotFound { binary, .. } => assert_eq!(binary, missing),
        other => panic!("expected BinaryNotFound, got {other:?}"),
    }
    assert!(message.contains("/nonexistent/conc-test-support/redis-server"), "{message}");
}

#[test]
fn rejected_option_fails_with_exit_status_and_log() {
    let binary = match conc_test_support::redis::find_binary() {
        Ok(binary) => binary,
        Err(err) => return conc_test_support::skip_unavailable("redis-server", err),
    };
    let err = RedisServer::builder()
        .binary(binary)
        .arg("--no-such-directive", "1")
        .start()
        .expect_err("redis-server must reject an unknown directive");
    let message = err.to_string();
    match err {
        HarnessError::NotReady { exit, log, .. } => {
            assert!(exit.is_some_and(|status| !status.success()), "{exit:?}");
            assert!(log.contains("no-such-directive"), "log does not say why: {log}");
        }
        other => panic!("expected NotReady, got {other:?}"),
    }
    assert!(message.contains("no-such-directive"), "{message}");
}

#[test]
fn restart_on_a_port_that_stays_busy_fails_then_recovers() {
    let Some(mut redis) = require_redis() else { return };
    redis.kill().unwrap();
    let squatter = std::net::TcpListener::bind(redis.addr()).expect("the killed server's port");

    let err = redis.restart().expect_err("the port is taken");
    match &err {
        HarnessError::PortSelection { reason, .. } => {
            assert!(reason.contains(&redis.port().to_string()), "{reason}");
        }
        other => panic!("expected PortSelection, got {other:?}"),
    }
    assert!(matches!(redis.pause(), Err(HarnessError::NotRunning { .. })));

    drop(squatter);
    redis.restart().unwrap();
    assert_eq!(ping(&redis), "PONG");
}

#[test]
fn a_ready_timeout_too_long_for_a_deadline_waits_without_one() {
    let Some(redis) = RedisServer::builder().ready_timeout(Duration::MAX).require() else {
        return;
    };
    assert_eq!(ping(&redis), "PONG");

    // Without a deadline a server that exits still ends the wait.
    let err = RedisServer::builder()
        .binary(conc_test_support::redis::find_binary().expect("found for the first server"))
        .ready_timeout(Duration::MAX)
        .arg("--no-such-directive", "1")
        .start()
        .expect_err("redis-server must reject an unknown directive");
    assert!(matches!(err, HarnessError::NotReady { exit: Some(_), .. }), "{err:?}");
}

/// Waits until the thread with this id is gone from `/proc/self/task`: by then the kernel has
/// done everything it does when a thread exits, including sending parent-death signals.
#[cfg(target_os = "linux")]
fn wait_until_thread_is_gone(tid: libc::pid_t) {
    let task = Path::new("/proc/self/task").join(tid.to_string());
    for _ in 0..5_000 {
        if !task.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("thread {tid} is still in {}", task.display());
}

/// Whether process `pid` is running: it exists and is not a zombie. A server whose parent was
/// killed is re-parented, and whoever adopts it may be slow to reap it.
#[cfg(target_os = "linux")]
fn process_is_running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // `pid (comm) state ...`: the state follows the last `)`, as comm may contain one.
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X' | 'x') | None)
}

/// A server started on a test thread that has since ended keeps running, so servers can be
/// shared across tests: the parent-death signal is tied to a harness thread, not this one.
#[cfg(target_os = "linux")]
#[test]
fn a_server_outlives_the_thread_that_started_it() {
    if let Err(err) = conc_test_support::redis::find_binary() {
        return conc_test_support::skip_unavailable("redis-server", err);
    }
    let (redis, tid) = std::thread::spawn(|| {
        // SAFETY: gettid(2) has no arguments and no preconditions.
        let tid = unsafe { libc::gettid() };
        (RedisServer::start().expect("the server starts"), tid)
    })
    .join()
    .expect("the starting thread did not panic");
    wait_until_thread_is_gone(tid);

    assert!(process_is_running(redis.pid()), "the server died with the thread that started it");
    assert_eq!(ping(&redis), "PONG");
}

/// The environment variable that turns [`helper_starts_a_server_and_waits`] into the helper
/// process of [`servers_die_with_a_killed_test_process`].
#[cfg(target_os = "linux")]
const HELPER_ENV: &str = "CONC_TEST_SUPPORT_KILLED_PROCESS_HELPER";

/// What the helper prints before its server's pid.
#[cfg(target_os = "linux")]
const PID_MARKER: &str = "helper-server-pid=";

/// Not a test of its own: [`servers_die_with_a_killed_test_process`] runs this test binary
/// again with [`HELPER_ENV`] set and only this test selected. It starts a server, prints its
/// pid and waits until its stdin closes. Without the variable it does nothing.
#[cfg(target_os = "linux")]
#[test]
fn helper_starts_a_server_and_waits() {
    use std::io::{Read as _, Write as _};

    if std::env::var_os(HELPER_ENV).is_none() {
        return;
    }
    let redis = RedisServer::start().expect("the helper's server starts");
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{PID_MARKER}{}", redis.pid()).unwrap();
    stdout.flush().unwrap();
    // Until the parent test kills this process (or goes away and closes the pipe).
    let _ = io::stdin().read_to_end(&mut Vec::new());
}

/// `Drop` does not run when a test process is killed with `SIGKILL`; its servers must die
/// anyway rather than be left running.
#[cfg(target_os = "linux")]
#[test]
fn servers_die_with_a_killed_test_process() {
    use std::io::BufRead as _;
    use std::process::{Command, Stdio};

    if let Err(err) = conc_test_support::redis::find_binary() {
        return conc_test_support::skip_unavailable("redis-server", err);
    }
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper_starts_a_server_and_waits", "--nocapture", "--test-threads=1"])
        .env(HELPER_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the test binary runs again");
    let stdout = io::BufReader::new(helper.stdout.take().unwrap());
    let server_pid: u32 = stdout
        .lines()
        .map_while(Result::ok)
        // libtest may have written `test <name> ... ` on the same line first.
        .find_map(|line| line.split_once(PID_MARKER).map(|(_, pid)| pid.trim().to_owned()))
        .expect("the helper reports its server's pid before it exits")
        .parse()
        .unwrap();
    assert!(process_is_running(server_pid));

    helper.kill().unwrap(); // SIGKILL: no Drop, no unwinding
    helper.wait().unwrap();

    for _ in 0..5_000 {
        if !process_is_running(server_pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // Do not leave it running for the next test run.
    let pid = libc::pid_t::try_from(server_pid).expect("pid fits pid_t");
    // SAFETY: kill(2) takes two integers and touches no memory of ours; the pid is positive
    // (it named a running process above), so it addresses one process, not a group.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    panic!("server {server_pid} outlived its killed test process");
}
