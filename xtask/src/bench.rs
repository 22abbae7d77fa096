//! `cargo xtask bench`: run the criterion suites and compare ours against the peers.
//!
//! The suites live in the `benches` crate, one `[[bench]]` target per crate, named after the
//! crate without its `conc-` prefix (`core`, `pool`, `ratelimit`, …). The command runs
//!
//! ```text
//! cargo bench -p benches [--bench <suite>]... [-- --quick --warm-up-time 1 --measurement-time 2]
//! ```
//!
//! then reads the results criterion wrote during this run (`<criterion dir>/**/new/benchmark.json`
//! newer than the start, beside `estimates.json`) and prints a table of median times.
//!
//! `--runs N` runs the suites N times over and prints one table of the N runs: each time is
//! the median of the runs' medians, each ratio the median of the runs' ratios, and a last
//! column gives the range of the ratio over the runs, which is the honest precision of a
//! figure measured on a shared machine.
//!
//! The criterion dir is fixed before the run as an absolute path: `CRITERION_HOME` resolved
//! against the directory xtask was started in, else `<target>/criterion` with the target dir
//! cargo reports (so `CARGO_TARGET_DIR` and `[build] target-dir` count). It is handed to
//! criterion as `CRITERION_HOME=<absolute path>`, because criterion runs in `benches/` and
//! would resolve a relative path against that. A run that writes no results there fails,
//! unless the criterion arguments ask for a mode that measures nothing (`--list`, `--test`,
//! `--help`, `--version`).
//!
//! # Naming convention of the suites
//!
//! A criterion group (`c.benchmark_group("core/clock")`, named `<crate>/<scenario>`) holds one
//! scenario measured several ways. Within a group, function ids starting with `peer/` are the
//! peers a user would pick instead of us (`peer/instant_now`, `peer/governor`); every other
//! function id is ours (`ours`, `ours/coarse`, `conc/manual_clock`). Parameterised benchmarks
//! (`BenchmarkId::new("ours", 16)`) are compared within the same parameter value.
//!
//! Each of our benchmarks gets one row per peer of its group, with the ratio ours / peer
//! (lower is faster: `0.04x` takes 4% of the peer's time); groups without peers get rows with
//! no peer, and peers of groups without ours get rows with no ours. The same table is written
//! as Markdown to `<target>/bench-summary.md` and as a JSON array (one object per row, with the
//! git revision and host) to `<target>/bench-summary.json`.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::json::{self, Value};
use crate::{Result, cmd, workspace};

/// Criterion arguments added by `--quick`: stop at the significance level, short phases.
const QUICK_ARGS: [&str; 5] = ["--quick", "--warm-up-time", "1", "--measurement-time", "2"];

/// Criterion arguments that select a mode which measures nothing and writes no results.
const NO_RESULT_ARGS: [&str; 6] = ["--list", "--test", "--help", "-h", "--version", "-V"];

/// The parsed command line of `bench`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Options {
    /// `--quick`: shorter criterion runs.
    quick: bool,
    /// `--runs N`: how many times to run the suites (at least 1).
    runs: usize,
    /// The bench targets to run; all when empty.
    suites: Vec<String>,
    /// Arguments after `--`, passed to criterion.
    criterion_args: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self { quick: false, runs: 1, suites: Vec::new(), criterion_args: Vec::new() }
    }
}

impl Options {
    /// Parses `[--quick] [--runs N] [<suite>...] [-- <criterion args>...]`. A `conc-` prefix
    /// on a suite name is dropped, so `conc-pool` and `pool` both name the `pool` target.
    pub(crate) fn parse(args: &[String]) -> Result<Self> {
        let mut options = Self::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--runs" => options.runs = parse_runs(args.next().map(String::as_str))?,
                flag if flag.starts_with("--runs=") => {
                    options.runs = parse_runs(flag.strip_prefix("--runs="))?;
                }
                "--" => {
                    options.criterion_args = args.cloned().collect();
                    break;
                }
                flag if flag.starts_with('-') => {
                    return Err(format!(
                        "unknown option `{flag}` to `bench` (criterion options go after `--`)"
                    ));
                }
                suite => {
                    options.suites.push(suite.strip_prefix("conc-").unwrap_or(suite).to_owned());
                }
            }
        }
        Ok(options)
    }

    /// The criterion arguments: the `--quick` set, then the ones given after `--`.
    fn criterion_args(&self) -> Vec<&str> {
        let quick = if self.quick { &QUICK_ARGS[..] } else { &[] };
        quick.iter().copied().chain(self.criterion_args.iter().map(String::as_str)).collect()
    }

    /// Whether this run should write results: false when a criterion argument selects a
    /// mode that measures nothing, such as `--list`.
    fn expects_results(&self) -> bool {
        !self.criterion_args.iter().any(|arg| NO_RESULT_ARGS.contains(&arg.as_str()))
    }

    /// This command line as the user would type it, recorded in the summary.
    fn command_line(&self) -> String {
        let mut line = "cargo xtask bench".to_owned();
        if self.quick {
            line.push_str(" --quick");
        }
        if self.runs > 1 {
            let _ = write!(line, " --runs {}", self.runs);
        }
        for suite in &self.suites {
            let _ = write!(line, " {suite}");
        }
        if !self.criterion_args.is_empty() {
            let _ = write!(line, " -- {}", self.criterion_args.join(" "));
        }
        line
    }
}

