//! The layout of the workspace: its root, its target directory and the crates under `crates/`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::json::{self, Value};
use crate::{Result, cmd};

/// The workspace root: the parent of this crate's directory.
pub(crate) fn root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// Cargo's target directory, absolute, as the `cargo` commands xtask runs in `root` see it.
///
/// It comes from `cargo metadata`, so every way of moving it counts: `CARGO_TARGET_DIR`
/// (absolute, or relative to `root`, where xtask runs cargo) and `[build] target-dir` in a
/// `.cargo/config.toml`. Callers hand it on as an absolute path, so a child process with
/// another working directory (criterion runs in `benches/`) finds the same place.
pub(crate) fn target_dir(root: &Path) -> Result<PathBuf> {
    let metadata =
        cmd::cargo(root).args(["metadata", "--format-version", "1", "--no-deps"]).read().ok_or(
            "`cargo metadata --format-version 1 --no-deps` failed: cannot find the target dir",
        )?;
    target_directory(&metadata, root)
}

/// The `target_directory` of `cargo metadata` output, made absolute against `root` should
/// cargo ever report a relative one.
fn target_directory(metadata: &str, root: &Path) -> Result<PathBuf> {
    let metadata = json::parse(metadata).map_err(|e| format!("cargo metadata: {e}"))?;
    let dir = metadata
        .get("target_directory")
        .and_then(Value::as_str)
        .filter(|dir| !dir.is_empty())
        .ok_or("cargo metadata has no target_directory")?;
    Ok(root.join(dir))
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
    fn reads_the_target_directory_of_cargo_metadata() {
        let root = Path::new("/srv/repo");
        let metadata = r#"{"packages":[{"name":"x","targets":[]}],"workspace_root":"/srv/repo",
            "target_directory":"/elsewhere/target","version":1}"#;
        assert_eq!(target_directory(metadata, root), Ok(PathBuf::from("/elsewhere/target")));
        let relative = r#"{"target_directory":"out/target"}"#;
        assert_eq!(target_directory(relative, root), Ok(PathBuf::from("/srv/repo/out/target")));
        assert!(target_directory(r#"{"target_directory":""}"#, root).is_err());
        assert!(target_directory("{}", root).is_err());
        assert!(target_directory("not json", root).is_err());
    }

    #[test]
    fn the_target_dir_is_absolute_and_holds_this_test() {
        let target = target_dir(&root()).expect("cargo metadata runs");
        assert!(target.is_absolute(), "{}", target.display());
        // This test binary was built into the same target dir, whatever moved it.
        let exe = std::env::current_exe().unwrap();
        let target = target.canonicalize().unwrap();
        assert!(exe.canonicalize().unwrap().starts_with(&target), "{}", exe.display());
    }

    #[test]
    fn finds_the_crates_of_this_workspace() {
        let crates = crates(&root()).expect("crates/ is readable");
        assert!(crates.iter().any(|krate| krate.name == "conc-core"));
    }
}
