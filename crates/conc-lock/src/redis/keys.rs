//! The Redis keys of a lock name, and the hash tag that keeps them on one
//! Redis Cluster slot.
//!
//! A lock named `n` lives in two keys:
//!
//! ```text
//! <prefix>{<tag>}<rest>          the hold: owner token, expires with the ttl
//! <prefix>{<tag>}<rest>:fence    the fence counter: no ttl, survives release
//! ```
//!
//! Redis Cluster hashes only the text between the first `{` and the first `}`
//! after it (the hash tag), so every key with the same `<tag>` lands on the
//! same slot and one script may touch them all.
//!
//! - For a plain name, `<tag>` is the whole name and `<rest>` is empty.
//! - For a funnel slot (the front-end names them `<funnel>\u{1f}slot<i>`),
//!   `<tag>` is the part before the first U+001F and `<rest>` the part from
//!   it on, so all slots of a funnel share the funnel's hash tag. User names
//!   cannot contain control characters, so only funnel slots split.
//!
//! Names may contain `{` and `}`, which would move the tag's end. So `<tag>`
//! is the name percent-escaped: `%`, `{`, `}` and control characters become
//! `%XX` (uppercase hex of each UTF-8 byte); everything else is kept, so keys
//! stay readable (`conc:lock:{orders:42}`). `<rest>` escapes `:` too, so the
//! `:fence` suffix cannot be forged by a slot name. The key prefix may not
//! contain braces (checked when the backend is built). Together these make
//! the mapping from names to keys one-to-one: no two names share a key.

use std::fmt;

/// The suffix of a lock's fence key.
const FENCE_SUFFIX: &str = ":fence";

/// The character the front-end puts between a funnel's name and its slot's.
const SLOT_SEPARATOR: char = '\u{1f}';

/// The Redis keys of one lock name, computed once per lock handle (the
/// [`Prepared`](crate::LockBackend::Prepared) state of
/// [`RedisBackend`](crate::RedisBackend)), so operations never format keys.
///
/// # Examples
///
/// ```no_run
/// use conc_lock::{LockBackend, RedisBackend};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_lock::LockError> {
/// let backend = RedisBackend::connect("redis://127.0.0.1:6379/").await?;
/// let keys = backend.prepare("invoice{42}");
/// assert_eq!(keys.lock_key(), "conc:lock:{invoice%7B42%7D}");
/// assert_eq!(keys.fence_key(), "conc:lock:{invoice%7B42%7D}:fence");
/// assert_eq!(keys.hash_tag(), "invoice%7B42%7D");
/// # Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RedisKeys {
    /// `<prefix>{<tag>}<rest>:fence`; the lock key is its prefix.
    fence: Box<str>,
    /// The length of the lock key within `fence`.
    lock_len: usize,
    /// Where the hash tag starts and ends within the keys.
    tag: (usize, usize),
}

impl RedisKeys {
    /// The keys of lock `name` under `prefix` (which contains no braces).
    pub(crate) fn new(prefix: &str, name: &str) -> Self {
        debug_assert!(!prefix.contains(['{', '}']), "key prefixes are validated");
        let (tag, rest) = match name.find(SLOT_SEPARATOR) {
            Some(at) if at > 0 => name.split_at(at),
            _ => (name, ""),
        };
        let mut key = String::with_capacity(prefix.len() + name.len() + 2 + FENCE_SUFFIX.len());
        key.push_str(prefix);
        key.push('{');
        let tag_start = key.len();
        push_escaped(&mut key, tag, false);
        let tag_end = key.len();
        key.push('}');
        push_escaped(&mut key, rest, true);
        let lock_len = key.len();
        key.push_str(FENCE_SUFFIX);
        Self { fence: key.into_boxed_str(), lock_len, tag: (tag_start, tag_end) }
    }

    /// The key holding the owner token while the lock is held; it expires
    /// with the hold's time to live.
    pub fn lock_key(&self) -> &str {
        &self.fence[..self.lock_len]
    }

    /// The key holding the lock's fence counter; it has no time to live and
    /// outlives every hold.
    pub fn fence_key(&self) -> &str {
        &self.fence
    }

    /// The hash tag both keys share (the text between the braces), which
    /// decides their Redis Cluster slot.
    pub fn hash_tag(&self) -> &str {
        &self.fence[self.tag.0..self.tag.1]
    }
}

