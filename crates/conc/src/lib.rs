//! conc.
