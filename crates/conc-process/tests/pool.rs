//! Pools of real processes.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{alive, eventually};
use conc_core::metrics::MetricsSource;
use conc_process::{Process, ProcessError, ProcessPool, ProcessPoolEvent};

/// Pitfall 18: 1000 jobs under a limit of 8, results keyed and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_jobs_keep_their_keys_and_order() {
    let pool = ProcessPool::builder().concurrency(8).build().unwrap();
    let jobs = (0..1000).map(|i| (format!("job-{i:04}"), Process::new("true").quiet()));
    let results = pool.run(jobs).await.unwrap();
    assert_eq!(results.len(), 1000);
    assert!(results.successful());
    for (i, (name, result)) in results.iter().enumerate() {
        assert_eq!(name, format!("job-{i:04}"));
        assert!(result.as_ref().unwrap().successful());
    }
    assert!(results.get("job-0999").is_some());
    let metrics = pool.metrics();
    assert_eq!(
        (metrics.started, metrics.succeeded, metrics.failed, metrics.running),
        (1000, 1000, 0, 0)
    );
    assert!(results.get("job-1000").is_none());
}

/// Pitfall 18, observed from the processes themselves: each job logs its
/// start and end to a shared file; at no point are more than the limit
/// between start and end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peak_concurrency_never_exceeds_the_limit() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let path = log.path().to_owned();
    let limit = 3;
    let events = Arc::new(Mutex::new((0usize, 0usize)));
    let sink = Arc::clone(&events);
    let pool = ProcessPool::builder()
        .concurrency(limit)
        .on_event(move |event| {
            let mut counts = sink.lock().unwrap();
            match event {
                ProcessPoolEvent::Started { running, .. } => counts.0 = counts.0.max(*running),
                ProcessPoolEvent::Finished { .. } => counts.1 += 1,
                _ => {}
            }
        })
        .build()
        .unwrap();
    let jobs = (0..45).map(|i| {
        let script = r#"echo "+" >> "$1"; sleep 0.1; echo "-" >> "$1""#;
        (i.to_string(), Process::shell(script).arg("sh").arg(&path))
    });
    let results = pool.run(jobs).await.unwrap();
    assert!(results.successful());

    let (mut now, mut peak) = (0i32, 0i32);
    for line in std::fs::read_to_string(&path).unwrap().lines() {
        now += if line == "+" { 1 } else { -1 };
        peak = peak.max(now);
    }
    assert_eq!(now, 0);
    assert!(peak <= i32::try_from(limit).unwrap(), "peak {peak} over limit {limit}");
    assert!(peak >= 2, "the jobs did run concurrently (peak {peak})");
    let (reported_peak, finished) = *events.lock().unwrap();
    assert!(reported_peak <= limit);
    assert_eq!(finished, 45);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_fast_kills_running_jobs_and_skips_the_rest() {
    let cancelled = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&cancelled);
    let pool = ProcessPool::builder()
        .concurrency(2)
        .fail_fast(true)
        .on_event(move |event| {
            if let ProcessPoolEvent::Cancelled { name } = event {
                sink.lock().unwrap().push((*name).to_owned());
            }
        })
        .build()
        .unwrap();
    let marker = tempfile::NamedTempFile::new().unwrap();
    let path = marker.path().to_owned();
    let results = pool
        .run([
            ("slow", Process::shell("echo $$ > \"$1\"; exec sleep 60").arg("sh").arg(&path)),
            // Fails once "slow" is surely running.
            (
                "broken",
                Process::shell(r#"while [ ! -s "$1" ]; do sleep 0.05; done; exit 1"#)
                    .arg("sh")
                    .arg(&path),
            ),
            ("never", Process::new("true")),
        ])
        .await
        .unwrap();
    assert_eq!(results.get("broken").unwrap().as_ref().unwrap().exit_code(), Some(1));
    assert!(
        matches!(results.get("slow").unwrap(), Err(ProcessError::Cancelled { name }) if name == "slow")
    );
    assert!(matches!(results.get("never").unwrap(), Err(ProcessError::Cancelled { .. })));
    assert_eq!(results.failed().collect::<Vec<_>>(), ["slow", "broken", "never"]);
    assert_eq!(*cancelled.lock().unwrap(), ["slow", "never"]);
    let metrics = pool.metrics();
    assert_eq!(
        (metrics.started, metrics.failed, metrics.cancelled, metrics.running),
        (2, 1, 2, 0),
        "{metrics:?}"
    );
    let slow: u32 = std::fs::read_to_string(&path).unwrap().trim().parse().unwrap();
    assert!(
        eventually(Duration::from_secs(20), || !alive(slow)).await,
        "the cancelled job kept running"
    );
}

#[tokio::test]
async fn without_fail_fast_every_job_runs() {
    let pool = ProcessPool::builder().concurrency(1).build().unwrap();
    let results = pool
        .run([
            ("a", Process::new("false")),
            ("b", Process::new("conc-no-such-program")),
            ("c", Process::new("true")),
        ])
        .await
        .unwrap();
    assert!(results.get("a").unwrap().as_ref().unwrap().failed());
    assert!(matches!(results.get("b").unwrap(), Err(ProcessError::NotFound { .. })));
    assert!(results.get("c").unwrap().as_ref().unwrap().successful());
    assert_eq!(results.failed().collect::<Vec<_>>(), ["a", "b"]);
}

#[tokio::test]
async fn bad_pool_settings_are_refused() {
    let err = ProcessPool::builder().concurrency(0).build().unwrap_err();
    assert_eq!(err.field, "concurrency", "{err}");

    let pool = ProcessPool::builder().build().unwrap();
    assert!(pool.concurrency() >= 1);
    let err = pool
        .run([("same", Process::new("true")), ("same", Process::new("true"))])
        .await
        .unwrap_err();
    assert_eq!(err.config().map(|config| &*config.field), Some("name"), "{err}");

    let results = pool.run(Vec::<(String, Process)>::new()).await.unwrap();
    assert!(results.is_empty());
}

/// Dropping the future of a run kills every running job's process group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_run_kills_its_jobs() {
    let marker = tempfile::tempdir().unwrap();
    let dir = marker.path().to_owned();
    let pool = ProcessPool::builder().concurrency(2).build().unwrap();
    let jobs = (0..2).map(move |i| {
        let path = dir.join(i.to_string());
        (i.to_string(), Process::shell(r#"echo $$ > "$1"; exec sleep 60"#).arg("sh").arg(path))
    });
    let run = tokio::spawn(async move { pool.run(jobs).await });
    let pids = || -> Option<Vec<u32>> {
        (0..2)
            .map(|i| {
                let text = std::fs::read_to_string(marker.path().join(i.to_string())).ok()?;
                text.strip_suffix('\n')?.parse().ok()
            })
            .collect()
    };
    assert!(eventually(Duration::from_secs(20), || pids().is_some()).await);
    let pids = pids().unwrap();
    run.abort();
    assert!(
        eventually(Duration::from_secs(20), || pids.iter().all(|&pid| !alive(pid))).await,
        "a dropped run left {pids:?}"
    );
}
