//! Tables and times as the binary prints them.

use std::fmt::Write as _;

/// `rows` under `headers`, each column as wide as its widest cell, columns
/// two spaces apart; numbers are right-aligned.
///
/// # Examples
///
/// ```
/// let table = conc_bus_cli::table(&["queue", "ready"], &[vec!["mail".into(), "12".into()]]);
/// assert_eq!(table, "queue  ready\nmail      12\n");
/// ```
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let numeric: Vec<bool> = (0..headers.len())
        .map(|column| {
            !rows.is_empty()
                && rows.iter().all(|row| {
                    row.get(column).is_some_and(|cell| {
                        !cell.is_empty() && cell.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                    })
                })
        })
        .collect();
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>, align: bool| {
        let mut text = String::new();
        for (column, cell) in cells.enumerate() {
            if column > 0 {
                text.push_str("  ");
            }
            let width = widths.get(column).copied().unwrap_or(0);
            if align && numeric.get(column).copied().unwrap_or(false) {
                let _ = write!(text, "{cell:>width$}");
            } else {
                let _ = write!(text, "{cell:<width$}");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied(), false);
    for row in rows {
        line(&mut row.iter().map(String::as_str), true);
    }
    out
}

/// Unix milliseconds as an RFC 3339 time in UTC, to the second.
///
/// # Examples
///
/// ```
/// assert_eq!(conc_bus_cli::utc(1_800_000_000_000), "2027-01-15T08:00:00Z");
/// ```
pub fn utc(ms: u64) -> String {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(at) => at.round(jiff::Unit::Second).unwrap_or(at).to_string(),
        Err(_) => format!("{ms} ms"),
    }
}

/// A wait in milliseconds, short: `0s`, `42s`, `3m05s`, `2h10m`, `4d3h`.
///
/// # Examples
///
/// ```
/// assert_eq!(conc_bus_cli::short_duration(185_000), "3m05s");
/// ```
pub fn short_duration(ms: u64) -> String {
    let seconds = ms / 1000;
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        3600..86_400 => format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60),
        _ => format!("{}d{}h", seconds / 86_400, seconds % 86_400 / 3600),
    }
}
