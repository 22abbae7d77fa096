//! Merge strategies: which ready input gives the next item.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

/// Identifies one input of a [`FanIn`](crate::FanIn). Keys are never reused
/// within one fan-in, so removing by an old key cannot remove a newer input.
///
/// # Examples
///
/// ```
/// use conc_fan::FanIn;
///
/// let mut fan_in = FanIn::<u32>::new();
/// let first = fan_in.add(futures::stream::iter([1]));
/// let second = fan_in.add(futures::stream::iter([2]));
/// assert_ne!(first, second);
/// assert!(fan_in.remove(first).is_some());
/// assert!(fan_in.remove(first).is_none(), "a key removes its input once");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InputKey {
    pub(crate) slot: usize,
    pub(crate) generation: u64,
}

impl InputKey {
    /// A number unique to this input within its fan-in.
    pub fn id(&self) -> u64 {
        self.generation
    }
}

impl fmt::Display for InputKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "input#{}", self.generation)
    }
}

/// Decides which ready input a [`FanIn`](crate::FanIn) takes the next item from.
///
/// The fan-in tells the strategy when an input may have an item
/// ([`ready`](Self::ready)): when it is added, when its waker fires, and
/// right after it gave an item. It asks for the input to poll next with
/// [`next`](Self::next). An input is handed to `ready` at most once until
/// `next` returns it, and a strategy may return an input that has since been
/// removed (the fan-in skips it), so a strategy is a queue discipline with no
/// bookkeeping of its own: O(1) or O(log n) per item, never a scan of every
/// input.
///
/// # Examples
///
/// A strategy that always prefers the newest ready input (last in, first out):
///
/// ```
/// use conc_fan::{FanIn, InputKey, MergeStrategy};
/// use futures::StreamExt;
///
/// #[derive(Debug, Default)]
/// struct Newest(Vec<InputKey>);
///
/// impl MergeStrategy for Newest {
///     fn ready(&mut self, input: InputKey, _priority: u32) { self.0.push(input); }
///     fn next(&mut self) -> Option<InputKey> { self.0.pop() }
/// }
///
/// # futures::executor::block_on(async {
/// let mut fan_in = FanIn::with_strategy(Newest::default());
/// fan_in.add(futures::stream::iter([1, 2]));
/// fan_in.add(futures::stream::iter([10, 20]));
/// let items: Vec<i32> = fan_in.collect().await;
/// assert_eq!(items, [10, 20, 1, 2]);
/// # });
/// ```
pub trait MergeStrategy: Send + 'static {
    /// `input`, with the priority it was added with, may have an item.
    fn ready(&mut self, input: InputKey, priority: u32);
    /// The input to poll next, or `None` when no input is ready.
    fn next(&mut self) -> Option<InputKey>;
}

/// Takes one item from each ready input in turn: an input that gave an item
/// goes to the back of the line, so no ready input waits for more than one
/// item from each other ready input. The default.
///
/// # Examples
///
/// ```
/// use conc_fan::{FanIn, RoundRobin};
/// use futures::StreamExt;
///
/// # futures::executor::block_on(async {
/// let mut fan_in = FanIn::with_strategy(RoundRobin::default());
/// fan_in.add(futures::stream::iter(["a1", "a2"]));
/// fan_in.add(futures::stream::iter(["b1", "b2"]));
/// assert_eq!(fan_in.collect::<Vec<_>>().await, ["a1", "b1", "a2", "b2"]);
/// # });
/// ```
#[derive(Debug, Default)]
pub struct RoundRobin {
    ready: VecDeque<InputKey>,
}

impl MergeStrategy for RoundRobin {
    fn ready(&mut self, input: InputKey, _priority: u32) {
        self.ready.push_back(input);
    }

    fn next(&mut self) -> Option<InputKey> {
        self.ready.pop_front()
    }
}

/// Strict priority: always takes from the ready input with the highest
/// priority (round robin among equals). A busy high-priority input starves
/// lower ones by design; use [`RoundRobin`] when every input must progress.
///
/// # Examples
///
/// ```
/// use conc_fan::{FanIn, Priority};
/// use futures::StreamExt;
///
/// # futures::executor::block_on(async {
/// let mut fan_in = FanIn::with_strategy(Priority::default());
/// fan_in.add_with_priority(futures::stream::iter(["low"]), 1);
/// fan_in.add_with_priority(futures::stream::iter(["high-1", "high-2"]), 2);
/// assert_eq!(fan_in.collect::<Vec<_>>().await, ["high-1", "high-2", "low"]);
/// # });
/// ```
#[derive(Debug, Default)]
pub struct Priority {
    levels: BTreeMap<u32, VecDeque<InputKey>>,
}

impl MergeStrategy for Priority {
    fn ready(&mut self, input: InputKey, priority: u32) {
        self.levels.entry(priority).or_default().push_back(input);
    }

    fn next(&mut self) -> Option<InputKey> {
        let mut level = self.levels.last_entry()?;
        let input = level.get_mut().pop_front();
        if level.get().is_empty() {
            level.remove();
        }
        input
    }
}
