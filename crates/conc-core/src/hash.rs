//! [`FoldHash`]: a fast keyed hash for the in-memory tables on hot paths
//! (a keyed limiter's keys, a lock store's names).
//!
//! std's `RandomState` (SipHash-1-3) spends about 200 instructions on a short
//! string and several rounds even on one integer, on the path of every check
//! of a keyed table. This is the folded-multiply construction of `foldhash`
//! and `ahash`'s fallback: each 8-byte word is mixed into the state by a
//! 64×64→128-bit multiply whose halves are xored, and a last multiply
//! finishes. The state and the multiplier are drawn per builder from std's
//! random keys (and `Debug` does not print them), so which inputs collide
//! depends on values an outsider never sees: keys chosen blind (IP addresses,
//! user names a client picks) cannot be aimed at one bucket. It is not a
//! keyed pseudo-random function, and it claims no more than `foldhash`'s
//! "minimal" resistance: where an attacker can probe a table adaptively (by
//! timing many requests) and collisions would hurt, use std's `RandomState`.
//!
//! # Examples
//!
//! ```
//! use std::collections::HashMap;
//! use conc_core::hash::FoldHash;
//!
//! let mut hits: HashMap<&str, u32, FoldHash> = HashMap::with_hasher(FoldHash::new());
//! *hits.entry("10.0.0.1").or_default() += 1;
//! assert_eq!(hits["10.0.0.1"], 1);
//! ```

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};

/// Builds [`FoldHasher`]s with random keys of its own: two builders made
/// apart hash the same input differently. `Default` is [`FoldHash::new`].
///
/// # Examples
///
/// ```
/// use std::hash::BuildHasher;
/// use conc_core::hash::FoldHash;
///
/// let hash = FoldHash::new();
/// assert_eq!(hash.hash_one(42_u64), hash.hash_one(42_u64));
/// assert_ne!(hash.hash_one(42_u64), hash.hash_one(43_u64));
/// ```
#[derive(Clone, Copy)]
pub struct FoldHash {
    /// Where a hasher's state starts.
    seed: u64,
    /// What each word is multiplied by: odd, so no bit of the state is lost.
    multiplier: u64,
    /// What the last multiply uses.
    finisher: u64,
}

impl FoldHash {
    /// A builder with fresh random keys.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::hash::BuildHasher;
    /// use conc_core::hash::FoldHash;
    ///
    /// assert_ne!(FoldHash::new().hash_one("x"), FoldHash::new().hash_one("x"));
    /// ```
    #[must_use]
    pub fn new() -> Self {
        // Every `RandomState` differs from the last one made on this thread.
        let state = RandomState::new();
        let key = state.hash_one(0_u8);
        Self {
            seed: state.hash_one(1_u8),
            multiplier: (key ^ PI) | 1,
            finisher: key.rotate_left(23) ^ PI,
        }
    }
}

impl fmt::Debug for FoldHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The keys stay secret, as std's `RandomState` keeps its own.
        f.debug_struct("FoldHash").finish_non_exhaustive()
    }
}

impl Default for FoldHash {
    fn default() -> Self {
        Self::new()
    }
}

impl BuildHasher for FoldHash {
    type Hasher = FoldHasher;

    #[inline]
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher { state: self.seed, multiplier: self.multiplier, finisher: self.finisher }
    }
}

/// The hasher a [`FoldHash`] builds.
///
/// # Examples
///
/// ```
/// use std::hash::{BuildHasher, Hasher};
/// use conc_core::hash::FoldHash;
///
/// let hash = FoldHash::new();
/// let mut hasher = hash.build_hasher();
/// hasher.write_u64(7);
/// assert_eq!(hasher.finish(), hash.hash_one(7_u64));
/// ```
pub struct FoldHasher {
    state: u64,
    multiplier: u64,
    finisher: u64,
}

impl fmt::Debug for FoldHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FoldHasher").finish_non_exhaustive()
    }
}

/// The high and low halves of the full product, xored.
#[inline]
fn folded_multiply(x: u64, y: u64) -> u64 {
    let full = u128::from(x) * u128::from(y);
    (full as u64) ^ ((full >> 64) as u64)
}

/// An arbitrary constant (the fractional digits of pi) folded into the
/// random keys, so a key that happens to be zero still mixes.
const PI: u64 = 0x243f_6a88_85a3_08d3;

impl FoldHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.state = folded_multiply(self.state ^ word, self.multiplier);
    }
}

impl Hasher for FoldHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0_u8; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        // The rest, byte by byte (a variable-length copy would go through
        // `memcpy` and stall the load that follows it), with the length in
        // the top byte, so "a" and "a\0" differ.
        let rest =
            chunks.remainder().iter().rev().fold(0, |word, &byte| (word << 8) | u64::from(byte));
        self.mix(rest ^ ((bytes.len() as u64) << 56));
    }

    // Integers are one word each: one mix, not their bytes through `write`.

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }

    #[inline]
    fn write_u16(&mut self, n: u16) {
        self.mix(u64::from(n));
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    #[inline]
    fn write_u128(&mut self, n: u128) {
        self.mix(n as u64);
        self.mix((n >> 64) as u64);
    }

    // Also a byte slice's length prefix.
    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        folded_multiply(self.state, self.finisher)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    use super::FoldHash;

    #[test]
    fn distinct_strings_hash_apart() {
        let hash = FoldHash::new();
        let names = (0..100_000).map(|i| format!("customer:{i}"));
        let hashes: HashSet<u64> = names.map(|name| hash.hash_one(name.as_str())).collect();
        assert_eq!(hashes.len(), 100_000);
        assert_ne!(hash.hash_one("a"), hash.hash_one("a\0"));
        assert_ne!(hash.hash_one(""), hash.hash_one("\0"));
    }

    #[test]
    fn distinct_integers_hash_apart() {
        let hash = FoldHash::new();
        let hashes: HashSet<u64> = (0..100_000_u64).map(|n| hash.hash_one(n)).collect();
        assert_eq!(hashes.len(), 100_000);
        let wide: HashSet<u64> = (0..1_000_u128).map(|n| hash.hash_one(n << 64)).collect();
        assert_eq!(wide.len(), 1_000, "the high half of a u128 counts");
    }

    /// Tables pick buckets by the low bits and a control byte by the top 7
    /// (hashbrown), and shards by the bits just below those (dashmap shifts
    /// the top 7 out first): all three spread sequential keys evenly.
    #[test]
    fn the_bits_tables_use_spread_evenly() {
        let hash = FoldHash::new();
        let mut low = [0_u32; 16];
        let mut control = [0_u32; 16];
        let mut shard = [0_u32; 16];
        for i in 0..16_000_u64 {
            let string = hash.hash_one(format!("job:{i}").as_str());
            let integer = hash.hash_one(i);
            low[(string & 15) as usize] += 1;
            control[(integer >> 60) as usize] += 1;
            shard[((integer << 7) >> 60) as usize] += 1;
        }
        for counts in [low, control, shard] {
            assert!(counts.iter().all(|&n| (800..1200).contains(&n)), "{counts:?}");
        }
    }

    #[test]
    fn debug_keeps_the_keys_secret() {
        let hash = FoldHash::new();
        assert_eq!(format!("{hash:?}"), "FoldHash { .. }");
        assert_eq!(format!("{:?}", hash.build_hasher()), "FoldHasher { .. }");
    }

    #[test]
    fn keys_differ_per_builder() {
        assert_ne!(FoldHash::new().hash_one("x"), FoldHash::new().hash_one("x"));
        assert_ne!(FoldHash::default().hash_one(1_u64), FoldHash::default().hash_one(1_u64));
    }
}
