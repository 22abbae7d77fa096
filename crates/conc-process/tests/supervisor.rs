//! Supervision of real processes; restart timing on tokio's paused clock.

mod common;

use std::time::Duration;

use common::{alive, eventually, kill};
use conc_core::backoff::Backoff;
use conc_core::metrics::MetricsSnapshot;
use conc_core::time::ManualClock;
use conc_process::{
    ChildState, ExitStatus, GiveUpReason, Process, RestartPolicy, Supervisor, SupervisorEvent,
};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

static_assertions::assert_impl_all!(Supervisor: Send, Sync);

async fn next_event(events: &mut Receiver<SupervisorEvent>) -> SupervisorEvent {
    events.recv().await.expect("the supervisor is alive")
}

/// Pitfall 19: a crash-looping child with exponential backoff from 100 ms
/// (×2, max 5 s) and an intensity of 5 restarts per 10 s is restarted five
/// times after exactly the scheduled delays (virtual time), then given up on.
#[tokio::test(start_paused = true)]
async fn restart_storm_gives_up_on_a_virtual_clock() {
    let supervisor = Supervisor::builder()
        .restart(RestartPolicy::OnFailure)
        .backoff(
            Backoff::exponential(Duration::from_millis(100))
                .factor(2.0)
                .max_delay(Duration::from_secs(5))
                .build()
                .unwrap(),
        )
        .intensity(5, Duration::from_secs(10))
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let mut events = supervisor.events();
    supervisor.supervise("crasher", || Process::new("false")).unwrap();

    let mut delays = Vec::new();
    let mut waited = Vec::new();
    let mut runs = 0;
    let mut exited_at = Instant::now();
    let gave_up = loop {
        match next_event(&mut events).await {
            SupervisorEvent::Started { name, run, .. } => {
                assert_eq!(name, "crasher");
                runs += 1;
                assert_eq!(run, runs);
                if run > 1 {
                    waited.push(exited_at.elapsed());
                }
            }
            SupervisorEvent::Exited { status, error, .. } => {
                assert_eq!(status, Some(ExitStatus::Code(1)));
                assert_eq!(error, None);
                exited_at = Instant::now();
            }
            SupervisorEvent::Restarting { delay, restart, .. } => {
                delays.push(delay);
                assert_eq!(restart as usize, delays.len());
            }
            SupervisorEvent::GaveUp { restarts, reason, .. } => break (restarts, reason),
            other => panic!("unexpected {other:?}"),
        }
    };
    let expected: Vec<Duration> = [100, 200, 400, 800, 1600].map(Duration::from_millis).to_vec();
    assert_eq!(delays, expected);
    assert_eq!(waited, expected, "restarts happened after exactly the scheduled delays");
    assert_eq!(runs, 6, "the first run and five restarts");
    assert_eq!(
        gave_up,
        (5, GiveUpReason::Intensity { max_restarts: 5, period: Duration::from_secs(10) })
    );

    let snapshot = supervisor.metrics();
    assert_eq!(snapshot.child("crasher"), snapshot.children.first());
    let restarts = snapshot
        .entries()
        .into_iter()
        .find(|entry| entry.name == conc_core::metrics::PROCESS_RESTARTS)
        .unwrap();
    assert_eq!(restarts.value, conc_core::metrics::MetricValue::Count(5));
    let metrics = snapshot.children;
    assert_eq!(metrics.len(), 1);
    assert_eq!(metrics[0].state, ChildState::GaveUp);
    assert_eq!(metrics[0].restarts, 5);
    supervisor.shutdown().await;
}

/// Restarts spread wider than the period (on the supervisor's clock) never
/// trip the intensity limit; a finite backoff schedule gives up when it runs
/// out instead. The same restarts close together do trip it.
#[tokio::test(start_paused = true)]
async fn slow_restarts_stay_under_the_intensity_limit() {
    for (spread, expected) in [
        (Duration::from_secs(20), (7, GiveUpReason::BackoffExhausted)),
        (
            Duration::from_secs(14),
            (2, GiveUpReason::Intensity { max_restarts: 2, period: Duration::from_secs(15) }),
        ),
    ] {
        let clock = ManualClock::new();
        let supervisor = Supervisor::builder()
            .backoff(Backoff::fixed(Duration::from_secs(20)).max_retries(7).build().unwrap())
            .intensity(2, Duration::from_secs(15))
            .clock(clock.clone())
            .build()
            .unwrap();
        let mut events = supervisor.events();
        supervisor.supervise("slow", || Process::new("false")).unwrap();
        let gave_up = loop {
            match next_event(&mut events).await {
                // The supervisor's clock moves while it waits out the delay.
                SupervisorEvent::Restarting { .. } => clock.advance(spread),
                SupervisorEvent::GaveUp { restarts, reason, .. } => break (restarts, reason),
                _ => {}
            }
        };
        assert_eq!(gave_up, expected, "restarts {spread:?} apart");
        supervisor.shutdown().await;
    }
}

