//! One lock name's state in the in-memory backend.
//!
//! The state lives in atomics: a word with the hold bit, a writer bit and
//! the last fence, the expiry time, and the holder's owner as two 64-bit
//! halves of its 128 bits. Every operation claims the writer bit with one
//! compare-and-swap, reads or writes the other fields, and publishes the new
//! word with one store: an uncontended acquisition or release is one atomic
//! read-modify-write (a mutex costs two, lock and unlock). Nothing awaits
//! and no user code runs while the bit is claimed, so the few instructions
//! in between are all another thread ever waits for; it spins, then yields.
//!
//! An owner given as text that is not a random token's 32 hex digits has no
//! 128 bits: it is kept in a small mutex beside the word, touched only by
//! holds of such owners.

use std::fmt;
use std::sync::{Arc, PoisonError};

use crate::loom::sync::atomic::{AtomicU64, Ordering};
use crate::loom::sync::{Mutex, MutexGuard};
use crate::{Fence, Owner};

/// The word's bit set while a hold exists (it may have expired).
const HELD: u64 = 1;
/// The word's bit set while one operation reads or writes the slot.
const WRITING: u64 = 1 << 1;
/// The word's bit set when the last holder's owner is in `given`, not in
/// `owner`.
const GIVEN: u64 = 1 << 2;
/// The last fence handed out sits above the flag bits (61 bits: more
/// acquisitions than a process makes in centuries).
const FENCE_SHIFT: u32 = 3;

/// The state of one lock name in a [`MemoryBackend`](super::MemoryBackend),
/// shared by every handle on that name.
///
/// The fields a lookup reads (the name, when a handle was last made) come
/// first, beside the word, so that a lookup and the acquisition after it
/// mostly read the same cache line.
#[repr(C)]
pub struct MemorySlot {
    name: SlotName,
    /// When a handle on the name was last made (written under the shard's
    /// lock), so that a sweep keeps the slots of names used recently.
    touched: AtomicU64,
    /// `last fence << FENCE_SHIFT | GIVEN | WRITING | HELD`.
    word: AtomicU64,
    /// When the hold expires, on the backend's timeline; meaningful while
    /// `HELD` is set.
    expires_at: AtomicU64,
    /// The high and low halves of the holder's owner bits, when not `GIVEN`.
    owner: [AtomicU64; 2],
    /// The holder's owner when it is `GIVEN` (boxed: most slots never see
    /// one, and a small slot keeps more of a large working set of names in
    /// cache).
    given: Mutex<Option<Box<Owner>>>,
}

/// The longest name a slot keeps inline, in bytes; longer ones are boxed.
const INLINE_NAME: usize = 22;

/// A lock name kept in its slot, inline when short (most keyed names are:
/// `customer:4711`), so that comparing it during a lookup reads the line that
/// also holds the slot's state, not a second allocation.
enum SlotName {
    Inline { len: u8, bytes: [u8; INLINE_NAME] },
    Boxed(Box<str>),
}

impl SlotName {
    fn new(name: &str) -> Self {
        match u8::try_from(name.len()) {
            Ok(len) if name.len() <= INLINE_NAME => {
                let mut bytes = [0_u8; INLINE_NAME];
                bytes[..name.len()].copy_from_slice(name.as_bytes());
                Self::Inline { len, bytes }
            }
            _ => Self::Boxed(Box::from(name)),
        }
    }

    #[inline]
    fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Self::Boxed(name) => name.as_bytes(),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Whole characters of a `str`, so valid UTF-8.
            Self::Inline { .. } => std::str::from_utf8(self.as_bytes())
                .unwrap_or_else(|_| unreachable!("a name is copied whole from a str")),
            Self::Boxed(name) => name,
        }
    }
}

/// The slot's word between [`MemorySlot::claim`] and [`MemorySlot::publish`].
#[derive(Clone, Copy)]
struct Word(u64);

