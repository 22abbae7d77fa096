//! [`Dashboard`] and its builder.

use std::fmt::{self, Write as _};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::request::Parts;
use conc_bus::{AnyBackend, QueueBackend, Worker};
use conc_bus_cli::{Admin, AdminError};
use conc_core::config::{self, ConfigError};

use crate::model::{Overview, Sample};
use crate::state::{Gate, Inner, Settings, WorkerSource};

/// A Horizon-like web dashboard over one conc-bus backend: an axum
/// [`Router`] to nest into an application's own router, or to serve alone.
///
/// Clones share everything (the sampler, the recent jobs, the CSRF token).
///
/// # Examples
///
/// ```
/// use conc_bus::{AnyBackend, MemoryQueue};
/// use conc_dashboard::Dashboard;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dashboard = Dashboard::builder(AnyBackend::new(MemoryQueue::new())).build()?;
/// let app = axum::Router::new().nest("/jobs", dashboard.router());
/// # let _ = app;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Dashboard {
    inner: Arc<Inner>,
}

impl fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dashboard")
            .field("backend", self.inner.admin.backend())
            .field("allow_remote", &self.inner.settings.allow_remote)
            .finish_non_exhaustive()
    }
}

impl Dashboard {
    /// A builder for a dashboard over `backend` (for a URL, use
    /// [`conc_bus_cli::connect`]).
    pub fn builder(backend: AnyBackend) -> DashboardBuilder {
        DashboardBuilder {
            admin: Admin::new(backend),
            gate: None,
            allow_remote: false,
            trusted_origins: Vec::new(),
            workers: Vec::new(),
            page_size: 50,
            recent_capacity: 1000,
            sample_every: Duration::from_secs(5),
            history: 720,
            refresh: Duration::from_secs(5),
            title: "conc-bus".to_owned(),
        }
    }

    /// The dashboard's routes, to serve or to nest (`Router::nest("/jobs",
    /// dashboard.router())`): links follow the prefix it is nested under.
    /// Serve it with `into_make_service_with_connect_info::<SocketAddr>()`
    /// so the loopback check knows the client's address.
    pub fn router(&self) -> Router {
        crate::routes::router(Arc::clone(&self.inner))
    }

    /// Serves the dashboard alone on `listener` until `shutdown` resolves.
    ///
    /// # Errors
    ///
    /// The server's I/O error.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.inner.ensure_started();
        let app = self.router().into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app).with_graceful_shutdown(shutdown).await
    }

    /// The token POST actions must carry: the form field `csrf` or the header
    /// `x-csrf-token`. One per dashboard, made from the operating system's
    /// random source when it was built.
    pub fn csrf_token(&self) -> &str {
        &self.inner.csrf
    }

    /// The overview's data, as `GET /api/overview` returns it.
    ///
    /// # Errors
    ///
    /// The backend's error.
    pub async fn overview(&self) -> Result<Overview, AdminError> {
        self.inner.overview().await
    }

    /// Takes a sample for the charts now (the sampler takes one every
    /// `sample_every`).
    ///
    /// # Errors
    ///
    /// The backend's error; nothing is recorded then.
    pub async fn sample_now(&self) -> Result<(), AdminError> {
        self.inner.sample().await
    }

    /// The samples kept, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        self.inner.samples()
    }
}

/// Settings of a [`Dashboard`]; [`build`](Self::build) checks them.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_bus::{AnyBackend, MemoryQueue};
/// use conc_dashboard::Dashboard;
///
/// let dashboard = Dashboard::builder(AnyBackend::new(MemoryQueue::new()))
///     .allow_remote(true)
///     .trusted_origin("https://jobs.example.com")
///     .gate(|request| request.headers.get("x-admin").is_some_and(|v| v == "yes"))
///     .page_size(25)
///     .sample_every(Duration::from_secs(10))
///     .build()?;
/// # let _ = dashboard;
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[must_use]
pub struct DashboardBuilder {
    admin: Admin,
    gate: Option<Gate>,
    allow_remote: bool,
    trusted_origins: Vec<String>,
    workers: Vec<Arc<dyn WorkerSource>>,
    page_size: usize,
    recent_capacity: usize,
    sample_every: Duration,
    history: usize,
    refresh: Duration,
    title: String,
}

impl fmt::Debug for DashboardBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DashboardBuilder")
            .field("gate", &self.gate.is_some())
            .field("allow_remote", &self.allow_remote)
            .field("workers", &self.workers.len())
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

