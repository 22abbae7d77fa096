//! Signals and exit statuses.

use std::fmt;

/// A Unix signal number, such as [`Signal::TERM`].
///
/// # Examples
///
/// ```
/// use conc_process::Signal;
///
/// assert_eq!(Signal::TERM.to_string(), "SIGTERM");
/// assert_eq!(Signal::from_raw(9), Signal::KILL);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signal(i32);

impl Signal {
    /// `SIGHUP`: the terminal hung up; daemons often reload on it.
    pub const HUP: Self = Self(libc::SIGHUP);
    /// `SIGINT`: interrupt, as Ctrl-C sends.
    pub const INT: Self = Self(libc::SIGINT);
    /// `SIGQUIT`: quit with a core dump.
    pub const QUIT: Self = Self(libc::SIGQUIT);
    /// `SIGKILL`: kill; cannot be caught or ignored.
    pub const KILL: Self = Self(libc::SIGKILL);
    /// `SIGUSR1`: user-defined.
    pub const USR1: Self = Self(libc::SIGUSR1);
    /// `SIGUSR2`: user-defined.
    pub const USR2: Self = Self(libc::SIGUSR2);
    /// `SIGPIPE`: a write to a pipe nobody reads.
    pub const PIPE: Self = Self(libc::SIGPIPE);
    /// `SIGALRM`: a timer expired.
    pub const ALRM: Self = Self(libc::SIGALRM);
    /// `SIGTERM`: the polite request to terminate.
    pub const TERM: Self = Self(libc::SIGTERM);
    /// `SIGCONT`: continue a stopped process.
    pub const CONT: Self = Self(libc::SIGCONT);
    /// `SIGSTOP`: stop (pause); cannot be caught or ignored.
    pub const STOP: Self = Self(libc::SIGSTOP);
    /// `SIGXCPU`: the CPU time limit was exceeded.
    pub const XCPU: Self = Self(libc::SIGXCPU);

    /// The signal with this number.
    pub const fn from_raw(number: i32) -> Self {
        Self(number)
    }

    /// The signal's number.
    pub const fn as_raw(self) -> i32 {
        self.0
    }

    /// The signal's conventional name (`"SIGTERM"`), if it is one of the constants above.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            libc::SIGHUP => "SIGHUP",
            libc::SIGINT => "SIGINT",
            libc::SIGQUIT => "SIGQUIT",
            libc::SIGKILL => "SIGKILL",
            libc::SIGUSR1 => "SIGUSR1",
            libc::SIGUSR2 => "SIGUSR2",
            libc::SIGPIPE => "SIGPIPE",
            libc::SIGALRM => "SIGALRM",
            libc::SIGTERM => "SIGTERM",
            libc::SIGCONT => "SIGCONT",
            libc::SIGSTOP => "SIGSTOP",
            libc::SIGXCPU => "SIGXCPU",
            libc::SIGSEGV => "SIGSEGV",
            libc::SIGABRT => "SIGABRT",
            _ => return None,
        })
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "signal {}", self.0),
        }
    }
}

/// How a process ended: an exit code, or the signal that killed it.
///
/// A process killed by a signal has no exit code; shells report it as
/// `128 + signal`, this type does not pretend.
///
/// # Examples
///
/// ```
/// use conc_process::{ExitStatus, Signal};
///
/// assert!(ExitStatus::Code(0).success());
/// assert_eq!(ExitStatus::Signaled(Signal::KILL).signal(), Some(Signal::KILL));
/// assert_eq!(ExitStatus::Signaled(Signal::KILL).code(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitStatus {
    /// The process exited with this code.
    Code(i32),
    /// The process was killed by this signal.
    Signaled(Signal),
}

impl ExitStatus {
    /// Whether the process exited with code 0.
    pub fn success(self) -> bool {
        self == Self::Code(0)
    }

    /// The exit code, if the process exited rather than being killed.
    pub fn code(self) -> Option<i32> {
        match self {
            Self::Code(code) => Some(code),
            Self::Signaled(_) => None,
        }
    }

    /// The signal that killed the process, if one did.
    pub fn signal(self) -> Option<Signal> {
        match self {
            Self::Code(_) => None,
            Self::Signaled(signal) => Some(signal),
        }
    }
}

impl From<std::process::ExitStatus> for ExitStatus {
    fn from(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => Self::Code(code),
            (None, Some(signal)) => Self::Signaled(Signal(signal)),
            // Stopped or continued statuses are never returned by `wait`.
            (None, None) => Self::Code(-1),
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(code) => write!(f, "exit code {code}"),
            Self::Signaled(signal) => write!(f, "killed by {signal}"),
        }
    }
}
