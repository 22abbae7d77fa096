//! The few system calls std and tokio do not wrap: signals to a process or a
//! process group, and the opt-in `pre_exec` hook for limits and the
//! parent-death signal. All `unsafe` of the crate is here.
#![allow(unsafe_code)]

use std::io;

use crate::{Limits, Signal};

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
        if let Some(cpu) = limits.cpu_seconds {
            set_limit(libc::RLIMIT_CPU, cpu)?;
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