impl Word {
    fn held(self) -> bool {
        self.0 & HELD != 0
    }

    fn fence(self) -> u64 {
        self.0 >> FENCE_SHIFT
    }

    /// This word with the hold removed (the fence and the owner's place stay).
    fn freed(self) -> Self {
        Self(self.0 & !HELD)
    }
}

impl MemorySlot {
    /// A slot for `name` whose fences continue above `last_fence`.
    pub(super) fn new(name: impl AsRef<str>, last_fence: u64) -> Self {
        Self {
            name: SlotName::new(name.as_ref()),
            touched: AtomicU64::new(0),
            word: AtomicU64::new(last_fence << FENCE_SHIFT),
            expires_at: AtomicU64::new(0),
            owner: [AtomicU64::new(0), AtomicU64::new(0)],
            given: Mutex::new(None),
        }
    }

    /// The lock name, in a new shared copy.
    pub(super) fn name(&self) -> Arc<str> {
        Arc::from(self.name.as_str())
    }

    /// The lock name.
    pub(super) fn name_str(&self) -> &str {
        self.name.as_str()
    }

    /// The lock name's bytes, which the shard's map compares.
    #[inline]
    pub(super) fn name_bytes(&self) -> &[u8] {
        self.name.as_bytes()
    }

    /// Records that a handle on the name was made at `now`.
    pub(super) fn touch(&self, now: u64) {
        self.touched.store(now, Ordering::Relaxed);
    }

    /// When a handle on the name was last made.
    pub(super) fn touched(&self) -> u64 {
        self.touched.load(Ordering::Relaxed)
    }

    /// The given owner's place (no code panics while holding it, so a
    /// poisoned lock still holds consistent data).
    fn given(&self) -> MutexGuard<'_, Option<Box<Owner>>> {
        self.given.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Claims the writer bit; returns the word without it.
    #[inline]
    fn claim(&self) -> Word {
        let mut spins = 0_u32;
        loop {
            let word = self.word.load(Ordering::Relaxed);
            if word & WRITING == 0
                && self
                    .word
                    .compare_exchange_weak(
                        word,
                        word | WRITING,
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    )
                    .is_ok()
            {
                return Word(word);
            }
            spins = spins.saturating_add(1);
            wait_for_writer(spins);
        }
    }

    /// Stores `word` (which has no writer bit), releasing the claim and
    /// publishing what was written under it.
    #[inline]
    fn publish(&self, word: Word) {
        self.word.store(word.0, Ordering::Release);
    }

    /// Whether the claimed `word` has a hold unexpired at `now`; `Err` with
    /// the nanoseconds it has left.
    fn live(&self, word: Word, now: u64) -> Result<(), u64> {
        if word.held() {
            let expires_at = self.expires_at.load(Ordering::Relaxed);
            if expires_at > now {
                return Err(expires_at - now);
            }
        }
        Ok(())
    }

    /// Whether `owner` made the hold of the claimed `word`.
    fn held_by(&self, word: Word, owner: &Owner) -> bool {
        if word.0 & GIVEN != 0 {
            self.given().as_deref() == Some(owner)
        } else {
            owner.bits().is_some_and(|bits| {
                let high = self.owner[0].load(Ordering::Relaxed);
                let low = self.owner[1].load(Ordering::Relaxed);
                bits == (u128::from(high) << 64 | u128::from(low))
            })
        }
    }

    /// The owner of the claimed `word`'s hold.
    fn holder(&self, word: Word) -> Option<Owner> {
        if word.0 & GIVEN != 0 {
            self.given().as_deref().cloned()
        } else {
            let high = self.owner[0].load(Ordering::Relaxed);
            let low = self.owner[1].load(Ordering::Relaxed);
            Some(Owner::from_bits(u128::from(high) << 64 | u128::from(low)))
        }
    }

