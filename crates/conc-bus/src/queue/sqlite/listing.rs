//! Batches listed by state, name and cursor in the store: the state is a
//! column computed from the batch's record and indexed with its creation
//! time, so a page of one state walks the index newest first; a name filter
//! runs in SQL; only the batches returned are counted.

use std::fmt::Write as _;

use rusqlite::OptionalExtension;
use rusqlite::types::Value;

use super::flow::{batch_bytes, info, parse};
use super::row::Failure;
use super::writer::Tx;
use crate::batch::{BatchInfo, BatchQuery, BatchState};

/// The creation time of the cursor batch.
const CREATED: &str = "SELECT created_at FROM conc_bus_batches WHERE id = ?1";

/// The stored code of `state` (the `state` column).
fn code(state: BatchState) -> i64 {
    match state {
        BatchState::Pending => 0,
        BatchState::Finished => 1,
        BatchState::Cancelled => 2,
    }
}

/// The batches `query` selects, newest first.
pub(super) fn list(tx: &Tx<'_>, query: &BatchQuery) -> Result<Vec<BatchInfo>, Failure> {
    let mut sql = String::from("SELECT record FROM conc_bus_batches WHERE 1");
    let mut args: Vec<Value> = Vec::new();
    if let Some(state) = query.state {
        args.push(Value::Integer(code(state)));
        let _ = write!(sql, " AND state = ?{}", args.len());
    }
    if let Some(name) = &query.name {
        args.push(Value::Text(name.clone()));
        let _ = write!(sql, " AND instr(json_extract(record, '$.name'), ?{}) > 0", args.len());
    }
    if let Some(before) = query.before {
        let id = batch_bytes(before).to_vec();
        let created: Option<i64> =
            tx.conn.prepare_cached(CREATED)?.query_row([&id], |row| row.get(0)).optional()?;
        if let Some(created) = created {
            args.push(Value::Integer(created));
            args.push(Value::Blob(id));
            let n = args.len();
            let _ = write!(sql, " AND (created_at, id) < (?{}, ?{n})", n - 1);
        } else {
            // The cursor batch was pruned: page by id, which grows with time.
            args.push(Value::Blob(id));
            let _ = write!(sql, " AND id < ?{}", args.len());
        }
    }
    args.push(Value::Integer(i64::try_from(query.limit).unwrap_or(i64::MAX)));
    let _ = write!(sql, " ORDER BY created_at DESC, id DESC LIMIT ?{}", args.len());
    let records: Vec<String> = {
        let mut statement = tx.conn.prepare_cached(&sql)?;
        let rows = statement.query_map(rusqlite::params_from_iter(args), |row| row.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    records.iter().map(|text| info(tx, &parse(text)?)).collect()
}