impl DashboardBuilder {
    /// Lets a request in only when `gate` says yes (Horizon's `viewHorizon`):
    /// it sees the request's method, URI, headers and extensions (a session
    /// or user an authentication layer put there; the client's
    /// `ConnectInfo<SocketAddr>`). Applies to every route, pages, API and
    /// actions, on top of the loopback rule. Defaults to letting every
    /// request through.
    pub fn gate(mut self, gate: impl Fn(&Parts) -> bool + Send + Sync + 'static) -> Self {
        self.gate = Some(Arc::new(gate));
        self
    }

    /// Whether clients other than loopback ones may use the dashboard.
    /// Defaults to `false`: only requests from 127.0.0.0/8 and `::1` (which
    /// needs the client address: serve with connect info). Open it only with a
    /// [`gate`](Self::gate) that checks who is asking, and name the host
    /// people reach it by with [`trusted_origin`](Self::trusted_origin): a
    /// request for any other host than a loopback name or a trusted origin's
    /// is refused (a guard against DNS rebinding).
    pub fn allow_remote(mut self, allow: bool) -> Self {
        self.allow_remote = allow;
        self
    }

    /// An origin (`https://admin.example.com`) whose host the dashboard
    /// answers and whose pages may post actions, beside loopback names.
    /// Defaults to none.
    pub fn trusted_origin(mut self, origin: impl Into<String>) -> Self {
        self.trusted_origins.push(origin.into());
        self
    }

    /// Attaches `worker` (of this process): besides what its heartbeat shows
    /// (every worker's does, in any process), its health, exact last-minute
    /// counts, runtimes and waits, and its finished attempts on the
    /// recent-jobs page. Defaults to none.
    pub fn worker<B: QueueBackend>(mut self, worker: &Worker<B>) -> Self {
        self.workers.push(Arc::new(worker.clone()));
        self
    }

    /// Items per page of every list. Defaults to 50; 1 to 1000.
    pub fn page_size(mut self, size: usize) -> Self {
        self.page_size = size;
        self
    }

    /// How many finished attempts the recent-jobs page keeps. Defaults to
    /// 1000; at least 1.
    pub fn recent_capacity(mut self, capacity: usize) -> Self {
        self.recent_capacity = capacity;
        self
    }

    /// How often the sampler records the queues for the charts; zero turns
    /// it off. Defaults to 5 s.
    pub fn sample_every(mut self, every: Duration) -> Self {
        self.sample_every = every;
        self
    }

    /// How many samples the charts keep. Defaults to 720 (an hour at 5 s); at
    /// least 2.
    pub fn history(mut self, samples: usize) -> Self {
        self.history = samples;
        self
    }

    /// How often open pages refresh themselves; zero turns it off. Defaults
    /// to 5 s; whole seconds.
    pub fn refresh(mut self, every: Duration) -> Self {
        self.refresh = every;
        self
    }

    /// The name in the pages' title and header. Defaults to `conc-bus`.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// The dashboard. Its sampler and the readers of its workers' events run
    /// on the tokio runtime `build` is called in, or, outside one, from the
    /// first request on.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the setting out of range, or `csrf` when the
    /// operating system gives no random bytes.
    pub fn build(self) -> Result<Dashboard, ConfigError> {
        config::between("page_size", self.page_size, 1, 1000)?;
        config::between("recent_capacity", self.recent_capacity, 1, 1_000_000)?;
        config::between("history", self.history, 2, 1_000_000)?;
        if self.refresh.subsec_nanos() != 0 {
            return Err(ConfigError::new("refresh", self.refresh, "must be whole seconds"));
        }
        if self.title.trim().is_empty() {
            return Err(ConfigError::new("title", &self.title, "must not be empty"));
        }
        for origin in &self.trusted_origins {
            if !(origin.starts_with("http://") || origin.starts_with("https://"))
                || origin.ends_with('/')
            {
                return Err(ConfigError::new(
                    "trusted_origin",
                    origin,
                    "must be scheme://host[:port], without a path",
                ));
            }
        }
        let mut bytes = [0_u8; 16];
        getrandom::fill(&mut bytes)
            .map_err(|error| ConfigError::new("csrf", error.to_string(), "no random bytes"))?;
        let csrf = bytes.iter().fold(String::with_capacity(32), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        });
        let settings = Settings {
            gate: self.gate,
            allow_remote: self.allow_remote,
            trusted_origins: self.trusted_origins,
            page_size: self.page_size,
            recent_capacity: self.recent_capacity,
            sample_every: self.sample_every,
            history: self.history,
            refresh: self.refresh,
            title: self.title,
        };
        let inner = Arc::new(Inner::new(self.admin, settings, csrf, self.workers));
        inner.ensure_started();
        Ok(Dashboard { inner })
    }
}
