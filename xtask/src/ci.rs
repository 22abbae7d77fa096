//! `cargo xtask ci`: every check CI runs, in order, stopping at the first failure.
//!
//! 1. `cargo fmt --all -- --check`
//! 2. `cargo clippy --workspace --all-targets --all-features -- -D warnings`
//! 3. `cargo test --workspace --all-features` (unit, integration and doc tests)
//! 4. `RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features`
//! 5. tidy ([`crate::tidy`], in process)
//! 6. loom ([`crate::loom`], in process)
//!
//! Each step gets a header line; a table of the steps and their durations ends the run,
//! whether it passed or not.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::{Result, cmd, loom, tidy};

/// What a step does.
enum Action {
    /// Run an external command.
    Command(Box<cmd::Cmd>),
    /// Run `cargo xtask tidy` in this process.
    Tidy,
    /// Run `cargo xtask loom` (every crate with models) in this process.
    Loom,
}

impl Action {
    /// How the step is shown in its header.
    fn describe(&self) -> String {
        match self {
            Action::Command(command) => command.display(),
            Action::Tidy => "cargo xtask tidy".to_owned(),
            Action::Loom => "cargo xtask loom".to_owned(),
        }
    }

    fn run(self, root: &Path) -> Result {
        match self {
            Action::Command(command) => (*command).run(),
            Action::Tidy => tidy::run(root),
            Action::Loom => loom::run(root, &[]),
        }
    }
}

/// The steps of `ci`, in order, each with its short name.
fn steps(root: &Path) -> Vec<(&'static str, Action)> {
    let cargo = |args: &[&str]| Box::new(cmd::cargo(root).args(args));
    vec![
        ("fmt", Action::Command(cargo(&["fmt", "--all", "--", "--check"]))),
        (
            "clippy",
            Action::Command(cargo(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ])),
        ),
        ("test", Action::Command(cargo(&["test", "--workspace", "--all-features"]))),
        (
            "doc",
            Action::Command(Box::new(
                cmd::cargo(root)
                    .args(["doc", "--workspace", "--no-deps", "--all-features"])
                    .env("RUSTDOCFLAGS", cmd::flags_with("RUSTDOCFLAGS", "-D warnings")),
            )),
        ),
        ("tidy", Action::Tidy),
        ("loom", Action::Loom),
    ]
}

/// How a step ended.
enum Outcome {
    /// It passed after this long.
    Passed(Duration),
    /// It failed after this long.
    Failed(Duration),
    /// An earlier step failed, so it did not run.
    Skipped,
}

/// Runs every step, stopping at the first failure, then prints the timing table.
pub(crate) fn run(root: &Path) -> Result {
    let steps = steps(root);
    let total = steps.len();
    let mut outcomes = Vec::new();
    let mut failure = None;
    for (index, (name, action)) in steps.into_iter().enumerate() {
        if failure.is_some() {
            outcomes.push((name, Outcome::Skipped));
            continue;
        }
        eprintln!("\n==> ci [{}/{total}] {name}: {}", index + 1, action.describe());
        let start = Instant::now();
        match action.run(root) {
            Ok(()) => outcomes.push((name, Outcome::Passed(start.elapsed()))),
            Err(error) => {
                outcomes.push((name, Outcome::Failed(start.elapsed())));
                failure = Some(format!("ci failed at step `{name}`: {error}"));
            }
        }
    }
    print_summary(&outcomes);
    failure.map_or(Ok(()), Err)
}

/// Prints one line per step: its name, how it ended and how long it took.
fn print_summary(outcomes: &[(&str, Outcome)]) {
    println!("\nci summary");
    println!("  {:<8} {:<8} {:>9}", "step", "result", "seconds");
    let mut total = Duration::ZERO;
    for (name, outcome) in outcomes {
        let (result, elapsed) = match outcome {
            Outcome::Passed(elapsed) => ("ok", Some(*elapsed)),
            Outcome::Failed(elapsed) => ("FAILED", Some(*elapsed)),
            Outcome::Skipped => ("not run", None),
        };
        total += elapsed.unwrap_or_default();
        let seconds = elapsed.map_or_else(|| "-".to_owned(), |e| format!("{:.1}", e.as_secs_f64()));
        println!("  {name:<8} {result:<8} {seconds:>9}");
    }
    println!("  {:<8} {:<8} {:>9.1}", "total", "", total.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_the_documented_steps_in_order() {
        let described: Vec<String> = steps(Path::new("."))
            .iter()
            .map(|(name, action)| format!("{name}: {}", action.describe()))
            .collect();
        let doc_flags = cmd::flags_with("RUSTDOCFLAGS", "-D warnings");
        let doc_flags = if doc_flags.contains(' ') { format!("'{doc_flags}'") } else { doc_flags };
        assert_eq!(
            described,
            [
                "fmt: cargo fmt --all -- --check".to_owned(),
                "clippy: cargo clippy --workspace --all-targets --all-features -- -D warnings"
                    .to_owned(),
                "test: cargo test --workspace --all-features".to_owned(),
                format!(
                    "doc: RUSTDOCFLAGS={doc_flags} cargo doc --workspace --no-deps --all-features"
                ),
                "tidy: cargo xtask tidy".to_owned(),
                "loom: cargo xtask loom".to_owned(),
            ]
        );
    }
}
