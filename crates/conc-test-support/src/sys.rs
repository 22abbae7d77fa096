//! The one place that calls into libc: sending a signal to a process, and (on Linux) tying a
//! child process's life to this process.

use std::io;
use std::process::{Child, Command};

/// A signal the harness sends, with the name used in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Polite termination; redis-server shuts down cleanly.
    Term,
    /// Stop the process where it stands (it cannot catch this).
    Stop,
    /// Continue a stopped process; harmless for a running one.
    Cont,
}

impl Signal {
    /// The signal's conventional name.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Term => "SIGTERM",
            Self::Stop => "SIGSTOP",
            Self::Cont => "SIGCONT",
        }
    }

    const fn number(self) -> libc::c_int {
        match self {
            Self::Term => libc::SIGTERM,
            Self::Stop => libc::SIGSTOP,
            Self::Cont => libc::SIGCONT,
        }
    }
}

/// Sends `signal` to process `pid`.
///
/// Callers only pass the pid of a child they have not reaped yet (a zombie keeps its pid),
/// so the pid cannot have been reused by an unrelated process.
pub(crate) fn send(pid: u32, signal: Signal) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    if pid <= 0 {
        // kill(2) gives 0 and negative pids a process-group meaning: never send those.
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "pid must be positive"));
    }
    // SAFETY: kill(2) takes two integers, reads and writes no memory of ours, and has no
    // preconditions; a positive pid addresses exactly one process.
    let rc = unsafe { libc::kill(pid, signal.number()) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Kills (`SIGKILL`) every process in the process group that child `pid`
/// leads: a child started with `process_group(0)` and the processes it
/// started in turn (chromedriver's browser, say), which outlive their parent
/// otherwise.
///
/// Callers only pass the pid of a group-leading child they have not reaped
/// yet, so the group id cannot have been reused.
pub(crate) fn kill_group(pid: u32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    if pid <= 1 {
        // -1 would signal every process we may signal, 0 our own group.
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "pid must lead a child's group"));
    }
    // SAFETY: kill(2) takes two integers and touches no memory of ours; a negative pid
    // addresses the process group with that id, which our unreaped child leads.
    let rc = unsafe { libc::kill(-pid, libc::SIGKILL) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Spawns `command`, on Linux and Android so that the kernel kills the child (`SIGKILL`) when
/// this process dies, however it dies; elsewhere it is a plain [`Command::spawn`].
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that spawned the child exits, not the process.
/// A server started on one test thread may be shared with others (kept in a static) and
/// outlive the test that started it, so the child is not spawned on the calling thread but
/// on one harness thread that runs until the process ends.
pub(crate) fn spawn_tied(command: Command) -> io::Result<Child> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        tied::spawn(command)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let mut command = command;
        command.spawn()
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod tied {
    use std::io;
    use std::os::unix::process::CommandExt as _;
    use std::process::{Child, Command};
    use std::sync::OnceLock;
    use std::sync::mpsc::{self, Sender, SyncSender};
    use std::thread;

    /// A command to spawn and where to send the outcome.
    type Request = (Command, SyncSender<io::Result<Child>>);

    /// Hands `command` to the spawner thread and waits for the child it spawned.
    pub(super) fn spawn(command: Command) -> io::Result<Child> {
        let spawner = spawner()?;
        let (reply, outcome) = mpsc::sync_channel(1);
        let lost = || io::Error::other("the conc-test-support spawner thread is gone");
        spawner.send((command, reply)).map_err(|_| lost())?;
        outcome.recv().map_err(|_| lost())?
    }

    /// The sender to the spawner thread, started on first use. The sender lives in a static
    /// and is never dropped, so the thread's loop never ends: it lives as long as the process.
    fn spawner() -> io::Result<&'static Sender<Request>> {
        static SPAWNER: OnceLock<Result<Sender<Request>, io::ErrorKind>> = OnceLock::new();
        let spawner = SPAWNER.get_or_init(|| {
            let (sender, requests) = mpsc::channel::<Request>();
            thread::Builder::new()
                .name("conc-test-support-spawner".to_owned())
                .spawn(move || {
                    for (mut command, reply) in requests {
                        let _ = reply.send(spawn_with_death_signal(&mut command));
                    }
                })
                .map(|_| sender)
                .map_err(|error| error.kind())
        });
        spawner.as_ref().map_err(|&kind| {
            io::Error::new(kind, "could not start the conc-test-support spawner thread")
        })
    }

    /// Spawns `command` with `PR_SET_PDEATHSIG(SIGKILL)` set in the child before `exec`.
    fn spawn_with_death_signal(command: &mut Command) -> io::Result<Child> {
        let parent = libc::pid_t::try_from(std::process::id())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
        // Runs in the forked child before `exec`.
        let hook = move || {
            // SAFETY: prctl(PR_SET_PDEATHSIG, sig) takes integers and touches no memory.
            let rc = unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0)
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            // If this process died between fork and prctl, the child was already re-parented
            // and no signal will come: do not start an orphan.
            // SAFETY: getppid(2) has no arguments and no preconditions.
            if unsafe { libc::getppid() } != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        };
        // SAFETY: between fork and exec only async-signal-safe calls are allowed. The hook
        // calls prctl(2) and getppid(2), which are, builds its errors from an errno without
        // allocating, and captures one integer.
        unsafe { command.pre_exec(hook) };
        command.spawn()
    }
}
