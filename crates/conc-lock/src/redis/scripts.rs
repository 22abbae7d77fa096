//! The Lua scripts of the Redis backend.
//!
//! Each operation is one script, run with `EVALSHA` (redis-rs [`Script`]
//! loads it on a `NOSCRIPT` reply and retries), so each is one round trip and
//! atomic on the server. Expiry is `PX`/`PEXPIRE`/`PTTL`: the server's clock
//! decides, never a client's. Keys are always passed in `KEYS`, so Redis
//! Cluster can check they share a slot.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use crate::{Acquisition, Fence, LockError, SlotAcquisition};

/// Takes the lock if free and bumps its fence.
///
/// `KEYS[1]` lock key, `KEYS[2]` fence key; `ARGV[1]` owner, `ARGV[2]` ttl in
/// ms. Returns `{1, fence}`, or `{0, pttl}` when held (`pttl` negative when
/// the key has no expiry).
const ACQUIRE: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, redis.call('INCR', KEYS[2])}
end
return {0, redis.call('PTTL', KEYS[1])}
";

/// Takes the first free of several locks.
///
/// `KEYS` are pairs (lock key, fence key); `ARGV[1]` owner, `ARGV[2]` ttl in
/// ms. Returns `{1, fence, slot}` with the 0-based index of the pair taken,
/// or `{0, soonest}` with the smallest `PTTL` (negative when none is known).
const ACQUIRE_ANY: &str = r"
local soonest = -1
for i = 1, #KEYS, 2 do
  if redis.call('SET', KEYS[i], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return {1, redis.call('INCR', KEYS[i + 1]), (i - 1) / 2}
  end
  local pttl = redis.call('PTTL', KEYS[i])
  if pttl >= 0 and (soonest < 0 or pttl < soonest) then
    soonest = pttl
  end
end
return {0, soonest}
";

/// Deletes the lock if `ARGV[1]` owns it. Returns 1, or 0 when it did not.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Deletes the lock if `ARGV[1]` owns it and the fence counter is still at
/// `ARGV[2]`, the fence of the hold being released (every acquisition bumps
/// the counter, so a later hold of the same owner has a higher one). Returns
/// 1, or 0 when that hold is gone.
const RELEASE_HOLD: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('GET', KEYS[2]) == ARGV[2] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Resets the lock's ttl to `ARGV[2]` ms if `ARGV[1]` owns it. Returns 1, or
/// 0 when it did not.
const EXTEND: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

pub(super) static ACQUIRE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(ACQUIRE));
pub(super) static ACQUIRE_ANY_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(ACQUIRE_ANY));
pub(super) static RELEASE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(RELEASE));
pub(super) static RELEASE_HOLD_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(RELEASE_HOLD));
pub(super) static EXTEND_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(EXTEND));

/// Reads the acquire script's reply.
pub(super) fn attempt(reply: &[i64]) -> Result<Acquisition, LockError> {
    match *reply {
        [1, fence] => Ok(Acquisition::Acquired(to_fence(fence)?)),
        [0, pttl] => Ok(Acquisition::Busy { retry_after: retry_after(pttl) }),
        _ => Err(unexpected("acquire", reply)),
    }
}

/// Reads the acquire-any script's reply for `slots` slots.
pub(super) fn slot_attempt(reply: &[i64], slots: usize) -> Result<SlotAcquisition, LockError> {
    match *reply {
        [1, fence, slot] => match usize::try_from(slot) {
            Ok(slot) if slot < slots => {
                Ok(SlotAcquisition::Acquired { slot, fence: to_fence(fence)? })
            }
            _ => Err(unexpected("acquire_any", reply)),
        },
        [0, pttl] => Ok(SlotAcquisition::Busy { retry_after: retry_after(pttl) }),
        _ => Err(unexpected("acquire_any", reply)),
    }
}

/// A `PTTL` reply as a wait: `None` for -1 (no expiry) and -2 (no key).
fn retry_after(pttl: i64) -> Option<Duration> {
    u64::try_from(pttl).ok().map(Duration::from_millis)
}

/// An `INCR` result as a fence. It is at least 1 unless someone else wrote
/// a negative number to the fence key.
fn to_fence(value: i64) -> Result<Fence, LockError> {
    match u64::try_from(value) {
        Ok(value) if value > 0 => Ok(Fence::new(value)),
        _ => Err(LockError::backend(format!(
            "the fence counter holds {value}; fences must be positive (was the fence key \
             written by something else?)"
        ))),
    }
}

fn unexpected(script: &str, reply: &[i64]) -> LockError {
    LockError::backend(format!("unexpected reply {reply:?} from the {script} script"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{attempt, slot_attempt};
    use crate::{Acquisition, Fence, LockError, SlotAcquisition};

    #[test]
    fn replies_are_read() {
        assert_eq!(attempt(&[1, 7]).unwrap(), Acquisition::Acquired(Fence::new(7)));
        assert_eq!(
            attempt(&[0, 250]).unwrap(),
            Acquisition::Busy { retry_after: Some(Duration::from_millis(250)) }
        );
        assert_eq!(attempt(&[0, -1]).unwrap(), Acquisition::Busy { retry_after: None });
        assert_eq!(
            slot_attempt(&[1, 3, 2], 3).unwrap(),
            SlotAcquisition::Acquired { slot: 2, fence: Fence::new(3) }
        );
        assert_eq!(slot_attempt(&[0, -1], 3).unwrap(), SlotAcquisition::Busy { retry_after: None });
    }

    #[test]
    fn odd_replies_are_backend_errors() {
        for reply in [&[][..], &[2, 1], &[1, 0], &[1, -4], &[1, 1, 1]] {
            assert!(matches!(attempt(reply), Err(LockError::Backend(_))), "{reply:?}");
        }
        for reply in [&[1, 1, 3][..], &[1, 1, -1], &[1, 1], &[0]] {
            assert!(matches!(slot_attempt(reply, 3), Err(LockError::Backend(_))), "{reply:?}");
        }
    }
}
