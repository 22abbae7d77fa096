//! `cargo xtask soak bus [--backend sqlite|redis] [--faults N] [--restarts R] [--jobs M]
//! [--workers W] [--seed S]`: the multi-process checker of conc-bus's SQLite or Redis backend,
//! run longer than CI runs it.
//!
//! The checker is the test `workers_killed_at_random_lose_no_job` of
//! `crates/conc-bus/tests/sqlite_processes.rs`: worker processes drain a queue in a SQLite file
//! while a random one is killed with `SIGKILL` and replaced, `N` times; every job must be done,
//! and the jobs done twice stay within what the killed workers held. This command runs that test
//! in release mode with its parameters in the environment:
//!
//! ```text
//! CONC_BUS_SOAK_FAULTS=1000 CONC_BUS_SOAK_JOBS=250000 \
//!   cargo test --release -p conc-bus --features sqlite --test sqlite_processes \
//!   -- --exact workers_killed_at_random_lose_no_job --nocapture
//! ```
//!
//! With `--backend redis` the checker is `workers_and_the_server_killed_lose_no_acknowledged_job`
//! of `crates/conc-bus/tests/redis_processes.rs`: the same, on a durable `redis-server` (AOF,
//! `appendfsync always`) that is also killed and restarted `R` times (default: one per 20 worker
//! kills, at least 3), and every worker must take jobs again after each restart.
//!
//! The test prints one line (`soak bus: jobs=… faults=… lost=… duplicates=…`) and fails on any
//! lost job, so the command exits non-zero on a loss.

use std::path::Path;

use crate::{Result, cmd};

/// The faults a soak makes unless told otherwise.
const DEFAULT_FAULTS: u64 = 1_000;

/// Jobs per fault unless `--jobs` says otherwise: enough work between kills for the killed
/// workers' leases to come back while the others keep draining.
const JOBS_PER_FAULT: u64 = 250;

/// Which backend's checker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// A SQLite file shared by the worker processes.
    Sqlite,
    /// A durable redis-server, itself killed and restarted too.
    Redis,
}

/// What to soak, and how hard.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Options {
    /// The backend under test.
    backend: Backend,
    /// Workers killed over the run.
    faults: u64,
    /// Server kills and restarts (Redis only); `None` for one per 20 faults, at least 3.
    restarts: Option<u64>,
    /// Jobs pushed; `None` for [`JOBS_PER_FAULT`] per fault (at least 5,000).
    jobs: Option<u64>,
    /// Worker processes at a time; `None` for the checker's default (4).
    workers: Option<u64>,
    /// The seed that picks each kill's victim; `None` for one from the clock.
    seed: Option<u64>,
}

impl Options {
    /// Parses `bus [--backend B] [--faults N] [--restarts R] [--jobs M] [--workers W] [--seed S]`.
    pub(crate) fn parse(args: &[String]) -> Result<Self> {
        let mut args = args.iter();
        match args.next().map(String::as_str) {
            Some("bus") => {}
            Some(other) => return Err(format!("`soak` knows only `bus`, not `{other}`")),
            None => return Err("`soak` needs a target: `cargo xtask soak bus`".to_owned()),
        }
        let mut options = Self {
            backend: Backend::Sqlite,
            faults: DEFAULT_FAULTS,
            restarts: None,
            jobs: None,
            workers: None,
            seed: None,
        };
        while let Some(arg) = args.next() {
            let mut value = |name: &str, min: u64| -> Result<u64> {
                let text = args.next().ok_or_else(|| format!("`{name}` needs a number"))?;
                match text.parse() {
                    Ok(value) if value >= min => Ok(value),
                    _ => Err(format!("`{name} {text}`: must be a number, at least {min}")),
                }
            };
            match arg.as_str() {
                "--backend" => {
                    options.backend = match args.next().map(String::as_str) {
                        Some("sqlite") => Backend::Sqlite,
                        Some("redis") => Backend::Redis,
                        Some(other) => {
                            return Err(format!("`--backend {other}`: give `sqlite` or `redis`"));
                        }
                        None => return Err("`--backend` needs `sqlite` or `redis`".to_owned()),
                    };
                }
                "--faults" => options.faults = value("--faults", 0)?,
                "--restarts" => options.restarts = Some(value("--restarts", 0)?),
                "--jobs" => options.jobs = Some(value("--jobs", 1)?),
                "--workers" => options.workers = Some(value("--workers", 1)?),
                "--seed" => options.seed = Some(value("--seed", 0)?),
                other => return Err(format!("unexpected argument `{other}` to `soak bus`")),
            }
        }
        if options.restarts.is_some() && options.backend != Backend::Redis {
            return Err("`--restarts` is for `--backend redis`".to_owned());
        }
        Ok(options)
    }

