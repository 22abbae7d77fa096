//! The layout of the workspace: its root, its target directory and the crates under `crates/`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::Result;

/// The workspace root: the parent of this crate's directory.
pub(crate) fn root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (relative to the root) when set, else
/// `<root>/target`.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// A crate under `crates/`, read from its manifest.
#[derive(Debug)]
pub(crate) struct Crate {
    /// The package name, such as `conc-core`.
    pub(crate) name: String,
    /// The crate directory, such as `<root>/crates/conc-core`.
    pub(crate) dir: PathBuf,
    /// The text of its `Cargo.toml`.
    pub(crate) manifest: String,
}

impl Crate {
    /// Reads the crate in `dir`; `None` when the directory holds no `Cargo.toml`.
    fn read(dir: PathBuf) -> Result<Option<Self>> {
        let path = dir.join("Cargo.toml");
        if !path.is_file() {
            return Ok(None);
        }
        let manifest =
            fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let name = package_name(&manifest)
            .ok_or_else(|| format!("{}: no `name` in [package]", path.display()))?;
        Ok(Some(Self { name, dir, manifest }))
    }

    /// Whether the crate is published (its manifest does not say `publish = false`).
    pub(crate) fn is_published(&self) -> bool {
        !self.manifest.lines().any(|line| is_setting(line, "publish", "false"))
    }

    /// Whether the crate has loom models: its manifest mentions `cfg(conc_loom)`.
    pub(crate) fn has_loom_models(&self) -> bool {
        self.manifest.contains("cfg(conc_loom)")
    }
}

/// Every crate under `<root>/crates/`, sorted by directory name.
pub(crate) fn crates(root: &Path) -> Result<Vec<Crate>> {
    let dir = root.join("crates");
    let entries = fs::read_dir(&dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("reading {}: {e}", dir.display()))?;
        if entry.path().is_dir() {
            dirs.push(entry.path());
        }
    }
    dirs.sort();
    let mut crates = Vec::new();
    for dir in dirs {
        crates.extend(Crate::read(dir)?);
    }
    Ok(crates)
}

/// The `name` of the `[package]` table of a manifest.
pub(crate) fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package {
            let Some((key, value)) = line.split_once('=') else { continue };
            if key.trim() == "name" {
                return Some(value.trim().trim_matches('"').to_owned());
            }
        }
    }
    None
}

/// Whether a manifest line is `key = value`, ignoring spaces and a trailing comment.
fn is_setting(line: &str, key: &str, value: &str) -> bool {
    let line = line.split('#').next().unwrap_or_default();
    line.split_once('=').is_some_and(|(k, v)| k.trim() == key && v.trim() == value)
}

/// Calls `visit` with every regular file below `dir`, depth first, not
/// descending into directories for which `skip_dir` returns true and not
/// following symlinks.
pub(crate) fn walk_files(
    dir: &Path,
    skip_dir: &dyn Fn(&Path) -> bool,
    visit: &mut dyn FnMut(&Path),
) -> Result {
    let entries = fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("reading {}: {e}", dir.display()))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| format!("reading {}: {e}", path.display()))?;
        if kind.is_dir() {
            if !skip_dir(&path) {
                walk_files(&path, skip_dir, visit)?;
            }
        } else if kind.is_file() {
            visit(&path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
[package]
description = "a name = in text"
name = "conc-pool"
publish = false # internal

[dependencies]
name = "not this one"

[target.'cfg(conc_loom)'.dev-dependencies]
loom = { workspace = true }
"#;

    #[test]
    fn reads_package_name_publish_and_loom() {
        let krate =
            Crate { name: String::new(), dir: PathBuf::new(), manifest: MANIFEST.to_owned() };
        assert_eq!(package_name(MANIFEST).as_deref(), Some("conc-pool"));
        assert!(!krate.is_published());
        assert!(krate.has_loom_models());
    }

    #[test]
    fn a_plain_manifest_is_published_without_loom() {
        let manifest = "[package]\nname = \"conc-fan\"\n";
        let krate = Crate { name: String::new(), dir: PathBuf::new(), manifest: manifest.into() };
        assert!(krate.is_published());
        assert!(!krate.has_loom_models());
        assert_eq!(package_name("[workspace]\nname = \"x\"\n"), None);
    }

    #[test]
    fn finds_the_crates_of_this_workspace() {
        let crates = crates(&root()).expect("crates/ is readable");
        assert!(crates.iter().any(|krate| krate.name == "conc-core"));
    }
}
