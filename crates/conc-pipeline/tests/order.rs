//! Property tests: ordered stages keep input order under random delays;
//! unordered stages lose no item and duplicate none.

use std::time::Duration;

use conc_pipeline::{Pipeline, Stage};
use futures::StreamExt;
use proptest::prelude::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap()
}

fn run(delays: &[u8], concurrency: usize, buffer: usize, ordered: bool, spawn: bool) -> Vec<usize> {
    let delays = delays.to_vec();
    let len = delays.len();
    runtime().block_on(async move {
        let table = std::sync::Arc::new(delays);
        let t1 = std::sync::Arc::clone(&table);
        let mut first = Stage::map("slow", move |i: usize| {
            let delay = u64::from(t1[i]);
            async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                i
            }
        })
        .concurrency(concurrency)
        .buffer(buffer);
        if !ordered {
            first = first.unordered();
        }
        if spawn {
            first = first.spawn().hand_off_batch(3);
        }
        let t2 = std::sync::Arc::clone(&table);
        let mut second = Stage::map("again", move |i: usize| {
            let delay = u64::from(t2[len - 1 - i]);
            async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                i
            }
        })
        .concurrency(concurrency + 1);
        if !ordered {
            second = second.unordered();
        }
        let pipeline =
            Pipeline::builder().then(first).filter(|i| i % 5 != 4).then(second).build().unwrap();
        pipeline.process_stream(futures::stream::iter(0..len)).map(Result::unwrap).collect().await
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn ordered_output_equals_input_order(
        delays in prop::collection::vec(0_u8..50, 0..80),
        concurrency in 1_usize..8,
        buffer in 0_usize..8,
        spawn in any::<bool>(),
    ) {
        let expected: Vec<usize> = (0..delays.len()).filter(|i| i % 5 != 4).collect();
        prop_assert_eq!(run(&delays, concurrency, buffer, true, spawn), expected);
    }

    #[test]
    fn unordered_output_is_the_same_multiset(
        delays in prop::collection::vec(0_u8..50, 0..80),
        concurrency in 1_usize..8,
        spawn in any::<bool>(),
    ) {
        let expected: Vec<usize> = (0..delays.len()).filter(|i| i % 5 != 4).collect();
        let mut got = run(&delays, concurrency, 0, false, spawn);
        got.sort_unstable();
        prop_assert_eq!(got, expected);
    }
}
