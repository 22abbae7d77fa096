//! `cargo xtask tidy`: repository conventions that neither rustc nor clippy checks.
//!
//! Every offence is listed as `path:line: message`, then the command fails. The checks:
//!
//! - Rust files hold no unfinished or debugging macros (`todo`, `unimplemented`, `dbg`) and no
//!   ignored tests: a test that needs a service skips itself at run time with a printed reason.
//! - No text file (`*.rs`, `*.toml`, `*.md`, `*.sh`, `.ci/run`) names an absolute path on some
//!   machine (a home directory or the build machine's work directory).
//! - Every crate's `src/lib.rs` opens with its crate docs (`//!` on line 1).
//! - Every published crate under `crates/` except the umbrella (whose guide is the README)
//!   has a guide, `docs/<name without conc->.md`.
//! - The crates depend on each other as `docs/architecture.md` lays out ([`layers`]): each
//!   broken rule is reported at the offending dependency line of the manifest.
//! - No source file under a crate's `src/` has more than 800 lines, and no public type name
//!   is declared in two crates ([`house`]).
//!
//! The tree is walked from the workspace root, skipping `target` and `.git` directories.
//! The checks run as `#[test]`s too, so `cargo test` enforces them. This file spells the
//! patterns it looks for in pieces (`concat!`) so that it does not flag itself.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use crate::workspace::{self, Crate};
use crate::{Result, cmd, house, json, layers};

/// Patterns forbidden in Rust files, with the reason given for each.
const RUST_PATTERNS: [(&str, &str); 4] = [
    (concat!("to", "do!("), "unfinished code"),
    (concat!("unimpl", "emented!("), "unfinished code"),
    (concat!("db", "g!("), "debugging output"),
    (
        concat!("#[ig", "nore"),
        "ignored test: tests run everywhere or skip themselves at run time with a printed reason",
    ),
];

/// Absolute paths that only exist on some machine, forbidden in every text file.
const MACHINE_PATHS: [&str; 5] = [
    concat!("/wo", "rk/"),
    concat!("/ho", "me/"),
    concat!("/ro", "ot/"),
    concat!("/Us", "ers/"),
    concat!("C:\\", "Users"),
];

/// One broken convention, shown as `path:line: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Offence {
    /// The file, relative to the workspace root, with `/` separators.
    path: String,
    /// The 1-based line.
    line: usize,
    /// What is wrong.
    message: String,
}

impl fmt::Display for Offence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path, self.line, self.message)
    }
}

/// Checks the tree at `root`, prints every offence and fails if there is any.
pub(crate) fn run(root: &Path) -> Result {
    let offences = check(root)?;
    if offences.is_empty() {
        eprintln!("tidy: ok");
        return Ok(());
    }
    for offence in &offences {
        println!("{offence}");
    }
    Err(format!("tidy found {} offence(s)", offences.len()))
}

/// Every offence in the tree at `root`.
pub(crate) fn check(root: &Path) -> Result<Vec<Offence>> {
    let mut offences = Vec::new();
    let mut files = Vec::new();
    text_files(root, root, &mut files)?;
    files.sort();
    for path in files {
        let relative = relative(root, &path);
        match fs::read_to_string(&path) {
            Ok(text) => offences.extend(scan_text(&relative, &text)),
            Err(error) => offences.push(Offence {
                path: relative,
                line: 1,
                message: format!("unreadable as UTF-8 text: {error}"),
            }),
        }
    }
    offences.extend(layering(root)?);
    offences.extend(house_rules(root)?);
    for krate in workspace::crates(root)? {
        let lib_rs = fs::read_to_string(krate.dir.join("src/lib.rs")).ok();
        let guide = guide_path(&krate);
        let has_guide = guide.as_ref().is_some_and(|guide| root.join(guide).is_file());
        offences.extend(check_crate(
            &relative(root, &krate.dir),
            &krate,
            lib_rs.as_deref(),
            has_guide,
        ));
    }
    Ok(offences)
}

/// The broken dependency rules of the workspace at `root`, each at its manifest line.
fn layering(root: &Path) -> Result<Vec<Offence>> {
    let metadata = cmd::cargo(root)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .read()
        .ok_or("`cargo metadata --format-version 1 --no-deps` failed: cannot check the layering")?;
    let metadata = json::parse(&metadata).map_err(|e| format!("cargo metadata: {e}"))?;
    let root_text = root.to_string_lossy();
    let packages = layers::packages(&metadata, &root_text)?;
    Ok(layers::check(&packages)
        .into_iter()
        .map(|violation| {
            let manifest = fs::read_to_string(root.join(&violation.manifest)).unwrap_or_default();
            let line = manifest
                .lines()
                .position(|line| {
                    line.split(['=', '.']).next().is_some_and(|key| key.trim() == violation.to)
                })
                .map_or(1, |index| index + 1);
            Offence {
                path: violation.manifest,
                line,
                message: format!(
                    "{} depends on {}: {}",
                    violation.from, violation.to, violation.rule
                ),
            }
        })
        .collect())
}

