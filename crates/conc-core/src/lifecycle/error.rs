//! Errors and reports of the lifecycle registry.

use std::fmt;

use crate::BoxError;

/// Why a registry refused a request or could not carry it out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// A component with this name is already registered.
    #[error("a component named `{name}` is already registered")]
    Duplicate {
        /// The name that is taken.
        name: String,
    },
    /// No component with this name is registered.
    #[error("no component named `{name}` is registered")]
    NotFound {
        /// The name that was looked up.
        name: String,
    },
    /// A component failed to start.
    #[error("component `{name}` failed to start")]
    StartFailed {
        /// The component that failed.
        name: String,
        /// What it reported.
        #[source]
        source: BoxError,
    },
}

/// Why one component did not stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StopError {
    /// `stop` returned an error.
    #[error("stop failed")]
    Failed(#[source] BoxError),
    /// `stop` had not finished when the deadline passed; it was abandoned.
    #[error("did not stop before the deadline")]
    DeadlineExceeded,
}

/// The outcome of [`Registry::shutdown_all`](super::Registry::shutdown_all):
/// which components stopped, in the order they were stopped, and which did not.
#[derive(Debug, Default)]
#[non_exhaustive]
#[must_use = "a shutdown report lists the components that did not stop cleanly"]
pub struct ShutdownReport {
    /// Components that stopped cleanly, in stop order.
    pub stopped: Vec<String>,
    /// Components that failed to stop or overran the deadline, in stop order.
    pub failed: Vec<(String, StopError)>,
}

impl ShutdownReport {
    /// Whether every component stopped cleanly before the deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_core::lifecycle::ShutdownReport;
    ///
    /// assert!(ShutdownReport::default().is_clean());
    /// ```
    pub fn is_clean(&self) -> bool {
        self.failed.is_empty()
    }
}

impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} stopped", self.stopped.len())?;
        for (name, error) in &self.failed {
            match error {
                StopError::Failed(source) => write!(f, "; `{name}` {error}: {source}")?,
                StopError::DeadlineExceeded => write!(f, "; `{name}` {error}")?,
            }
        }
        Ok(())
    }
}
