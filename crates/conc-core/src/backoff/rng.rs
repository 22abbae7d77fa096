//! The pseudo-random source behind jitter: `SplitMix64`, seekable, plus a cheap seed source.
//!
//! `SplitMix64` (Steele, Lea and Flood, "Fast splittable pseudorandom number generators",
//! OOPSLA 2014) walks a Weyl sequence `state += GAMMA` and scrambles each state with a
//! finaliser. Because the state after `k` steps is `seed + k * GAMMA`, the `k`-th output can be
//! computed directly, which is what lets a resumed schedule draw exactly the numbers the
//! uninterrupted one would have drawn. The output is not cryptographic and does not need to be:
//! it only spreads retries in time.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

/// The Weyl increment of `SplitMix64`: 2^64 divided by the golden ratio, made odd.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The `SplitMix64` output finaliser, a bijection on `u64` with good avalanche.
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Returns output number `index` (0-based) of the `SplitMix64` stream seeded with `seed`.
///
/// Equal to calling the sequential generator `index + 1` times, in O(1).
pub(crate) const fn splitmix64_at(seed: u64, index: u64) -> u64 {
    mix(seed.wrapping_add(index.wrapping_add(1).wrapping_mul(GAMMA)))
}

/// Returns a fresh seed for a schedule that was not given one.
///
/// Each thread runs its own `SplitMix64` stream, started from the random keys std gives every
/// thread for `HashMap` hashing, so the call is a thread-local read and write: no lock, no shared
/// atomic, no allocation, no system call after the first use on a thread. Two threads (or two
/// processes) start from different keys, so callers that fail together do not retry together.
pub(crate) fn fresh_seed() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(entropy());
    }
    // `try_with` only fails while the thread's locals are being destroyed; a destructor that
    // builds a schedule then still gets an unpredictable seed.
    STATE
        .try_with(|state| {
            let next = state.get().wrapping_add(GAMMA);
            state.set(next);
            mix(next)
        })
        .unwrap_or_else(|_| mix(entropy()))
}

/// 64 unpredictable bits from the per-thread random keys of std's `RandomState`.
fn entropy() -> u64 {
    RandomState::new().hash_one(GAMMA)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::{fresh_seed, splitmix64_at};

    #[test]
    fn matches_the_reference_stream() {
        // The first outputs of the reference C implementation (Vigna) seeded with 1234567.
        let expected: [u64; 5] = [
            6_457_827_717_110_365_317,
            3_203_168_211_198_807_973,
            9_817_491_932_198_370_423,
            4_593_380_528_125_082_431,
            16_408_922_859_458_223_821,
        ];
        for (index, want) in (0_u64..).zip(expected) {
            assert_eq!(splitmix64_at(1_234_567, index), want, "output {index}");
        }
    }

    #[test]
    fn seeking_wraps_instead_of_overflowing() {
        assert_eq!(splitmix64_at(u64::MAX, u64::MAX), splitmix64_at(u64::MAX, u64::MAX));
        assert_ne!(splitmix64_at(u64::MAX, u64::MAX), splitmix64_at(u64::MAX, u64::MAX - 1));
    }

    #[test]
    fn fresh_seeds_do_not_repeat_on_one_thread() {
        let seeds: HashSet<u64> = (0..10_000).map(|_| fresh_seed()).collect();
        assert_eq!(seeds.len(), 10_000);
    }

    #[test]
    fn fresh_seeds_differ_across_threads() {
        let handles: Vec<_> = (0..4).map(|_| std::thread::spawn(fresh_seed)).collect();
        let seeds: HashSet<u64> =
            handles.into_iter().map(|handle| handle.join().expect("seed thread")).collect();
        assert_eq!(seeds.len(), 4);
    }
}