/// The house rules over every crate's `src/` files.
fn house_rules(root: &Path) -> Result<Vec<Offence>> {
    let mut sources = Vec::new();
    for krate in workspace::crates(root)? {
        let src = krate.dir.join("src");
        let mut paths = Vec::new();
        workspace::walk_files(&src, &|_| false, &mut |path| {
            if path.extension().is_some_and(|ext| ext == "rs") {
                paths.push(path.to_path_buf());
            }
        })?;
        paths.sort();
        for path in paths {
            let text = fs::read_to_string(&path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            sources.push(house::Source {
                krate: krate.name.clone(),
                path: relative(root, &path),
                text,
            });
        }
    }
    Ok(house::check(&sources)
        .into_iter()
        .map(|breach| Offence { path: breach.path, line: breach.line, message: breach.message })
        .collect())
}

/// Collects the files tidy reads under `dir`, skipping `target`, `.git` and symlinks.
fn text_files(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) -> Result {
    let skip =
        |path: &Path| path.file_name().is_some_and(|name| name == "target" || name == ".git");
    workspace::walk_files(dir, &skip, &mut |path| {
        if is_text_file(&relative(root, path)) {
            files.push(path.to_path_buf());
        }
    })
}

/// Whether tidy reads the file at this root-relative path.
fn is_text_file(relative: &str) -> bool {
    relative == ".ci/run"
        || Path::new(relative)
            .extension()
            .is_some_and(|ext| ["rs", "toml", "md", "sh"].iter().any(|known| ext == *known))
}

/// The path of `path` relative to `root`, with `/` separators.
fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).to_string_lossy().replace('\\', "/")
}

/// The offences in one text file, given its root-relative path and its text.
fn scan_text(path: &str, text: &str) -> Vec<Offence> {
    let is_rust = Path::new(path).extension().is_some_and(|ext| ext == "rs");
    let mut offences = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let mut offend = |message: String| {
            offences.push(Offence { path: path.to_owned(), line: index + 1, message });
        };
        if is_rust {
            for (pattern, reason) in RUST_PATTERNS {
                if line.contains(pattern) {
                    offend(format!("`{pattern}`: {reason}"));
                }
            }
        }
        for pattern in MACHINE_PATHS {
            if line.contains(pattern) {
                offend(format!(
                    "absolute machine path `{pattern}`: use a path relative to the workspace"
                ));
            }
        }
    }
    offences
}

/// The guide a crate must have, relative to the root: `docs/<name without conc->.md`, or
/// `None` for the umbrella and unpublished crates.
fn guide_path(krate: &Crate) -> Option<String> {
    if krate.name == layers::UMBRELLA || !krate.is_published() {
        return None;
    }
    let short = krate.name.strip_prefix("conc-").unwrap_or(&krate.name);
    Some(format!("docs/{short}.md"))
}

/// The offences of one crate: `dir` is its root-relative directory, `lib_rs` the text of
/// `src/lib.rs` if it exists, `has_guide` whether its guide exists.
fn check_crate(dir: &str, krate: &Crate, lib_rs: Option<&str>, has_guide: bool) -> Vec<Offence> {
    let mut offences = Vec::new();
    let lib_path = format!("{dir}/src/lib.rs");
    match lib_rs {
        None => offences.push(Offence {
            path: lib_path,
            line: 1,
            message: format!("crate `{}` has no src/lib.rs", krate.name),
        }),
        Some(text) if !text.starts_with("//!") => offences.push(Offence {
            path: lib_path,
            line: 1,
            message: "crate docs must open the file: `//!` on line 1".to_owned(),
        }),
        Some(_) => {}
    }
    if let Some(guide) = guide_path(krate).filter(|_| !has_guide) {
        let line = krate
            .manifest
            .lines()
            .position(|line| line.trim_start().starts_with("name"))
            .map_or(1, |index| index + 1);
        offences.push(Offence {
            path: format!("{dir}/Cargo.toml"),
            line,
            message: format!("crate `{}` has no guide: write {guide}", krate.name),
        });
    }
    offences
}

#[cfg(test)]
mod tests {
    use super::*;

    fn krate(name: &str, extra: &str) -> Crate {
        let manifest = format!("[package]\nname = \"{name}\"\n{extra}");
        Crate { name: name.to_owned(), dir: PathBuf::new(), manifest }
    }

