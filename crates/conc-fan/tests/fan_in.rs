//! Fan-in: fairness, order per input, strategies, inputs added and removed while running.

use std::collections::HashMap;
use std::pin::pin;
use std::task::Poll;

use conc_fan::{FanIn, InputKey, MergeStrategy, Priority};
use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc;

fn channel_stream(rx: mpsc::UnboundedReceiver<u32>) -> impl futures::Stream<Item = u32> + Send {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) })
}

#[tokio::test]
async fn round_robin_gives_always_ready_inputs_equal_shares() {
    let mut fan_in = FanIn::new();
    for input in 0..8_u32 {
        fan_in.add(futures::stream::iter((0..).map(move |n| (input, n))));
    }
    let mut counts = [0_u32; 8];
    let mut next = [0_u32; 8];
    for (input, n) in fan_in.take(8_000).collect::<Vec<_>>().await {
        assert_eq!(n, next[input as usize], "an input's own order is kept");
        next[input as usize] += 1;
        counts[input as usize] += 1;
    }
    assert_eq!(counts, [1_000; 8]);
}

#[tokio::test]
async fn a_hot_input_does_not_starve_inputs_that_become_ready() {
    // futures' channel, not tokio's: tokio's cooperative budget would make
    // the receivers pend after 128 receives in one task poll.
    let mut fan_in = FanIn::new();
    fan_in.add(futures::stream::repeat(u32::MAX)); // always ready
    let mut senders = Vec::new();
    for _ in 0..63 {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        senders.push(tx);
        fan_in.add(rx);
    }
    let mut fan_in = pin!(fan_in);
    for round in 0..50_u32 {
        for tx in &senders {
            tx.unbounded_send(round).unwrap();
        }
        // Every woken input is served before the hot one gets a second turn.
        let mut slow = 0;
        for _ in 0..64 {
            if fan_in.next().await.unwrap() != u32::MAX {
                slow += 1;
            }
        }
        assert_eq!(slow, 63, "round {round}");
        // Nothing else is ready: the hot input fills in.
        assert_eq!(fan_in.next().await, Some(u32::MAX));
    }
}

#[tokio::test]
async fn priority_is_strict_and_round_robin_among_equals() {
    let mut fan_in = FanIn::with_strategy(Priority::default());
    fan_in.add_with_priority(futures::stream::iter(["low-1", "low-2"]), 1);
    fan_in.add_with_priority(futures::stream::iter(["high-a1", "high-a2"]), 5);
    fan_in.add_with_priority(futures::stream::iter(["high-b1"]), 5);
    let order: Vec<&str> = fan_in.collect().await;
    assert_eq!(order, ["high-a1", "high-b1", "high-a2", "low-1", "low-2"]);
}

#[tokio::test]
async fn inputs_added_and_removed_while_running_lose_and_duplicate_nothing() {
    let mut fan_in = FanIn::new();
    let handle = fan_in.handle();
    let first = fan_in.add(futures::stream::iter(0..100_u32));
    let mut fan_in = Box::pin(fan_in);
    let mut seen = Vec::new();
    for _ in 0..10 {
        seen.push(fan_in.next().await.unwrap());
    }
    // Remove the first input: what it had not given comes back with it.
    let rest: Vec<u32> = fan_in.as_mut().get_mut().remove(first).unwrap().collect().await;
    assert_eq!(rest, (10..100).collect::<Vec<_>>());
    assert!(fan_in.as_mut().get_mut().remove(first).is_none(), "a key removes its input once");

    // Add from another task, and remove one of those by its handle key.
    let adder = handle.clone();
    let keys: Vec<InputKey> = tokio::spawn(async move {
        (0..5_u32).map(|i| adder.add(futures::stream::iter(i * 1_000..i * 1_000 + 50))).collect()
    })
    .await
    .unwrap();
    handle.remove(keys[4]);
    drop(handle);
    seen.extend(fan_in.collect::<Vec<_>>().await);
    let mut expected: Vec<u32> = (0..10).collect();
    expected.extend((0..4).flat_map(|i| i * 1_000..i * 1_000 + 50));
    seen.sort_unstable();
    expected.sort_unstable();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn an_empty_fan_in_waits_while_a_handle_lives_and_ends_when_inputs_end() {
    let fan_in = FanIn::<u32>::new();
    let handle = fan_in.handle();
    let mut fan_in = pin!(fan_in);
    assert!(fan_in.next().now_or_never().is_none(), "waits for the handle");
    handle.add(futures::stream::iter([7]));
    assert_eq!(fan_in.next().await, Some(7));
    drop(handle);
    assert_eq!(fan_in.next().await, None);

    let (tx, rx) = mpsc::unbounded_channel();
    let mut fan_in = FanIn::new();
    fan_in.add(channel_stream(rx));
    fan_in.add(futures::stream::iter([1]));
    let mut fan_in = pin!(fan_in);
    assert_eq!(fan_in.next().await, Some(1));
    assert!(fan_in.next().now_or_never().is_none(), "one input is still open");
    tx.send(2).unwrap();
    drop(tx);
    assert_eq!(fan_in.next().await, Some(2));
    assert_eq!(fan_in.next().await, None);
}

#[tokio::test]
async fn ten_thousand_inputs_merge_completely_in_per_input_order() {
    let mut fan_in = FanIn::new();
    for input in 0..10_000_u32 {
        fan_in.add(futures::stream::iter((0..3).map(move |n| (input, n))));
    }
    assert_eq!(fan_in.len(), 10_000);
    let mut next: HashMap<u32, u32> = HashMap::new();
    let mut fan_in = pin!(fan_in);
    let mut total = 0;
    while let Some((input, n)) = fan_in.next().await {
        let expected = next.entry(input).or_default();
        assert_eq!(n, *expected);
        *expected += 1;
        total += 1;
    }
    assert_eq!(total, 30_000);
    assert_eq!(fan_in.merged(), 30_000);
    assert!(fan_in.is_empty());
}

#[tokio::test]
async fn a_custom_strategy_decides_the_order() {
    /// Serves the input with the lowest id first, to exhaustion.
    #[derive(Default)]
    struct LowestFirst(std::collections::BTreeSet<InputKey>);
    impl MergeStrategy for LowestFirst {
        fn ready(&mut self, input: InputKey, _priority: u32) {
            self.0.insert(input);
        }
        fn next(&mut self) -> Option<InputKey> {
            self.0.pop_first()
        }
    }
    let mut fan_in = FanIn::with_strategy(LowestFirst::default());
    fan_in.add(futures::stream::iter([1, 2, 3]));
    fan_in.add(futures::stream::iter([10, 20]));
    let mut fan_in = pin!(fan_in);
    let mut items = Vec::new();
    while let Poll::Ready(Some(item)) = futures::poll!(fan_in.next()) {
        items.push(item);
    }
    assert_eq!(items, [1, 2, 3, 10, 20]);
}
