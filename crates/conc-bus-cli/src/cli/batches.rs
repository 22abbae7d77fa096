//! `conc-bus batches …`: list, show, cancel, prune.

use std::fmt::Write as _;
use std::time::Duration;

use clap::{Args, Subcommand};
use conc_bus::batch::{BatchId, BatchPrune, MemberOutcome};
use conc_bus::job::TriggerKind;
use conc_bus_cli::{
    Admin, AdminError, BatchDetail, BatchQuery, BatchReport, BatchState, table, utc,
};
use serde_json::json;

use super::{Printer, first_line};

#[derive(Debug, Subcommand)]
pub(super) enum BatchAction {
    /// A page of batches, newest first, with their progress.
    List(BatchListArgs),
    /// One batch: counts, callbacks and whether each fired, members and their outcomes.
    Show {
        id: BatchId,
        /// The most members to show.
        #[arg(long, default_value_t = 100)]
        members: usize,
        /// Members to skip (they are in id order).
        #[arg(long, default_value_t = 0)]
        offset: usize,
    },
    /// Cancel a batch: its waiting members are deleted, running ones asked to stop.
    Cancel { id: BatchId },
    /// Delete finished batches older than some hours (and, when asked,
    /// unfinished and cancelled ones by their age).
    Prune {
        /// Finished batches that finished more than this many hours ago.
        #[arg(long, default_value_t = 24)]
        hours: u64,
        /// Also unfinished batches created more than this many hours ago.
        #[arg(long)]
        unfinished: Option<u64>,
        /// Also cancelled batches created more than this many hours ago.
        #[arg(long)]
        cancelled: Option<u64>,
    },
}

#[derive(Debug, Args)]
pub(super) struct BatchListArgs {
    /// Only batches in this state: pending, finished, cancelled.
    #[arg(long)]
    state: Option<BatchState>,
    /// Only batches whose name contains this.
    #[arg(long)]
    name: Option<String>,
    /// Only batches older than this one (the last of the previous page).
    #[arg(long)]
    before: Option<BatchId>,
    /// The most batches to list.
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

fn hours(hours: u64) -> Duration {
    Duration::from_secs(hours.saturating_mul(3600))
}

pub(super) async fn run(
    admin: &Admin,
    print: Printer,
    action: BatchAction,
) -> Result<String, AdminError> {
    match action {
        BatchAction::List(args) => {
            let mut query = BatchQuery::new().limit(args.limit);
            query.state = args.state;
            query.name = args.name;
            query.before = args.before;
            Ok(print.batches(&admin.batches(&query).await?))
        }
        BatchAction::Show { id, members, offset } => {
            Ok(print.batch(&admin.batch(id, offset, members).await?))
        }
        BatchAction::Cancel { id } => {
            let cancelled = admin.cancel_batch(id).await?;
            let text = if cancelled {
                format!("cancelled batch {id}")
            } else {
                format!("batch {id} was finished or cancelled already: nothing changed")
            };
            Ok(print.done(&json!({ "batch": id, "cancelled": cancelled }), text))
        }
        BatchAction::Prune { hours: finished, unfinished, cancelled } => {
            let mut prune = BatchPrune::finished(self::hours(finished));
            if let Some(age) = unfinished {
                prune = prune.unfinished(self::hours(age));
            }
            if let Some(age) = cancelled {
                prune = prune.cancelled(self::hours(age));
            }
            let deleted = admin.prune_batches(prune).await?;
            let text = format!("deleted {deleted} batch(es)");
            let value = json!({
                "deleted": deleted,
                "finished_hours": finished,
                "unfinished_hours": unfinished,
                "cancelled_hours": cancelled,
            });
            Ok(print.done(&value, text))
        }
    }
}

/// A progress bar of `width` cells and the percentage.
fn bar(progress: u8, width: usize) -> String {
    let filled = usize::from(progress) * width / 100;
    format!("{}{} {progress:>3}%", "#".repeat(filled), ".".repeat(width - filled))
}

fn outcome(outcome: Option<MemberOutcome>) -> &'static str {
    match outcome {
        None => "pending",
        Some(MemberOutcome::Succeeded) => "succeeded",
        Some(MemberOutcome::Failed) => "failed",
        Some(MemberOutcome::Cancelled) => "cancelled",
        Some(_) => "other",
    }
}