    fn messages(offences: &[Offence]) -> Vec<String> {
        offences.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn flags_each_forbidden_macro_and_ignore_in_rust_with_its_line() {
        for (pattern, _) in RUST_PATTERNS {
            let text = format!("//! Docs.\nfn f() {{\n    {pattern}\n}}\n");
            let offences = scan_text("crates/x/src/lib.rs", &text);
            assert_eq!(offences.len(), 1, "{pattern}");
            assert!(messages(&offences)[0].starts_with("crates/x/src/lib.rs:3: `"), "{offences:?}");
        }
    }

    #[test]
    fn rust_patterns_are_allowed_outside_rust_files() {
        for (pattern, _) in RUST_PATTERNS {
            assert_eq!(scan_text("docs/x.md", pattern), Vec::new());
            assert_eq!(scan_text("Cargo.toml", pattern), Vec::new());
        }
    }

    #[test]
    fn near_misses_are_clean() {
        let text = "fn todo() {}\nlet x = unimplemented;\n#[test]\nlet p = \"docs/x.md\";\n";
        assert_eq!(scan_text("src/lib.rs", text), Vec::new());
        assert_eq!(
            scan_text("README.md", "Paths such as `target/loom` and `/tmp/`.\n"),
            Vec::new()
        );
    }

    #[test]
    fn flags_machine_paths_in_every_text_file() {
        for pattern in MACHINE_PATHS {
            for path in ["README.md", "Cargo.toml", "src/lib.rs", ".ci/run", "x.sh"] {
                let text = format!("first\nsee {pattern}someone/file\n");
                let offences = scan_text(path, &text);
                assert_eq!(offences.len(), 1, "{path}: {pattern}");
                assert_eq!(offences[0].line, 2);
            }
        }
    }

    #[test]
    fn selects_text_files() {
        for path in ["a.rs", "x/Cargo.toml", "docs/pool.md", "s.sh", ".ci/run"] {
            assert!(is_text_file(path), "{path}");
        }
        for path in ["Cargo.lock", "run", "x/run", "LICENSE-MIT", "a.json", "rs"] {
            assert!(!is_text_file(path), "{path}");
        }
    }

    #[test]
    fn published_crates_need_a_guide() {
        let pool = krate("conc-pool", "");
        assert_eq!(guide_path(&pool).as_deref(), Some("docs/pool.md"));
        let offences = check_crate("crates/conc-pool", &pool, Some("//! Pools.\n"), false);
        assert_eq!(
            messages(&offences),
            ["crates/conc-pool/Cargo.toml:2: crate `conc-pool` has no guide: write docs/pool.md"]
        );
        assert_eq!(check_crate("crates/conc-pool", &pool, Some("//! Pools.\n"), true), Vec::new());
    }

    #[test]
    fn the_umbrella_and_unpublished_crates_need_no_guide() {
        let umbrella = krate(layers::UMBRELLA, "");
        let support = krate("conc-test-support", "publish = false\n");
        assert_eq!(guide_path(&umbrella), None);
        assert_eq!(guide_path(&support), None);
        assert_eq!(check_crate("crates/conc", &umbrella, Some("//! conc\n"), false), Vec::new());
        assert_eq!(check_crate("crates/s", &support, Some("//! Support.\n"), false), Vec::new());
    }

    #[test]
    fn lib_rs_must_open_with_crate_docs() {
        let support = krate("conc-test-support", "publish = false\n");
        for text in ["#![forbid(unsafe_code)]\n//! Late docs.\n", "\n//! Blank first.\n", ""] {
            let offences = check_crate("crates/s", &support, Some(text), true);
            assert_eq!(
                messages(&offences),
                ["crates/s/src/lib.rs:1: crate docs must open the file: `//!` on line 1"]
            );
        }
        let offences = check_crate("crates/s", &support, None, true);
        assert_eq!(
            messages(&offences),
            ["crates/s/src/lib.rs:1: crate `conc-test-support` has no src/lib.rs"]
        );
    }

    #[test]
    fn xtask_sources_do_not_flag_themselves() {
        let root = workspace::root();
        let mut files = Vec::new();
        text_files(&root, &root.join("xtask"), &mut files).unwrap();
        assert!(files.iter().any(|file| file.ends_with("tidy.rs")));
        for file in files {
            let text = fs::read_to_string(&file).unwrap();
            assert_eq!(scan_text(&relative(&root, &file), &text), Vec::new());
        }
    }

    #[test]
    fn the_workspace_is_tidy() {
        let root = workspace::root();
        let offences = check(&root).unwrap();
        assert!(offences.is_empty(), "cargo xtask tidy found:\n{}", messages(&offences).join("\n"));
    }
}
