//! The process driver, end to end: this test binary is its own worker. Its
//! `main` calls `driver::init` first, as a user's binary would, so the
//! driver's children re-execute it and run the handlers below.
#![allow(clippy::print_stdout, reason = "a harness-less test reports on stdout")]
#![allow(clippy::print_stderr, reason = "handlers write to stderr to show it is kept apart")]

use std::time::Duration;

use conc_core::driver::{Driver, Task, TaskError};
use conc_process::ProcessError;
use conc_process::driver::{self, Handlers, ProcessDriver};

fn handlers() -> Handlers {
    Handlers::new()
        .handler("square", |n: u64| Ok::<_, String>(n * n))
        .handler("pid", |(): ()| Ok::<_, String>(std::process::id()))
        .handler(
            "divide",
            |(a, b): (i64, i64)| {
                if b == 0 { Err("division by zero".to_owned()) } else { Ok(a / b) }
            },
        )
        .handler("noisy", |n: u64| {
            // Output of the handler goes to the child's stdout and stderr,
            // never into the result.
            println!("{{\"Ok\":[1,2,3]}} not a result");
            eprintln!("noise on stderr");
            Ok::<_, String>(n + 1)
        })
        .handler("panic", |message: String| -> Result<(), String> { panic!("{message}") })
        .handler("abort", |(): ()| -> Result<(), String> {
            eprintln!("about to abort");
            std::process::abort()
        })
        .handler("hang", |(): ()| -> Result<(), String> {
            std::thread::sleep(Duration::from_secs(60));
            Ok(())
        })
}

fn main() {
    driver::init(handlers());
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        results_come_back_in_order_from_other_processes().await;
        failures_panics_and_crashes_are_task_errors().await;
        timeouts_and_unsupported_tasks().await;
        bad_settings_are_refused();
    });
    println!("driver: all checks passed");
}

async fn results_come_back_in_order_from_other_processes() {
    let driver = ProcessDriver::builder().concurrency(3).build().unwrap();
    assert_eq!(driver.name(), "process");
    let tasks: Vec<Task> = (1..=8u64).map(|n| driver::task("square", &n).unwrap()).collect();
    let results = driver.run(tasks).await;
    let squares: Vec<u64> =
        results.into_iter().map(|result| driver::decode(result.unwrap()).unwrap()).collect();
    assert_eq!(squares, [1, 4, 9, 16, 25, 36, 49, 64]);

    let results = driver.run(vec![driver::task("noisy", &41u64).unwrap()]).await;
    let answer: u64 = driver::decode(results.into_iter().next().unwrap().unwrap()).unwrap();
    assert_eq!(answer, 42, "what the handler printed did not corrupt its result");

    let results = driver.run(vec![driver::task("pid", &()).unwrap()]).await;
    let child: u32 = driver::decode(results.into_iter().next().unwrap().unwrap()).unwrap();
    assert_ne!(child, std::process::id(), "the handler ran in another process");
    println!("ok: results in order, from child processes");
}

async fn failures_panics_and_crashes_are_task_errors() {
    let driver = ProcessDriver::builder().build().unwrap();
    let results = driver
        .run(vec![
            driver::task("divide", &(7, 0)).unwrap(),
            driver::task("panic", "worker exploded").unwrap(),
            driver::task("abort", &()).unwrap(),
            driver::task("no-such-handler", &()).unwrap(),
            driver::task("divide", &(9, 3)).unwrap(),
            driver::task("square", "not a number").unwrap(),
        ])
        .await;
    let mut results = results.into_iter();
    let err = results.next().unwrap().unwrap_err();
    assert!(
        matches!(&err, TaskError::Failed(source) if source.to_string().contains("division by zero")),
        "{err}"
    );
    let err = results.next().unwrap().unwrap_err();
    assert!(
        matches!(&err, TaskError::Panicked { message } if message == "worker exploded"),
        "{err}"
    );
    let err = results.next().unwrap().unwrap_err();
    let TaskError::Failed(source) = &err else { panic!("{err}") };
    assert!(source.to_string().contains("SIGABRT"), "a crash names its signal: {source}");
    assert!(source.to_string().contains("about to abort"), "and the child's stderr: {source}");
    let err = results.next().unwrap().unwrap_err();
    assert!(
        matches!(&err, TaskError::Failed(source) if source.to_string().contains("no handler named `no-such-handler`")),
        "{err}"
    );
    assert_eq!(
        driver::decode::<i64>(results.next().unwrap().unwrap()).unwrap(),
        3,
        "the others still ran"
    );
    let err = results.next().unwrap().unwrap_err();
    assert!(
        matches!(&err, TaskError::Failed(source) if source.to_string().contains("bad input")),
        "{err}"
    );
    println!("ok: handler errors, panics, crashes and unknown handlers are task errors");
}

async fn timeouts_and_unsupported_tasks() {
    let driver = ProcessDriver::builder().timeout(Duration::from_millis(500)).build().unwrap();
    let results = driver.run(vec![driver::task("hang", &()).unwrap(), Task::new(|| 1)]).await;
    let mut results = results.into_iter();
    let err = results.next().unwrap().unwrap_err();
    let TaskError::Failed(source) = &err else { panic!("{err}") };
    assert!(
        matches!(source.downcast_ref::<ProcessError>(), Some(ProcessError::TimedOut { .. })),
        "{source}"
    );
    let err = results.next().unwrap().unwrap_err();
    assert!(matches!(err, TaskError::Unsupported { .. }), "{err}");
    println!("ok: timeouts kill the worker; closures are refused");
}

fn bad_settings_are_refused() {
    let err = ProcessDriver::builder().concurrency(0).build().unwrap_err();
    assert_eq!(err.config().map(|config| &*config.field), Some("concurrency"), "{err}");
    for program in ["", "wor\0ker"] {
        let err = ProcessDriver::builder().program(program).build().unwrap_err();
        assert_eq!(err.config().map(|config| &*config.field), Some("program"), "{err}");
    }
    let err = ProcessDriver::builder().timeout(Duration::ZERO).build().unwrap_err();
    assert_eq!(err.config().map(|config| &*config.field), Some("timeout"), "{err}");
    println!("ok: bad settings are refused");
}
