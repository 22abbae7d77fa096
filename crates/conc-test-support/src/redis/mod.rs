//! A real `redis-server` per test: free loopback port, own temp dir, killed on drop.
//!
//! [`RedisServer::start`] runs an ephemeral server (no persistence);
//! [`RedisServer::start_durable`] runs one with an `appendfsync always` AOF, so
//! [`RedisServer::restart`] keeps the data. Fault tests stop the process with
//! [`RedisServer::pause`], kill it with [`RedisServer::kill`], and bring it back on the same
//! port and directory with [`RedisServer::restart`].
//!
//! The binary is `$CONC_REDIS_SERVER` when that is set, else `redis-server` on `PATH`
//! (or what [`RedisServerBuilder::binary`] names). Tests that should skip on a machine
//! without it use [`crate::require_redis`].
//!
//! # Examples
//!
//! ```no_run
//! use conc_test_support::RedisServer;
//!
//! let mut redis = RedisServer::start_durable()?;
//! let url = redis.url(); // "redis://127.0.0.1:<port>/"
//! // ... write through a client, then:
//! redis.restart()?;
//! assert_eq!(redis.url(), url);
//! # Ok::<(), conc_test_support::HarnessError>(())
//! ```

mod binary;
mod builder;
mod faults;
mod process;
mod server;

use std::time::Duration;

pub use binary::find_binary;
pub use builder::RedisServerBuilder;
pub(crate) use process::free_port;
pub use server::RedisServer;

/// The environment variable that names the `redis-server` binary (a path, or a name to
/// look up on `PATH`). When unset or empty, `redis-server` is looked up on `PATH`.
pub const BINARY_ENV: &str = "CONC_REDIS_SERVER";

/// The binary name looked up on `PATH` by default.
const DEFAULT_BINARY: &str = "redis-server";

/// How long a server has to answer `PING` after it is spawned, unless the builder says otherwise.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a `SIGTERM`ed server has to exit before it gets `SIGKILL`.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How often the readiness and exit loops poll.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// How many fresh ports a first start tries when another process takes the chosen one.
const PORT_ATTEMPTS: u32 = 5;

/// How long a restart keeps trying its (fixed) port while it is busy, and the pause between tries.
const RESTART_PORT_WAIT: Duration = Duration::from_secs(2);
const RESTART_RETRY_DELAY: Duration = Duration::from_millis(100);

/// The longest server log kept in an error message (the tail is kept).
const MAX_LOG_IN_ERROR: usize = 16 * 1024;
