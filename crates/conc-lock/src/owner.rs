//! Owner tokens: who holds a lock.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::LockError;

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
/// Cloning is cheap (a reference count).
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
#[derive(Clone, Eq, Hash)]
pub struct Owner(Arc<str>);

impl PartialEq for Owner {
    fn eq(&self, other: &Self) -> bool {
        // Holders compare their own token with the stored clone of it: the
        // pointer check settles that without reading the text.
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Owner {
    /// A fresh random owner token: 128 bits from the operating system's
    /// randomness (through std's `RandomState` keys) mixed with the process
    /// id, the time and a counter, as 32 lowercase hex digits.
    pub fn random() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let half = |state: RandomState| {
            let mut hasher = state.build_hasher();
            hasher.write_u64(count);
            hasher.write_u128(nanos);
            hasher.write_u32(std::process::id());
            hasher.finish()
        };
        let (high, low) = (half(RandomState::new()), half(RandomState::new()));
        Self(Arc::from(format!("{high:016x}{low:016x}")))
    }

    /// An owner token with a known value, to act for a holder elsewhere.
    ///
    /// # Errors
    ///
    /// [`LockError::InvalidOwner`] when `token` is empty, longer than
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
            Some(reason) => Err(LockError::InvalidOwner { owner: token, reason }),
            None => Ok(Self(Arc::from(token))),
        }
    }

    /// The token as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Owner").field(&&*self.0).finish()
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
