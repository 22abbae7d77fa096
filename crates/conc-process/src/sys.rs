//! The few system calls std and tokio do not wrap: signals to a process or a
//! process group, and the opt-in `pre_exec` hook for limits and the
//! parent-death signal. All `unsafe` of the crate is here.
#![allow(unsafe_code)]

use std::io;
#[cfg(target_os = "linux")]
use std::time::Duration;

use crate::{Limits, Signal};

/// The highest signal number of this system (`SIGRTMAX` on Linux).
pub(crate) fn max_signal() -> i32 {
    #[cfg(target_os = "linux")]
    return libc::SIGRTMAX();
    #[cfg(not(target_os = "linux"))]
    31
}

/// Sends `signal` to one process.
pub(crate) fn kill(pid: u32, signal: Signal) -> io::Result<()> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `kill` has no memory-safety preconditions; a bad pid or signal
    // is reported through errno.
    let rc = unsafe { libc::kill(pid, signal.as_raw()) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Sends `signal` to every process of the process group `pgid`. A group with
/// no members left is not an error.
pub(crate) fn kill_group(pgid: u32, signal: Signal) -> io::Result<()> {
    let pgid =
        libc::pid_t::try_from(pgid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    if pgid <= 1 {
        // Never signal group 0 (our own) or 1 by mistake.
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: `killpg` has no memory-safety preconditions.
    let rc = unsafe { libc::killpg(pgid, signal.as_raw()) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) { Ok(()) } else { Err(err) }
}

/// Installs the `pre_exec` hook that applies `limits` and the parent-death
/// signal in the child. Installing any hook makes std fork + exec instead of
/// `posix_spawn`, which costs time proportional to the parent's memory.
pub(crate) fn install_pre_exec(
    command: &mut tokio::process::Command,
    limits: Limits,
    parent_death: Option<Signal>,
) {
    #[cfg(target_os = "linux")]
    // SAFETY: `getpid` has no preconditions.
    let parent = unsafe { libc::getpid() };
    #[cfg(not(target_os = "linux"))]
    let _ = parent_death;
    let hook = move || -> io::Result<()> {
        // Only async-signal-safe calls below: setrlimit, prctl, getppid, raise.
        if let Some(cpu) = limits.cpu {
            set_limit(libc::RLIMIT_CPU, cpu.as_secs())?;
        }
        if let Some(bytes) = limits.memory_bytes {
            set_limit(libc::RLIMIT_AS, bytes)?;
        }
        if let Some(files) = limits.open_files {
            set_limit(libc::RLIMIT_NOFILE, files)?;
        }
        #[cfg(target_os = "linux")]
        if let Some(signal) = parent_death {
            // SAFETY: PR_SET_PDEATHSIG takes a signal number as its only
            // argument; the remaining ones are ignored.
            let rc = unsafe {
                libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::c_ulong::try_from(signal.as_raw()).unwrap_or(0),
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then nobody
            // will send the signal, so send it now.
            // SAFETY: getppid and raise have no memory-safety preconditions.
            if unsafe { libc::getppid() } != parent {
                unsafe { libc::raise(signal.as_raw()) };
            }
        }
        Ok(())
    };
    // SAFETY: the hook only makes async-signal-safe system calls and does not
    // allocate, lock or touch state shared with other threads of the parent.
    unsafe {
        command.pre_exec(hook);
    }
}

#[cfg(target_os = "linux")]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(target_os = "linux"))]
type Resource = libc::c_int;

fn set_limit(resource: Resource, value: u64) -> io::Result<()> {
    let limit = libc::rlimit { rlim_cur: value as libc::rlim_t, rlim_max: value as libc::rlim_t };
    // SAFETY: `limit` is a valid, initialised `rlimit` that outlives the call.
    let rc = unsafe { libc::setrlimit(resource, &raw const limit) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// A file descriptor that becomes readable when process `pid` exits
/// (`pidfd_open`, Linux 5.3+).
#[cfg(target_os = "linux")]
pub(crate) fn pidfd_open(pid: u32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // or -1; no memory is passed.
    let fd =
        unsafe { libc::syscall(libc::SYS_pidfd_open, libc::c_long::from(pid), 0 as libc::c_long) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = std::os::fd::RawFd::try_from(fd)
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// The resource usage of child `pid` if it has exited, without reaping it
/// (`waitid(P_PID, pid, WEXITED | WNOWAIT | WNOHANG)` with the kernel's
/// `rusage` argument). `None` while it runs.
#[cfg(target_os = "linux")]
pub(crate) fn exit_usage(pid: u32) -> io::Result<Option<crate::ResourceUsage>> {
    // SAFETY: siginfo_t and rusage are plain C structs for which all-zero is valid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live, writable structs of the types the
    // raw waitid system call expects; WNOWAIT leaves the child to be reaped
    // by its owner.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_waitid,
            libc::P_PID,
            libc::c_long::from(pid),
            &raw mut info,
            libc::WEXITED | libc::WNOWAIT | libc::WNOHANG,
            &raw mut usage,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: waitid filled `info` (or left it zeroed for a running child).
    if unsafe { info.si_pid() } == 0 {
        return Ok(None);
    }
    let time = |tv: libc::timeval| {
        Duration::from_secs(u64::try_from(tv.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(tv.tv_usec).unwrap_or(0))
    };
    Ok(Some(crate::ResourceUsage {
        user_cpu: time(usage.ru_utime),
        system_cpu: time(usage.ru_stime),
        max_rss_bytes: u64::try_from(usage.ru_maxrss).unwrap_or(0).saturating_mul(1024),
    }))
}

/// A pidfd for `pid` registered with the tokio reactor, readable once the
/// process exits; `None` without pidfd support.
#[cfg(target_os = "linux")]
pub(crate) fn exit_notifier(pid: u32) -> Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    let fd = pidfd_open(pid).ok()?;
    // SAFETY: an `OwnedFd` keeps its descriptor open, and returns the same
    // one from `as_raw_fd`, for as long as it lives, which is as long as the
    // `AsyncFd` that owns it.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .ok()
}
