//! The Lua scripts of the Redis queue.
//!
//! Every script takes one queue's key base (`<prefix>{<tag>}:`, see
//! [`keys`](super::keys)) as `KEYS[1]` — the push script one per queue it
//! writes to — and builds the queue's other keys from it, so all the keys
//! one script touches for plain jobs share the hash tag and therefore one
//! Redis Cluster slot. Jobs with a workflow also make the scripts touch the
//! workflow keys their flow record names (their batch, their lock; see
//! [`flow_lua`](super::flow_lua)), which are on other slots: workflows need
//! one server. `ARGV[1]` is the time to use, in Unix milliseconds, or empty for the
//! server's `TIME` (the default: a test clock is the only other source).
//! Every script answers the time it used first, so the client keeps its
//! reading of the server's clock current.
//!
//! The scripts run with `EVALSHA`; redis-rs [`Script`] loads a script the
//! server does not know (a restarted server, a `SCRIPT FLUSH`) on the
//! `NOSCRIPT` reply and retries. Every loop is bounded: recovery and pruning
//! move at most a chunk per call, clearing and deleting go a chunk per call.
//!
//! The decisions that need a job's envelope (retry, release, fail, progress,
//! checkpoint) are made in Rust by the crate's one settle logic, from a
//! snapshot read by [`READ`]; [`SETTLE`] applies them only while the lease
//! token still holds and the envelope is still the version read. The one
//! decision taken in Lua is the reservation's refusal ([`RESERVE`]): a job
//! whose attempt would pass `max_attempts`, or whose `retry_until` passed,
//! goes to the failed store — the same two comparisons as the crate's
//! `refuse_reservation`, checked against it by the tests. The record it
//! stores (`R<attempt>:<at>:<envelope>`) is turned into the failed job, with
//! its reason and message, by that same Rust function when read.

use std::sync::LazyLock;

use redis::Script;

/// Helpers every script starts with.
const PRELUDE: &str = r"
local MAXP = 9
local function now_ms()
  if ARGV[1] ~= '' then return tonumber(ARGV[1]) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function jkey(b, id) return b .. 'job:' .. id end
