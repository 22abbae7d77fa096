//! What both pool front-ends expose the same way: the management methods,
//! [`MetricsSource`](conc_core::metrics::MetricsSource) and
//! [`Lifecycle`](conc_core::lifecycle::Lifecycle). Written once here, expanded
//! into each pool type.

/// Declares the pool type `$pool` over an engine of `$flavor`, with the
/// shared methods and trait impls; the front-end adds `stop_until(deadline)`
/// (how it stops) and its submission methods. `$open` and `$close` wrap the
/// doc examples (a runtime for the async pool).
macro_rules! pool_type {
    (
        $(#[$doc:meta])*
        pub struct $pool:ident($flavor:ty);
        max = $max:expr, open = $open:literal, close = $close:literal
    ) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $pool {
            shared: std::sync::Arc<$crate::engine::Shared<$flavor>>,
        }

        impl std::fmt::Debug for $pool {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_tuple(stringify!($pool)).field(&**self.shared).finish()
            }
        }

        impl $pool {
            fn engine(&self) -> &std::sync::Arc<$crate::engine::Engine<$flavor>> {
                &self.shared
            }

            fn from_engine(shared: $crate::engine::Shared<$flavor>) -> Self {
                Self { shared: std::sync::Arc::new(shared) }
            }

            /// The most workers this kind of pool accepts (`workers` and
            /// `max_workers` above it are refused by `build()`).
            pub const MAX_WORKERS: usize = $max;

            /// A snapshot of the pool's counters and gauges (cheap: a few
            /// atomic loads per worker, no lock held across user code).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $open]
            #[doc = concat!("let pool = conc_pool::", stringify!($pool), "::builder().workers(2).build()?;")]
            /// let m = pool.metrics();
            /// assert_eq!((m.workers, m.busy, m.queued), (2, 0, 0));
            #[doc = $close]
            /// ```
            pub fn metrics(&self) -> $crate::PoolMetrics {
                self.engine().metrics()
            }

            /// Resets the counters and the queue-wait histogram; gauges
            /// (workers, busy, queued) keep their values.
            pub fn reset_metrics(&self) {
                self.engine().reset_metrics();
            }

            /// Workers stuck on one task longer than the `stuck_after` threshold.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $open]
            #[doc = concat!("let pool = conc_pool::", stringify!($pool), "::builder().workers(1).build()?;")]
            /// assert!(pool.health().is_healthy());
            #[doc = $close]
            /// ```
            pub fn health(&self) -> $crate::Health {
                self.engine().core.health()
            }

            /// Whether the pool stopped accepting work.
            pub fn is_shut_down(&self) -> bool {
                self.engine().core.queue.is_closed()
            }

            /// Workers alive now (a stuck worker stops counting once replaced).
            pub fn workers(&self) -> usize {
                self.engine().workers()
            }

            /// Adds up to `n` workers, never above `max_workers`; how many started.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $open]
            #[doc = concat!("let pool = conc_pool::", stringify!($pool), "::builder().workers(1).max_workers(4).build()?;")]
            /// assert_eq!(pool.scale_up(5), 3);
            /// assert_eq!(pool.workers(), 4);
            #[doc = $close]
            /// ```
            pub fn scale_up(&self, n: usize) -> usize {
                self.engine().scale_up(n)
            }

            /// Asks up to `n` workers to retire, never below one. Idle workers
            /// leave at once; busy ones after their current task (a running
            /// task is never interrupted). Returns how many were asked.
            pub fn scale_down(&self, n: usize) -> usize {
                self.engine().scale_down(n)
            }

            /// Scales towards `workers` workers (within one and `max_workers`).
            pub fn resize(&self, workers: usize) {
                self.engine().resize(workers);
            }
        }

        impl conc_core::metrics::MetricsSource for $pool {
            type Snapshot = $crate::PoolMetrics;

            fn metrics(&self) -> $crate::PoolMetrics {
                $pool::metrics(self)
            }

            fn reset_metrics(&self) {
                $pool::reset_metrics(self);
            }
        }

        /// A pool is running from `build()` until it is shut down; `stop`
        /// shuts it down gracefully with the registry's deadline, and reports
        /// an error when tasks were still queued or running at that deadline
        /// (the queued ones are dropped: their handles resolve to
        /// [`JoinError::NotRun`](crate::JoinError::NotRun)).
        impl conc_core::lifecycle::Lifecycle for $pool {
            fn name(&self) -> &str {
                &self.engine().core.name
            }

            fn start(&self) -> conc_core::BoxFuture<'_, Result<(), conc_core::BoxError>> {
                let result = if self.is_shut_down() {
                    Err(format!("pool `{}` was shut down and cannot start again", self.engine().core.name).into())
                } else {
                    Ok(())
                };
                Box::pin(std::future::ready(result))
            }

            fn stop(
                &self,
                deadline: std::time::Instant,
            ) -> conc_core::BoxFuture<'_, Result<(), conc_core::BoxError>> {
                self.stop_until(deadline)
            }

            fn is_running(&self) -> bool {
                !self.is_shut_down()
            }
        }
    };
}

pub(crate) use pool_type;
