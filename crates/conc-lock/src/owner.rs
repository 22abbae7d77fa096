//! Owner tokens: who holds a lock.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use conc_core::config::ConfigError;

use crate::LockError;

/// The eight lowercase hex digits of `word`, most significant first,
/// computed eight at a time in one 64-bit word (no table, no branch).
#[inline]
fn hex8(word: u32) -> [u8; 8] {
    const ONES: u64 = 0x0101_0101_0101_0101;
    // Spread the eight nibbles over the eight bytes, the top nibble in the
    // top byte.
    let mut nibbles = u64::from(word);
    nibbles = (nibbles | (nibbles << 16)) & 0x0000_ffff_0000_ffff;
    nibbles = (nibbles | (nibbles << 8)) & 0x00ff_00ff_00ff_00ff;
    nibbles = (nibbles | (nibbles << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    // Nibbles of 10 and more gain a bit at 0x10 when 6 is added: they take
    // `'a' - '0' - 10` more to land on the letters.
    let letters = ((nibbles + 6 * ONES) >> 4) & ONES;
    (nibbles + u64::from(b'0') * ONES + letters * u64::from(b'a' - b'0' - 10)).to_be_bytes()
}

/// The splitmix64 increment: odd, so the counter cycles through all 2^64 values.
const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// The splitmix64 finaliser: a bijection on `u64` that scatters every bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A thread's generator state: a counter start and a key, from std's
/// randomly keyed hasher over the process id, the time and the thread.
fn seed() -> (u64, u64) {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let half = |salt: u8| {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u8(salt);
        hasher.write_u128(nanos);
        hasher.write_u32(std::process::id());
        std::thread::current().id().hash(&mut hasher);
        hasher.finish()
    };
    (half(0), half(1))
}

/// The bits of `token` when it is exactly 32 lowercase hex digits, the text
/// of a random token.
fn hex_bits(token: &str) -> Option<u128> {
    if token.len() != 32 {
        return None;
    }
    token.bytes().try_fold(0_u128, |bits, digit| {
        let value = match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            _ => return None,
        };
        Some((bits << 4) | u128::from(value))
    })
}

/// The longest owner token accepted, in bytes.
pub const MAX_OWNER_LEN: usize = 128;

/// The token that identifies who holds a lock.
///
/// [`LockStore::lock`](crate::LockStore::lock) makes a fresh random one (32
/// hex digits, 128 bits); release and extend succeed only for the owner that
/// holds the lock. Another process that knows the token (a queued job handed
/// it, say) can act for the holder through
/// [`LockStore::restore`](crate::LockStore::restore).
///
/// Cloning is cheap: a random token is kept inline (its 128 bits and their
/// 32 hex digits), a given one is
/// shared behind a reference count.
///
/// # Examples
///
/// ```
/// use conc_lock::Owner;
///
/// let a = Owner::random();
/// let b = Owner::random();
/// assert_ne!(a, b);
/// assert_eq!(a.as_str().len(), 32);
///
/// let known = Owner::new("job-4711")?;
/// assert_eq!(known.as_str(), "job-4711");
/// # Ok::<(), conc_lock::LockError>(())
/// ```
#[derive(Clone)]
pub struct Owner(Repr);

impl Eq for Owner {}

#[derive(Clone)]
enum Repr {
    /// A token from [`Owner::random`] (or given as 32 lowercase hex
    /// digits): its 128 bits as two halves (8-byte aligned, so an owner
    /// stays 56 bytes), which the in-memory backend stores with a hold in
    /// two atomic words, and their text.
    Random([u64; 2], [u8; 32]),
    /// A token given to [`Owner::new`].
    Given(Arc<str>),
}

impl Owner {
    fn bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Random(_, bytes) => bytes,
            Repr::Given(text) => text.as_bytes(),
        }
    }

    /// The 128 bits of a random token (and of a given one that is 32
    /// lowercase hex digits); `None` for other given tokens.
    pub(crate) fn bits(&self) -> Option<u128> {
        match &self.0 {
            Repr::Random([high, low], _) => Some(u128::from(*high) << 64 | u128::from(*low)),
            Repr::Given(_) => None,
        }
    }

    /// The token whose [`bits`](Self::bits) are `bits`.
    pub(crate) fn from_bits(bits: u128) -> Self {
        let mut text = [0_u8; 32];
        for (digits, shift) in text.chunks_exact_mut(8).zip([96, 64, 32, 0]) {
            digits.copy_from_slice(&hex8((bits >> shift) as u32));
        }
        Self(Repr::Random([(bits >> 64) as u64, bits as u64], text))
    }
}

