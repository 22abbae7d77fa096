//! Job ids: 128-bit, time-ordered, printed as 26 Crockford base-32 characters
//! (the ULID layout), so ids sort by creation time as text and as numbers.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The Crockford base-32 alphabet (no I, L, O, U).
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The id of a job: unique, chosen by the producer before the push (so a push
/// can be retried without creating a second job), ordered by creation time.
///
/// The top 48 bits are the Unix time in milliseconds at creation, the other
/// 80 bits are random. Printed and parsed as 26 characters of Crockford's
/// base 32, like a ULID.
///
/// # Examples
///
/// ```
/// use conc_bus::JobId;
///
/// let id = JobId::new();
/// let text = id.to_string();
/// assert_eq!(text.len(), 26);
/// assert_eq!(text.parse::<JobId>()?, id);
/// assert!(JobId::new() > id || JobId::new().millis() >= id.millis());
/// # Ok::<(), conc_bus::ParseIdError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(u128);

impl JobId {
    /// A fresh id, stamped with the current Unix time. Ids made one after
    /// another on one thread always grow, within a millisecond too (the
    /// random part of the previous id plus one), like a monotonic ULID.
    pub fn new() -> Self {
        thread_local! {
            static LAST: Cell<u128> = const { Cell::new(0) };
        }
        let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let fresh = Self::from_parts(u64::try_from(millis).unwrap_or(u64::MAX), random_80());
        LAST.try_with(|last| {
            let previous = last.get();
            // Same millisecond (or a clock that stepped back): follow the
            // previous id instead of a random one.
            let id =
                if fresh.0 <= previous && previous < u128::MAX { previous + 1 } else { fresh.0 };
            last.set(id);
            Self(id)
        })
        .unwrap_or(fresh)
    }

    /// An id from its Unix milliseconds (the low 48 bits are kept) and 80
    /// random bits (the low 80 bits of `random` are kept).
    pub fn from_parts(millis: u64, random: u128) -> Self {
        let millis = u128::from(millis & ((1 << 48) - 1));
        Self((millis << 80) | (random & ((1 << 80) - 1)))
    }

    /// The id as one 128-bit number.
    pub fn as_u128(self) -> u128 {
        self.0
    }

    /// The id of a 128-bit number.
    pub fn from_u128(value: u128) -> Self {
        Self(value)
    }

    /// The Unix time in milliseconds at which the id was made.
    pub fn millis(self) -> u64 {
        (self.0 >> 80) as u64
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

/// 80 unpredictable bits from a per-thread `SplitMix64` stream seeded from
/// std's per-thread hash keys: no lock, no system call after the first use.
fn random_80() -> u128 {
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    thread_local! {
        static STATE: Cell<u64> = Cell::new(RandomState::new().hash_one(GAMMA));
    }
    let next = || {
        STATE
            .try_with(|state| {
                let next = state.get().wrapping_add(GAMMA);
                state.set(next);
                mix(next)
            })
            .unwrap_or_else(|_| mix(RandomState::new().hash_one(GAMMA)))
    };
    (u128::from(next()) << 64) | u128::from(next())
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0_u8; 26];
        let mut value = self.0;
        for slot in out.iter_mut().rev() {
            *slot = ALPHABET[(value & 31) as usize];
            value >>= 5;
        }
        // Every byte comes from the ASCII alphabet.
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({self})")
    }
}

/// Text that is not a job id: not 26 characters of Crockford's base 32, or
/// too large for 128 bits.
///
/// # Examples
///
/// ```
/// use conc_bus::JobId;
///
/// let err = "not-an-id".parse::<JobId>().unwrap_err();
/// assert_eq!(err.to_string(), "invalid job id \"not-an-id\": must be 26 characters of Crockford base 32");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid job id {text:?}: must be 26 characters of Crockford base 32")]
pub struct ParseIdError {
    text: String,
}

impl FromStr for JobId {
    type Err = ParseIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || ParseIdError { text: text.to_owned() };
        if text.len() != 26 {
            return Err(invalid());
        }
        let mut value: u128 = 0;
        for (index, byte) in text.bytes().enumerate() {
            let digit = match byte.to_ascii_uppercase() {
                b'O' => 0,
                b'I' | b'L' => 1,
                upper => ALPHABET.iter().position(|&c| c == upper).ok_or_else(invalid)? as u128,
            };
            // The first character carries only 3 bits (26 * 5 = 130 > 128).
            if index == 0 && digit > 7 {
                return Err(invalid());
            }
            value = (value << 5) | digit;
        }
        Ok(Self(value))
    }
}

impl Serialize for JobId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for JobId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn text_round_trips_and_keeps_the_order(a: u128, b: u128) {
            let (a, b) = (JobId(a), JobId(b));
            prop_assert_eq!(a.to_string().parse::<JobId>().unwrap(), a);
            prop_assert_eq!(a.cmp(&b), a.to_string().cmp(&b.to_string()));
        }
    }

    #[test]
    fn ids_of_one_millisecond_differ_and_carry_the_time() {
        let a = JobId::from_parts(1_700_000_000_000, random_80());
        let b = JobId::from_parts(1_700_000_000_000, random_80());
        assert_ne!(a, b);
        assert_eq!(a.millis(), 1_700_000_000_000);
        assert!(JobId::new().millis() > 1_700_000_000_000);
    }

    #[test]
    fn ids_made_in_a_row_grow() {
        let ids: Vec<JobId> = (0..10_000).map(|_| JobId::new()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn bad_text_is_refused() {
        for text in ["", "0123", "8ZZZZZZZZZZZZZZZZZZZZZZZZZ", "0000000000000000000000000U"] {
            assert!(text.parse::<JobId>().is_err(), "{text}");
        }
        assert_eq!("7ZZZZZZZZZZZZZZZZZZZZZZZZZ".parse::<JobId>().unwrap().as_u128(), u128::MAX);
    }
}