-- Runs `cmd [key] args...` in calls of at most 1,000 arguments (even, so
-- score-member pairs stay whole), under Lua's limit on unpacked values.
local function chunked(cmd, key, args)
  for i = 1, #args, 1000 do
    local j = math.min(i + 999, #args)
    if key then redis.call(cmd, key, unpack(args, i, j))
    else redis.call(cmd, unpack(args, i, j)) end
  end
end
local function rkey(b, p) return b .. 'ready:' .. p end
local function notify(b, n)
  if n < 1 then return end
  if n > 64 then n = 64 end
  local tokens = {}
  for i = 1, n do tokens[i] = '1' end
  redis.call('LPUSH', b .. 'notify', unpack(tokens))
  redis.call('LTRIM', b .. 'notify', 0, 63)
end
local function bury(b, id, name, at, record)
  redis.call('ZADD', b .. 'failed', 0, id)
  redis.call('ZADD', b .. 'failed:at', at, id)
  redis.call('HSET', b .. 'failed:data', id, record)
  redis.call('HSET', b .. 'failed:names', id, name)
  redis.call('ZADD', b .. 'failed:name:' .. name, 0, id)
end
local function forget(b, id)
  local name = redis.call('HGET', b .. 'failed:names', id)
  if not name then return 0 end
  redis.call('ZREM', b .. 'failed', id)
  redis.call('ZREM', b .. 'failed:at', id)
  redis.call('HDEL', b .. 'failed:data', id)
  redis.call('HDEL', b .. 'failed:names', id)
  redis.call('ZREM', b .. 'failed:name:' .. name, id)
  return 1
end
local function prune(b, now, max_age, max_jobs)
  local old = redis.call('ZRANGEBYSCORE', b .. 'failed:at', '-inf', '(' .. (now - max_age),
    'LIMIT', 0, 256)
  for _, id in ipairs(old) do forget(b, id) end
  local excess = redis.call('ZCARD', b .. 'failed:at') - max_jobs
  if excess > 256 then excess = 256 end
  if excess > 0 then
    for _, id in ipairs(redis.call('ZRANGE', b .. 'failed:at', 0, excess - 1)) do
      forget(b, id)
    end
  end
end
local function depth(b)
  local n = redis.call('ZCARD', b .. 'delayed')
  for p = 0, MAXP do n = n + redis.call('LLEN', rkey(b, p)) end
  return n
end
";

/// Stores jobs, all or none.
///
/// `KEYS`: the base of every queue written to. `ARGV[2..]`: nine fields per
/// job: the index of its queue's base in `KEYS`, id, priority, available at,
/// max attempts, retry until (empty for none), name, envelope, flow record
/// (JSON, empty for none; see [`flow_lua`](super::flow_lua)).
/// Answers `{now, 'ok', events...}`, `{now, 'dup', id}` (stored already, or
/// twice in the batch), `{now, 'full', queue index, capacity}` or `{now,
/// 'locked', job index, holder}` (a unique lock is held).
const PUSH: &str = r"
local now = now_ms()
local seen = {}
local count = {}
local jobs = {}
local flows = false
for o = 2, #ARGV, 9 do
  local qi = tonumber(ARGV[o])
  local b, id = KEYS[qi], ARGV[o + 1]
  if seen[id] or redis.call('EXISTS', jkey(b, id)) == 1
      or redis.call('HEXISTS', b .. 'failed:data', id) == 1 then
    return {now, 'dup', id}
  end
  seen[id] = true
  count[qi] = (count[qi] or 0) + 1
  jobs[#jobs + 1] = {b, id, ARGV[o + 2], ARGV[o + 3], ARGV[o + 4], ARGV[o + 5], ARGV[o + 6],
    ARGV[o + 7], ARGV[o + 8]}
  if ARGV[o + 8] ~= '' then flows = true end
end
for qi, n in pairs(count) do
  local cap = redis.call('HGET', KEYS[qi] .. 'meta', 'capacity')
  if cap and depth(KEYS[qi]) + n > tonumber(cap) then
    return {now, 'full', qi, tonumber(cap)}
  end
end
if flows then
  local held = locked(jobs, now)
  if held then return {now, 'locked', jobs[held[1]][2], held[2]} end
  local ev = {}
  for _, j in ipairs(jobs) do store(j, now, ev) end
  return put_events({now, 'ok'}, ev)
end
local ready = {}
local lists, order = {}, {}
for o = 2, #ARGV, 9 do
  local qi = tonumber(ARGV[o])
  local b, id, p, at = KEYS[qi], ARGV[o + 1], ARGV[o + 2], tonumber(ARGV[o + 3])
  local jk = jkey(b, id)
  if ARGV[o + 5] ~= '' then
    redis.call('HSET', jk, 'e', ARGV[o + 7], 'a', 0, 'p', p, 'm', ARGV[o + 4], 'n', ARGV[o + 6],
      's', now, 'u', ARGV[o + 5])
  else
    redis.call('HSET', jk, 'e', ARGV[o + 7], 'a', 0, 'p', p, 'm', ARGV[o + 4], 'n', ARGV[o + 6],
      's', now)
  end
  if at > now then
    redis.call('ZADD', b .. 'delayed', at, id)
  else
    local list = rkey(b, p)
    if not lists[list] then
      lists[list] = {}
      order[#order + 1] = list
    end
    local ids = lists[list]
    ids[#ids + 1] = id
    ready[qi] = (ready[qi] or 0) + 1
  end
end
for _, list in ipairs(order) do chunked('RPUSH', list, lists[list]) end
for qi, n in pairs(ready) do notify(KEYS[qi], n) end
return {now, 'ok', 0}
";

/// Moves due delayed jobs and expired leases back to their ready lists (at
/// most `ARGV[4]` of each), then leases up to `ARGV[2]` jobs for `ARGV[3]`
/// ms, highest priority first, under the queue's global concurrency.
///
/// A job whose attempt (counted now) would pass its `max_attempts`, or whose
/// `retry_until` passed, goes to the failed store instead (at most `ARGV[4]`
/// per call), with failed-store bounds `ARGV[5]` (max age, ms) and `ARGV[6]`
/// (max jobs) — unless it has a workflow: it is then leased *doomed*, its
/// attempt not counted, for the caller to fail it with its workflow (a
/// caller that dies leaves it to come back when the lease expires). A member
/// of a cancelled batch is dropped and counts as cancelled; the jobs sent to
/// the failed store, refused and dropped count together against `ARGV[4]`,
/// so a queue holding a large cancelled batch still costs one chunk per
/// call (a call stopped by it while jobs wait wakes a waiting worker, which
/// reserves again). Answers `{now,
/// paused, leased, dead, doomed, ...}`, then five fields per leased job
/// (id, token, attempt, ready since, envelope), three per dead one (id,
/// attempt, envelope), four per doomed one (id, token, attempt, envelope),
/// then the member outcomes recorded.
const RESERVE: &str = r"
local b = KEYS[1]
local now = now_ms()
local want, lease, chunk = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
for _, from in ipairs({'delayed', 'reserved'}) do
  local due = redis.call('ZRANGEBYSCORE', b .. from, '-inf', now, 'WITHSCORES', 'LIMIT', 0, chunk)
  if #due > 0 then
    local ids = {}
    for i = 1, #due, 2 do
      local id = due[i]
      ids[#ids + 1] = id
      local p = redis.call('HGET', jkey(b, id), 'p')
      if p then
        redis.call('RPUSH', rkey(b, p), id)
        redis.call('HSET', jkey(b, id), 's', due[i + 1])
      end
    end
    redis.call('ZREM', b .. from, unpack(ids))
  end
end
local meta = redis.call('HMGET', b .. 'meta', 'paused', 'concurrency')
if meta[1] == '1' then return {now, 1, 0, 0, 0, 0} end
if meta[2] then
  local room = tonumber(meta[2]) - redis.call('ZCARD', b .. 'reserved')
  if room < want then want = room end
end
local live, dead, doomed, ev = {}, {}, {}, {}
local dropped = 0
local p = MAXP
while #live + #doomed < want and p >= 0 and #dead + #doomed + dropped < chunk do
  local ask = want - #live - #doomed
  local ids = redis.call('LPOP', rkey(b, p), ask)
  if not ids then
    p = p - 1
  else
    for _, id in ipairs(ids) do
      local jk = jkey(b, id)
      local f = redis.call('HMGET', jk, 'e', 'm', 'u', 'n', 's', 'a', 'w', 'wb', 'wm')
      if f[1] then
        local attempt = tonumber(f[6] or '0') + 1
        if f[8] and redis.call('HGET', f[8], 'cancelled') then
          adm(jk, id, 'F')
          redis.call('DEL', jk)
          record(f[8], f[9], 'C', now, '', '', ev)
          dropped = dropped + 1
        elseif attempt > tonumber(f[2]) or (f[3] and now > tonumber(f[3])) then
          if f[7] == '1' then
            doomed[#doomed + 1] = {id, attempt, f[1]}
          else
            bury(b, id, f[4], now, 'R' .. attempt .. ':' .. now .. ':' .. f[1])
            redis.call('DEL', jk)
            dead[#dead + 1] = {id, attempt, f[1]}
          end
        else
          if f[7] == '1' then adm(jk, id, 'R') end
          live[#live + 1] = {id, attempt, f[5], f[1]}
        end
      end
    end
    if #ids < ask then p = p - 1 end
  end
end
if dropped > 0 and #live + #doomed < want and #dead + #doomed + dropped >= chunk then
  notify(b, 1)
end
local out = {now, 0, #live, #dead, #doomed}
local taken = #live + #doomed
local first = 0
if taken > 0 then first = redis.call('INCRBY', b .. 'seq', taken) - taken end
local expires = now + lease
local leased = {}
for i, job in ipairs(live) do
  local token = first + i
  redis.call('HSET', jkey(b, job[1]), 'a', job[2], 't', token)
  leased[#leased + 1] = expires
  leased[#leased + 1] = job[1]
  out[#out + 1] = job[1]
  out[#out + 1] = token
  out[#out + 1] = job[2]
  out[#out + 1] = job[3]
  out[#out + 1] = job[4]
end
for _, job in ipairs(dead) do
  out[#out + 1] = job[1]
  out[#out + 1] = job[2]
  out[#out + 1] = job[3]
end
for i, job in ipairs(doomed) do
  local token = first + #live + i
  redis.call('HSET', jkey(b, job[1]), 't', token)
  leased[#leased + 1] = expires
  leased[#leased + 1] = job[1]
  out[#out + 1] = job[1]
  out[#out + 1] = token
  out[#out + 1] = job[2]
  out[#out + 1] = job[3]
end
if #leased > 0 then chunked('ZADD', b .. 'reserved', leased) end
if #dead > 0 then prune(b, now, tonumber(ARGV[5]), tonumber(ARGV[6])) end
return put_events(out, ev)
";

/// Reads leased jobs for the settle logic: `ARGV[2..]` are ids. Answers
/// `{now, [envelope, attempts, token, version, lease expiry] * ids}`, nil
/// where missing.
const READ: &str = r"
local b = KEYS[1]
local now = now_ms()
local out = {now}
for i = 2, #ARGV do
  local f = redis.call('HMGET', jkey(b, ARGV[i]), 'e', 'a', 't', 'v')
  out[#out + 1] = f[1]
  out[#out + 1] = f[2]
  out[#out + 1] = f[3]
  out[#out + 1] = f[4]
  out[#out + 1] = redis.call('ZSCORE', b .. 'reserved', ARGV[i])
end
return out
";

/// Applies transitions, in order, each only while its lease holds: the job
/// is leased (its expiry after now) under the token given.
///
/// `ARGV[2]`, `ARGV[3]`: failed-store bounds (max age ms, max jobs). Then
/// eight fields per transition: kind, id, token, version expected, version
/// written, and three arguments:
///
/// - `A` ack: deletes the job.
/// - `E` extend: the lease lasts `a` ms from now.
/// - `K` keep: stores envelope `a`.
/// - `Q` requeue: stores envelope `a`, available at `b`.
/// - `D` dead: stores record `a` in the failed store, failed at `b`.
///
/// `K`, `Q` and `D` apply only if the stored version is the one expected
/// (the envelope they were computed from). Answers `{now, r...}`, one `r`
/// per transition: 0 the lease is lost; -1 the envelope changed since it
/// was read (this and every later transition of that job are skipped, to be
/// decided again); -2 the job has a workflow (`A` and `E` only: this and
/// every later transition of that job are skipped, for the workflow's own
/// script); else 1, or the new expiry of an extension.
const SETTLE: &str = r"
local b = KEYS[1]
local now = now_ms()
local out = {now}
local skipped = {}
local requeued, dead = 0, false
-- Acknowledged jobs, deleted together at the end.
local acked, acked_ids, acked_keys = {}, {}, {}
for o = 4, #ARGV, 8 do
  local kind, id, token = ARGV[o], ARGV[o + 1], ARGV[o + 2]
  local jk = jkey(b, id)
  local r = 0
  if skipped[id] then
    r = skipped[id]
  elseif acked[id] then
    r = 0
  else
    local expiry = redis.call('ZSCORE', b .. 'reserved', id)
    local f = redis.call('HMGET', jk, 't', 'v', 'w')
    if expiry and tonumber(expiry) > now and f[1] == token then
      if f[3] == '1' and (kind == 'A' or kind == 'E') then
        skipped[id] = -2
        r = -2
      elseif kind == 'A' then
        acked[id] = true
        acked_ids[#acked_ids + 1] = id
        acked_keys[#acked_keys + 1] = jk
        r = 1
      elseif kind == 'E' then
        r = now + tonumber(ARGV[o + 5])
        redis.call('ZADD', b .. 'reserved', r, id)
      elseif (f[2] or '') ~= ARGV[o + 3] then
        skipped[id] = -1
        r = -1
      elseif kind == 'K' then
        redis.call('HSET', jk, 'e', ARGV[o + 5], 'v', ARGV[o + 4])
        r = 1
      elseif kind == 'Q' then
        redis.call('ZREM', b .. 'reserved', id)
        redis.call('HSET', jk, 'e', ARGV[o + 5], 'v', ARGV[o + 4])
        local at = tonumber(ARGV[o + 6])
        if at > now then
          redis.call('ZADD', b .. 'delayed', at, id)
        else
          redis.call('RPUSH', rkey(b, redis.call('HGET', jk, 'p')), id)
          redis.call('HSET', jk, 's', now)
          requeued = requeued + 1
        end
        r = 1
      elseif kind == 'D' then
        redis.call('ZREM', b .. 'reserved', id)
        local name = redis.call('HGET', jk, 'n')
        redis.call('DEL', jk)
        bury(b, id, name, tonumber(ARGV[o + 6]), ARGV[o + 5])
        dead = true
        r = 1
      end
    end
  end
  out[#out + 1] = r
end
chunked('ZREM', b .. 'reserved', acked_ids)
chunked('DEL', nil, acked_keys)
notify(b, requeued)
if dead then prune(b, now, tonumber(ARGV[2]), tonumber(ARGV[3])) end
return out
";

/// Gives leases back that no worker will use: `ARGV[2..]` are pairs (id,
/// token). Each job still leased under its token goes back to the head of
/// its ready list, the reservation uncounted. `ARGV` pairs whose token is
/// `corrupt` instead set the job aside (its envelope does not decode): moved
/// to the `corrupt` hash, out of the queue. A job given back whose
/// reservation ended its admission (unique until processing, debounce) takes
/// it again when the key is free. Answers `{now, given back}`.
const GIVE_BACK: &str = r"
local b = KEYS[1]
local now = now_ms()
local back = 0
for i = #ARGV - 1, 2, -2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local jk = jkey(b, id)
  if token == 'corrupt' then
    local e = redis.call('HGET', jk, 'e')
    if e then redis.call('HSET', b .. 'corrupt', id, e) end
    redis.call('ZREM', b .. 'reserved', id)
    redis.call('DEL', jk)
  elseif redis.call('HGET', jk, 't') == token and redis.call('ZREM', b .. 'reserved', id) == 1 then
    local a = redis.call('HINCRBY', jk, 'a', -1)
    if a < 0 then redis.call('HSET', jk, 'a', 0) end
    if redis.call('HGET', jk, 'w') == '1' then readmit(jk, id, b, now) end
    redis.call('LPUSH', rkey(b, redis.call('HGET', jk, 'p')), id)
    back = back + 1
  end
end
notify(b, back)
return {now, back}
";

/// A queue's sizes: `{now, ready, delayed, due, reserved, expired, paused,
/// oldest ready since (-1 for none), oldest due (-1 for none)}`.
const SIZE: &str = r"
local b = KEYS[1]
local now = now_ms()
local ready, oldest = 0, -1
for p = 0, MAXP do
  local n = redis.call('LLEN', rkey(b, p))
  if n > 0 then
    ready = ready + n
    local s = redis.call('HGET', jkey(b, redis.call('LINDEX', rkey(b, p), 0)), 's')
    if s and (oldest < 0 or tonumber(s) < oldest) then oldest = tonumber(s) end
  end
end
local due_first = redis.call('ZRANGEBYSCORE', b .. 'delayed', '-inf', now, 'WITHSCORES',
  'LIMIT', 0, 1)
local paused = redis.call('HGET', b .. 'meta', 'paused') == '1' and 1 or 0
return {now, ready, redis.call('ZCARD', b .. 'delayed'),
  redis.call('ZCOUNT', b .. 'delayed', '-inf', now), redis.call('ZCARD', b .. 'reserved'),
  redis.call('ZCOUNT', b .. 'reserved', '-inf', now), paused, oldest,
  due_first[2] and tonumber(due_first[2]) or -1}
";

/// Up to `ARGV[2]` ready jobs in reservation order: `{now, [id, envelope]...}`.
const PEEK: &str = r"
local b = KEYS[1]
local out = {now_ms()}
local left = tonumber(ARGV[2])
for p = MAXP, 0, -1 do
  if left <= 0 then break end
  for _, id in ipairs(redis.call('LRANGE', rkey(b, p), 0, left - 1)) do
    local e = redis.call('HGET', jkey(b, id), 'e')
    if e then
      out[#out + 1] = id
      out[#out + 1] = e
      left = left - 1
    end
  end
end
return out
";

/// Deletes up to `ARGV[2]` ready and delayed jobs. A deleted job lets go of
/// its admission lock and, for a batch member, counts as cancelled; the
/// callbacks that fires are stored marked with the clear's fence `ARGV[3]`,
/// and jobs so marked are kept (a clear does not delete what it fired).
/// Answers `{now, deleted, more, events...}`.
const CLEAR: &str = r"
local b = KEYS[1]
local now = now_ms()
local left = tonumber(ARGV[2])
FENCE = ARGV[3]
local deleted = 0
local ev = {}
local function drop(id)
  local jk = jkey(b, id)
  local f = redis.call('HMGET', jk, 'cf', 'w', 'wb', 'wm')
  if f[1] == FENCE then return false end
  if f[2] == '1' then adm(jk, id, 'F') end
  redis.call('DEL', jk)
  if f[3] and f[3] ~= '' then record(f[3], f[4], 'C', now, '', '', ev) end
  return true
end
-- Only deletions spend the budget: the jobs this clear fired (fenced) sit at
-- the tail of their list, so a list is done at the first one, and the
-- delayed set is walked past them; a call that deletes a whole chunk says
-- there may be more, one that does not is the last.
for p = 0, MAXP do
  while left > 0 do
    local ids = redis.call('LPOP', rkey(b, p), left)
    if not ids then break end
    local kept = {}
    for _, id in ipairs(ids) do
      if #kept == 0 and drop(id) then
        deleted = deleted + 1
        left = left - 1
      else
        kept[#kept + 1] = id
      end
    end
    if #kept > 0 then
      redis.call('RPUSH', rkey(b, p), unpack(kept))
      break
    end
  end
  if left <= 0 then break end
end
local skipped = 0
while left > 0 do
  local ids = redis.call('ZRANGE', b .. 'delayed', skipped, skipped + left - 1)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    if drop(id) then
      redis.call('ZREM', b .. 'delayed', id)
      deleted = deleted + 1
      left = left - 1
    else
      skipped = skipped + 1
    end
  end
end
return put_events({now, deleted, left <= 0 and 1 or 0}, ev)
";

/// Sets (`ARGV[3]` not empty) or removes a queue setting `ARGV[2]`; wakes
/// idle workers when `ARGV[4]` is `1`. Answers `{now}`.
const SETTING: &str = r"
local b = KEYS[1]
local now = now_ms()
if ARGV[3] == '' then
  redis.call('HDEL', b .. 'meta', ARGV[2])
else
  redis.call('HSET', b .. 'meta', ARGV[2], ARGV[3])
end
if ARGV[4] == '1' then notify(b, 64) end
return {now}
";

/// A page of failed records by id: of job name `ARGV[2]` (empty: any),
/// after id `ARGV[3]` (empty: from the first), at most `ARGV[4]`. Answers
/// `{now, [id, record]...}`.
const FAILED_PAGE: &str = r"
local b = KEYS[1]
local now = now_ms()
local index = b .. 'failed'
if ARGV[2] ~= '' then index = b .. 'failed:name:' .. ARGV[2] end
local from = '-'
if ARGV[3] ~= '' then from = '(' .. ARGV[3] end
local out = {now}
for _, id in ipairs(redis.call('ZRANGEBYLEX', index, from, '+', 'LIMIT', 0, ARGV[4])) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', b .. 'failed:data', id)
end
return out
";

/// The failed records of ids `ARGV[2..]`: `{now, [id, record]...}` for those
/// found.
const FAILED_GET: &str = r"
local b = KEYS[1]
local out = {now_ms()}
for i = 2, #ARGV do
  local record = redis.call('HGET', b .. 'failed:data', ARGV[i])
  if record then
    out[#out + 1] = ARGV[i]
    out[#out + 1] = record
  end
end
return out
";

/// Puts failed jobs back, available now: seven fields per job (id,
/// priority, max attempts, retry until, name, envelope, flow record). A job
/// no longer failed, or whose id is queued already, is skipped. Answers
/// `{now, id...}` of those put back.
const REVIVE: &str = r"
local b = KEYS[1]
local now = now_ms()
local out = {now}
for o = 2, #ARGV, 7 do
  local id = ARGV[o]
  local jk = jkey(b, id)
  if redis.call('HEXISTS', b .. 'failed:data', id) == 1 and redis.call('EXISTS', jk) == 0 then
    forget(b, id)
    redis.call('HSET', jk, 'e', ARGV[o + 5], 'a', 0, 'p', ARGV[o + 1], 'm', ARGV[o + 2],
      'n', ARGV[o + 4], 's', now)
    if ARGV[o + 3] ~= '' then redis.call('HSET', jk, 'u', ARGV[o + 3]) end
    if ARGV[o + 6] ~= '' then
      local wf = cjson.decode(ARGV[o + 6])
      redis.call('HSET', jk, 'w', '1')
      if wf.b and wf.b ~= '' then
        redis.call('HSET', jk, 'wb', wf.b, 'wm', wf.m)
        if redis.call('HEXISTS', wf.b .. ':members', wf.m) == 1 then
          redis.call('HSET', wf.b .. ':members', wf.m, b .. '\n' .. id)
        end
      end
    end
    redis.call('RPUSH', rkey(b, ARGV[o + 1]), id)
    out[#out + 1] = id
  end
end
notify(b, #out - 1)
return out
";

/// Deletes failed jobs: with `ARGV[2]` = `ids`, the ids `ARGV[4..]`; with
/// `all`, up to 256 of the queue's; with `before`, up to 256 of those failed
/// before Unix ms `ARGV[3]`. Answers `{now, deleted}`.
const FORGET: &str = r"
local b = KEYS[1]
local now = now_ms()
local ids
if ARGV[2] == 'all' then
  ids = redis.call('ZRANGE', b .. 'failed:at', 0, 255)
elseif ARGV[2] == 'before' then
  ids = redis.call('ZRANGEBYSCORE', b .. 'failed:at', '-inf', '(' .. ARGV[3], 'LIMIT', 0, 256)
else
  ids = {}
  for i = 4, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local deleted = 0
for _, id in ipairs(ids) do deleted = deleted + forget(b, id) end
return {now, deleted}
";

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{}{body}", super::flow_lua::FLOW_PRELUDE))
}

/// A workflow script: the preludes, then `body`.
pub(super) fn flow_script(body: &str) -> Script {
    script(body)
}

pub(super) static PUSH_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(PUSH));
pub(super) static RESERVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(RESERVE));
pub(super) static READ_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(READ));
pub(super) static SETTLE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(SETTLE));
pub(super) static GIVE_BACK_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(GIVE_BACK));
pub(super) static SIZE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(SIZE));
pub(super) static PEEK_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(PEEK));
pub(super) static CLEAR_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(CLEAR));
pub(super) static SETTING_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(SETTING));
pub(super) static FAILED_PAGE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(FAILED_PAGE));
pub(super) static FAILED_GET_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(FAILED_GET));
pub(super) static REVIVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(REVIVE));
pub(super) static FORGET_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(FORGET));
