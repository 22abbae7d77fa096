//! `cargo xtask loom`: run the loom models.
//!
//! Loom models are unit tests named `loom_*` compiled only under `--cfg conc_loom`
//! (`docs/architecture.md`, "Testing"). A crate has them when its `Cargo.toml` mentions
//! `cfg(conc_loom)`, which it does to declare loom as a dev-dependency for that cfg. Each crate is tested on its own:
//!
//! ```text
//! RUSTFLAGS="--cfg conc_loom -C debug-assertions" LOOM_MAX_PREEMPTIONS=2 LOOM_MAX_BRANCHES=10000 \
//!   CARGO_TARGET_DIR=target/loom cargo test -p <crate> --lib --release -- loom_
//! ```
//!
//! `target/loom` stands for `loom` under the workspace's target directory, wherever
//! `CARGO_TARGET_DIR` or `.cargo/config.toml` put it. The separate target directory keeps
//! the normal build cache when the cfg changes. Release
//! mode keeps the exhaustive search fast; `-C debug-assertions` keeps the overflow checks and
//! `debug_assert!`s the models rely on. `LOOM_MAX_PREEMPTIONS` and `LOOM_MAX_BRANCHES` already
//! in the environment win over these defaults; `RUSTFLAGS` in the environment is kept and
//! extended.

use std::path::Path;

use crate::{Result, cmd, workspace};

/// Parses `[-p <crate>]...` (also `--package <crate>`) into the crates to run.
pub(crate) fn parse_args(args: &[String]) -> Result<Vec<String>> {
    let mut crates = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-p" | "--package" => {
                let name = args.next().ok_or_else(|| format!("`{arg}` needs a crate name"))?;
                crates.push(name.clone());
            }
            other => return Err(format!("unexpected argument `{other}` to `loom`")),
        }
    }
    Ok(crates)
}

/// Runs the loom models of `crates`, or of every crate that has them when `crates` is empty.
pub(crate) fn run(root: &Path, crates: &[String]) -> Result {
    let crates = if crates.is_empty() {
        let found: Vec<String> = workspace::crates(root)?
            .into_iter()
            .filter(workspace::Crate::has_loom_models)
            .map(|krate| krate.name)
            .collect();
        if found.is_empty() {
            eprintln!(
                "loom: no crate under crates/ has loom models (none mentions cfg(conc_loom))"
            );
            return Ok(());
        }
        found
    } else {
        crates.to_vec()
    };
    let rustflags = cmd::flags_with("RUSTFLAGS", "--cfg conc_loom -C debug-assertions");
    let target_dir = workspace::target_dir(root)?.join("loom");
    for krate in &crates {
        eprintln!("loom: {krate}");
        cmd::cargo(root)
            .args(["test", "-p", krate, "--lib", "--release", "--", "loom_"])
            .env("RUSTFLAGS", &rustflags)
            .env("LOOM_MAX_PREEMPTIONS", cmd::env_or("LOOM_MAX_PREEMPTIONS", "2"))
            .env("LOOM_MAX_BRANCHES", cmd::env_or("LOOM_MAX_BRANCHES", "10000"))
            .env("CARGO_TARGET_DIR", &target_dir)
            .run()
            .map_err(|error| format!("loom models of {krate} failed: {error}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|&arg| arg.to_owned()).collect()
    }

    #[test]
    fn parses_repeated_packages() {
        let args = strings(&["-p", "conc-core", "--package", "conc-bus"]);
        assert_eq!(parse_args(&args), Ok(strings(&["conc-core", "conc-bus"])));
        assert_eq!(parse_args(&[]), Ok(Vec::new()));
    }

    #[test]
    fn rejects_a_missing_name_and_stray_arguments() {
        assert!(parse_args(&strings(&["-p"])).is_err());
        assert!(parse_args(&strings(&["conc-core"])).is_err());
    }
}
