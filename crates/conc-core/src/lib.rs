//! Stable integration points of the conc toolkit.
#![forbid(unsafe_code)]

pub mod backoff;
