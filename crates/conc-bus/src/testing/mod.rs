//! Testing support for applications built on the bus: a fake bus that
//! records dispatches, a fake job context to unit-test a handler, and a
//! deterministic simulation harness that runs your handlers through worker
//! crashes and lost acknowledgements.
//!
//! # The bus in fake mode
//!
//! [`BusBuilder::fake`](crate::BusBuilder::fake) builds the same [`Bus`](crate::Bus)
//! your code takes, and a [`BusFake`] to assert on (Laravel's
//! `Bus::fake()`): queued jobs are recorded instead of pushed (except the
//! types named with [`BusFake::except`]), each after a round trip through its
//! payload (serialize-and-restore, on by default: a job that would not
//! survive the queue fails the dispatch); commands are recorded and still
//! run their handlers.
//!
//! ```
//! use conc_bus::{Bus, Command, Job};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Clone)]
//! struct Checkout { cart: u64 }
//! impl Command for Checkout { type Output = u64; type Error = std::convert::Infallible; }
//!
//! #[derive(Serialize, Deserialize)]
//! struct ShipOrder { order: u64 }
//! impl Job for ShipOrder { const NAME: &'static str = "ship-order"; }
//!
//! /// Application code: takes a `Bus`, knows nothing of tests.
//! async fn checkout(bus: &Bus, cart: u64) -> Result<u64, Box<dyn std::error::Error>> {
//!     let order = bus.dispatch(Checkout { cart }).await?;
//!     bus.dispatch_to_queue(ShipOrder { order }).await?;
//!     Ok(order)
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (bus, fake) = Bus::builder().handle(|c: Checkout| async move { Ok(c.cart * 10) }).fake();
//! assert_eq!(checkout(&bus, 4).await?, 40);
//! fake.assert_command_dispatched_with(|c: &Checkout| c.cart == 4);
//! fake.assert_dispatched_with(|job: &ShipOrder| job.order == 40);
//! fake.assert_pushed_on::<ShipOrder>("default");
//! # Ok(()) }
//! ```
//!
//! # A handler without a worker
//!
//! [`FakeContext`] makes the [`JobContext`](crate::JobContext) a handler
//! takes, with the id, attempt, queue and checkpoint the test chooses; it
//! records progress, checkpoints and releases, can cancel the attempt or
//! take its lease away, and reads the handler's result as a worker would
//! ([`HandlerOutcome`]).
//!
//! ```
//! use conc_bus::{JobContext, JobError};
//! use conc_bus::testing::FakeContext;
//!
//! async fn resize(width: u32, ctx: JobContext) -> Result<(), JobError> {
//!     if width == 0 {
//!         return Err(JobError::fatal("width must be positive"));
//!     }
//!     ctx.progress(100).await?;
//!     Ok(())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let fake = FakeContext::new();
//! fake.run(resize(640, fake.context())).await.assert_succeeded();
//! fake.assert_progress(&[100]);
//! fake.run(resize(0, fake.context())).await
//!     .assert_failed_fatally_with(|e| e.to_string().contains("positive"));
//! # }
//! ```
//!
//! # Simulations: your handlers through crashes
//!
//! [`Simulation`] runs real [`Worker`](crate::Worker)s with your handlers
//! against a [`MemoryQueue`](crate::MemoryQueue) on [`PausedTime`] and a
//! seeded [`ChaosPlan`]: workers killed at a handler's await point, dropped
//! and delayed acknowledgements, leases expiring under a running handler.
//! The [`SimulationReport`] checks that no job was lost and that handlers
//! ran again no more often than the faults disturbed jobs; a failing seed
//! replays the same run. See [`Simulation`] for an example.

mod context;
pub(crate) mod fake;
mod sim;
mod time;

pub use context::{FakeContext, FakeContextBuilder, HandlerOutcome};
pub use fake::{BusFake, DispatchedJob, round_trip};
pub use sim::{
    ChaosPlan, Fault, FaultKind, FaultRecord, LostJob, LostState, MAX_SIMULATED_WORKERS,
    Simulation, SimulationError, SimulationReport, Violation,
};
pub use time::PausedTime;
