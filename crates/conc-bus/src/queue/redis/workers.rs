//! Worker heartbeats in Redis: two keys outside every queue's tag,
//!
//! ```text
//! <prefix>workers:{beats}        HASH  worker id -> its last beat (JSON)
//! <prefix>workers:{beats}:seen   ZSET  worker id -> when it counts as gone (Unix ms)
//! ```
//!
//! sharing the hash tag `beats`, so that each script runs on one Redis
//! Cluster slot. No queue's key can be one of them: a queue's keys have a
//! `{` right after the prefix. Recording a beat and listing delete the beats
//! whose time is up (at most 100 per call); a listing reads at most
//! [`MAX_LISTED`] workers.

use std::sync::LazyLock;

use redis::{Script, ScriptInvocation};

use super::{Inner, Time};
use crate::queue::beat::{WorkerBeat, live};
use crate::queue::error::QueueError;

/// The most workers one listing reads.
pub(super) const MAX_LISTED: usize = 1_000;

/// The time, and the deletion of gone beats, every script starts with.
const PRELUDE: &str = r"
local now
if ARGV[1] ~= '' then now = tonumber(ARGV[1]) else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. now, 'LIMIT', 0, 100)
if #gone > 0 then
  redis.call('HDEL', KEYS[1], unpack(gone))
  redis.call('ZREM', KEYS[2], unpack(gone))
end
";

/// `ARGV[2]` id, `ARGV[3]` beat, `ARGV[4]` when it counts as gone.
static RECORD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[2], tonumber(ARGV[4]), ARGV[2])
return {{now}}"
    ))
});

/// `ARGV[2]` id; answers whether it was there.
static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}
local removed = redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[2])
return {{now, removed}}"
    ))
});

/// `ARGV[2]` the most to read; answers the live beats.
static LIST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], now, '+inf', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {{now}}
for _, id in ipairs(ids) do
  local beat = redis.call('HGET', KEYS[1], id)
  if beat then out[#out + 1] = beat end
end
return out"
    ))
});

/// An invocation of `script` over the two heartbeat keys, the time filled in.
fn invocation<'a>(inner: &Inner, script: &'a Script) -> ScriptInvocation<'a> {
    let mut invocation = script.prepare_invoke();
    let beats = format!("{}workers:{{beats}}", inner.settings.prefix);
    invocation.key(&beats).key(format!("{beats}:seen"));
    match &inner.time {
        Time::Server { .. } => invocation.arg(""),
        Time::Client(clock) => invocation.arg(clock.now()),
    };
    invocation
}

/// Stores `beat`.
pub(super) async fn record(inner: &Inner, beat: &WorkerBeat) -> Result<(), QueueError> {
    let text = serde_json::to_string(beat).map_err(|error| {
        QueueError::Backend(format!("a heartbeat does not serialize: {error}").into())
    })?;
    let mut invocation = invocation(inner, &RECORD);
    invocation.arg(&beat.id).arg(text).arg(beat.expires_at());
    inner.call("record worker", &invocation).await?;
    Ok(())
}

/// Deletes the beat of `id`; whether there was one.
pub(super) async fn remove(inner: &Inner, id: &str) -> Result<bool, QueueError> {
    let mut invocation = invocation(inner, &REMOVE);
    invocation.arg(id);
    let (_, mut reply) = inner.call("remove worker", &invocation).await?;
    Ok(reply.uint("removed")? > 0)
}

/// The live beats, sorted. A beat that does not decode (written by another
/// release) is left out.
pub(super) async fn list(inner: &Inner) -> Result<Vec<WorkerBeat>, QueueError> {
    let mut invocation = invocation(inner, &LIST);
    invocation.arg(MAX_LISTED);
    let (now, mut reply) = inner.call("workers", &invocation).await?;
    let mut out = Vec::with_capacity(reply.remaining());
    while reply.remaining() > 0 {
        let text = reply.text("beat")?;
        match serde_json::from_str(&text) {
            Ok(beat) => out.push(beat),
            Err(error) => {
                tracing::debug!(target: "conc_bus", %error, "a stored heartbeat does not decode");
            }
        }
    }
    Ok(live(out, now))
}

/// Whether each of `queues` is paused: one `HGET` of its settings each,
/// pipelined.
pub(super) async fn paused(inner: &Inner, queues: &[String]) -> Result<Vec<bool>, QueueError> {
    if queues.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for queue in queues {
        pipe.hget(format!("{}meta", inner.base(queue)), "paused");
    }
    let flags: Vec<Option<String>> =
        pipe.query_async(&mut inner.manager.clone()).await.map_err(super::reply::backend)?;
    Ok(flags.into_iter().map(|flag| flag.as_deref() == Some("1")).collect())
}
