//! `conc-dashboard`: the dashboard served alone, over a backend URL.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use conc_dashboard::Dashboard;

/// Serve the conc-bus dashboard over a queue backend, beside its workers.
#[derive(Debug, Parser)]
#[command(name = "conc-dashboard", version)]
struct Args {
    /// The backend: `sqlite:PATH`, a path to a queue file, `redis://HOST:PORT/`, or `memory:`.
    #[arg(long, env = "CONC_BUS_BACKEND")]
    backend: String,
    /// Where to listen. Only loopback clients are let in.
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: SocketAddr,
    /// Seconds between samples for the charts (0: no sampling).
    #[arg(long, default_value_t = 5)]
    sample_every: u64,
    /// Seconds between page refreshes (0: no refresh).
    #[arg(long, default_value_t = 5)]
    refresh: u64,
}

#[allow(clippy::print_stderr, reason = "the binary reports to its user")]
fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let backend = conc_bus_cli::connect(&args.backend)
            .await
            .map_err(|error| (error.to_string(), ExitCode::from(error.exit_code())))?;
        let failure = |error: String| (error, ExitCode::FAILURE);
        let dashboard = Dashboard::builder(backend)
            .sample_every(Duration::from_secs(args.sample_every))
            .refresh(Duration::from_secs(args.refresh))
            .build()
            .map_err(|error| failure(error.to_string()))?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|error| failure(format!("cannot listen on {}: {error}", args.listen)))?;
        let address = listener.local_addr().map_err(|error| failure(error.to_string()))?;
        eprintln!("conc-dashboard: serving {} on http://{address}/", args.backend);
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        dashboard.serve(listener, shutdown).await.map_err(|error| failure(error.to_string()))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((error, code)) => {
            eprintln!("error: {error}");
            code
        }
    }
}
