//! The Redis keys of a queue, all under one hash tag so that every script of
//! a queue runs on one Redis Cluster slot.
//!
//! Queue `q` under prefix `p` owns the keys starting `p{<tag>}:`, where
//! `<tag>` is `q` with `%`, `{`, `}` and control characters percent-escaped
//! (`%XX`, uppercase hex of each UTF-8 byte): no queue name can end the tag
//! early, and no two names share a tag. The prefix may not contain braces
//! (checked when the queue is built), so the tag is the first pair of braces
//! of every key. The scripts add the rest of each key to that base:
//!
//! ```text
//! p{q}:ready:<0..9>        LIST  ready job ids, one list per priority
//! p{q}:delayed             ZSET  job id -> available at (Unix ms)
//! p{q}:reserved            ZSET  job id -> lease expiry (Unix ms)
//! p{q}:job:<id>            HASH  envelope, attempts, token, version, ...
//! p{q}:seq                 STRING the lease-token counter
//! p{q}:meta                HASH  paused, capacity, concurrency
//! p{q}:notify              LIST  wake-up tokens for idle workers
//! p{q}:failed              ZSET  failed job ids, by id (lexicographic)
//! p{q}:failed:at           ZSET  failed job id -> failed at (Unix ms)
//! p{q}:failed:data         HASH  failed job id -> record
//! p{q}:failed:names        HASH  failed job id -> job name
//! p{q}:failed:name:<name>  ZSET  failed job ids of one job name
//! p{q}:corrupt             HASH  job id -> a stored job that did not decode
//! pqueues                  SET   every queue name (the one key outside a tag)
//! ```
//!
//! Workflows keep their keys outside any queue's tag, under `pwf:` (see
//! [`flow_lua`](super::flow_lua) and the crate guide): batches
//! (`pwf:batch:<id>` and its `:members`, `:ids`, `:outcomes`, `:failed`),
//! the batch index and deadlines, the archive, unique locks
//! (`pwf:lock:<key>`) and debounce records (`pwf:debounce:<key>`).

/// The default key prefix.
pub(super) const DEFAULT_PREFIX: &str = "conc:bus:";

/// The key every queue's keys start with: `<prefix>{<tag>}:`.
pub(super) fn base(prefix: &str, queue: &str) -> String {
    let mut key = String::with_capacity(prefix.len() + queue.len() + 3);
    key.push_str(prefix);
    key.push('{');
    for ch in queue.chars() {
        if matches!(ch, '%' | '{' | '}') || ch.is_control() {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            let mut bytes = [0; 4];
            for byte in ch.encode_utf8(&mut bytes).bytes() {
                key.push('%');
                key.push(char::from(HEX[usize::from(byte >> 4)]));
                key.push(char::from(HEX[usize::from(byte & 0xf)]));
            }
        } else {
            key.push(ch);
        }
    }
    key.push_str("}:");
    key
}

/// The set of every queue's name.
pub(super) fn registry(prefix: &str) -> String {
    format!("{prefix}queues")
}

/// The list idle workers of `queue` block on.
pub(super) fn notify(prefix: &str, queue: &str) -> String {
    let mut key = base(prefix, queue);
    key.push_str("notify");
    key
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// The hash tag Redis Cluster hashes for `key`: the text between the
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
        assert_eq!(base("conc:bus:", "mail"), "conc:bus:{mail}:");
        assert_eq!(notify("p:", "mail"), "p:{mail}:notify");
        assert_eq!(registry("p:"), "p:queues");
        assert_eq!(cluster_tag(&base("p:", "mail")), "mail");
    }

    #[test]
    fn braces_and_percent_are_escaped_so_no_two_names_share_a_tag() {
        assert_eq!(base("p:", "a{b}c%"), "p:{a%7Bb%7Dc%25}:");
        let names = ["a", "{a}", "%7Ba%7D", "a{", "a}", "}a{", "a%", "a%25", "é{", "x:y"];
        let mut tags = HashSet::new();
        for name in names {
            let key = base("conc:bus:", name);
            let tag = cluster_tag(&key).to_owned();
            assert!(tags.insert(tag.clone()), "{name:?} -> {key}");
            assert_eq!(format!("conc:bus:{{{tag}}}:"), key, "{name:?}");
        }
    }
}
