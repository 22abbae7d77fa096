//! Running external commands: echo the command line, inherit the terminal, fail with the
//! exit status.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use crate::Result;

/// A command to run from the workspace root, echoed before it starts.
#[derive(Debug)]
pub(crate) struct Cmd {
    /// The process to start.
    command: Command,
    /// The environment settings as echoed, each followed by a space.
    env_display: String,
    /// The program and arguments as echoed.
    argv_display: String,
}

/// Starts a `cargo` command in `root`, using the cargo that runs xtask (the `CARGO` variable).
pub(crate) fn cargo(root: &Path) -> Cmd {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(program);
    command.current_dir(root);
    Cmd { command, env_display: String::new(), argv_display: "cargo".to_owned() }
}

/// Starts any program in `root`.
pub(crate) fn program(root: &Path, name: &str) -> Cmd {
    let mut command = Command::new(name);
    command.current_dir(root);
    Cmd { command, env_display: String::new(), argv_display: name.to_owned() }
}

impl Cmd {
    /// Appends arguments.
    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for arg in args {
            let arg = arg.as_ref();
            self.argv_display.push(' ');
            self.argv_display.push_str(&quote(&arg.to_string_lossy()));
            self.command.arg(arg);
        }
        self
    }

    /// Sets an environment variable for the command; it is shown in the echoed line.
    pub(crate) fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        let value = value.as_ref();
        let _ = write!(self.env_display, "{key}={} ", quote(&value.to_string_lossy()));
        self.command.env(key, value);
        self
    }

    /// The command line as it is echoed.
    pub(crate) fn display(&self) -> String {
        format!("{}{}", self.env_display, self.argv_display)
    }

    /// Echoes the command line on stderr, runs the command with the terminal attached and
    /// fails unless it exits successfully.
    pub(crate) fn run(mut self) -> Result {
        let display = self.display();
        eprintln!("$ {display}");
        let status = self
            .command
            .status()
            .map_err(|error| format!("could not start `{display}`: {error}"))?;
        if status.success() { Ok(()) } else { Err(format!("`{display}` failed ({status})")) }
    }

    /// Runs the command quietly and returns its trimmed standard output, or `None` when it
    /// cannot start or fails. For optional facts such as the git revision.
    pub(crate) fn read(mut self) -> Option<String> {
        let output = self.command.stderr(std::process::Stdio::null()).output().ok()?;
        if !output.status.success() {
            return None;
        }
        let text = String::from_utf8(output.stdout).ok()?;
        Some(text.trim().to_owned()).filter(|text| !text.is_empty())
    }
}

/// The flags in the environment variable `var` (such as `RUSTFLAGS`) followed by `extra`, so
/// that a task adds its flags without dropping the caller's.
pub(crate) fn flags_with(var: &str, extra: &str) -> String {
    match std::env::var(var) {
        Ok(flags) if !flags.trim().is_empty() => format!("{} {extra}", flags.trim()),
        _ => extra.to_owned(),
    }
}

/// The value of the environment variable `var`, or `default` when it is unset or empty.
pub(crate) fn env_or(var: &str, default: &str) -> String {
    std::env::var(var).ok().filter(|value| !value.is_empty()).unwrap_or_else(|| default.to_owned())
}

/// Quotes an argument for the echoed command line when a shell would need it.
fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_=./:,+@%".contains(c));
    if plain { arg.to_owned() } else { format!("'{}'", arg.replace('\'', r"'\''")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_shows_environment_then_quoted_arguments() {
        let cmd = cargo(Path::new("."))
            .args(["test", "-p", "conc-core", "--", "loom_"])
            .env("RUSTFLAGS", "--cfg conc_loom")
            .env("LOOM_MAX_PREEMPTIONS", "2");
        assert_eq!(
            cmd.display(),
            "RUSTFLAGS='--cfg conc_loom' LOOM_MAX_PREEMPTIONS=2 cargo test -p conc-core -- loom_"
        );
    }

    #[test]
    fn quote_leaves_plain_words_alone() {
        assert_eq!(quote("--all-features"), "--all-features");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
