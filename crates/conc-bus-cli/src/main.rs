//! `conc-bus`: operate conc-bus queues from the command line.
//!
//! ```text
//! conc-bus --backend sqlite:jobs.db queues
//! conc-bus --backend sqlite:jobs.db failed list --queue mail
//! conc-bus --backend sqlite:jobs.db failed retry --all
//! ```
//!
//! `docs/bus-cli.md` lists every command.
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr, reason = "a command-line program prints")]

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
