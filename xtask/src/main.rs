//! Project automation for the conc workspace, run as `cargo xtask <command>`.
//!
//! The alias in `.cargo/config.toml` (`xtask = "run --package xtask --"`) builds and runs this
//! binary from anywhere in the workspace. It depends on std only, so it compiles in seconds.
//!
//! Each command lives in its own module: [`ci`] (everything CI checks, in order), [`loom`]
//! (the loom models), [`bench`](mod@bench) (criterion suites and the ours/peer summary), [`soak`]
//! (long fault runs) and [`tidy`] (repository conventions, with the crate [`layers`]). [`cmd`] runs and echoes external commands, [`workspace`]
//! knows the layout of the tree and [`json`] reads criterion's output files.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool reports on the terminal"
)]

mod bench;
mod ci;
mod cmd;
mod house;
mod json;
mod layers;
mod loom;
mod soak;
mod tidy;
mod workspace;

use std::process::ExitCode;

/// What a task returns: `Err` carries the message printed before exiting with failure.
type Result<T = (), E = String> = std::result::Result<T, E>;

/// The help text, printed by `cargo xtask help` and on a usage error.
const USAGE: &str = "\
Usage: cargo xtask <command> [options]

Commands:
  ci                      Run every check CI runs, in order, stopping at the first failure:
                            fmt --check, clippy -D warnings, test (with doc tests),
                            doc with -D warnings, tidy, loom. Ends with a timing table.
  test [-- <args>...]     cargo test --workspace --all-features [<args>...]
  loom [-p <crate>]...    Run the loom models (tests named loom_*) of the given crates, or of
                            every crate whose Cargo.toml mentions cfg(conc_loom), in release
                            mode with --cfg conc_loom, in target/loom.
                            LOOM_MAX_PREEMPTIONS (default 2) and LOOM_MAX_BRANCHES
                            (default 10000) are taken from the environment when set.
  bench [--quick] [--runs N] [<suite>...] [-- <criterion args>...]
                          Run the criterion suites in benches/ (all, or the named ones:
                            core, pool, ...), then print each of our benchmarks against the
                            peers of its group and write target/bench-summary.{md,json}.
                            Fails when the run writes no results (say, a filter after `--`
                            that matches nothing).
                            --quick: criterion --quick --warm-up-time 1 --measurement-time 2
                            --runs N: run the suites N times; each time and ratio is the
                              median of the runs, with the range of each ratio beside it
  soak bus [--backend sqlite|redis] [--faults N] [--restarts R] [--jobs M] [--workers W] [--seed S]
                          Run conc-bus's multi-process checker longer than CI does:
                            worker processes drain M jobs (default 250 per fault) while a
                            random one is SIGKILLed and replaced N times (default 1000).
                            --backend redis (default sqlite): on a durable redis-server that
                            is also killed and restarted R times (default N/20, at least 3).
                            Prints jobs, faults, lost and duplicates; fails on any loss.
  tidy                    Check repository conventions; lists every offence as path:line.
  help                    Print this text.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    };
    let root = workspace::root();
    let outcome = match command.as_str() {
        "ci" if rest.is_empty() => ci::run(&root),
        "test" => cmd::cargo(&root)
            .args(["test", "--workspace", "--all-features"])
            .args(match rest {
                [dashes, tail @ ..] if dashes == "--" => tail,
                _ => rest,
            })
            .run(),
        "loom" => match loom::parse_args(rest) {
            Ok(crates) => loom::run(&root, &crates),
            Err(message) => return usage_error(&message),
        },
        "bench" => match bench::Options::parse(rest) {
            Ok(options) => bench::run(&root, &options),
            Err(message) => return usage_error(&message),
        },
        "soak" => match soak::Options::parse(rest) {
            Ok(options) => soak::run(&root, &options),
            Err(message) => return usage_error(&message),
        },
        "tidy" if rest.is_empty() => tidy::run(&root),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        "ci" | "tidy" => return usage_error(&format!("`{command}` takes no arguments")),
        _ => return usage_error(&format!("unknown command `{command}`")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Reports a malformed command line with the usage text and exits with status 2.
fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}\n\n{USAGE}");
    ExitCode::from(2)
}
