//! The command bus with conc-resilience's breaker, retry and timeout and
//! conc-ratelimit's limiters (features `resilience` and `ratelimit`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use conc_bus::{Bus, Command, DispatchError};
use conc_core::backoff::Backoff;
use conc_ratelimit::{Gcra, Quota, RateLimitError};
use conc_resilience::{CircuitBreaker, Rejected, Retry, Timeout};

#[derive(Debug, Clone, PartialEq)]
struct Charge(u32);

#[derive(Debug, thiserror::Error)]
#[error("gateway down")]
struct GatewayDown;

impl Command for Charge {
    type Output = u32;
    type Error = GatewayDown;
}

#[tokio::test]
async fn an_open_breaker_hands_the_command_back_before_the_handler() {
    let calls = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&calls);
    let breaker = CircuitBreaker::builder().minimum_calls(2).build().unwrap();
    let bus = Bus::builder()
        .handle(move |_: Charge| {
            seen.fetch_add(1, Ordering::SeqCst);
            async { Err::<u32, _>(GatewayDown) }
        })
        .breaker(breaker)
        .build();
    for _ in 0..2 {
        assert!(matches!(bus.dispatch(Charge(1)).await, Err(DispatchError::Failed(GatewayDown))));
    }
    match bus.dispatch(Charge(7)).await {
        Err(DispatchError::Rejected { command, error }) => {
            assert_eq!(command, Charge(7));
            assert!(error.downcast_ref::<Rejected>().is_some(), "{error}");
        }
        other => panic!("expected the open circuit to refuse, got {other:?}"),
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the refused command never ran");
}

#[tokio::test(start_paused = true)]
async fn retry_and_timeout_from_conc_resilience() {
    let calls = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&calls);
    let retry = Retry::builder()
        .backoff(Backoff::fixed(Duration::from_millis(10)).max_attempts(3).build().unwrap())
        .build()
        .unwrap();
    let bus = Bus::builder()
        .handle(move |Charge(cents)| {
            let call = seen.fetch_add(1, Ordering::SeqCst);
            async move { if call < 2 { Err(GatewayDown) } else { Ok(cents) } }
        })
        .retry(retry)
        .build();
    assert_eq!(bus.dispatch(Charge(5)).await.unwrap(), 5);
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    let slow = Bus::builder()
        .handle(|Charge(cents)| async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok::<_, GatewayDown>(cents)
        })
        .timeout(Timeout::new(Duration::from_secs(1)).unwrap())
        .build();
    assert!(matches!(slow.dispatch(Charge(1)).await, Err(DispatchError::Middleware(_))));
}

#[tokio::test]
async fn a_rate_limit_hands_the_command_back_with_the_wait() {
    let limiter = Arc::new(Gcra::new(Quota::per_second(2).unwrap()));
    let bus = Bus::builder()
        .handle(|Charge(cents)| async move { Ok::<_, GatewayDown>(cents) })
        .rate_limit(limiter)
        .build();
    assert_eq!(bus.dispatch(Charge(1)).await.unwrap(), 1);
    assert_eq!(bus.dispatch(Charge(2)).await.unwrap(), 2);
    match bus.dispatch(Charge(3)).await {
        Err(DispatchError::Rejected { command, error }) => {
            assert_eq!(command, Charge(3));
            let refusal = error.downcast_ref::<RateLimitError>().expect("the limiter's error");
            assert!(refusal.retry_after().is_some());
        }
        other => panic!("expected the limit to refuse, got {other:?}"),
    }
}

#[tokio::test]
async fn a_keyed_limit_counts_each_command_type_apart() {
    #[derive(Debug, Clone)]
    struct Refund;
    impl Command for Refund {
        type Output = ();
        type Error = GatewayDown;
    }
    let limiter =
        Arc::new(conc_ratelimit::Keyed::<&'static str>::new(Quota::per_second(1).unwrap()));
    let bus = Bus::builder()
        .handle(|Charge(cents)| async move { Ok::<_, GatewayDown>(cents) })
        .handle(|_: Refund| async { Ok::<_, GatewayDown>(()) })
        .rate_limit_by(limiter, |name| name)
        .build();
    assert!(bus.dispatch(Charge(1)).await.is_ok());
    assert!(bus.dispatch(Refund).await.is_ok(), "another type has its own limit");
    assert!(matches!(bus.dispatch(Charge(2)).await, Err(DispatchError::Rejected { .. })));
}
