//! Rows and values: how ids, envelopes and failure reasons are stored, read
//! back, and refused as corrupt when they do not decode; and [`Failure`], why
//! one request inside a batch failed.

use conc_core::config::ConfigError;
use rusqlite::Row;
use rusqlite::types::ValueRef;

use crate::failed::FailReason;
use crate::id::JobId;
use crate::job::Envelope;
use crate::queue::error::QueueError;

/// A job row's state: available now (ordered by priority, then
/// `available_at`, then insertion). The SQL spells the states as literals,
/// which the partial indexes need: 0 ready, 1 delayed, 2 leased (until
/// `expires_at`, under `token`), 3 set aside (the row does not decode; kept
/// for inspection, never reserved).
pub(super) const READY: i64 = 0;
/// A job row's state: available at `available_at`, later.
pub(super) const DELAYED: i64 = 1;

/// Why one request of a batch failed; its changes are rolled back.
#[derive(Debug)]
pub(super) enum Failure {
    /// SQLite failed.
    Sql(rusqlite::Error),
    /// A stored row does not decode. `set_aside` is the row (`seq`) of a
    /// queued job to set aside so that it stops blocking its queue.
    Corrupt { message: String, set_aside: Option<i64> },
    /// A push refused as a whole.
    Refused(Refusal),
    /// An argument was refused.
    Config(ConfigError),
}

/// Why a push was refused, before the jobs are handed back.
#[derive(Debug)]
pub(super) enum Refusal {
    /// The queue is at its bound.
    Full { queue: String, capacity: u64 },
    /// The id is stored already.
    Duplicate { id: JobId },
    /// A unique job's key is held by another job.
    Locked { key: String, held_by: JobId },
    /// No batch has this id.
    NoBatch(crate::batch::BatchId),
    /// The batch is finished or cancelled.
    Closed(crate::batch::BatchId, &'static str),
}

impl From<rusqlite::Error> for Failure {
    fn from(error: rusqlite::Error) -> Self {
        Self::Sql(error)
    }
}

impl From<ConfigError> for Failure {
    fn from(error: ConfigError) -> Self {
        Self::Config(error)
    }
}

impl Failure {
    /// A corrupt value that blocks nothing (a read, the failed store).
    pub(super) fn corrupt(message: impl Into<String>) -> Self {
        Self::Corrupt { message: message.into(), set_aside: None }
    }

    /// The same failure; when it is a corrupt value, one of the job row
    /// `seq`, to set aside.
    pub(super) fn of_row(self, seq: i64) -> Self {
        match self {
            Self::Corrupt { message, .. } => Self::Corrupt { message, set_aside: Some(seq) },
            other => other,
        }
    }