    /// The server restarts to make (Redis).
    fn restarts(&self) -> u64 {
        self.restarts.unwrap_or_else(|| (self.faults / 20).max(3))
    }

    /// The jobs to push.
    fn jobs(&self) -> u64 {
        self.jobs.unwrap_or_else(|| self.faults.saturating_mul(JOBS_PER_FAULT).max(5_000))
    }
}

/// Runs the checker with `options`.
pub(crate) fn run(root: &Path, options: &Options) -> Result {
    let jobs = options.jobs();
    let (feature, test, name) = match options.backend {
        Backend::Sqlite => ("sqlite", "sqlite_processes", "workers_killed_at_random_lose_no_job"),
        Backend::Redis => {
            ("redis", "redis_processes", "workers_and_the_server_killed_lose_no_acknowledged_job")
        }
    };
    eprintln!("soak bus ({feature}): {jobs} jobs, {} faults", options.faults);
    let mut command = cmd::cargo(root)
        .args(["test", "--release", "-p", "conc-bus", "--features", feature])
        .args(["--test", test, "--"])
        .args(["--exact", name, "--nocapture"])
        .env("CONC_BUS_SOAK_FAULTS", options.faults.to_string())
        .env("CONC_BUS_SOAK_JOBS", jobs.to_string());
    if options.backend == Backend::Redis {
        command = command
            .env("CONC_BUS_SOAK_RESTARTS", options.restarts().to_string())
            .env("CONC_REQUIRE_SERVICES", "1");
    }
    if let Some(workers) = options.workers {
        command = command.env("CONC_BUS_SOAK_WORKERS", workers.to_string());
    }
    if let Some(seed) = options.seed {
        command = command.env("CONC_BUS_SOAK_SEED", seed.to_string());
    }
    command.run().map_err(|error| format!("the bus soak failed (see its report above): {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|&arg| arg.to_owned()).collect()
    }

    #[test]
    fn defaults_to_a_thousand_faults_with_jobs_to_match() {
        let options = Options::parse(&strings(&["bus"])).unwrap();
        assert_eq!((options.faults, options.jobs()), (1_000, 250_000));
        let options = Options::parse(&strings(&["bus", "--faults", "4"])).unwrap();
        assert_eq!(options.jobs(), 5_000, "never fewer than the CI run's jobs");
    }

    #[test]
    fn takes_every_setting() {
        let args =
            strings(&["bus", "--faults", "50", "--jobs", "9000", "--workers", "3", "--seed", "7"]);
        let options = Options::parse(&args).unwrap();
        let expected = Options {
            backend: Backend::Sqlite,
            faults: 50,
            restarts: None,
            jobs: Some(9_000),
            workers: Some(3),
            seed: Some(7),
        };
        assert_eq!(options, expected);
        assert_eq!(options.jobs(), 9_000);
    }

    #[test]
    fn redis_restarts_the_server_too() {
        let options = Options::parse(&strings(&["bus", "--backend", "redis"])).unwrap();
        assert_eq!((options.backend, options.restarts()), (Backend::Redis, 50));
        let args = strings(&["bus", "--backend", "redis", "--faults", "20", "--restarts", "5"]);
        assert_eq!(Options::parse(&args).unwrap().restarts(), 5);
        let few =
            Options::parse(&strings(&["bus", "--backend", "redis", "--faults", "2"])).unwrap();
        assert_eq!(few.restarts(), 3);
        assert!(Options::parse(&strings(&["bus", "--backend", "postgres"])).is_err());
        assert!(Options::parse(&strings(&["bus", "--restarts", "2"])).is_err(), "sqlite has none");
    }

    #[test]
    fn refuses_other_targets_and_bad_numbers() {
        assert!(Options::parse(&[]).is_err());
        assert!(Options::parse(&strings(&["pool"])).is_err());
        assert!(Options::parse(&strings(&["bus", "--faults"])).is_err());
        assert!(Options::parse(&strings(&["bus", "--faults", "many"])).is_err());
        assert!(Options::parse(&strings(&["bus", "--jobs", "0"])).is_err());
        assert!(Options::parse(&strings(&["bus", "--speed", "1"])).is_err());
    }
}
