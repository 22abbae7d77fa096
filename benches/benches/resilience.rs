//! `conc-resilience` benches (filled in below).
#![allow(missing_docs, reason = "criterion's macros generate undocumented items")]
fn main() {}
