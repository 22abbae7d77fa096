//! House rules read from the crates' sources (`docs/architecture.md`,
//! "Conventions"): no source file over [`MAX_LINES`] lines, and one public
//! type per name across the workspace's crates.
//!
//! A public type is a line `pub struct|enum|trait|type Name` in a crate's
//! `src/`. Tower's naming is the one deliberate exception: every middleware
//! has its `ResponseFuture` in its own `future` module.

use std::collections::BTreeMap;

/// The most lines a source file may have.
pub(crate) const MAX_LINES: usize = 800;

/// Names allowed in several crates, each in a module of its own.
const SHARED_NAMES: [&str; 1] = ["ResponseFuture"];

/// One source file: its crate, its root-relative path and its text.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) krate: String,
    pub(crate) path: String,
    pub(crate) text: String,
}

/// A broken house rule at `path:line`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Breach {
    pub(crate) path: String,
    pub(crate) line: usize,
    pub(crate) message: String,
}

/// The public type declared on `line`, if any.
fn public_type(line: &str) -> Option<&str> {
    let rest = line.trim_start().strip_prefix("pub ")?;
    let rest =
        ["struct ", "enum ", "trait ", "type "].iter().find_map(|kw| rest.strip_prefix(kw))?;
    let end = rest.find(|c: char| !c.is_ascii_alphanumeric() && c != '_').unwrap_or(rest.len());
    let name = &rest[..end];
    name.starts_with(|c: char| c.is_ascii_uppercase()).then_some(name)
}

/// Every breach in `sources`.
pub(crate) fn check(sources: &[Source]) -> Vec<Breach> {
    let mut breaches = Vec::new();
    // name → (crate → first place it is declared)
    let mut declared: BTreeMap<&str, BTreeMap<&str, (String, usize)>> = BTreeMap::new();
    for source in sources {
        let lines = source.text.lines().count();
        if lines > MAX_LINES {
            breaches.push(Breach {
                path: source.path.clone(),
                line: 1,
                message: format!(
                    "{lines} lines: a source file has at most {MAX_LINES}; split it by role"
                ),
            });
        }
        for (index, line) in source.text.lines().enumerate() {
            if let Some(name) = public_type(line)
                && !SHARED_NAMES.contains(&name)
            {
                declared
                    .entry(name)
                    .or_default()
                    .entry(source.krate.as_str())
                    .or_insert_with(|| (source.path.clone(), index + 1));
            }
        }
    }
    for (name, crates) in declared {
        if crates.len() > 1 {
            let names: Vec<&str> = crates.keys().copied().collect();
            for (path, line) in crates.values() {
                breaches.push(Breach {
                    path: path.clone(),
                    line: *line,
                    message: format!(
                        "public type `{name}` is declared in {}: one public type per name",
                        names.join(", ")
                    ),
                });
            }
        }
    }
    breaches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(krate: &str, path: &str, text: &str) -> Source {
        Source { krate: krate.to_owned(), path: path.to_owned(), text: text.to_owned() }
    }

    #[test]
    fn reads_public_type_names() {
        assert_eq!(public_type("pub struct Pool<T> {"), Some("Pool"));
        assert_eq!(public_type("    pub enum JoinError {"), Some("JoinError"));
        assert_eq!(public_type("pub type Result<T> = ..;"), Some("Result"));
        assert_eq!(public_type("pub(crate) struct Hidden;"), None);
        assert_eq!(public_type("pub fn new() -> Self"), None);
        assert_eq!(public_type("pub struct lower;"), None);
    }

    #[test]
    fn a_name_in_two_crates_is_named_at_both_places() {
        let breaches = check(&[
            source("conc-a", "crates/a/src/lib.rs", "pub struct Metrics;\n"),
            source("conc-b", "crates/b/src/m.rs", "//! x\npub struct Metrics {}\n"),
            source("conc-b", "crates/b/src/n.rs", "pub struct Metrics {}\n"),
            source("conc-a", "crates/a/src/f.rs", "pub struct ResponseFuture;\n"),
            source("conc-b", "crates/b/src/f.rs", "pub struct ResponseFuture;\n"),
        ]);
        let places: Vec<(&str, usize)> =
            breaches.iter().map(|b| (b.path.as_str(), b.line)).collect();
        assert_eq!(places, [("crates/a/src/lib.rs", 1), ("crates/b/src/m.rs", 2)]);
        assert!(breaches[0].message.contains("conc-a, conc-b"), "{}", breaches[0].message);
    }

    #[test]
    fn long_files_are_named() {
        let long = "//! x\n".repeat(MAX_LINES + 1);
        let breaches = check(&[source("conc-a", "crates/a/src/big.rs", &long)]);
        assert_eq!(breaches.len(), 1);
        assert!(breaches[0].message.starts_with("801 lines"), "{}", breaches[0].message);
        assert!(check(&[source("conc-a", "x.rs", &"//! x\n".repeat(MAX_LINES))]).is_empty());
    }
}
