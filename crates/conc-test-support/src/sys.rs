//! The one place that calls into libc: sending a signal to a process.

use std::io;

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
