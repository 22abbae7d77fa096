//! The hash of lock names in the in-memory backend.
//!
//! std's SipHash-1-3 (`RandomState`) spends about 200 instructions on a
//! short name, and a name is hashed twice per lookup (its shard, then its map
//! entry), on the path of every keyed `LockStore::lock`. This is the
//! folded-multiply construction of `foldhash` and `ahash`'s fallback: each
//! 8-byte word is mixed into the state by a 64×64→128-bit multiply whose
//! halves are xored. The keys are drawn per backend from std's random keys,
//! so which names collide depends on values an outsider never sees (the same
//! defence against chosen-collision names as those crates; not a
//! cryptographic guarantee).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// Builds [`NameHasher`]s with one backend's random keys.
#[derive(Clone, Copy, Debug)]
pub(super) struct NameHash {
    keys: [u64; 2],
}

impl NameHash {
    /// Fresh random keys.
    pub(super) fn random() -> Self {
        let state = RandomState::new();
        Self { keys: [state.hash_one(0_u8) | 1, state.hash_one(1_u8)] }
    }
}

impl BuildHasher for NameHash {
    type Hasher = NameHasher;

    fn build_hasher(&self) -> NameHasher {
        NameHasher { state: self.keys[1], key: self.keys[0] }
    }
}

/// The hasher built by [`NameHash`].
#[derive(Debug)]
pub(super) struct NameHasher {
    state: u64,
    key: u64,
}

/// The high and low halves of the full product, xored.
fn folded_multiply(x: u64, y: u64) -> u64 {
    let full = u128::from(x) * u128::from(y);
    (full as u64) ^ ((full >> 64) as u64)
}

/// An arbitrary odd constant (the fractional digits of pi) that keeps a
/// zero word from zeroing the product.
const PI: u64 = 0x243f_6a88_85a3_08d3;

impl NameHasher {
    fn mix(&mut self, word: u64) {
        self.state = folded_multiply(self.state ^ word, self.key ^ PI);
    }
}

impl Hasher for NameHasher {
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

    fn write_u8(&mut self, byte: u8) {
        self.mix(u64::from(byte));
    }

    // A byte slice's length prefix: one mix, not the eight bytes through
    // `write`.
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    fn finish(&self) -> u64 {
        folded_multiply(self.state, self.key.rotate_left(23) ^ PI)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    use super::NameHash;

    #[test]
    fn distinct_names_hash_apart() {
        let hash = NameHash::random();
        let names = (0..100_000).map(|i| format!("customer:{i}"));
        let hashes: HashSet<u64> = names.map(|name| hash.hash_one(name.as_str())).collect();
        assert_eq!(hashes.len(), 100_000);
        assert_ne!(hash.hash_one("a"), hash.hash_one("a\0"));
        assert_ne!(hash.hash_one(""), hash.hash_one("\0"));
    }

    #[test]
    fn low_bits_spread_evenly() {
        // Shards and map buckets are picked by the low bits.
        let hash = NameHash::random();
        let mut buckets = [0_u32; 16];
        for i in 0..16_000 {
            buckets[(hash.hash_one(format!("job:{i}").as_str()) & 15) as usize] += 1;
        }
        assert!(buckets.iter().all(|&n| (800..1200).contains(&n)), "{buckets:?}");
    }

    #[test]
    fn keys_differ_per_builder() {
        assert_ne!(NameHash::random().hash_one("x"), NameHash::random().hash_one("x"));
    }
}