    /// The error a caller (other than a push) is given.
    pub(super) fn into_queue_error(self) -> QueueError {
        match self {
            Self::Sql(error) => QueueError::Backend(Box::new(error)),
            Self::Corrupt { message, .. } => QueueError::Corrupt(message),
            Self::Config(error) => QueueError::Config(error),
            Self::Refused(refusal) => {
                QueueError::Corrupt(format!("unexpected refusal {refusal:?}"))
            }
        }
    }
}

/// An id as stored: its 16 bytes, big-endian, so ids sort as blobs as they
/// do as numbers.
pub(super) fn id_bytes(id: JobId) -> [u8; 16] {
    id.as_u128().to_be_bytes()
}

/// The id in column `index`, or a corrupt-row failure.
pub(super) fn id_at(row: &Row<'_>, index: usize) -> Result<JobId, Failure> {
    match row.get_ref(index)? {
        ValueRef::Blob(bytes) => <[u8; 16]>::try_from(bytes)
            .map(|bytes| JobId::from_u128(u128::from_be_bytes(bytes)))
            .map_err(|_| {
                Failure::corrupt(format!("a stored job id has {} bytes, not 16", bytes.len()))
            }),
        other => {
            Err(Failure::corrupt(format!("a stored job id is {:?}, not a blob", other.data_type())))
        }
    }
}

/// The integer in column `index`, or a corrupt-row failure naming `what`.
pub(super) fn int_at(row: &Row<'_>, index: usize, what: &str) -> Result<i64, Failure> {
    match row.get_ref(index)? {
        ValueRef::Integer(value) => Ok(value),
        other => Err(Failure::corrupt(format!(
            "stored {what} is {:?}, not an integer",
            other.data_type()
        ))),
    }
}

/// The non-negative integer in column `index` as `u64`.
pub(super) fn u64_at(row: &Row<'_>, index: usize, what: &str) -> Result<u64, Failure> {
    let value = int_at(row, index, what)?;
    u64::try_from(value)
        .map_err(|_| Failure::corrupt(format!("stored {what} is negative ({value})")))
}

/// The text in column `index`, or a corrupt-row failure naming `what`.
pub(super) fn text_at(row: &Row<'_>, index: usize, what: &str) -> Result<String, Failure> {
    match row.get_ref(index)? {
        ValueRef::Text(bytes) => String::from_utf8(bytes.to_vec())
            .map_err(|_| Failure::corrupt(format!("stored {what} is not UTF-8"))),
        other => {
            Err(Failure::corrupt(format!("stored {what} is {:?}, not text", other.data_type())))
        }
    }
}

/// A `u64` as SQLite stores integers; times and counts never come near the
/// limit, larger values saturate.
pub(super) fn sql_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The stored form of an envelope (JSON).
pub(super) fn encode(envelope: &Envelope) -> Result<String, Failure> {
    serde_json::to_string(envelope)
        .map_err(|error| Failure::corrupt(format!("job {} cannot be stored: {error}", envelope.id)))
}

/// The envelope stored as `text` for job `id` (row `seq` of the jobs, when
/// it is one, to set aside).
pub(super) fn decode(text: &str, id: JobId, seq: Option<i64>) -> Result<Envelope, Failure> {
    let corrupt = |message: String| Failure::Corrupt { message, set_aside: seq };
    let envelope: Envelope = serde_json::from_str(text).map_err(|error| {
        corrupt(format!("the stored envelope of job {id} does not decode: {error}"))
    })?;
    if envelope.id != id {
        return Err(corrupt(format!(
            "the stored envelope of job {id} carries another id, {}",
            envelope.id
        )));
    }
    Ok(envelope)
}

/// A failure reason's stored name.
pub(super) fn reason_name(reason: FailReason) -> &'static str {
    match reason {
        FailReason::AttemptsExhausted => "attempts_exhausted",
        FailReason::TooManyExceptions => "too_many_exceptions",
        FailReason::DeadlinePassed => "deadline_passed",
        FailReason::Fatal => "fatal",
        FailReason::TimedOut => "timed_out",
        FailReason::Abandoned => "abandoned",
        FailReason::ReleasedOut => "released_out",
        FailReason::Undecodable => "undecodable",
    }
}

/// The failure reason stored as `name`.
pub(super) fn reason_from(name: &str) -> Result<FailReason, Failure> {
    Ok(match name {
        "attempts_exhausted" => FailReason::AttemptsExhausted,
        "too_many_exceptions" => FailReason::TooManyExceptions,
        "deadline_passed" => FailReason::DeadlinePassed,
        "fatal" => FailReason::Fatal,
        "timed_out" => FailReason::TimedOut,
        "abandoned" => FailReason::Abandoned,
        "released_out" => FailReason::ReleasedOut,
        "undecodable" => FailReason::Undecodable,
        other => return Err(Failure::corrupt(format!("unknown stored failure reason {other:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobOptions;

    #[test]
    fn ids_sort_as_blobs_as_they_do_as_numbers() {
        let (a, b) = (JobId::from_u128(1 << 100), JobId::from_u128((1 << 100) + 1));
        assert!(id_bytes(a) < id_bytes(b));
        assert!(id_bytes(JobId::from_u128(255)) < id_bytes(JobId::from_u128(256)));
    }

    #[test]
    fn every_reason_round_trips() {
        for reason in [
            FailReason::AttemptsExhausted,
            FailReason::TooManyExceptions,
            FailReason::DeadlinePassed,
            FailReason::Fatal,
            FailReason::TimedOut,
            FailReason::Abandoned,
            FailReason::ReleasedOut,
            FailReason::Undecodable,
        ] {
            assert_eq!(reason_from(reason_name(reason)).unwrap(), reason);
        }
        assert!(matches!(reason_from("gone"), Err(Failure::Corrupt { .. })));
    }

    #[test]
    fn envelopes_round_trip_and_bad_ones_are_corrupt() {
        let id = JobId::from_u128(7);
        let envelope = Envelope::raw(id, "t", 2, r#"{"a":"\"q\""}"#.into(), &JobOptions::new(), 5);
        let text = encode(&envelope).unwrap();
        assert_eq!(decode(&text, id, None).unwrap(), envelope);
        match decode("{not json", id, Some(3)) {
            Err(Failure::Corrupt { message, set_aside: Some(3) }) => {
                assert!(message.contains(&id.to_string()), "{message}");
            }
            other => panic!("expected corrupt, got {other:?}"),
        }
        assert!(matches!(decode(&text, JobId::from_u128(8), None), Err(Failure::Corrupt { .. })));
    }
}
