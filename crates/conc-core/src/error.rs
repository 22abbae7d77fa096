//! The boxed error used at type-erased boundaries.

/// A type-erased error, `Send + Sync` so it can cross tasks and threads.
///
/// Libraries in this workspace return typed errors; `BoxError` appears only
/// where the concrete error cannot be named: tower `Service` boundaries, the
/// [`Lifecycle`](crate::lifecycle::Lifecycle) trait and task failures reported
/// by a [`Driver`](crate::driver::Driver).
///
/// # Examples
///
/// ```
/// use conc_core::BoxError;
///
/// fn parse(input: &str) -> Result<u32, BoxError> {
///     Ok(input.parse::<u32>()?)
/// }
/// assert!(parse("12").is_ok());
/// assert_eq!(parse("x").unwrap_err().to_string(), "invalid digit found in string");
/// ```
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