/// The value of `--runs`: a whole number, at least 1.
fn parse_runs(value: Option<&str>) -> Result<usize> {
    match value.map(|text| (text, text.parse::<usize>())) {
        Some((_, Ok(runs))) if runs >= 1 => Ok(runs),
        Some((text, _)) => {
            Err(format!("`--runs` takes a whole number of runs, at least 1, not `{text}`"))
        }
        None => Err("`--runs` needs a number of runs, such as `--runs 3`".to_owned()),
    }
}

/// The `cargo bench` invocation for these options, with criterion writing to
/// `criterion_dir` (absolute).
fn command(root: &Path, options: &Options, criterion_dir: &Path) -> cmd::Cmd {
    let mut command =
        cmd::cargo(root).env("CRITERION_HOME", criterion_dir).args(["bench", "-p", "benches"]);
    for suite in &options.suites {
        command = command.args(["--bench", suite]);
    }
    let criterion_args = options.criterion_args();
    if !criterion_args.is_empty() {
        command = command.args(["--"]).args(criterion_args);
    }
    command
}

/// Where criterion writes its results, as an absolute path: `criterion_home` (the value of
/// `CRITERION_HOME`) resolved against `cwd` when it is set and not empty, else
/// `<target>/criterion`. `cwd` and `target` are absolute.
fn criterion_dir(criterion_home: Option<&OsStr>, cwd: &Path, target: &Path) -> PathBuf {
    match criterion_home {
        Some(home) if !home.is_empty() => cwd.join(home),
        _ => target.join("criterion"),
    }
}

/// Runs the suites (`--runs` times), then prints and writes the ours/peer summary of the
/// results of these runs.
pub(crate) fn run(root: &Path, options: &Options) -> Result {
    // Fixed before anything runs: the directory xtask started in, and the target dir as
    // cargo (run from the root, as below) sees it.
    let cwd = std::env::current_dir().map_err(|e| format!("reading the current dir: {e}"))?;
    let target = workspace::target_dir(root)?;
    let criterion_dir = criterion_dir(std::env::var_os("CRITERION_HOME").as_deref(), &cwd, &target);
    let mut runs = Vec::new();
    for round in 1..=options.runs {
        if options.runs > 1 {
            eprintln!("bench: run {round} of {}", options.runs);
        }
        let start = SystemTime::now();
        command(root, options, &criterion_dir).run()?;
        let measurements = collect(&criterion_dir, start)?;
        if measurements.is_empty() {
            return no_results(options, &criterion_dir);
        }
        runs.push(compare(&measurements));
    }
    let summary = Summary {
        rows: merge(&runs),
        runs: options.runs,
        command: options.command_line(),
        revision: cmd::program(root, "git").args(["rev-parse", "--short", "HEAD"]).read(),
        host: host_name(),
    };
    print!("\n{}", summary.text());
    fs::create_dir_all(&target).map_err(|e| format!("creating {}: {e}", target.display()))?;
    for (name, contents) in
        [("bench-summary.md", summary.markdown()), ("bench-summary.json", summary.json())]
    {
        let path = target.join(name);
        fs::write(&path, contents).map_err(|e| format!("writing {}: {e}", path.display()))?;
        eprintln!("bench: wrote {}", path.display());
    }
    Ok(())
}

/// The outcome of a run that wrote no results to `criterion_dir`: fine when criterion was
/// asked not to measure (`--list`), else a failure, since a summary of nothing would pass
/// for a successful benchmark run.
fn no_results(options: &Options, criterion_dir: &Path) -> Result {
    if options.expects_results() {
        Err(format!(
            "no benchmark results were written to {} by this run (does a suite define \
             benchmarks, and does the filter after `--` match any?)",
            criterion_dir.display()
        ))
    } else {
        eprintln!("bench: criterion was asked not to measure, so there is no summary");
        Ok(())
    }
}

