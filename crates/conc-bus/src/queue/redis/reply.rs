//! Reading the scripts' replies: flat arrays of integers and strings, read
//! field by field, every surprise a [`QueueError::Corrupt`] naming the
//! script, never a panic.

use redis::Value;

use crate::queue::error::QueueError;

/// A script's reply, read front to back.
pub(super) struct Reply {
    script: &'static str,
    fields: std::vec::IntoIter<Value>,
}

impl Reply {
    /// The reply `value` of `script`, which must be an array.
    pub(super) fn new(script: &'static str, value: Value) -> Result<Self, QueueError> {
        match value {
            Value::Array(fields) => Ok(Self { script, fields: fields.into_iter() }),
            other => Err(unexpected(script, &format!("a reply that is not an array: {other:?}"))),
        }
    }

    /// Fields not read yet.
    pub(super) fn remaining(&self) -> usize {
        self.fields.len()
    }

    /// The next field, which must be present.
    fn next(&mut self, what: &str) -> Result<Value, QueueError> {
        self.fields.next().ok_or_else(|| unexpected(self.script, &format!("no {what}")))
    }

    /// The next field as an integer (Redis sends script numbers as integers).
    pub(super) fn int(&mut self, what: &str) -> Result<i64, QueueError> {
        match self.next(what)? {
            Value::Int(value) => Ok(value),
            Value::BulkString(bytes) => std::str::from_utf8(&bytes)
                .ok()
                .and_then(parse_number)
                .ok_or_else(|| self.bad(what, &String::from_utf8_lossy(&bytes))),
            other => Err(self.bad(what, &format!("{other:?}"))),
        }
    }

    /// The next field as a non-negative integer.
    pub(super) fn uint(&mut self, what: &str) -> Result<u64, QueueError> {
        let value = self.int(what)?;
        u64::try_from(value).map_err(|_| self.bad(what, &value.to_string()))
    }

    /// The next field as text.
    pub(super) fn text(&mut self, what: &str) -> Result<String, QueueError> {
        match self.next(what)? {
            Value::BulkString(bytes) => {
                String::from_utf8(bytes).map_err(|_| self.bad(what, "bytes that are not UTF-8"))
            }
            Value::SimpleString(text) => Ok(text),
            Value::Int(value) => Ok(value.to_string()),
            other => Err(self.bad(what, &format!("{other:?}"))),
        }
    }

    /// The next field as text, or `None` for a nil.
    pub(super) fn maybe_text(&mut self, what: &str) -> Result<Option<String>, QueueError> {
        match self.fields.as_slice().first() {
            Some(Value::Nil) => {
                self.fields.next();
                Ok(None)
            }
            _ => self.text(what).map(Some),
        }
    }

    /// The next field as an integer, or `None` for a nil.
    pub(super) fn maybe_int(&mut self, what: &str) -> Result<Option<i64>, QueueError> {
        match self.fields.as_slice().first() {
            Some(Value::Nil) => {
                self.fields.next();
                Ok(None)
            }
            _ => self.int(what).map(Some),
        }
    }

    fn bad(&self, what: &str, found: &str) -> QueueError {
        unexpected(self.script, &format!("{what} {found:?}"))
    }
}

/// An integer as Redis or Lua writes it (`12`, or `1.7e+12` for a large Lua
/// number turned into text).
fn parse_number(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().or_else(|| {
        let value = text.parse::<f64>().ok()?;
        (value.fract() == 0.0 && value.abs() < 9.0e15).then_some(value as i64)
    })
}

/// A reply the backend does not understand: the server runs scripts of
/// another version, or someone wrote the keys by hand.
pub(super) fn unexpected(script: &str, detail: &str) -> QueueError {
    QueueError::Corrupt(format!("unexpected reply from the {script} script: {detail}"))
}

/// A Redis failure (connection, timeout, server error) as a queue error.
pub(super) fn backend(error: redis::RedisError) -> QueueError {
    QueueError::Backend(Box::new(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(fields: Vec<Value>) -> Reply {
        Reply::new("test", Value::Array(fields)).unwrap()
    }

    #[test]
    fn fields_are_read_in_order() {
        let mut r = reply(vec![
            Value::Int(7),
            Value::BulkString(b"12".to_vec()),
            Value::BulkString(b"hi".to_vec()),
            Value::Nil,
            Value::Nil,
        ]);
        assert_eq!(r.remaining(), 5);
        assert_eq!(r.int("a").unwrap(), 7);
        assert_eq!(r.uint("b").unwrap(), 12);
        assert_eq!(r.text("c").unwrap(), "hi");
        assert_eq!(r.maybe_text("d").unwrap(), None);
        assert_eq!(r.maybe_int("e").unwrap(), None);
        assert!(matches!(r.int("f"), Err(QueueError::Corrupt(_))));
    }

    #[test]
    fn surprises_are_corrupt_not_panics() {
        assert!(Reply::new("x", Value::Okay).is_err());
        let mut r = reply(vec![Value::Int(-1), Value::BulkString(vec![0xff]), Value::Okay]);
        assert!(r.uint("negative").is_err());
        assert!(r.text("binary").is_err());
        assert!(r.int("okay").is_err());
        assert_eq!(parse_number("1.7e+12"), Some(1_700_000_000_000));
        assert_eq!(parse_number("1.5"), None);
    }
}