#[tokio::test(start_paused = true)]
async fn policies_decide_what_is_restarted() {
    // Always: a successful exit is restarted too.
    let always = Supervisor::builder()
        .restart(RestartPolicy::Always)
        .backoff(Backoff::fixed(Duration::from_millis(50)).build().unwrap())
        .intensity(3, Duration::from_secs(60))
        .build()
        .unwrap();
    let mut events = always.events();
    always.supervise("ok", || Process::new("true")).unwrap();
    let mut exits = 0;
    loop {
        match next_event(&mut events).await {
            SupervisorEvent::Exited { status, .. } => {
                assert_eq!(status, Some(ExitStatus::Code(0)));
                exits += 1;
            }
            SupervisorEvent::GaveUp { restarts, .. } => {
                assert_eq!(restarts, 3);
                break;
            }
            SupervisorEvent::Completed { .. } => panic!("Always never completes"),
            _ => {}
        }
    }
    assert_eq!(exits, 4);

    // OnFailure: a successful exit completes.
    let on_failure = Supervisor::builder().build().unwrap();
    let mut events = on_failure.events();
    on_failure.supervise("ok", || Process::new("true")).unwrap();
    let mut seen = Vec::new();
    loop {
        let event = next_event(&mut events).await;
        let done = matches!(event, SupervisorEvent::Completed { .. });
        seen.push(event);
        if done {
            break;
        }
    }
    assert!(matches!(seen[0], SupervisorEvent::Started { run: 1, .. }));
    assert!(matches!(seen[1], SupervisorEvent::Exited { status: Some(ExitStatus::Code(0)), .. }));
    assert_eq!(seen.len(), 3);
    assert_eq!(on_failure.metrics().children[0].state, ChildState::Completed);

    // Never: a failure completes too.
    let never = Supervisor::builder().restart(RestartPolicy::Never).build().unwrap();
    let mut events = never.events();
    never.supervise("once", || Process::new("false")).unwrap();
    while !matches!(next_event(&mut events).await, SupervisorEvent::Completed { .. }) {}
    assert_eq!(never.metrics().children[0].restarts, 0);
}

