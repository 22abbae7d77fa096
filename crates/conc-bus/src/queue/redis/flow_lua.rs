//! The Lua the Redis queue's workflows share, prepended to every script after
//! the queue prelude: storing a job with its workflow fields, admission
//! (unique locks and debounce records), and the batch state machine's
//! atomic part (a member's outcome set once, the callbacks it fires claimed
//! by a flag and stored in the same step).
//!
//! What can be decided before a script runs is decided in Rust by the
//! crate's one state machine (the next link of a chain, a chain's `catch`,
//! the callback jobs with their derived ids, a settlement's effect); the
//! scripts keep only what must be atomic with the queue change.
//!
//! A job with a workflow keeps, besides its envelope, a small flow record in
//! its hash, so that no script parses the envelope: `w` (`1`: settling it
//! needs its workflow), `wb` (its batch's key), `wm` (the member it counts
//! as), `wk` (its admission key) and `wr` (when its lock goes: `P` processed,
//! `G` processing, `X` expiry, `D` debounce).
//!
//! A job *spec* is what a script stores: an array of nine strings (queue
//! key base, id, priority, available at, max attempts, retry until, name,
//! envelope, flow record as JSON or empty), sent as JSON when it travels as
//! one argument or sits in a batch's hash (its `then`, `finally` and
//! timeout `catch` jobs, rendered when the batch is created).
//!
//! A batch `B` (`<prefix>wf:batch:<id>`) is a hash of its settings, times,
//! claimed flags (`fthen`, `fcatch`, `ffinally`) and outcome counts moved
//! only when an outcome is set; `B:members` (member id -> where its job is:
//! queue base, newline, job id), `B:ids` (the member ids, for paging in id
//! order), `B:outcomes` (member id -> `S`, `F` or `C`, each set once with
//! `HSETNX`) and `B:failed` (failed members in the order they failed).
//! The batch's hash also keeps its sweep chunk (`sc`) and, while a sweep
//! of its members is under way, where it stopped (`sweep`); the batches
//! with a sweep pending are in `<prefix>wf:sweeps` (batch id -> when it was
//! noted), which the timeout check of each reservation goes on with.

/// The shared workflow functions.
pub(super) const FLOW_PRELUDE: &str = r"
local FENCE = nil
local record
local function spec_of(text) return cjson.decode(text) end
-- Takes waiting job `id` of the queue at `b` out of its indexes; whether it
-- was waiting (not leased, still stored). With `rm`, a ready job's removal
-- from its list is only noted there (list -> {n, set}), for `drop_ready`.
local function unqueue(b, id, rm)
  if redis.call('ZSCORE', b .. 'reserved', id) then return false end
  local p = redis.call('HGET', jkey(b, id), 'p')
  if not p then return false end
  if redis.call('ZREM', b .. 'delayed', id) == 0 then
    local list = rkey(b, p)
    if rm then
      local noted = rm[list]
      if not noted then
        noted = {n = 0, set = {}}
        rm[list] = noted
      end
      noted.n = noted.n + 1
      noted.set[id] = true
    else
      redis.call('LREM', list, 1, id)
    end
  end
  return true
