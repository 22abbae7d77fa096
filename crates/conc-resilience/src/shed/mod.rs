//! Load shedding: admit work by load units up to a maximum, refuse above it,
//! and keep refusing for a cooldown so the overload can drain.
//!
//! [`LoadShedder::try_admit`] admits work with a [`LoadPermit`] that gives
//! its units back on `Drop`, or refuses it with [`Shed`]. With the `tower`
//! feature, `LoadShedderLayer` wraps a service in a
//! [`LoadShedder<S, U>`](LoadShedder) charging each request the [`LoadUnits`]
//! it costs; its response future is `future::ResponseFuture`.
//!
//! # Examples
//!
//! ```
//! use conc_resilience::{LoadShedder, Shed};
//!
//! let shedder = LoadShedder::builder(2).build()?;
//! let _a = shedder.try_admit(1)?;
//! let _b = shedder.try_admit(1)?;
//! assert!(matches!(shedder.try_admit(1), Err(Shed::Overloaded { .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod builder;
mod error;
mod handle;
mod metrics;
mod shared;
mod units;

#[cfg(feature = "tower")]
pub mod future;
#[cfg(feature = "tower")]
mod layer;
#[cfg(feature = "tower")]
mod service;

pub use builder::LoadShedderBuilder;
pub use error::Shed;
pub use handle::{LoadPermit, LoadShedder};
#[cfg(feature = "tower")]
pub use layer::LoadShedderLayer;
pub use metrics::ShedMetrics;
pub use units::{LoadUnits, OneUnit};
