//! Idle workers' waits: `BLPOP` on the queues' wake-up lists over dedicated
//! connections, so a push on any host wakes them at once.
//!
//! A blocking command holds its connection until it returns, so it never
//! goes over the shared multiplexed connection. Each wait takes an idle
//! dedicated connection (or opens one), sets its response timeout to the
//! wait plus a margin, and puts it back when the `BLPOP` answered. A wait
//! whose caller stopped waiting drops its connection instead (it may still
//! be blocked on the server; closing it ends that), and a wait that cannot
//! open a connection or whose `BLPOP` fails sleeps at most [`MARGIN`] and
//! returns: the caller polls again (and its next call reports a server that
//! is gone), so a wait for minutes never sleeps through the pushes made
//! meanwhile.

use std::sync::PoisonError;
use std::time::Duration;

use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;

use super::{Inner, keys};

/// How much longer than the wait a blocking connection waits for the
/// server's answer, and the longest a wait without one sleeps.
const MARGIN: Duration = Duration::from_secs(1);

/// Idle dedicated connections kept for later waits.
const KEEP_IDLE: usize = 16;

/// Waits until a job may have become available on `queues`, or `timeout`.
pub(super) async fn wait(inner: &Inner, queues: &[String], timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    if queues.is_empty() || timeout.is_zero() {
        tokio::time::sleep_until(deadline).await;
        return;
    }
    // Without a blocking connection nothing wakes the wait: poll soon.
    let fallback = deadline.min(tokio::time::Instant::now() + MARGIN);
    let Some(mut connection) = connection(inner).await else {
        tokio::time::sleep_until(fallback).await;
        return;
    };
    connection.set_response_timeout(timeout.saturating_add(MARGIN));
    let mut blpop = redis::cmd("BLPOP");
    for queue in queues {
        blpop.arg(keys::notify(&inner.settings.prefix, queue));
    }
    // Redis reads the timeout in seconds, decimals allowed; 0 would block
    // for ever.
    blpop.arg(timeout.as_secs_f64().max(0.001));
    match blpop.query_async::<Option<(String, String)>>(&mut connection).await {
        Ok(_) => {
            let mut idle = inner.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < KEEP_IDLE {
                idle.push(connection);
            }
        }
        Err(error) => {
            tracing::debug!(target: "conc_bus", %error, "a blocking wait on Redis failed; polling");
            drop(connection);
            tokio::time::sleep_until(fallback).await;
        }
    }
}

/// An idle dedicated connection, or a new one; `None` when none opens.
async fn connection(inner: &Inner) -> Option<MultiplexedConnection> {
    let idle = inner.waiting.lock().unwrap_or_else(PoisonError::into_inner).pop();
    if idle.is_some() {
        return idle;
    }
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(inner.settings.connection_timeout))
        .set_response_timeout(Some(inner.settings.connection_timeout));
    inner.client.get_multiplexed_async_connection_with_config(&config).await.ok()
}
