//! The bus's metrics in Prometheus: install `metrics-exporter-prometheus` as
//! the `metrics` recorder, describe the workspace's metrics, run jobs, and
//! serve `/metrics` for Prometheus to scrape next to the dashboard at `/jobs`.
//!
//! ```sh
//! cargo run -p conc-dashboard --example prometheus
//! curl -s http://127.0.0.1:9091/metrics | grep conc_bus_
//! ```
//!
//! Its test (`cargo test -p conc-dashboard --example prometheus`) scrapes the
//! endpoint and finds the bus's metric names.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use conc_bus::{AnyBackend, Job, JobError, JobHandlers, MemoryQueue, Queue, Worker};
use conc_dashboard::Dashboard;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Resize {
    image: u32,
}
impl Job for Resize {
    const NAME: &'static str = "resize";
}

/// The application's routes: Prometheus's `/metrics`, the dashboard under `/jobs`.
fn app(handle: PrometheusHandle, dashboard: &Dashboard) -> Router {
    Router::new()
        .route("/metrics", get(move || std::future::ready(handle.render())))
        .nest("/jobs", dashboard.router())
}

/// Pushes a few jobs (one fails for good), runs a worker until the queue is
/// empty, and reads the queue's size and the failed store's (which set their
/// gauges).
async fn run_jobs(backend: &MemoryQueue) -> Result<(), Box<dyn std::error::Error>> {
    let queue = Queue::new(backend.clone());
    for image in 0..5 {
        queue.dispatch(Resize { image }).max_attempts(1).await?;
    }
    let handlers = JobHandlers::new().handle(|job: Resize, _| async move {
        if job.image == 3 { Err(JobError::fatal("corrupt image")) } else { Ok(()) }
    });
    Worker::builder(backend.clone(), handlers).stop_when_empty(true).build()?.run().await?;
    queue.size("default").await?;
    queue.failed_count(None).await?;
    Ok(())
}

/// Installs the Prometheus recorder and describes the workspace's metrics.
fn install() -> Result<PrometheusHandle, Box<dyn std::error::Error>> {
    let handle = PrometheusBuilder::new().install_recorder()?;
    conc_core::metrics::describe_metrics();
    Ok(handle)
}

#[tokio::main]
#[allow(clippy::print_stderr, reason = "an example tells its user where to look")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let handle = install()?;
    let backend = MemoryQueue::new();
    run_jobs(&backend).await?;
    let dashboard = Dashboard::builder(AnyBackend::new(backend)).build()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:9091").await?;
    eprintln!(
        "metrics on http://127.0.0.1:9091/metrics, the dashboard on http://127.0.0.1:9091/jobs"
    );
    let app = app(handle, &dashboard).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_scrape_finds_the_bus_metrics() {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        let handle = install().unwrap();
        let backend = MemoryQueue::new();
        runtime.block_on(run_jobs(&backend)).unwrap();
        let dashboard = {
            let _entered = runtime.enter();
            Dashboard::builder(AnyBackend::new(backend)).build().unwrap()
        };
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let address = listener.local_addr().unwrap();
        let app = app(handle, &dashboard).into_make_service_with_connect_info::<SocketAddr>();
        runtime.spawn(async move { axum::serve(listener, app).await });

        let url = format!("http://{address}/metrics");
        let scrape = conc_test_support::http::get(&url, Duration::from_secs(10)).unwrap();
        assert_eq!(scrape.status, 200, "{}", scrape.body);
        let body = scrape.body;
        for name in [
            "conc_bus_jobs_pushed",
            "conc_bus_jobs_processed",
            "conc_bus_jobs_failed",
            "conc_bus_jobs_dead",
            "conc_bus_queue_depth",
            "conc_bus_failed_size",
            "conc_bus_job_duration",
            "conc_bus_job_wait",
        ] {
            assert!(body.lines().any(|line| line.starts_with(name)), "no {name} in:\n{body}");
        }
        let processed = body
            .lines()
            .find(|line| line.starts_with("conc_bus_jobs_processed"))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse::<f64>().ok());
        assert_eq!(processed, Some(4.0), "{body}");
        assert!(body.contains("# HELP conc_bus_jobs_processed"), "described: {body}");

        // The dashboard answers beside it.
        let jobs = conc_test_support::http::get(
            &format!("http://{address}/jobs/api/overview"),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(jobs.status, 200, "{}", jobs.body);
        assert!(jobs.body.contains("\"failed_total\":1"), "{}", jobs.body);
    }
}