#[tokio::test(start_paused = true)]
async fn start_failures_and_factory_panics_count_as_failures() {
    let supervisor = Supervisor::builder()
        .backoff(Backoff::fixed(Duration::from_millis(10)).build().unwrap())
        .intensity(2, Duration::from_secs(60))
        .build()
        .unwrap();
    let mut events = supervisor.events();
    supervisor.supervise("missing", || Process::new("conc-no-such-program")).unwrap();
    supervisor.supervise("panicky", || panic!("no config")).unwrap();
    let mut errors = Vec::new();
    let mut gave_up = 0;
    while gave_up < 2 {
        match next_event(&mut events).await {
            SupervisorEvent::Exited { name, status, error, .. } => {
                assert_eq!(status, None);
                errors.push((name, error.unwrap()));
            }
            SupervisorEvent::GaveUp { .. } => gave_up += 1,
            _ => {}
        }
    }
    assert!(errors.iter().any(|(name, error)| name == "missing" && error.contains("not found")));
    assert!(errors.iter().any(|(name, error)| name == "panicky" && error.contains("no config")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_children_gracefully() {
    let supervisor = Supervisor::builder().shutdown_grace(Duration::from_secs(30)).build().unwrap();
    let mut events = supervisor.events();
    supervisor.supervise("sleeper", || Process::new("sleep").arg("60").quiet()).unwrap();
    let SupervisorEvent::Started { pid, .. } = next_event(&mut events).await else {
        panic!("not started")
    };
    assert!(alive(pid));
    let metrics = supervisor.metrics().children;
    assert_eq!(metrics[0].state, ChildState::Running);
    assert_eq!(metrics[0].pid, Some(pid));
    assert!(metrics[0].uptime.is_some());

    supervisor.shutdown().await;
    assert!(
        matches!(next_event(&mut events).await, SupervisorEvent::Stopped { name } if name == "sleeper")
    );
    assert!(eventually(Duration::from_secs(20), || !alive(pid)).await);
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn metrics_add_up_cpu_and_memory_of_finished_runs() {
    let supervisor = Supervisor::builder().restart(RestartPolicy::Never).build().unwrap();
    let mut events = supervisor.events();
    supervisor
        .supervise("busy", || {
            Process::shell("i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; exit 1")
        })
        .unwrap();
    while !matches!(next_event(&mut events).await, SupervisorEvent::Completed { .. }) {}
    let metrics = &supervisor.metrics().children[0];
    assert!(metrics.cpu_time > Duration::ZERO, "{metrics:?}");
    assert!(metrics.max_rss_bytes > 0, "{metrics:?}");
}

#[tokio::test]
async fn bad_supervisor_settings_are_refused() {
    let err = Supervisor::builder().intensity(0, Duration::from_secs(1)).build().unwrap_err();
    assert_eq!(err.field, "max_restarts", "{err}");
    let err = Supervisor::builder().intensity(1, Duration::ZERO).build().unwrap_err();
    assert_eq!(err.field, "period", "{err}");
    let err = Supervisor::builder().event_capacity(0).build().unwrap_err();
    assert_eq!(err.field, "event_capacity", "{err}");
    for huge in [65_537, u32::MAX as usize, usize::MAX / 2, usize::MAX] {
        let err = Supervisor::builder().event_capacity(huge).build().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("invalid `event_capacity` {huge}: must be at most 65536")
        );
    }
    assert!(Supervisor::builder().event_capacity(65_536).build().is_ok());
    let err = Supervisor::builder().name("").build().unwrap_err();
    assert_eq!(err.field, "name", "{err}");

    let supervisor = Supervisor::builder().restart(RestartPolicy::Never).build().unwrap();
    supervisor.supervise("a", || Process::new("true")).unwrap();
    let err = supervisor.supervise("a", || Process::new("true")).unwrap_err();
    assert_eq!(err.config().map(|config| &*config.field), Some("name"), "{err}");
    let err = supervisor.supervise("", || Process::new("true")).unwrap_err();
    assert_eq!(err.config().map(|config| &*config.field), Some("name"), "{err}");
    supervisor.shutdown().await;
}

// The defaults the builder documents, each observed through what it changes.

/// Default intensity: 5 restarts per 10 s. Five restarts 2.49 s apart fall
/// within 10 s (the first and fifth are 9.96 s apart) and the supervisor
/// gives up; 2.5 s apart they never do.
#[tokio::test(start_paused = true)]
async fn default_intensity_is_five_restarts_per_ten_seconds() {
    for (spread, gives_up) in
        [(Duration::from_millis(2490), true), (Duration::from_millis(2500), false)]
    {
        let clock = ManualClock::new();
        let supervisor = Supervisor::builder().clock(clock.clone()).build().unwrap();
        let mut events = supervisor.events();
        // Refused at start: a failure that spawns nothing.
        supervisor.supervise("refused", || Process::new("")).unwrap();
        let mut restarts = 0;
        let outcome = loop {
            match next_event(&mut events).await {
                SupervisorEvent::Restarting { restart, .. } => {
                    restarts = restart;
                    if restart > 12 {
                        break None;
                    }
                    clock.advance(spread);
                }
                SupervisorEvent::GaveUp { restarts, reason, .. } => break Some((restarts, reason)),
                _ => {}
            }
        };
        let expected = gives_up.then_some((
            5,
            GiveUpReason::Intensity { max_restarts: 5, period: Duration::from_secs(10) },
        ));
        assert_eq!(outcome, expected, "restarts {spread:?} apart ({restarts} restarts)");
        supervisor.shutdown().await;
    }
}

/// Default backoff: exponential from 100 ms, doubling, capped at 30 s, full
/// jitter. Every delay lies in `[0, min(100 ms × 2^n, 30 s)]`; past the cap
/// the delays spread over the whole `[0, 30 s]` (one above 27 s, one below
/// 15 s, which equal or no jitter would not give); below it they are not the
/// bare schedule.
#[tokio::test(start_paused = true)]
async fn default_backoff_is_exponential_from_100ms_capped_at_30s_with_full_jitter() {
    const RESTARTS: u32 = 150;
    let supervisor = Supervisor::builder()
        .intensity(RESTARTS + 1, Duration::from_secs(10))
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let mut events = supervisor.events();
    supervisor.supervise("refused", || Process::new("")).unwrap();
    let mut delays = Vec::new();
    while delays.len() < RESTARTS as usize {
        if let SupervisorEvent::Restarting { delay, .. } = next_event(&mut events).await {
            delays.push(delay);
        }
    }
    supervisor.shutdown().await;
    let bound = |n: usize| {
        Duration::from_millis(100).saturating_mul(1 << n.min(20)).min(Duration::from_secs(30))
    };
    for (n, delay) in delays.iter().enumerate() {
        assert!(*delay <= bound(n), "delay {n} is {delay:?}, above {:?}", bound(n));
    }
    let capped = &delays[9..];
    assert!(capped.iter().any(|delay| *delay > Duration::from_secs(27)), "{capped:?}");
    assert!(capped.iter().any(|delay| *delay < Duration::from_secs(15)), "{capped:?}");
    assert!((0..9).any(|n| delays[n] != bound(n)), "no jitter: {:?}", &delays[..9]);
}

/// Default `reset_after`: 30 s. A run that lasted 29.999 s on the
/// supervisor's clock leaves the schedule where it was; one that lasted 30 s
/// starts it over.
#[tokio::test(start_paused = true)]
async fn default_reset_after_is_thirty_seconds() {
    let clock = ManualClock::new();
    let supervisor = Supervisor::builder()
        .backoff(Backoff::exponential(Duration::from_millis(100)).build().unwrap())
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut events = supervisor.events();
    supervisor.supervise("sleeper", || Process::new("sleep").arg("60").quiet()).unwrap();
    let uptimes =
        [Duration::ZERO, Duration::ZERO, Duration::from_millis(29_999), Duration::from_secs(30)];
    let mut seen = Vec::new();
    for uptime in uptimes {
        let pid = loop {
            if let SupervisorEvent::Started { pid, .. } = next_event(&mut events).await {
                break pid;
            }
        };
        clock.advance(uptime);
        kill(pid);
        loop {
            match next_event(&mut events).await {
                SupervisorEvent::Exited { uptime: reported, .. } => assert_eq!(reported, uptime),
                SupervisorEvent::Restarting { delay, .. } => {
                    seen.push(delay);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(seen, [100, 200, 400, 100].map(Duration::from_millis));
    supervisor.shutdown().await;
}

/// Default shutdown grace: 10 s. A child that ignores `SIGTERM` is killed
/// 10 s (on tokio's paused clock) after the shutdown began.
#[tokio::test(start_paused = true)]
async fn default_shutdown_grace_is_ten_seconds() {
    let marker = tempfile::tempdir().unwrap();
    let ready = marker.path().join("ready");
    let supervisor = Supervisor::builder().build().unwrap();
    let mut events = supervisor.events();
    let path = ready.clone();
    supervisor
        .supervise("deaf", move || {
            // `exec` keeps the ignored TERM: the sleep ignores it too.
            Process::shell(r#"trap '' TERM; : > "$1"; exec sleep 60"#).arg("sh").arg(&path).quiet()
        })
        .unwrap();
    let SupervisorEvent::Started { pid, .. } = next_event(&mut events).await else {
        panic!("not started")
    };
    assert!(eventually(Duration::from_secs(20), || ready.exists()).await);
    let began = Instant::now();
    supervisor.shutdown().await;
    let took = began.elapsed();
    assert!(took >= Duration::from_secs(10) && took < Duration::from_secs(11), "{took:?}");
    assert!(!alive(pid));
}

/// Default event capacity: 1024. A subscriber that reads nothing while 1,202
/// events go by misses the oldest 178 and still gets the newest 1,024.
#[tokio::test(start_paused = true)]
async fn default_event_capacity_is_1024() {
    let supervisor = Supervisor::builder()
        .backoff(Backoff::fixed(Duration::from_nanos(1)).build().unwrap())
        .intensity(600, Duration::from_secs(3600))
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let mut events = supervisor.events();
    supervisor.supervise("refused", || Process::new("")).unwrap();
    let gave_up = || supervisor.metrics().children[0].state == ChildState::GaveUp;
    assert!(eventually(Duration::from_secs(20), gave_up).await);
    // 600 × (Exited, Restarting), then Exited and GaveUp.
    let total = 600 * 2 + 2;
    let Err(RecvError::Lagged(missed)) = events.recv().await else { panic!("no lag") };
    let mut received = 0;
    while events.try_recv().is_ok() {
        received += 1;
    }
    assert_eq!((missed, received), (total - 1024, 1024));
    supervisor.shutdown().await;
}