/// The machine's name, from `/etc/hostname` or `HOSTNAME`.
fn host_name() -> String {
    fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|name| !name.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// One benchmark's result, from criterion's `benchmark.json` and `estimates.json`.
#[derive(Debug, Clone, PartialEq)]
struct Measurement {
    /// The criterion group, such as `core/clock`.
    group: String,
    /// The function id, such as `ours/coarse` or `peer/instant_now`; `None` for a benchmark
    /// registered directly on `Criterion`.
    function: Option<String>,
    /// The parameter of a parameterised benchmark.
    value: Option<String>,
    /// The median time per iteration, in nanoseconds.
    median_ns: f64,
}

/// Reads every result under `dir` written at or after `since`, sorted by id. Unreadable
/// results are reported and skipped.
fn collect(dir: &Path, since: SystemTime) -> Result<Vec<Measurement>> {
    let mut files = Vec::new();
    if dir.is_dir() {
        find_new_results(dir, since, &mut files)?;
    }
    let mut measurements = Vec::new();
    for file in files {
        match read_measurement(&file) {
            Ok(measurement) => measurements.push(measurement),
            Err(error) => eprintln!("bench: skipping {}: {error}", file.display()),
        }
    }
    measurements
        .sort_by(|a, b| (&a.group, &a.value, &a.function).cmp(&(&b.group, &b.value, &b.function)));
    Ok(measurements)
}

/// Collects the `new/benchmark.json` files under `dir` modified at or after `since`.
fn find_new_results(dir: &Path, since: SystemTime, files: &mut Vec<PathBuf>) -> Result {
    workspace::walk_files(dir, &|_| false, &mut |path| {
        let is_new_result = path.file_name().is_some_and(|name| name == "benchmark.json")
            && path.parent().and_then(Path::file_name).is_some_and(|name| name == "new")
            && fs::metadata(path).and_then(|meta| meta.modified()).is_ok_and(|time| time >= since);
        if is_new_result {
            files.push(path.to_path_buf());
        }
    })
}

/// Reads the measurement whose `benchmark.json` is at `path`.
fn read_measurement(path: &Path) -> Result<Measurement> {
    let read = |path: &Path| -> Result<Value> {
        let text =
            fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        json::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    };
    let benchmark = read(path)?;
    let optional = |key: &str| benchmark.get(key).and_then(Value::as_str).map(str::to_owned);
    let group = optional("group_id").ok_or("benchmark.json has no group_id")?;
    let estimates = read(&path.with_file_name("estimates.json"))?;
    let median_ns = estimates
        .at(&["median", "point_estimate"])
        .and_then(Value::as_f64)
        .ok_or("estimates.json has no median.point_estimate")?;
    Ok(Measurement {
        group,
        function: optional("function_id"),
        value: optional("value_str"),
        median_ns,
    })
}

/// A named median time: one side of a comparison.
#[derive(Debug, Clone, PartialEq)]
struct Timed {
    /// The function id as shown (a peer's without `peer/`; empty when criterion has none).
    name: String,
    /// The median time per iteration, in nanoseconds.
    ns: f64,
}

/// The benchmarks of one group (and parameter value), split into ours and peers.
#[derive(Debug, Default)]
struct Group {
    /// Our benchmarks.
    ours: Vec<Timed>,
    /// The peers' benchmarks.
    peers: Vec<Timed>,
}

/// One line of the summary: one of our benchmarks against one peer of its group.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    /// The group, with the parameter appended for parameterised benchmarks.
    group: String,
    /// Our benchmark; `None` when the group has peers only.
    ours: Option<Timed>,
    /// The peer; `None` when the group has no peer.
    peer: Option<Timed>,
    /// ours / peer in each run that measured both; empty when the row has no ratio.
    ratios: Vec<f64>,
}

impl Row {
    /// The median of the runs' ratios ours / peer, when both sides exist.
    fn ratio(&self) -> Option<f64> {
        median(&self.ratios)
    }

    /// The lowest and highest ratio of the runs, when both sides exist.
    fn ratio_range(&self) -> Option<(f64, f64)> {
        let low = self.ratios.iter().copied().reduce(f64::min)?;
        let high = self.ratios.iter().copied().reduce(f64::max)?;
        Some((low, high))
    }

    /// The cells of the row as shown: group, ours, time, peer, time, ratio, and the range of
    /// the ratio when `with_range`.
    fn cells(&self, with_range: bool) -> Vec<String> {
        let name_and_time = |side: &Option<Timed>| match side {
            Some(Timed { name, ns }) => (name.clone(), human_time(*ns)),
            None => ("-".to_owned(), "-".to_owned()),
        };
        let (ours, ours_time) = name_and_time(&self.ours);
        let (peer, peer_time) = name_and_time(&self.peer);
        let ratio = self.ratio().map_or_else(|| "-".to_owned(), format_ratio);
        let mut cells = vec![self.group.clone(), ours, ours_time, peer, peer_time, ratio];
        if with_range {
            cells.push(self.ratio_range().map_or_else(
                || "-".to_owned(),
                |(low, high)| format!("{}–{}", format_ratio(low), format_ratio(high)),
            ));
        }
        cells
    }