end
-- Removes the ids `rm` noted from their ready lists: one `LREM` each for a
-- few, else the list is rewritten once without them (a cancelled batch's
-- thousands of members cost one pass over the list, not one each).
local function drop_ready(rm)
  for list, noted in pairs(rm) do
    if noted.n <= 16 then
      for id in pairs(noted.set) do redis.call('LREM', list, 1, id) end
    else
      local keep = {}
      for _, id in ipairs(redis.call('LRANGE', list, 0, -1)) do
        if not noted.set[id] then keep[#keep + 1] = id end
      end
      redis.call('DEL', list)
      chunked('RPUSH', list, keep)
    end
  end
end
-- The admission step `step` (`R` reserved, `F` finished) of job `id` stored
-- at `jk`: its lock or debounce record goes when the policy says so and the
-- job still owns it (until processing: at its start, or at its end when it
-- never started), as `admission::machine::on` says.
local function adm(jk, id, step)
  local f = redis.call('HMGET', jk, 'wk', 'wr')
  if not f[1] or f[1] == '' then return end
  local r = f[2]
  if (r == 'P' and step == 'F') or r == 'G' or r == 'D' then
    if redis.call('HGET', f[1], 'o') == id then redis.call('DEL', f[1]) end
  end
end
-- Job `id` stored at `jk` in queue base `b`, handed back after the
-- reservation that ended its admission (until processing, debounce): it
-- takes its lock or debounce record again when the key is free, as if that
-- reservation had not happened. (A dispatch that took the key in between
-- keeps it.)
local function readmit(jk, id, b, now)
  local f = redis.call('HMGET', jk, 'wk', 'wr', 'wt')
  if not f[1] or f[1] == '' then return end
  if f[2] == 'D' then
    if redis.call('EXISTS', f[1]) == 0 then
      redis.call('HSET', f[1], 'o', id, 'q', b, 'f', now)
    end
  elseif f[2] == 'G' then
    local held = redis.call('HMGET', f[1], 'o', 'x')
    if held[1] and (not held[2] or tonumber(held[2]) > now) then return end
    redis.call('DEL', f[1])
    redis.call('HSET', f[1], 'o', id)
    if f[3] and f[3] ~= '' then
      redis.call('HSET', f[1], 'x', now + tonumber(f[3]))
      redis.call('PEXPIRE', f[1], tonumber(f[3]) + 60000)
    end
  end
end
-- The first job of `jobs` (specs) refused by a unique lock: its index and
-- the holder; nil when every one may be stored.
local function locked(jobs, now)
  local taken = {}
  for i, j in ipairs(jobs) do
    if j[9] ~= '' then
      local wf = cjson.decode(j[9])
      if wf.k and wf.k ~= '' and wf.r ~= 'D' then
        local held = redis.call('HMGET', wf.k, 'o', 'x')
        if held[1] and held[1] ~= j[2] and (not held[2] or tonumber(held[2]) > now) then
          return {i, held[1]}
        end
        if taken[wf.k] then return {i, taken[wf.k]} end
        taken[wf.k] = j[2]
      end
    end
  end
  return nil
end
-- Stores job spec `j` at `now` (checked by the caller), admitting it: a
-- unique job takes its lock, a debounced one supersedes the job of its key
-- still waiting. A job whose id is stored already is skipped (the same
-- callback never makes two jobs). Batch outcomes it causes go to `ev`.
local function store(j, now, ev)
  local b, id = j[1], j[2]
  local jk = jkey(b, id)
  if redis.call('EXISTS', jk) == 1 or redis.call('HEXISTS', b .. 'failed:data', id) == 1 then
    return false
  end
  local at = tonumber(j[4])
  local wf = nil
  if j[9] ~= '' then wf = cjson.decode(j[9]) end
  if wf and wf.k and wf.k ~= '' then
    if wf.r == 'D' then
      local old = redis.call('HMGET', wf.k, 'o', 'q', 'f')
      local first = now
      if old[1] and old[1] ~= id and unqueue(old[2], old[1]) then
        local ojk = jkey(old[2], old[1])
        local om = redis.call('HMGET', ojk, 'wb', 'wm')
        redis.call('DEL', ojk)
        if om[1] and om[1] ~= '' then record(om[1], om[2], 'C', now, '', '', ev) end
        first = tonumber(old[3])
      end
      redis.call('HSET', wf.k, 'o', id, 'q', b, 'f', first)
      local due = now + (tonumber(wf.t) or 0)
      if wf.x and wf.x ~= '' then
        due = math.min(due, first + tonumber(wf.x))
        if due < now then due = now end
      end
      if due > at then at = due end
    else
      redis.call('DEL', wf.k)
      redis.call('HSET', wf.k, 'o', id)
      if wf.t and wf.t ~= '' then
        redis.call('HSET', wf.k, 'x', now + tonumber(wf.t))
        -- The hash outlives the lock by a minute, then goes (the lock
        -- itself lapses at `x`, on the scripts' clock).
        redis.call('PEXPIRE', wf.k, tonumber(wf.t) + 60000)
      end
    end
  end
  redis.call('HSET', jk, 'e', j[8], 'a', 0, 'p', j[3], 'm', j[5], 'n', j[7], 's', now)
  if j[6] ~= '' then redis.call('HSET', jk, 'u', j[6]) end
  if FENCE then redis.call('HSET', jk, 'cf', FENCE) end
  if wf then
    redis.call('HSET', jk, 'w', '1')
    if wf.b and wf.b ~= '' then
      redis.call('HSET', jk, 'wb', wf.b, 'wm', wf.m)
      if redis.call('HEXISTS', wf.b .. ':members', wf.m) == 1 then
        redis.call('HSET', wf.b .. ':members', wf.m, b .. '\n' .. id)
      end
    end
    if wf.k and wf.k ~= '' then redis.call('HSET', jk, 'wk', wf.k, 'wr', wf.r, 'wt', wf.t or '') end
  end
  if at > now then
    redis.call('ZADD', b .. 'delayed', at, id)
  else
    redis.call('RPUSH', rkey(b, j[3]), id)
    notify(b, 1)
  end
  return true
end
local function store_text(text, now, ev)
  if text and text ~= '' then store(spec_of(text), now, ev) end
end
-- Stores a job rendered when its batch was created (`then`, `finally`, the
-- timeout's `catch`), stamped as created `now`: its envelope's first
-- unescaped `created_at` is the top-level one.
local function store_stamped(text, now, ev)
  if not text or text == '' then return end
  local j = spec_of(text)
  local stamp = '\34created_at\34:' .. string.format('%d', now)
  j[8] = string.gsub(j[8], '\34created_at\34:%d+', stamp, 1)
  store(j, now, ev)
end
-- Marks batch `bk` finished when every member has an outcome, claiming
-- `then` (all succeeded, never cancelled) and `finally` once each.
local function settled(bk, now, ev)
  local h = redis.call('HMGET', bk, 'finished', 'ns', 'nf', 'nc', 'cancelled')
  if h[1] then return end
  local total = redis.call('HLEN', bk .. ':members')
  local ns = tonumber(h[2] or '0')
  if ns + tonumber(h[3] or '0') + tonumber(h[4] or '0') < total then return end
  redis.call('HSET', bk, 'finished', now)
  if ns == total and not h[5] and redis.call('HSETNX', bk, 'fthen', 1) == 1 then
    store_stamped(redis.call('HGET', bk, 'then'), now, ev)
  end
  if redis.call('HSETNX', bk, 'ffinally', 1) == 1 then
    store_stamped(redis.call('HGET', bk, 'finally'), now, ev)
  end
end
-- How many more members this script call may still sweep (nil until its
-- first sweep sets it from its batch's chunk): one call looks at one chunk
-- of members at most, however many batches it sweeps.
local SWEEP_LEFT = nil
-- The set of batches with a sweep pending (`<wf>sweeps`) of batch `bk` with
-- id `id`: its key is the batch's own, `batch:<id>` replaced by `sweeps`.
local function sweeps_key(bk, id)
  return string.sub(bk, 1, #bk - #id - 6) .. 'sweeps'
end
-- Sweeps batch `bk`: its members without an outcome, at most the call's
-- chunk of them, in id order from where the last sweep stopped (from the
-- first with `start`): the waiting ones are deleted (their locks released)
-- and count as cancelled; in a timed-out batch the running ones count as
-- cancelled too. A sweep that stops before the last member keeps where it
-- is (`sweep`, the last member looked at, empty before the first) and
-- notes the batch in the set of pending sweeps, for a later call to go on;
-- one that ends, or finds the batch gone, reopened or finished, takes it
-- out. Whether the sweep is done.
local function sweep(bk, now, ev, start)
  local h = redis.call('HMGET', bk, 'id', 'cancelled', 'finished', 'timedout', 'sc', 'sweep')
  if not h[1] then return true end
  local pending = sweeps_key(bk, h[1])
  if not h[2] or h[3] or (not start and not h[6]) then
    redis.call('HDEL', bk, 'sweep')
    redis.call('ZREM', pending, h[1])
    return true
  end
  if not SWEEP_LEFT then SWEEP_LEFT = tonumber(h[5] or '') or 1000 end
  local cursor = ''
  if not start then cursor = h[6] end
  local ids = {}
  if SWEEP_LEFT > 0 then
    ids = redis.call('ZRANGEBYLEX', bk .. ':ids', '(' .. cursor, '+', 'LIMIT', 0, SWEEP_LEFT)
  end
  local want = SWEEP_LEFT
  SWEEP_LEFT = SWEEP_LEFT - #ids
  local all = h[4] and true or false
  local rm = {}
  for _, member in ipairs(ids) do
    local loc = redis.call('HGET', bk .. ':members', member)
    if loc and redis.call('HEXISTS', bk .. ':outcomes', member) == 0 then
      local cut = string.find(loc, '\n', 1, true)
      local b, id = string.sub(loc, 1, cut - 1), string.sub(loc, cut + 1)
      if unqueue(b, id, rm) then
        adm(jkey(b, id), id, 'F')
        redis.call('DEL', jkey(b, id))
        record(bk, member, 'C', now, '', '', ev)
      elseif all then
        record(bk, member, 'C', now, '', '', ev)
      end
    end
  end
  drop_ready(rm)
  if #ids < want then
    redis.call('HDEL', bk, 'sweep')
    redis.call('ZREM', pending, h[1])
    return true
  end
  if #ids > 0 then cursor = ids[#ids] end
  redis.call('HSET', bk, 'sweep', cursor)
  redis.call('ZADD', pending, 'NX', now, h[1])
  return false
end
-- Goes on with the pending sweeps of workflow base `wf`, oldest first,
-- while this call may sweep more; whether any is left pending.
local function sweep_pending(wf, now, ev)
  while not SWEEP_LEFT or SWEEP_LEFT > 0 do
    local next_one = redis.call('ZRANGE', wf .. 'sweeps', 0, 0)
    if not next_one[1] then return false end
    if not sweep(wf .. 'batch:' .. next_one[1], now, ev, false) then break end
    redis.call('ZREM', wf .. 'sweeps', next_one[1])
  end
  return redis.call('ZCARD', wf .. 'sweeps') > 0
end
-- Member `member` of batch `bk` got `outcome` (`S`, `F`, `C`) unless it has
-- one: counted, its `progress` job (`pspec`) and, for the batch's first
-- failure, its `catch` job (`cspec`) stored, the batch cancelled by a
-- failure without `allow_failures`, finished when nothing is pending.
record = function(bk, member, outcome, now, pspec, cspec, ev)
  if redis.call('HEXISTS', bk .. ':members', member) == 0 then return end
  if redis.call('HSETNX', bk .. ':outcomes', member, outcome) == 0 then return end
  local field = 'ns'
  if outcome == 'F' then field = 'nf' elseif outcome == 'C' then field = 'nc' end
  redis.call('HINCRBY', bk, field, 1)
  if outcome ~= 'C' then store_text(pspec, now, ev) end
  local cancel = false
  if outcome == 'F' then
    redis.call('RPUSH', bk .. ':failed', member)
    if redis.call('HSETNX', bk, 'fcatch', 1) == 1 then store_text(cspec, now, ev) end
    local h = redis.call('HMGET', bk, 'allow', 'cancelled')
    if h[1] ~= '1' and not h[2] then
      redis.call('HSET', bk, 'cancelled', now)
      cancel = true
    end
  end
  settled(bk, now, ev)
  local c = redis.call('HMGET', bk, 'id', 'ns', 'nf', 'nc', 'finished')
  ev[#ev + 1] = {c[1], member, outcome, redis.call('HLEN', bk .. ':members'),
    tonumber(c[2] or '0'), tonumber(c[3] or '0'), tonumber(c[4] or '0'), c[5] and 1 or 0}
  if cancel then sweep(bk, now, ev, true) end
end
-- Appends batch `bk` to the reply `out` (at most `limit` failed member
-- ids): found (0 or 1), then for a found one its record, cancelled,
-- finished, timed out, deadline, recoveries, then/catch/finally claimed,
-- succeeded, failed, cancelled counts, members recovered (empty for none),
-- total, and the failed ids (count, ids).
local function put_batch(out, bk, limit)
  local h = redis.call('HMGET', bk, 'rec', 'cancelled', 'finished', 'timedout', 'deadline',
    'recoveries', 'fthen', 'fcatch', 'ffinally', 'ns', 'nf', 'nc', 'recovered')
  if not h[1] then
    out[#out + 1] = 0
    return
  end
  out[#out + 1] = 1
  for k = 1, 13 do out[#out + 1] = h[k] or '' end
  out[#out + 1] = redis.call('HLEN', bk .. ':members')
  local failed = redis.call('LRANGE', bk .. ':failed', 0, limit - 1)
  out[#out + 1] = #failed
  for _, id in ipairs(failed) do out[#out + 1] = id end
end
-- Appends the events `ev` to the reply `out`: their count, then eight
-- fields each.
local function put_events(out, ev)
  out[#out + 1] = #ev
  for _, e in ipairs(ev) do
    for k = 1, 8 do out[#out + 1] = e[k] end
  end
  return out
end
";

/// Settles one leased job that has a workflow, with what Rust decided from
/// its snapshot: `KEYS[1]` its queue's base, `KEYS[2]` its batch's key (the
/// workflow base when it has none), `KEYS[3..]` the bases the follow-up
/// jobs go to, then its batch and lock keys as declared. `ARGV`: time,
/// id, token, version read, version written, op (`E` extend by `a` ms, `K`
/// keep envelope `a`, `Q` requeue envelope `a` at `b`, `A` delete, `S`
/// delete as skipped, `D` bury record `a` failed at `b`), `a`, `b`, the
/// batch's cancelled state read (`1`, `0`, empty without a batch), member,
/// outcome to record (empty for none), its progress job, its catch job,
/// failed-store bounds (max age, max jobs), then the follow-up jobs (next
/// link, chain catch) as specs. Applies only while the lease holds, the
/// envelope is the version read and the batch's cancelled state is the one
/// read. Answers `{now, r, events...}`: `r` 0 lease lost, -1 changed since
/// read (decide again), else 1 or an extension's expiry.
const FLOW_SETTLE: &str = r"
local b = KEYS[1]
local bk = KEYS[2]
local now = now_ms()
local id, token = ARGV[2], ARGV[3]
local jk = jkey(b, id)
local expiry = redis.call('ZSCORE', b .. 'reserved', id)
local f = redis.call('HMGET', jk, 't', 'v')
if not expiry or tonumber(expiry) <= now or f[1] ~= token then return {now, 0, 0} end
if (f[2] or '') ~= ARGV[4] then return {now, -1, 0} end
if bk and ARGV[9] ~= '' then
  local c = redis.call('HGET', bk, 'cancelled') and '1' or '0'
  if c ~= ARGV[9] then return {now, -1, 0} end
end
local op = ARGV[6]
local r = 1
local ev = {}
if op == 'E' then
  r = now + tonumber(ARGV[7])
  redis.call('ZADD', b .. 'reserved', r, id)
elseif op == 'K' then
  redis.call('HSET', jk, 'e', ARGV[7], 'v', ARGV[5])
elseif op == 'Q' then
  redis.call('ZREM', b .. 'reserved', id)
  redis.call('HSET', jk, 'e', ARGV[7], 'v', ARGV[5])
  local at = tonumber(ARGV[8])
  if at > now then
    redis.call('ZADD', b .. 'delayed', at, id)
  else
    redis.call('RPUSH', rkey(b, redis.call('HGET', jk, 'p')), id)
    redis.call('HSET', jk, 's', now)
    notify(b, 1)
  end
else
  adm(jk, id, 'F')
  redis.call('ZREM', b .. 'reserved', id)
  if op == 'D' then
    local name = redis.call('HGET', jk, 'n')
    redis.call('DEL', jk)
    bury(b, id, name, tonumber(ARGV[8]), ARGV[7])
    prune(b, now, tonumber(ARGV[14]), tonumber(ARGV[15]))
  else
    redis.call('DEL', jk)
  end
end
for i = 16, #ARGV do store_text(ARGV[i], now, ev) end
if bk and ARGV[11] ~= '' then record(bk, ARGV[10], ARGV[11], now, ARGV[12], ARGV[13], ev) end
return put_events({now, r}, ev)
";

/// Creates a batch (`ARGV[2]` = `create`) or adds members to one (`add`):
/// `KEYS[1]` the batch's key, `KEYS[2]` the workflow base, `KEYS[3..]` the
/// queue bases. `ARGV[3]` the number of the batch's field pairs that follow
/// (create only), then ten fields per member: queue index, id, priority,
/// available at, max attempts, retry until, name, envelope, flow record,
/// member id. Members known already are skipped (add). Every job is checked
/// (duplicate, bound, unique lock) before anything is stored. Answers
/// `{now, 'ok', added, events...}`, `{now, 'dup', id}`, `{now, 'full',
/// queue index, capacity}`, `{now, 'locked', job id, holder}`, `{now,
/// 'missing'}` or `{now, 'closed', state}`.
const BATCH: &str = r"
local bk, wf = KEYS[1], KEYS[2]
local now = now_ms()
local create = ARGV[2] == 'create'
local pairs_n = tonumber(ARGV[3])
if create then
  if redis.call('EXISTS', bk) == 1 then return {now, 'dup', ARGV[5]} end
else
  if redis.call('EXISTS', bk) == 0 then return {now, 'missing'} end
  local h = redis.call('HMGET', bk, 'cancelled', 'finished')
  if h[1] then return {now, 'closed', 'cancelled'} end
  if h[2] then return {now, 'closed', 'finished'} end
end
local jobs, members, seen, count = {}, {}, {}, {}
for o = 4 + 2 * pairs_n, #ARGV, 10 do
  local qi = tonumber(ARGV[o])
  local b, id, member = KEYS[qi], ARGV[o + 1], ARGV[o + 9]
  if create or redis.call('HEXISTS', bk .. ':members', member) == 0 then
    if seen[id] or redis.call('EXISTS', jkey(b, id)) == 1
        or redis.call('HEXISTS', b .. 'failed:data', id) == 1 then
      return {now, 'dup', id}
    end
    seen[id] = true
    count[qi] = (count[qi] or 0) + 1
    jobs[#jobs + 1] = {b, id, ARGV[o + 2], ARGV[o + 3], ARGV[o + 4], ARGV[o + 5], ARGV[o + 6],
      ARGV[o + 7], ARGV[o + 8]}
    members[#members + 1] = member
  end
end
for qi, n in pairs(count) do
  local cap = redis.call('HGET', KEYS[qi] .. 'meta', 'capacity')
  if cap and depth(KEYS[qi]) + n > tonumber(cap) then
    return {now, 'full', qi, tonumber(cap)}
  end
end
local held = locked(jobs, now)
if held then return {now, 'locked', jobs[held[1]][2], held[2]} end
if create then
  for i = 4, 3 + 2 * pairs_n, 2 do redis.call('HSET', bk, ARGV[i], ARGV[i + 1]) end
  local h = redis.call('HMGET', bk, 'id', 'created', 'deadline')
  redis.call('ZADD', wf .. 'batches', h[2], h[1])
  if h[3] then redis.call('ZADD', wf .. 'deadlines', h[3], h[1]) end
end
for i, member in ipairs(members) do
  redis.call('HSET', bk .. ':members', member, jobs[i][1] .. '\n' .. jobs[i][2])
  redis.call('ZADD', bk .. ':ids', 0, member)
end
local ev = {}
for _, j in ipairs(jobs) do store(j, now, ev) end
if create then settled(bk, now, ev) end
return put_events({now, 'ok', #jobs}, ev)
";

/// Reads batches `KEYS[..]`, with at most `ARGV[2]` failed member ids each.
/// Answers `{now, [found, rec, cancelled, finished, timed out, deadline,
/// recoveries, then, catch, finally, succeeded, failed, cancelled count,
/// members recovered, total, failed ids (count, ids...)] * batches}`, only `found` = 0 for
/// those missing.
const READ_BATCH: &str = r"
local now = now_ms()
local out = {now}
for _, bk in ipairs(KEYS) do put_batch(out, bk, tonumber(ARGV[2])) end
return out
";

/// Reads leased job `ARGV[2]` of the queue at `KEYS[1]` for a workflow
/// settlement, with its batch (at most `ARGV[3]` failed member ids):
/// `{now, envelope, attempts, token, version, lease expiry}` (nil where
/// missing), then the batch as [`READ_BATCH`] reads one (found 0 when the
/// job names none).
const READ_FLOW: &str = r"
local b = KEYS[1]
local now = now_ms()
local id = ARGV[2]
local f = redis.call('HMGET', jkey(b, id), 'e', 'a', 't', 'v', 'wb')
local out = {now, f[1], f[2], f[3], f[4], redis.call('ZSCORE', b .. 'reserved', id)}
if f[5] and f[5] ~= '' then put_batch(out, f[5], tonumber(ARGV[3])) else out[#out + 1] = 0 end
return out
";

/// Cancels batch `KEYS[1]`, or goes on with its sweep when it is cancelled
/// already: marked cancelled, then at most a chunk of its waiting members
/// deleted, counting as cancelled (see `sweep`). Answers `{now, cancelled
/// now (1) or not (0), sweep left (1) or done (0), events...}`.
const CANCEL: &str = r"
local bk = KEYS[1]
local now = now_ms()
local h = redis.call('HMGET', bk, 'id', 'cancelled', 'finished')
if not h[1] or h[3] then return {now, 0, 0, 0} end
local ev = {}
local fresh, done = 0, nil
if h[2] then
  done = sweep(bk, now, ev, false)
else
  redis.call('HSET', bk, 'cancelled', now)
  fresh = 1
  done = sweep(bk, now, ev, true)
end
settled(bk, now, ev)
return put_events({now, fresh, done and 0 or 1}, ev)
";

/// Times out up to `ARGV[2]` batches whose deadline passed (`KEYS[1]` the
/// workflow base): each not finished is marked timed out and cancelled, its
/// timeout `catch` claimed, its members without an outcome cancelled (the
/// waiting ones deleted) by a sweep; then goes on with the pending sweeps.
/// The sweeps of one call look at one chunk of members at most; the rest
/// stay pending. Answers `{now, next deadline (-1 for none; 0 while a
/// sweep is pending: the next reservation checks again), events...}`.
const EXPIRE: &str = r"
local wf = KEYS[1]
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', wf .. 'deadlines', '-inf', now, 'LIMIT', 0,
  tonumber(ARGV[2]))
local ev = {}
for _, id in ipairs(due) do
  redis.call('ZREM', wf .. 'deadlines', id)
  local bk = wf .. 'batch:' .. id
  local h = redis.call('HMGET', bk, 'deadline', 'finished', 'timedout')
  if h[1] and tonumber(h[1]) <= now and not h[2] and not h[3] then
    redis.call('HSET', bk, 'timedout', now)
    redis.call('HSETNX', bk, 'cancelled', now)
    if redis.call('HSETNX', bk, 'fcatch', 1) == 1 then
      store_stamped(redis.call('HGET', bk, 'tcatch'), now, ev)
    end
    sweep(bk, now, ev, true)
    settled(bk, now, ev)
  end
end
if sweep_pending(wf, now, ev) then return put_events({now, 0}, ev) end
local next_due = redis.call('ZRANGE', wf .. 'deadlines', 0, 0, 'WITHSCORES')
return put_events({now, next_due[2] and tonumber(next_due[2]) or -1}, ev)
";

/// Re-dispatches failed members of batch `KEYS[1]` (`KEYS[2]` the workflow
/// base, `KEYS[3..]` their queues' bases) while it is finished at
/// `ARGV[2]`: two fields per member (member id, spec of its failed job,
/// exceptions reset). Each still failed is taken out of the failed store,
/// stored again and pending; the batch reopens. Answers `{now, recovered}`,
/// -1 when the batch changed since read.
const RECOVER: &str = r"
local bk, wf = KEYS[1], KEYS[2]
local now = now_ms()
if tonumber(redis.call('HGET', bk, 'finished') or '-1') ~= tonumber(ARGV[2]) then
  return {now, -1}
end
local n = 0
local ev = {}
for o = 3, #ARGV, 2 do
  local member = ARGV[o]
  local j = spec_of(ARGV[o + 1])
  local b, id = j[1], j[2]
  if redis.call('HEXISTS', b .. 'failed:data', id) == 1 and redis.call('EXISTS', jkey(b, id)) == 0
      and redis.call('HGET', bk .. ':outcomes', member) == 'F' then
    forget(b, id)
    redis.call('HDEL', bk .. ':outcomes', member)
    redis.call('HINCRBY', bk, 'nf', -1)
    redis.call('LREM', bk .. ':failed', 0, member)
    store(j, now, ev)
    n = n + 1
  end
end
if n > 0 then
  redis.call('HDEL', bk, 'finished', 'cancelled', 'deadline', 'sweep')
  redis.call('HINCRBY', bk, 'recoveries', 1)
  redis.call('HINCRBY', bk, 'recovered', n)
  redis.call('ZREM', wf .. 'deadlines', redis.call('HGET', bk, 'id'))
  redis.call('ZREM', wf .. 'sweeps', redis.call('HGET', bk, 'id'))
end
return {now, n}
";

/// Deletes batch `KEYS[1]` (`KEYS[2]` the workflow base, `ARGV[2]` its id)
/// while it was cancelled at `ARGV[3]` and finished at `ARGV[4]` as read
/// (-1 for not), archiving it as `ARGV[5]` at `ARGV[6]` when given. Answers
/// `{now, deleted}`.
const DROP: &str = r"
local bk, wf = KEYS[1], KEYS[2]
local now = now_ms()
local h = redis.call('HMGET', bk, 'cancelled', 'finished')
if tonumber(h[1] or '-1') ~= tonumber(ARGV[3]) or tonumber(h[2] or '-1') ~= tonumber(ARGV[4]) then
  return {now, 0}
end
if ARGV[5] ~= '' then
  redis.call('HSET', wf .. 'archive', ARGV[2], ARGV[5])
  redis.call('ZADD', wf .. 'archive:at', ARGV[6], ARGV[2])
end
redis.call('DEL', bk, bk .. ':members', bk .. ':ids', bk .. ':outcomes', bk .. ':failed')
redis.call('ZREM', wf .. 'batches', ARGV[2])
redis.call('ZREM', wf .. 'deadlines', ARGV[2])
redis.call('ZREM', wf .. 'sweeps', ARGV[2])
return {now, 1}
";

/// Deletes up to 256 archives made before `ARGV[2]` (`KEYS[1]` the workflow
/// base). Answers `{now, deleted}`.
const DROP_ARCHIVES: &str = r"
local wf = KEYS[1]
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', wf .. 'archive:at', '-inf', '(' .. ARGV[2], 'LIMIT', 0, 256)
for _, id in ipairs(ids) do
  redis.call('HDEL', wf .. 'archive', id)
  redis.call('ZREM', wf .. 'archive:at', id)
end
return {now, #ids}
";

use std::sync::LazyLock;

use redis::Script;

use super::scripts::flow_script;

pub(super) static FLOW_SETTLE_SCRIPT: LazyLock<Script> = LazyLock::new(|| flow_script(FLOW_SETTLE));
pub(super) static BATCH_SCRIPT: LazyLock<Script> = LazyLock::new(|| flow_script(BATCH));
pub(super) static READ_BATCH_SCRIPT: LazyLock<Script> = LazyLock::new(|| flow_script(READ_BATCH));
pub(super) static READ_FLOW_SCRIPT: LazyLock<Script> = LazyLock::new(|| flow_script(READ_FLOW));
pub(super) static CANCEL_SCRIPT: LazyLock<Script> = LazyLock::new(|| flow_script(CANCEL));
pub(super) static EXPIRE_SCRIPT: LazyLock<Script> = LazyLock::new(|| flow_script(EXPIRE));
pub(super) static RECOVER_SCRIPT: LazyLock<Script> = LazyLock::new(|| flow_script(RECOVER));
pub(super) static DROP_SCRIPT: LazyLock<Script> = LazyLock::new(|| flow_script(DROP));
pub(super) static DROP_ARCHIVES_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| flow_script(DROP_ARCHIVES));
