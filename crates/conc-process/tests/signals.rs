//! Signals that reach the parent, with real processes: Ctrl-C (a terminal
//! sends `SIGINT` to its foreground process group) reaches the parent but not
//! a child in its own process group, and the parent-death signal reaches a
//! child when the parent dies.
//!
//! This test binary is its own "parent": run with `--as-parent`, it starts
//! children through conc-process, prints their ids and waits. The test starts
//! it (in a process group of its own, as a shell starts a job), sends `SIGINT`
//! to that whole group, as Ctrl-C would, and looks at who is left.
#![allow(clippy::print_stdout, reason = "a harness-less test reports on stdout")]

mod common;

use std::io::Write;
use std::time::Duration;

use common::{alive, eventually, kill};
use conc_process::{Containment, ExitStatus, Process, Signal};

const LIMIT: Duration = Duration::from_secs(20);

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--as-parent") {
        as_parent();
        return;
    }
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(ctrl_c_reaches_the_parent_but_not_its_children());
    println!("signals: all checks passed");
}

/// The parent: three children, then wait to be interrupted.
fn as_parent() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let sleep = || Process::new("sleep").arg("60").quiet();
        // The default: a process group of its own.
        let grouped = sleep().start().await.unwrap();
        // In the parent's group, as a shell's child would be.
        let shared = sleep().containment(Containment::None).start().await.unwrap();
        // In its own group too, but told to die with its parent (Linux).
        let tethered = sleep().parent_death_signal(Signal::KILL).start().await.unwrap();
        let mut stdout = std::io::stdout();
        writeln!(stdout, "{} {} {}", grouped.pid(), shared.pid(), tethered.pid()).unwrap();
        stdout.flush().unwrap();
        // Keep the handles (dropping one would kill its child) until killed.
        std::future::pending::<()>().await;
    });
}

async fn ctrl_c_reaches_the_parent_but_not_its_children() {
    let exe = std::env::current_exe().unwrap();
    let mut parent = Process::new(exe).arg("--as-parent").start().await.unwrap();
    assert!(parent.wait_until(|_, chunk| chunk.ends_with(b"\n")).await, "the parent started");
    let line = String::from_utf8(parent.output()).unwrap();
    let pids: Vec<u32> = line.split_whitespace().map(|pid| pid.parse().unwrap()).collect();
    let [grouped, shared, tethered] = pids[..] else { panic!("three pids: {line:?}") };
    assert!([grouped, shared, tethered].into_iter().all(alive));

    // Ctrl-C: SIGINT to the parent's process group (the parent leads it).
    // SAFETY: `killpg` has no memory-safety preconditions.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::killpg(libc::pid_t::try_from(parent.pid()).unwrap(), libc::SIGINT) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());

    let output = parent.wait().await.unwrap();
    assert_eq!(output.status(), ExitStatus::Signaled(Signal::INT), "Ctrl-C reached the parent");
    assert!(
        eventually(LIMIT, || !alive(shared)).await,
        "a child kept in the parent's group gets Ctrl-C too"
    );
    if cfg!(target_os = "linux") {
        assert!(
            eventually(LIMIT, || !alive(tethered)).await,
            "the parent-death signal reached the child when the parent died"
        );
    } else {
        kill(tethered);
    }
    // Give a stray SIGINT every chance to land before looking.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(alive(grouped), "a child in its own process group does not get Ctrl-C");
    kill(grouped);
    println!(
        "ok: Ctrl-C reaches the parent, not a child in its own group; the parent's death reaches a tethered child"
    );
}