    /// What names this row across runs: the group and the two sides' names.
    fn key(&self) -> (String, Option<String>, Option<String>) {
        let name = |side: &Option<Timed>| side.as_ref().map(|timed| timed.name.clone());
        (self.group.clone(), name(&self.ours), name(&self.peer))
    }
}

/// The column headers of the summary table, before the range column of several runs.
const HEADERS: [&str; 6] = ["group", "ours", "time", "peer", "time", "ratio"];

/// The columns shown right-aligned: the times, the ratio and its range.
const NUMERIC_COLUMNS: [usize; 4] = [2, 4, 5, 6];

/// The median of `values`: the middle one, or the mean of the middle two; `None` when empty.
fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        len if len % 2 == 1 => Some(sorted[middle]),
        _ => Some(f64::midpoint(sorted[middle - 1], sorted[middle])),
    }
}

/// Pairs each of our benchmarks with every peer of its group (and parameter value).
fn compare(measurements: &[Measurement]) -> Vec<Row> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for m in measurements {
        let group = match &m.value {
            Some(value) => format!("{}/{value}", m.group),
            None => m.group.clone(),
        };
        let entry = groups.entry(group).or_default();
        let function = m.function.clone().unwrap_or_default();
        match function.strip_prefix("peer/") {
            Some(peer) => entry.peers.push(Timed { name: peer.to_owned(), ns: m.median_ns }),
            None => entry.ours.push(Timed { name: function, ns: m.median_ns }),
        }
    }
    let mut rows = Vec::new();
    for (group, Group { ours, peers }) in groups {
        let ours: Vec<Option<_>> =
            if ours.is_empty() { vec![None] } else { ours.into_iter().map(Some).collect() };
        let peers: Vec<Option<_>> =
            if peers.is_empty() { vec![None] } else { peers.into_iter().map(Some).collect() };
        for ours in &ours {
            for peer in &peers {
                let ratios = match (ours, peer) {
                    (Some(ours), Some(peer)) => vec![ours.ns / peer.ns],
                    _ => Vec::new(),
                };
                rows.push(Row {
                    group: group.clone(),
                    ours: ours.clone(),
                    peer: peer.clone(),
                    ratios,
                });
            }
        }
    }
    rows
}

/// One table from the rows of several runs, sorted by group and names: each time is the
/// median of the runs that measured it, and each row keeps every run's ratio.
fn merge(runs: &[Vec<Row>]) -> Vec<Row> {
    // A merged row, with every run's time of each side.
    struct Merged {
        row: Row,
        ours_ns: Vec<f64>,
        peer_ns: Vec<f64>,
    }
    let mut merged: Vec<Merged> = Vec::new();
    let mut index = HashMap::new();
    for row in runs.iter().flatten() {
        let at = *index.entry(row.key()).or_insert_with(|| {
            merged.push(Merged {
                row: Row { ratios: Vec::new(), ..row.clone() },
                ours_ns: Vec::new(),
                peer_ns: Vec::new(),
            });
            merged.len() - 1
        });
        let entry = &mut merged[at];
        entry.ours_ns.extend(row.ours.as_ref().map(|ours| ours.ns));
        entry.peer_ns.extend(row.peer.as_ref().map(|peer| peer.ns));
        entry.row.ratios.extend_from_slice(&row.ratios);
    }
    let mut rows: Vec<Row> = merged
        .into_iter()
        .map(|Merged { mut row, ours_ns, peer_ns }| {
            for (side, times) in [(&mut row.ours, ours_ns), (&mut row.peer, peer_ns)] {
                if let (Some(side), Some(ns)) = (side.as_mut(), median(&times)) {
                    side.ns = ns;
                }
            }
            row
        })
        .collect();
    // Sorted as one run's rows are, even when a row first appears in a later run.
    rows.sort_by_key(Row::key);
    rows
}

/// The summary of one or more runs, rendered for the terminal, Markdown and JSON.
#[derive(Debug)]
struct Summary {
    /// The table.
    rows: Vec<Row>,
    /// How many runs it sums up.
    runs: usize,
    /// The command that produced it.
    command: String,
    /// `git rev-parse --short HEAD`, when available.
    revision: Option<String>,
    /// The machine that ran it.
    host: String,
}

impl Summary {
    /// One line describing the run.
    fn caption(&self) -> String {
        let revision = self.revision.as_deref().unwrap_or("unknown");
        let what = if self.runs > 1 {
            format!(
                "Median over {} runs of the median time per iteration; ratio = ours / peer \
                 (lower is faster), the median of the runs' ratios, with their range",
                self.runs
            )
        } else {
            "Median time per iteration; ratio = ours / peer (lower is faster)".to_owned()
        };
        format!("{what}. `{}` at revision {revision} on {}.", self.command, self.host)
    }