impl fmt::Debug for RedisKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RedisKeys").field(&self.lock_key()).finish()
    }
}

/// Appends `text` to `out` with `%`, `{`, `}`, control characters and (when
/// `colon`) `:` percent-escaped.
fn push_escaped(out: &mut String, text: &str, colon: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut clean = 0;
    for (at, ch) in text.char_indices() {
        let escape = matches!(ch, '%' | '{' | '}') || (colon && ch == ':') || ch.is_control();
        if !escape {
            continue;
        }
        out.push_str(&text[clean..at]);
        let mut utf8 = [0; 4];
        for byte in ch.encode_utf8(&mut utf8).bytes() {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        clean = at + ch.len_utf8();
    }
    out.push_str(&text[clean..]);
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::RedisKeys;

    /// The hash tag Redis Cluster computes for `key`: the text between the
    /// first `{` and the first `}` after it, when not empty; else the key.
    fn cluster_tag(key: &str) -> &str {
        let Some(open) = key.find('{') else { return key };
        match key[open + 1..].find('}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        }
    }

    #[test]
    fn plain_names_keep_their_text() {
        let keys = RedisKeys::new("conc:lock:", "orders:42");
        assert_eq!(keys.lock_key(), "conc:lock:{orders:42}");
        assert_eq!(keys.fence_key(), "conc:lock:{orders:42}:fence");
        assert_eq!(keys.hash_tag(), "orders:42");
        assert_eq!(format!("{keys:?}"), r#"RedisKeys("conc:lock:{orders:42}")"#);
    }

    #[test]
    fn braces_and_percent_are_escaped() {
        let keys = RedisKeys::new("p:", "a{b}c%d é");
        assert_eq!(keys.lock_key(), "p:{a%7Bb%7Dc%25d é}");
        assert_eq!(keys.hash_tag(), "a%7Bb%7Dc%25d é");
        assert_eq!(cluster_tag(keys.lock_key()), keys.hash_tag());
        assert_eq!(cluster_tag(keys.fence_key()), keys.hash_tag());
    }

    #[test]
    fn funnel_slots_take_the_funnel_name_as_tag() {
        let funnel = "exp{orts}";
        let slots: Vec<_> =
            (0..3).map(|i| RedisKeys::new("", &format!("{funnel}\u{1f}slot{i}"))).collect();
        assert_eq!(slots[0].lock_key(), "{exp%7Borts%7D}%1Fslot0");
        assert_eq!(slots[2].fence_key(), "{exp%7Borts%7D}%1Fslot2:fence");
        for slot in &slots {
            assert_eq!(slot.hash_tag(), "exp%7Borts%7D");
            assert_eq!(cluster_tag(slot.lock_key()), "exp%7Borts%7D");
            assert_eq!(cluster_tag(slot.fence_key()), "exp%7Borts%7D");
        }
        // A name starting with the separator is not split: the tag is never empty.
        let odd = RedisKeys::new("", "\u{1f}slot0");
        assert_eq!(odd.lock_key(), "{%1Fslot0}");
        assert_eq!(cluster_tag(odd.lock_key()), "%1Fslot0");
    }

    #[test]
    fn no_two_names_share_a_key() {
        let names = [
            "a",
            "a:fence",
            "{a}",
            "%7Ba%7D",
            "a{",
            "a%7B",
            "a}",
            "}a{",
            "a\u{1f}slot0",
            "a\u{1f}slot0:fence",
            "a\u{1f}slot0\u{1f}x",
            "a\u{1f}\u{1f}slot0",
            "a%1Fslot0",
            "a}%1Fslot0",
            "\u{1f}slot0",
            "%1Fslot0",
            "a%",
            "a%25",
        ];
        let mut seen = HashSet::new();
        for name in names {
            let keys = RedisKeys::new("conc:lock:", name);
            assert!(seen.insert(keys.lock_key().to_owned()), "{name:?} -> {keys:?}");
            assert!(seen.insert(keys.fence_key().to_owned()), "{name:?} -> {keys:?}");
            assert_eq!(cluster_tag(keys.lock_key()), keys.hash_tag(), "{name:?}");
            assert_eq!(cluster_tag(keys.fence_key()), keys.hash_tag(), "{name:?}");
        }
    }
}