    /// Takes the slot for `owner` until `expires_at` unless an unexpired hold
    /// exists at `now`: the new hold's fence, or `Err` with the nanoseconds
    /// the current hold has left.
    #[inline]
    pub(super) fn acquire(&self, owner: &Owner, now: u64, expires_at: u64) -> Result<Fence, u64> {
        let word = self.claim();
        if let Err(left) = self.live(word, now) {
            self.publish(word);
            return Err(left);
        }
        let fence = word.fence() + 1;
        self.expires_at.store(expires_at, Ordering::Relaxed);
        let given = if let Some(bits) = owner.bits() {
            self.owner[0].store((bits >> 64) as u64, Ordering::Relaxed);
            self.owner[1].store(bits as u64, Ordering::Relaxed);
            if word.0 & GIVEN != 0 {
                // Drop the last given owner now rather than keep it.
                self.given().take();
            }
            0
        } else {
            *self.given() = Some(Box::new(owner.clone()));
            GIVEN
        };
        self.publish(Word(fence << FENCE_SHIFT | given | HELD));
        Ok(Fence::new(fence))
    }

    /// Removes `owner`'s hold unexpired at `now` (only the one with `fence`,
    /// when given); `false` when there is none.
    #[inline]
    pub(super) fn release(&self, owner: &Owner, fence: Option<Fence>, now: u64) -> bool {
        let word = self.claim();
        let release = word.held()
            && self.live(word, now).is_err()
            && fence.is_none_or(|fence| fence.get() == word.fence())
            && self.held_by(word, owner);
        self.publish(if release { word.freed() } else { word });
        release
    }

    /// Moves the expiry of `owner`'s hold unexpired at `now` to `expires_at`;
    /// `false` when there is none.
    pub(super) fn extend(&self, owner: &Owner, now: u64, expires_at: u64) -> bool {
        let word = self.claim();
        let extend = self.live(word, now).is_err() && self.held_by(word, owner);
        if extend {
            self.expires_at.store(expires_at, Ordering::Relaxed);
        }
        self.publish(word);
        extend
    }

    /// The owner of the hold unexpired at `now`, if any.
    pub(super) fn owner(&self, now: u64) -> Option<Owner> {
        let word = self.claim();
        let owner = if self.live(word, now).is_err() { self.holder(word) } else { None };
        self.publish(word);
        owner
    }

    /// Removes any hold; `true` if it was unexpired at `now`.
    pub(super) fn force_release(&self, now: u64) -> bool {
        let word = self.claim();
        let live = self.live(word, now).is_err();
        self.publish(word.freed());
        live
    }

    /// `None` while an unexpired hold exists at `now`; otherwise the last
    /// fence handed out, which a slot replacing this one must continue from.
    pub(super) fn removable(&self, now: u64) -> Option<u64> {
        let word = self.claim();
        let live = self.live(word, now).is_err();
        self.publish(word);
        if live { None } else { Some(word.fence()) }
    }

    /// The hold's fence and owner, for `Debug`.
    fn describe(&self) -> Option<(u64, Option<Owner>)> {
        let word = self.claim();
        let hold = word.held().then(|| (word.fence(), self.holder(word)));
        self.publish(word);
        hold
    }
}

/// Waits a little for the writer of a slot to finish: it runs a few
/// instructions, so spin first; yield if it was descheduled meanwhile.
#[inline]
fn wait_for_writer(spins: u32) {
    #[cfg(all(test, conc_loom))]
    {
        let _ = spins;
        crate::loom::thread::yield_now();
    }
    #[cfg(not(all(test, conc_loom)))]
    if spins < 64 {
        std::hint::spin_loop();
    } else {
        crate::loom::thread::yield_now();
    }
}

impl fmt::Debug for MemorySlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hold = self.describe();
        f.debug_struct("MemorySlot")
            .field("name", &self.name_str())
            .field("owner", &hold.as_ref().and_then(|(_, owner)| owner.as_ref()))
            .field("fence", &hold.as_ref().map(|(fence, _)| Fence::new(*fence)))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
