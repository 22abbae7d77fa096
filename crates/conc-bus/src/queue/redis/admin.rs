//! Everything but the lease cycle and the failed store: sizes, peeks,
//! clearing, and each queue's settings (pause, bound, global concurrency).

use conc_core::config;

use super::Inner;
use super::cycle::decode;
use super::reply::{backend, unexpected};
use super::scripts::{CLEAR_SCRIPT, PEEK_SCRIPT, SETTING_SCRIPT, SIZE_SCRIPT};
use crate::job::{Envelope, check_queue_name};
use crate::queue::backend::QueueSize;
use crate::queue::error::QueueError;

/// How many jobs one call of the clear script deletes.
const CLEAR_CHUNK: u64 = 1_000;

/// The jobs of `queue`, by state.
pub(super) async fn size(inner: &Inner, queue: &str) -> Result<QueueSize, QueueError> {
    let invocation = inner.invocation(&SIZE_SCRIPT, &inner.base(queue));
    let (now, mut reply) = inner.call("size", &invocation).await?;
    let ready = reply.uint("ready")?;
    let delayed = reply.uint("delayed")?;
    let due = reply.uint("due")?;
    let reserved = reply.uint("reserved")?;
    let expired = reply.uint("expired")?;
    let paused = reply.int("paused")? == 1;
    let oldest_ready = u64::try_from(reply.int("oldest ready")?).ok();
    let oldest_due = u64::try_from(reply.int("oldest due")?).ok();
    let oldest = match (oldest_ready, oldest_due) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(QueueSize {
        ready: ready + due + expired,
        delayed: delayed.saturating_sub(due),
        reserved: reserved.saturating_sub(expired),
        paused,
        oldest_wait_ms: oldest.map_or(0, |since| now.saturating_sub(since)),
    })
}

/// Up to `limit` ready jobs of `queue`, in reservation order.
pub(super) async fn peek(
    inner: &Inner,
    queue: &str,
    limit: usize,
) -> Result<Vec<Envelope>, QueueError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut invocation = inner.invocation(&PEEK_SCRIPT, &inner.base(queue));
    invocation.arg(limit);
    let (_, mut reply) = inner.call("peek", &invocation).await?;
    let mut out = Vec::with_capacity(reply.remaining());
    while reply.remaining() > 0 {
        let id = reply.text("id")?;
        let text = reply.text("envelope")?;
        out.push(decode(&id, &text).map_err(QueueError::Corrupt)?);
    }
    Ok(out)
}

/// Deletes the ready and delayed jobs of `queue`, a chunk per call.
pub(super) async fn clear(inner: &Inner, queue: &str) -> Result<u64, QueueError> {
    let base = inner.base(queue);
    let mut cleared = 0;
    // Callbacks the clear fires are marked with it, and kept.
    let fence = crate::id::JobId::new().to_string();
    loop {
        let mut invocation = inner.invocation(&CLEAR_SCRIPT, &base);
        invocation.arg(CLEAR_CHUNK).arg(&fence);
        let (_, mut reply) = inner.call("clear", &invocation).await?;
        cleared += reply.uint("deleted")?;
        let more = reply.int("more")?;
        super::flow::announce(inner, &mut reply)?;
        if more == 0 {
            return Ok(cleared);
        }
    }
}

/// Sets or removes the setting `field` of `queue`, notes the queue, and
/// wakes its idle workers when `wake`.
async fn set(
    inner: &Inner,
    queue: &str,
    field: &str,
    value: Option<u64>,
    wake: bool,
) -> Result<(), QueueError> {
    check_queue_name(queue)?;
    let mut invocation = inner.invocation(&SETTING_SCRIPT, &inner.base(queue));
    invocation.arg(field).arg(value.map_or_else(String::new, |v| v.to_string()));
    invocation.arg(if wake { "1" } else { "0" });
    let mut register = redis::cmd("SADD");
    register.arg(&*inner.settings.registry).arg(queue);
    let mut connection = inner.manager.clone();
    let (registered, set) = tokio::join!(
        register.query_async::<i64>(&mut connection),
        inner.call("setting", &invocation)
    );
    registered.map_err(backend)?;
    set.map(|_| ())
}

/// Pauses or resumes `queue`.
pub(super) async fn set_paused(inner: &Inner, queue: &str, paused: bool) -> Result<(), QueueError> {
    set(inner, queue, "paused", Some(u64::from(paused)), !paused).await
}

/// Bounds `queue` (or lifts its bound).
pub(super) async fn set_capacity(
    inner: &Inner,
    queue: &str,
    capacity: Option<u64>,
) -> Result<(), QueueError> {
    if let Some(capacity) = capacity {
        config::at_least("capacity", capacity, 1)?;
    }
    set(inner, queue, "capacity", capacity, false).await
}

/// Bounds the jobs of `queue` leased at once (or lifts the bound).
pub(super) async fn set_global_concurrency(
    inner: &Inner,
    queue: &str,
    limit: Option<u32>,
) -> Result<(), QueueError> {
    if let Some(limit) = limit {
        config::at_least("global_concurrency", limit, 1)?;
    }
    set(inner, queue, "concurrency", limit.map(u64::from), true).await
}

/// The bound of [`set_global_concurrency`].
pub(super) async fn global_concurrency(
    inner: &Inner,
    queue: &str,
) -> Result<Option<u32>, QueueError> {
    let key = format!("{}meta", inner.base(queue));
    let value: Option<String> = redis::cmd("HGET")
        .arg(key)
        .arg("concurrency")
        .query_async(&mut inner.manager.clone())
        .await
        .map_err(backend)?;
    value
        .map(|text| text.parse().map_err(|_| unexpected("HGET", &format!("concurrency {text:?}"))))
        .transpose()
}

/// The queues, by name.
pub(super) async fn queues(inner: &Inner) -> Result<Vec<String>, QueueError> {
    let mut names: Vec<String> = redis::cmd("SMEMBERS")
        .arg(&*inner.settings.registry)
        .query_async(&mut inner.manager.clone())
        .await
        .map_err(backend)?;
    names.sort_unstable();
    Ok(names)
}