    /// The column headers: the range column only for several runs.
    fn headers(&self) -> Vec<String> {
        let mut headers: Vec<String> = HEADERS.map(str::to_owned).to_vec();
        if self.runs > 1 {
            headers.push(format!("range of {} runs", self.runs));
        }
        headers
    }

    /// The cells of every row.
    fn cells(&self) -> Vec<Vec<String>> {
        self.rows.iter().map(|row| row.cells(self.runs > 1)).collect()
    }

    /// An aligned plain-text table.
    fn text(&self) -> String {
        let headers = self.headers();
        let cells = self.cells();
        let mut widths: Vec<usize> = headers.iter().map(|header| header.chars().count()).collect();
        for row in &cells {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&headers).chain(&cells) {
            let mut line = String::new();
            for (index, (cell, &width)) in row.iter().zip(&widths).enumerate() {
                // `{:>width$}` pads by chars, which the widths count.
                if NUMERIC_COLUMNS.contains(&index) {
                    let _ = write!(line, "{cell:>width$}  ");
                } else {
                    let _ = write!(line, "{cell:<width$}  ");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        let _ = writeln!(out, "\n{}", self.caption());
        out
    }

    /// A Markdown table with its caption.
    fn markdown(&self) -> String {
        let headers = self.headers();
        let mut out = format!("{}\n\n", self.caption());
        let _ = writeln!(out, "| {} |", headers.join(" | "));
        let alignment: Vec<&str> = (0..headers.len())
            .map(|index| if NUMERIC_COLUMNS.contains(&index) { "--:" } else { "---" })
            .collect();
        let _ = writeln!(out, "|{}|", alignment.join("|"));
        for row in self.cells() {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        out
    }

    /// A JSON array with one object per row.
    fn json(&self) -> String {
        let string = |s: Option<&str>| s.map_or_else(|| "null".to_owned(), json::escape);
        let number = |n: Option<f64>| match n {
            Some(n) if n.is_finite() => n.to_string(),
            _ => "null".to_owned(),
        };
        let mut out = "[".to_owned();
        for (index, row) in self.rows.iter().enumerate() {
            let separator = if index == 0 { "" } else { "," };
            let range = row.ratio_range();
            let _ = write!(
                out,
                "{separator}\n  {{\"group\": {}, \"ours\": {}, \"ours_ns\": {}, \"peer\": {}, \
                 \"peer_ns\": {}, \"ratio\": {}, \"ratio_min\": {}, \"ratio_max\": {}, \
                 \"runs\": {}, \"revision\": {}, \"host\": {}, \"command\": {}}}",
                json::escape(&row.group),
                string(row.ours.as_ref().map(|ours| ours.name.as_str())),
                number(row.ours.as_ref().map(|ours| ours.ns)),
                string(row.peer.as_ref().map(|peer| peer.name.as_str())),
                number(row.peer.as_ref().map(|peer| peer.ns)),
                number(row.ratio()),
                number(range.map(|(low, _)| low)),
                number(range.map(|(_, high)| high)),
                self.runs,
                string(self.revision.as_deref()),
                json::escape(&self.host),
                json::escape(&self.command),
            );
        }
        out.push_str("\n]\n");
        out
    }
}

/// A duration in nanoseconds with three significant digits and a fitting unit:
/// `0.612 ns`, `20.1 ns`, `1.00 µs`, `153 ms`.
fn human_time(ns: f64) -> String {
    if !ns.is_finite() || ns <= 0.0 {
        return format!("{ns} ns");
    }
    let ns = round_significant(ns, 3);
    let (value, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    format!("{value:.prec$} {unit}", prec = decimals_for(value, 3))
}

/// A ratio as `0.04x`: two decimals, or three significant digits below 0.01.
fn format_ratio(ratio: f64) -> String {
    if ratio.is_finite() && ratio > 0.0 && ratio < 0.01 {
        format!("{ratio:.prec$}x", prec = decimals_for(ratio, 3))
    } else {
        format!("{ratio:.2}x")
    }
}

/// How many decimals show `value` (positive) with `digits` significant digits.
fn decimals_for(value: f64, digits: i32) -> usize {
    let magnitude = value.log10().floor() as i32;
    (digits - 1 - magnitude).clamp(0, 12) as usize
}

/// `value` (positive) rounded to `digits` significant digits.
fn round_significant(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits - 1 - value.log10().floor() as i32);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::time::Duration;

    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|&arg| arg.to_owned()).collect()
    }

    fn measurement(
        group: &str,
        function: Option<&str>,
        value: Option<&str>,
        ns: f64,
    ) -> Measurement {
        Measurement {
            group: group.to_owned(),
            function: function.map(str::to_owned),
            value: value.map(str::to_owned),
            median_ns: ns,
        }
    }

    #[test]
    fn parses_options() {
        let options = Options::parse(&strings(&["--quick", "core", "conc-pool", "--", "--noplot"]));
        let expected = Options {
            quick: true,
            runs: 1,
            suites: strings(&["core", "pool"]),
            criterion_args: strings(&["--noplot"]),
        };
        assert_eq!(options, Ok(expected));
        assert_eq!(Options::parse(&[]), Ok(Options::default()));
        assert!(Options::parse(&strings(&["--baseline", "main"])).is_err());
    }

    #[test]
    fn parses_the_number_of_runs_and_names_a_bad_one() {
        for args in [&["--runs", "3", "lock"][..], &["--runs=3", "lock"]] {
            let options = Options::parse(&strings(args)).unwrap();
            assert_eq!((options.runs, options.suites.as_slice()), (3, &strings(&["lock"])[..]));
            assert_eq!(options.command_line(), "cargo xtask bench --runs 3 lock");
        }
        for bad in ["0", "-1", "three", "2.5", ""] {
            let error = Options::parse(&strings(&["--runs", bad])).unwrap_err();
            assert!(error.contains(&format!("not `{bad}`")), "{error}");
        }
        let error = Options::parse(&strings(&["--runs"])).unwrap_err();
        assert!(error.contains("needs a number"), "{error}");
        // One run is the default and is not spelled out.
        assert_eq!(
            Options::parse(&strings(&["--runs", "1"])).unwrap().command_line(),
            "cargo xtask bench"
        );
    }

    #[test]
    fn takes_the_median_of_odd_and_even_counts() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[4.0]), Some(4.0));
        assert_eq!(median(&[9.0, 1.0, 4.0]), Some(4.0));
        assert_eq!(median(&[9.0, 1.0, 4.0, 2.0]), Some(3.0));
    }

    #[test]
    fn merges_runs_into_median_times_and_the_range_of_ratios() {
        let run = |ours: f64, peer: f64| {
            compare(&[
                measurement("lock/keyed", Some("ours"), None, ours),
                measurement("lock/keyed", Some("peer/mutex"), None, peer),
                measurement("lock/redis", Some("ours"), None, 100.0),
            ])
        };
        // The median ratio is not the ratio of the median times: the runs' ratios are 2, 1
        // and 3 (median 2), the median times 20 and 10.
        let mut runs = vec![run(20.0, 10.0), run(10.0, 10.0), run(30.0, 10.0)];
        // A row that one run did not measure (a skipped group) is kept, from the others.
        runs[1].push(Row {
            group: "lock/sqlite".to_owned(),
            ours: Some(Timed { name: "ours".to_owned(), ns: 7.0 }),
            peer: None,
            ratios: Vec::new(),
        });
        let merged = merge(&runs);
        let shown: Vec<Vec<String>> = merged.iter().map(|row| row.cells(true)).collect();
        let row = |cells: [&str; 7]| cells.map(str::to_owned).to_vec();
        assert_eq!(
            shown,
            [
                row(["lock/keyed", "ours", "20.0 ns", "mutex", "10.0 ns", "2.00x", "1.00x–3.00x"]),
                row(["lock/redis", "ours", "100 ns", "-", "-", "-", "-"]),
                row(["lock/sqlite", "ours", "7.00 ns", "-", "-", "-", "-"]),
            ]
        );
        assert_eq!(merged[0].ratios, [2.0, 1.0, 3.0]);
        // Odd and even ratio sets: 2 runs give the mean of the middle two.
        let merged = merge(&runs[..2]);
        assert_eq!(merged[0].ratio(), Some(1.5));
        assert_eq!(merged[0].ours.as_ref().map(|ours| ours.ns), Some(15.0));
    }

    #[test]
    fn builds_the_cargo_bench_command() {
        let criterion = Path::new("/srv/target/criterion");
        let quick = Options::parse(&strings(&["--quick", "core"])).unwrap();
        assert_eq!(
            command(Path::new("."), &quick, criterion).display(),
            "CRITERION_HOME=/srv/target/criterion cargo bench -p benches --bench core -- \
             --quick --warm-up-time 1 --measurement-time 2"
        );
        assert_eq!(quick.command_line(), "cargo xtask bench --quick core");
        let plain = Options::default();
        assert_eq!(
            command(Path::new("."), &plain, criterion).display(),
            "CRITERION_HOME=/srv/target/criterion cargo bench -p benches"
        );
    }

    #[test]
    fn the_criterion_dir_is_absolute() {
        let cwd = Path::new("/opt/me/project/crates/conc-pool");
        let target = Path::new("/srv/target");
        // A relative CRITERION_HOME is taken from where xtask was started, not from
        // `benches/`, where criterion runs.
        assert_eq!(
            criterion_dir(Some(OsStr::new("out/criterion")), cwd, target),
            Path::new("/opt/me/project/crates/conc-pool/out/criterion")
        );
        assert_eq!(
            criterion_dir(Some(OsStr::new("/tmp/criterion")), cwd, target),
            Path::new("/tmp/criterion")
        );
        assert_eq!(criterion_dir(Some(OsStr::new("")), cwd, target), target.join("criterion"));
        assert_eq!(criterion_dir(None, cwd, target), Path::new("/srv/target/criterion"));
    }

    #[test]
    fn a_run_without_results_fails_unless_it_measures_nothing() {
        let dir = Path::new("/srv/target/criterion");
        for args in [&[][..], &["--quick", "core"], &["--quick", "--", "no_such_filter"]] {
            let options = Options::parse(&strings(args)).unwrap();
            assert!(options.expects_results(), "{args:?}");
            let error = no_results(&options, dir).unwrap_err();
            assert!(error.contains("/srv/target/criterion"), "{error}");
        }
        for arg in ["--list", "--test", "--help"] {
            let options = Options::parse(&strings(&["core", "--", arg])).unwrap();
            assert!(!options.expects_results(), "{arg}");
            assert_eq!(no_results(&options, dir), Ok(()));
        }
    }

    #[test]
    fn formats_times_with_three_significant_digits() {
        let cases = [
            (0.612_34, "0.612 ns"),
            (20.14, "20.1 ns"),
            (153.0, "153 ns"),
            (999.7, "1.00 µs"),
            (1_234.5, "1.23 µs"),
            (45_600.0, "45.6 µs"),
            (2_500_000.0, "2.50 ms"),
            (3.2e9, "3.20 s"),
        ];
        for (ns, shown) in cases {
            assert_eq!(human_time(ns), shown, "{ns}");
        }
    }

    #[test]
    fn formats_ratios() {
        assert_eq!(format_ratio(0.0412), "0.04x");
        assert_eq!(format_ratio(1.0), "1.00x");
        assert_eq!(format_ratio(12.345), "12.35x");
        assert_eq!(format_ratio(0.004_123), "0.00412x");
    }

    #[test]
    fn pairs_ours_with_every_peer_of_the_group() {
        let rows = compare(&[
            measurement("core/clock", Some("ours/coarse"), None, 0.6),
            measurement("core/clock", Some("peer/instant_now"), None, 20.0),
            measurement("core/clock", Some("ours"), None, 20.0),
            measurement("core/clock", Some("peer/quanta"), None, 10.0),
            measurement("core/backoff", None, None, 5.0),
            measurement("pool/spawn", Some("peer/rayon"), Some("16"), 100.0),
        ]);
        let shown: Vec<Vec<String>> = rows.iter().map(|row| row.cells(false)).collect();
        let row = |cells: [&str; 6]| cells.map(str::to_owned).to_vec();
        assert_eq!(
            shown,
            [
                row(["core/backoff", "", "5.00 ns", "-", "-", "-"]),
                row(["core/clock", "ours/coarse", "0.600 ns", "instant_now", "20.0 ns", "0.03x"]),
                row(["core/clock", "ours/coarse", "0.600 ns", "quanta", "10.0 ns", "0.06x"]),
                row(["core/clock", "ours", "20.0 ns", "instant_now", "20.0 ns", "1.00x"]),
                row(["core/clock", "ours", "20.0 ns", "quanta", "10.0 ns", "2.00x"]),
                row(["pool/spawn/16", "-", "-", "rayon", "100 ns", "-"]),
            ]
        );
    }

    #[test]
    fn renders_text_markdown_and_json() {
        let summary = Summary {
            rows: compare(&[
                measurement("core/clock", Some("ours"), None, 2.0),
                measurement("core/clock", Some("peer/instant_now"), None, 20.0),
                measurement("core/backoff", Some("ours"), None, 1500.0),
            ]),
            runs: 1,
            command: "cargo xtask bench --quick".to_owned(),
            revision: Some("abc1234".to_owned()),
            host: "box".to_owned(),
        };
        let text = summary.text();
        assert!(
            text.starts_with(
                "group         ours     time  peer            time  ratio\n\
             core/backoff  ours  1.50 µs  -                  -      -\n\
             core/clock    ours  2.00 ns  instant_now  20.0 ns  0.10x\n"
            ),
            "{text}"
        );
        assert!(text.contains("`cargo xtask bench --quick` at revision abc1234 on box."));

        let markdown = summary.markdown();
        assert!(
            markdown.contains(
                "| group | ours | time | peer | time | ratio |\n|---|---|--:|---|--:|--:|\n\
             | core/backoff | ours | 1.50 µs | - | - | - |\n\
             | core/clock | ours | 2.00 ns | instant_now | 20.0 ns | 0.10x |\n"
            ),
            "{markdown}"
        );

        let parsed = json::parse(&summary.json()).unwrap();
        let Value::Array(items) = parsed else { panic!("not an array") };
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].get("peer"), Some(&Value::Null));
        assert_eq!(items[0].get("ours_ns").and_then(Value::as_f64), Some(1500.0));
        assert_eq!(items[1].get("peer").and_then(Value::as_str), Some("instant_now"));
        assert_eq!(items[1].get("ratio").and_then(Value::as_f64), Some(0.1));
        assert_eq!(items[1].get("revision").and_then(Value::as_str), Some("abc1234"));
        assert_eq!(items[1].get("host").and_then(Value::as_str), Some("box"));
    }

    #[test]
    fn a_summary_of_several_runs_shows_the_range_of_each_ratio() {
        let run = |ours: f64| {
            compare(&[
                measurement("core/clock", Some("ours"), None, ours),
                measurement("core/clock", Some("peer/instant_now"), None, 20.0),
            ])
        };
        let summary = Summary {
            rows: merge(&[run(2.0), run(4.0), run(3.0)]),
            runs: 3,
            command: "cargo xtask bench --quick --runs 3".to_owned(),
            revision: Some("abc1234".to_owned()),
            host: "box".to_owned(),
        };
        let text = summary.text();
        assert!(
            text.starts_with(
                "group       ours     time  peer            time  ratio  range of 3 runs\n\
                 core/clock  ours  3.00 ns  instant_now  20.0 ns  0.15x      0.10x–0.20x\n"
            ),
            "{text}"
        );
        assert!(text.contains("Median over 3 runs"), "{text}");
        let markdown = summary.markdown();
        assert!(
            markdown.contains(
                "| group | ours | time | peer | time | ratio | range of 3 runs |\n\
                 |---|---|--:|---|--:|--:|--:|\n\
                 | core/clock | ours | 3.00 ns | instant_now | 20.0 ns | 0.15x | 0.10x–0.20x |\n"
            ),
            "{markdown}"
        );
        let Value::Array(items) = json::parse(&summary.json()).unwrap() else {
            panic!("not an array")
        };
        let field = |key: &str| items[0].get(key).and_then(Value::as_f64);
        assert_eq!(
            (field("ratio_min"), field("ratio_max"), field("runs")),
            (Some(0.1), Some(0.2), Some(3.0))
        );
    }

    /// A scratch directory, removed on drop.
    struct TempDir(PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn write_result(dir: &Path, benchmark: &str, median: f64) -> PathBuf {
        fs::create_dir_all(dir).unwrap();
        let interval = r#"{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0}"#;
        let estimates = format!(
            r#"{{"mean":{{"confidence_interval":{interval},"point_estimate":1.5,
                "standard_error":0.1}},"median":{{"confidence_interval":{interval},
                "point_estimate":{median},"standard_error":0.1}},
                "median_abs_dev":null,"slope":null,"std_dev":null}}"#
        );
        fs::write(dir.join("estimates.json"), estimates).unwrap();
        fs::write(dir.join("benchmark.json"), benchmark).unwrap();
        dir.join("benchmark.json")
    }

    #[test]
    fn collects_only_results_written_since_the_start() {
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos();
        let temp = TempDir(
            std::env::temp_dir().join(format!("xtask-bench-{}-{nanos}", std::process::id())),
        );
        let criterion = temp.0.join("criterion");
        let start = SystemTime::now() - Duration::from_secs(60);

        write_result(
            &criterion.join("core_clock/ours_coarse/new"),
            r#"{"group_id":"core/clock","function_id":"ours/coarse","value_str":null,
                "throughput":null,"full_id":"core/clock/ours/coarse",
                "directory_name":"core_clock/ours_coarse","title":"core/clock/ours/coarse"}"#,
            0.5,
        );
        write_result(
            &criterion.join("core_backoff/new"),
            r#"{"group_id":"core/backoff","function_id":null,"value_str":null,"throughput":null,
                "full_id":"core/backoff","directory_name":"core_backoff","title":"core/backoff"}"#,
            7.0,
        );
        // The previous run's copy and a result from an older run are not this run's results.
        write_result(
            &criterion.join("core_clock/ours_coarse/base"),
            r#"{"group_id":"core/clock","function_id":"ours/coarse"}"#,
            99.0,
        );
        let stale = write_result(
            &criterion.join("core_clock/peer_instant_now/new"),
            r#"{"group_id":"core/clock","function_id":"peer/instant_now"}"#,
            20.0,
        );
        File::options()
            .write(true)
            .open(stale)
            .unwrap()
            .set_modified(start - Duration::from_secs(3600))
            .unwrap();
        // A broken result is skipped, not fatal.
        write_result(&criterion.join("broken/new"), "{not json", 1.0);

        let measurements = collect(&criterion, start).unwrap();
        assert_eq!(
            measurements,
            [
                measurement("core/backoff", None, None, 7.0),
                measurement("core/clock", Some("ours/coarse"), None, 0.5),
            ]
        );
        assert_eq!(collect(&temp.0.join("missing"), start), Ok(Vec::new()));
    }
}