impl Hash for Owner {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // By the text, as equality compares it, whatever the representation.
        self.as_str().hash(state);
    }
}

impl PartialEq for Owner {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            // The common case (a holder's token against the stored copy),
            // compared inline.
            (Repr::Random(a, _), Repr::Random(b, _)) => a == b,
            // By the text otherwise: a token given to `Owner::new` equals the
            // random token it was copied from.
            _ => self.bytes() == other.bytes(),
        }
    }
}

impl Owner {
    /// A fresh random owner token: 32 lowercase hex digits (128 bits),
    /// unique across threads, processes and machines.
    ///
    /// Each thread seeds a generator once, from the operating system's
    /// randomness (through std's `RandomState` keys) mixed with the process
    /// id, the time and the thread; each token then costs a counter step and
    /// two bit mixes, without a system call (a lock handle is made per use in
    /// keyed code, so this is on its hot path). Tokens are unique, not
    /// secret: anyone who can reach the store can force-release a lock
    /// anyway. A process forked without `exec` shares its parent's generator
    /// state in the forking thread, and must not make owners on that thread.
    pub fn random() -> Self {
        thread_local! {
            static GENERATOR: Cell<(u64, u64)> = Cell::new(seed());
        }
        let (high, low) = GENERATOR.with(|generator| {
            let (counter, key) = generator.get();
            let counter = counter.wrapping_add(GOLDEN_GAMMA);
            generator.set((counter, key));
            // `mix` is a bijection, so `high` differs for every step of this
            // thread's counter; `key` sets this thread apart from others.
            (mix(counter), mix(counter ^ key))
        });
        Self::from_bits((u128::from(high) << 64) | u128::from(low))
    }

    /// An owner token with a known value, to act for a holder elsewhere.
    ///
    /// # Errors
    ///
    /// [`LockError::Config`] naming `owner` when `token` is empty, longer than
    /// [`MAX_OWNER_LEN`] bytes or contains control characters.
    pub fn new(token: impl Into<String>) -> Result<Self, LockError> {
        let token = token.into();
        let reason = if token.is_empty() {
            Some("must not be empty")
        } else if token.len() > MAX_OWNER_LEN {
            Some("must be at most 128 bytes")
        } else if token.chars().any(char::is_control) {
            Some("must not contain control characters")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(ConfigError::new("owner", token, reason).into()),
            // The text of a random token is kept as its bits, so it equals
            // (and is stored like) the token it was copied from.
            None => match hex_bits(&token) {
                Some(bits) => Ok(Self::from_bits(bits)),
                None => Ok(Self(Repr::Given(Arc::from(token)))),
            },
        }
    }

    /// The token as text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Random(_, bytes) => {
                std::str::from_utf8(bytes).unwrap_or_else(|_| unreachable!("hex digits are ASCII"))
            }
            Repr::Given(text) => text,
        }
    }
}

impl fmt::Debug for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Owner").field(&self.as_str()).finish()
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Owner;

    #[test]
    fn a_token_is_the_hex_of_its_bits() {
        let mut bits = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210_u128;
        for _ in 0..1_000 {
            assert_eq!(Owner::from_bits(bits).as_str(), format!("{bits:032x}"));
            bits = bits.wrapping_mul(0x2545_f491_4f6c_dd1d_9e37_79b9_7f4a_7c15).rotate_left(17) ^ 1;
        }
        for bits in [0, u128::MAX, 0xa << 124, 9] {
            assert_eq!(Owner::from_bits(bits).as_str(), format!("{bits:032x}"));
        }
    }
}
