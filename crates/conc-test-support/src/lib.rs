//! Test harnesses for the conc workspace: a real `redis-server` per test, a real headless
//! Chromium driven over WebDriver, and the rule for tests whose service is missing.
//!
//! **Unix only**: on other platforms the crate does not compile (a `compile_error!` says why),
//! because it signals and tracks server processes through `libc`. See
//! [Platform support](#platform-support).
//!
//! # Overview
//!
//! Tests of Redis backends run against a real server, never a mock. [`RedisServer`] starts
//! one `redis-server` child process per test on a free loopback port, in its own temporary
//! directory, and waits until it answers `PING`. Fault tests can [`RedisServer::pause`] it
//! (`SIGSTOP`), [`RedisServer::kill`] it (`SIGKILL`) and [`RedisServer::restart`] it on the
//! same port and directory; a durable server ([`RedisServer::start_durable`]) keeps its data
//! across restarts. Dropping the handle kills and reaps the process, also when the test
//! panics.
//!
//! When the binary is missing, [`require_redis`] prints why and returns `None`, so the test
//! skips; with `CONC_REQUIRE_SERVICES=1` (as CI sets it) it panics instead, so a CI machine
//! without the service fails loudly rather than passing on skipped tests. A binary that is
//! there but fails to start is always a failure. The binary is `$CONC_REDIS_SERVER` when
//! set, else `redis-server` on `PATH`.
//!
//! Dashboard tests drive a real headless Chromium: [`require_browser`] starts `chromedriver`
//! on a free loopback port with one headless session ([`Browser`]: open, find by CSS
//! selector, click, read text, run a script, screenshot, poll with a deadline), ended on
//! drop, or skips the test the same way when the binaries are missing. [`http`] is the small
//! blocking HTTP client it speaks WebDriver with, also usable to scrape a test's endpoints.
//!
//! This crate is for tests only (`publish = false`).
//!
//! # Platform support
//!
//! | platform | status |
//! |---|---|
//! | Linux (and Android) | supported; a server also dies when the test process is killed (`PR_SET_PDEATHSIG`) |
//! | other Unix (macOS, the BSDs) | supported; a test process killed with `SIGKILL` leaves its servers running |
//! | Windows and other non-Unix targets | not supported: the crate fails to compile |
//!
//! [`RedisServer`] explains what happens to a server when its test process is killed.
//!
//! # Feature flags
//!
//! None.
//!
//! # Examples
//!
//! A test that needs Redis:
//!
//! ```no_run
//! #[test]
//! fn survives_a_restart() {
//!     let Some(mut redis) = conc_test_support::require_durable_redis() else { return };
//!     let url = redis.url(); // hand this to the client under test
//!     // ... write ...
//!     redis.restart().unwrap();
//!     // ... the data is still there, on the same url ...
//!     # let _ = url;
//! }
//! ```
//!
//! A server with extra options:
//!
//! ```no_run
//! use conc_test_support::RedisServer;
//!
//! let Some(redis) = RedisServer::builder().arg("--maxmemory", "10mb").require() else {
//!     return;
//! };
//! println!("{}", redis.url());
//! ```

#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(not(unix))]
compile_error!("conc-test-support supports Unix only: it signals server processes through libc");

pub mod browser;
pub mod edge;
mod error;
pub mod http;
pub mod lockstep;
pub mod redis;
mod resp;
mod sys;

use std::fmt;

pub use crate::browser::{Browser, require_browser};
pub use crate::error::HarnessError;
pub use crate::redis::{RedisServer, RedisServerBuilder};

/// The environment variable that makes a missing service a test failure instead of a skip.
pub const REQUIRE_SERVICES_ENV: &str = "CONC_REQUIRE_SERVICES";

/// Whether tests must fail rather than skip when a service they need is missing:
/// `CONC_REQUIRE_SERVICES` is `1`, `true` or `yes` (any case). CI sets it.
///
/// # Examples
///
/// ```
/// if conc_test_support::services_required() {
///     // running under CI: every service must be present
/// }
/// ```
pub fn services_required() -> bool {
    std::env::var_os(REQUIRE_SERVICES_ENV).is_some_and(|value| {
        let value = value.to_string_lossy();
        let value = value.trim();
        value == "1" || value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("yes")
    })
}

/// Reports that `service` is unavailable to the current test: panics when
/// [`services_required`], else prints to stderr why the test is skipped. The caller then
/// returns early.
///
/// # Panics
///
/// When [`services_required`] is true.
///
/// # Examples
///
/// ```no_run
/// # fn postgres_binary() -> Option<std::path::PathBuf> { None }
/// let Some(binary) = postgres_binary() else {
///     conc_test_support::skip_unavailable("postgres", "no `postgres` on PATH");
///     return;
/// };
/// ```
#[allow(clippy::print_stderr, reason = "the skip notice is for the person reading test output")]
#[track_caller]
pub fn skip_unavailable(service: &str, reason: impl fmt::Display) {
    assert!(!services_required(), "{REQUIRE_SERVICES_ENV}=1 but {service} was not found: {reason}");
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("<unnamed>");
    eprintln!(
        "skipping {test}: {service} is unavailable: {reason} \
         (set {REQUIRE_SERVICES_ENV}=1 to make this a failure)"
    );
}

/// Starts an ephemeral [`RedisServer`], or returns `None` after printing why when the
/// `redis-server` binary is missing, so the test can skip.
///
/// # Panics
///
/// When the binary is missing and `CONC_REQUIRE_SERVICES=1`, or when it is there but the
/// server fails to start (a real failure).
///
/// # Examples
///
/// ```no_run
/// let Some(redis) = conc_test_support::require_redis() else { return };
/// assert!(redis.url().starts_with("redis://127.0.0.1:"));
/// ```
#[track_caller]
pub fn require_redis() -> Option<RedisServer> {
    RedisServer::builder().require()
}

/// Starts a durable (AOF, `appendfsync always`) [`RedisServer`], or returns `None` after
/// printing why when the `redis-server` binary is missing.
///
/// # Panics
///
/// As [`require_redis`].
///
/// # Examples
///
/// ```no_run
/// let Some(mut redis) = conc_test_support::require_durable_redis() else { return };
/// redis.restart().unwrap(); // data written before is still there
/// ```
#[track_caller]
pub fn require_durable_redis() -> Option<RedisServer> {
    RedisServer::builder().durable(true).require()
}