fn callback(kind: TriggerKind) -> &'static str {
    match kind {
        TriggerKind::Then => "then",
        TriggerKind::Catch => "catch",
        TriggerKind::Finally => "finally",
        TriggerKind::Progress => "progress",
        _ => "other",
    }
}

impl Printer {
    fn batches(self, batches: &[BatchReport]) -> String {
        if self.json {
            return Self::json(&batches);
        }
        if batches.is_empty() {
            return "no batches\n".to_owned();
        }
        let rows: Vec<Vec<String>> = batches
            .iter()
            .map(|b| {
                let info = &b.info;
                vec![
                    info.id.to_string(),
                    info.name.clone().unwrap_or_default(),
                    b.state.to_string(),
                    bar(b.progress, 10),
                    info.total.to_string(),
                    info.pending.to_string(),
                    info.succeeded.to_string(),
                    info.failed.to_string(),
                    info.cancelled.to_string(),
                    utc(info.created_at),
                ]
            })
            .collect();
        let headers = [
            "id",
            "name",
            "state",
            "progress",
            "total",
            "pending",
            "succeeded",
            "failed",
            "cancelled",
            "created",
        ];
        table(&headers, &rows)
    }

    fn batch(self, detail: &BatchDetail) -> String {
        if self.json {
            return Self::json(detail);
        }
        let report = &detail.batch;
        let info = &report.info;
        let mut out = String::new();
        let mut field = |name: &str, value: String| {
            let _ = writeln!(out, "{name:<10} {value}");
        };
        field("id", info.id.to_string());
        field("name", info.name.clone().unwrap_or_else(|| "(none)".to_owned()));
        field("queue", info.queue.clone());
        field("state", report.state.to_string());
        field("progress", bar(report.progress, 20));
        field(
            "members",
            format!(
                "{} total: {} pending, {} succeeded, {} failed, {} cancelled",
                info.total, info.pending, info.succeeded, info.failed, info.cancelled
            ),
        );
        field("failures", if info.allow_failures { "allowed" } else { "cancel the batch" }.into());
        field("created", utc(info.created_at));
        if let Some(at) = info.cancelled_at {
            field("cancelled", utc(at));
        }
        if let Some(at) = info.finished_at {
            field("finished", utc(at));
        }
        out.push('\n');
        if info.callbacks.is_empty() {
            out.push_str("no callbacks\n");
        } else {
            let rows: Vec<Vec<String>> = info
                .callbacks
                .iter()
                .map(|c| {
                    let fired = if c.dispatched > 0 { "yes" } else { "no" };
                    vec![
                        callback(c.kind).to_owned(),
                        c.job.clone(),
                        fired.to_owned(),
                        c.dispatched.to_string(),
                    ]
                })
                .collect();
            out.push_str(&table(&["callback", "job", "fired", "times"], &rows));
        }
        out.push('\n');
        if detail.members.is_empty() {
            out.push_str("no members shown\n");
            return out;
        }
        let rows: Vec<Vec<String>> = detail
            .members
            .iter()
            .map(|m| {
                let (name, error) = m
                    .failed
                    .as_ref()
                    .map_or_else(Default::default, |f| (f.name.clone(), first_line(&f.error, 60)));
                vec![m.id.to_string(), outcome(m.outcome).to_owned(), name, error]
            })
            .collect();
        out.push_str(&table(&["member", "outcome", "failed job", "error"], &rows));
        let shown = detail.members_offset + detail.members.len();
        if u64::try_from(shown).unwrap_or(u64::MAX) < info.total {
            let _ = writeln!(
                out,
                "members {}..{shown} of {} (--offset for more)",
                detail.members_offset + 1,
                info.total
            );
        }
        out
    }
}
