//! [`BusFake`]'s assertions: on jobs (dispatched, with a predicate, n times,
//! not, nothing, on a queue) and on commands. Each one that fails panics with
//! what was recorded.

use std::fmt::Write as _;

use super::BusFake;
use super::recorder::{State, visit_commands, visit_jobs};
use crate::bus::{Command, short_name};
use crate::job::Job;

/// The most payloads a message lists.
const LISTED: usize = 10;

/// The recorded jobs, grouped by name and queue: "`a` ×2 on `default`, …".
fn jobs_summary(state: &State) -> String {
    let mut groups: Vec<(&str, &str, usize)> = Vec::new();
    for record in &state.jobs {
        let (name, queue) = (record.job.envelope.name.as_str(), record.job.envelope.queue.as_str());
        match groups.iter_mut().find(|(n, q, _)| *n == name && *q == queue) {
            Some(group) => group.2 += 1,
            None => groups.push((name, queue, 1)),
        }
    }
    if groups.is_empty() {
        return "no job".to_owned();
    }
    let parts: Vec<String> =
        groups.iter().map(|(name, queue, n)| format!("`{name}` ×{n} on `{queue}`")).collect();
    parts.join(", ")
}

/// The payloads of the recorded jobs named `name` (on `queue` when given).
fn payloads(state: &State, name: &str, queue: Option<&str>) -> String {
    let mut out = String::new();
    let mut listed = 0;
    let mut total = 0;
    for record in &state.jobs {
        let envelope = &record.job.envelope;
        if envelope.name != name || queue.is_some_and(|q| q != envelope.queue) {
            continue;
        }
        total += 1;
        if listed < LISTED {
            if listed > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "{} on `{}`", envelope.payload, envelope.queue);
            listed += 1;
        }
    }
    if total > listed {
        let _ = write!(out, ", and {} more", total - listed);
    }
    out
}

/// The recorded commands, grouped by type: "`A` ×2, `B` ×1".
fn commands_summary(state: &State) -> String {
    let mut groups: Vec<(&str, usize)> = Vec::new();
    for record in &state.commands {
        match groups.iter_mut().find(|(name, _)| *name == record.name) {
            Some(group) => group.1 += 1,
            None => groups.push((record.name, 1)),
        }
    }
    if groups.is_empty() {
        return "no command".to_owned();
    }
    let parts: Vec<String> = groups.iter().map(|(name, n)| format!("`{name}` ×{n}")).collect();
    parts.join(", ")
}

impl BusFake {
    /// (jobs of `J` on `queue` if given, of them those `matches` accepts),
    /// panicking when a recorded payload does not decode as a `J`.
    #[track_caller]
    fn count_jobs<J: Job>(
        state: &State,
        queue: Option<&str>,
        mut accept: impl FnMut(&J) -> bool,
    ) -> (usize, usize) {
        let (mut of_type, mut matched) = (0, 0);
        let visited = visit_jobs::<J>(state, |job, value| {
            if queue.is_none_or(|q| q == job.envelope.queue) {
                of_type += 1;
                if accept(value) {
                    matched += 1;
                }
            }
        });
        if let Err(error) = visited {
            panic!("serialize-and-restore: {error}");
        }
        (of_type, matched)
    }

    /// Asserts a job of type `J` was dispatched.
    ///
    /// # Panics
    ///
    /// When none was, listing what was.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{Bus, Job};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Ping;
    /// impl Job for Ping { const NAME: &'static str = "ping"; }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (bus, fake) = Bus::builder().fake();
    /// bus.dispatch_to_queue(Ping).await?;
    /// fake.assert_dispatched::<Ping>();
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn assert_dispatched<J: Job>(&self) {
        let state = self.recorder.lock();
        let (of_type, _) = Self::count_jobs::<J>(&state, None, |_| true);
        assert!(
            of_type > 0,
            "expected a job `{}` to be dispatched, but none was; dispatched: {}",
            J::NAME,
            jobs_summary(&state)
        );
    }

    /// Asserts a job of type `J` for which `predicate` holds was dispatched.
    ///
    /// # Panics
    ///
    /// When none was, listing the payloads of the `J` jobs that were.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{Bus, Job};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Refund { order: u64, cents: u64 }
    /// impl Job for Refund { const NAME: &'static str = "refund"; }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (bus, fake) = Bus::builder().fake();
    /// bus.dispatch_to_queue(Refund { order: 9, cents: 500 }).await?;
    /// fake.assert_dispatched_with(|r: &Refund| r.order == 9 && r.cents == 500);
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn assert_dispatched_with<J: Job>(&self, predicate: impl FnMut(&J) -> bool) {
        let state = self.recorder.lock();
        let (of_type, matched) = Self::count_jobs::<J>(&state, None, predicate);
        assert!(
            of_type > 0,
            "expected a job `{}` matching the predicate to be dispatched, but none was; \
             dispatched: {}",
            J::NAME,
            jobs_summary(&state)
        );
        assert!(
            matched > 0,
            "expected a job `{}` matching the predicate to be dispatched, but none of the {} \
             dispatched matched: {}",
            J::NAME,
            of_type,
            payloads(&state, J::NAME, None)
        );
    }

    /// Asserts exactly `times` jobs of type `J` were dispatched.
    ///
    /// # Panics
    ///
    /// When another number was, listing what was.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{Bus, Job};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Ping;
    /// impl Job for Ping { const NAME: &'static str = "ping"; }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (bus, fake) = Bus::builder().fake();
    /// bus.dispatch_to_queue(Ping).await?;
    /// bus.dispatch_to_queue(Ping).await?;
    /// fake.assert_dispatched_times::<Ping>(2);
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn assert_dispatched_times<J: Job>(&self, times: usize) {
        let state = self.recorder.lock();
        let (of_type, _) = Self::count_jobs::<J>(&state, None, |_| true);
        assert!(
            of_type == times,
            "expected `{}` to be dispatched {} time(s), but it was dispatched {} time(s); \
             dispatched: {}",
            J::NAME,
            times,
            of_type,
            jobs_summary(&state)
        );
    }

    /// Asserts no job of type `J` was dispatched.
    ///
    /// # Panics
    ///
    /// When one was, listing their payloads.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{Bus, Job};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Ping;
    /// impl Job for Ping { const NAME: &'static str = "ping"; }
    ///
    /// let (_bus, fake) = Bus::builder().fake();
    /// fake.assert_not_dispatched::<Ping>();
    /// ```
    #[track_caller]
    pub fn assert_not_dispatched<J: Job>(&self) {
        let state = self.recorder.lock();
        let (of_type, _) = Self::count_jobs::<J>(&state, None, |_| true);
        assert!(
            of_type == 0,
            "expected no job `{}` to be dispatched, but it was dispatched {} time(s): {}",
            J::NAME,
            of_type,
            payloads(&state, J::NAME, None)
        );
    }

    /// Asserts no job of type `J` for which `predicate` holds was dispatched.
    ///
    /// # Panics
    ///
    /// When one was, listing the payloads of the `J` jobs.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{Bus, Job};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Refund { cents: u64 }
    /// impl Job for Refund { const NAME: &'static str = "refund"; }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (bus, fake) = Bus::builder().fake();
    /// bus.dispatch_to_queue(Refund { cents: 500 }).await?;
    /// fake.assert_not_dispatched_with(|r: &Refund| r.cents > 10_000);
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn assert_not_dispatched_with<J: Job>(&self, predicate: impl FnMut(&J) -> bool) {
        let state = self.recorder.lock();
        let (of_type, matched) = Self::count_jobs::<J>(&state, None, predicate);
        assert!(
            matched == 0,
            "expected no job `{}` matching the predicate to be dispatched, but {} of the {} \
             dispatched matched: {}",
            J::NAME,
            matched,
            of_type,
            payloads(&state, J::NAME, None)
        );
    }

    /// Asserts no job of any type was dispatched (commands aside: see
    /// [`assert_no_command_dispatched`](Self::assert_no_command_dispatched)).
    ///
    /// # Panics
    ///
    /// When one was, listing what was.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::Bus;
    ///
    /// let (_bus, fake) = Bus::builder().fake();
    /// fake.assert_nothing_dispatched();
    /// ```
    #[track_caller]
    pub fn assert_nothing_dispatched(&self) {
        let state = self.recorder.lock();
        assert!(
            state.jobs.is_empty(),
            "expected no job to be dispatched, but {} job(s) were: {}",
            state.jobs.len(),
            jobs_summary(&state)
        );
    }

    /// Asserts a job of type `J` was pushed on queue `queue`.
    ///
    /// # Panics
    ///
    /// When none was, listing where the `J` jobs went.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_bus::{Bus, Job};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Report { month: u8 }
    /// impl Job for Report { const NAME: &'static str = "report"; }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (bus, fake) = Bus::builder().fake();
    /// let queue = bus.queue().expect("a fake bus always has its queue");
    /// queue.dispatch(Report { month: 3 }).on_queue("reports").delay(Duration::from_secs(60)).await?;
    /// fake.assert_pushed_on::<Report>("reports");
    /// assert_eq!(fake.dispatched_jobs()[0].delay, Duration::from_secs(60));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn assert_pushed_on<J: Job>(&self, queue: &str) {
        self.assert_pushed_on_with::<J>(queue, |_| true);
    }

    /// Asserts a job of type `J` for which `predicate` holds was pushed on
    /// queue `queue`.
    ///
    /// # Panics
    ///
    /// When none was, listing where the `J` jobs went.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{Bus, Job, JobOptions};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Mail { to: String }
    /// impl Job for Mail {
    ///     const NAME: &'static str = "mail";
    ///     fn options() -> JobOptions { JobOptions::new().queue("mail") }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (bus, fake) = Bus::builder().fake();
    /// bus.dispatch_to_queue(Mail { to: "ada@example.com".into() }).await?;
    /// fake.assert_pushed_on_with("mail", |m: &Mail| m.to.starts_with("ada"));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn assert_pushed_on_with<J: Job>(&self, queue: &str, predicate: impl FnMut(&J) -> bool) {
        let state = self.recorder.lock();
        let (on_queue, matched) = Self::count_jobs::<J>(&state, Some(queue), predicate);
        if matched > 0 {
            return;
        }
        let (of_type, _) = Self::count_jobs::<J>(&state, None, |_| true);
        assert!(
            of_type > 0,
            "expected a job `{}` pushed on queue `{queue}`, but none was dispatched; \
             dispatched: {}",
            J::NAME,
            jobs_summary(&state)
        );
        assert!(
            on_queue > 0,
            "expected a job `{}` pushed on queue `{queue}`, but none was; the {} dispatched went \
             to: {}",
            J::NAME,
            of_type,
            payloads(&state, J::NAME, None)
        );
        panic!(
            "expected a job `{}` matching the predicate pushed on queue `{queue}`, but none of \
             the {} there matched: {}",
            J::NAME,
            on_queue,
            payloads(&state, J::NAME, Some(queue))
        );
    }

    /// (commands of `C`, of them those `matches` accepts).
    fn count_commands<C: Command>(
        state: &State,
        mut accept: impl FnMut(&C) -> bool,
    ) -> (usize, usize) {
        let (mut of_type, mut matched) = (0, 0);
        visit_commands::<C>(state, |command| {
            of_type += 1;
            if accept(command) {
                matched += 1;
            }
        });
        (of_type, matched)
    }

    /// Asserts a command of type `C` was dispatched.
    ///
    /// # Panics
    ///
    /// When none was, listing the commands that were.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{Bus, Command};
    ///
    /// #[derive(Clone)]
    /// struct Ping;
    /// impl Command for Ping { type Output = (); type Error = std::convert::Infallible; }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let (bus, fake) = Bus::builder().handle(|_: Ping| async { Ok(()) }).fake();
    /// bus.dispatch(Ping).await.unwrap();
    /// fake.assert_command_dispatched::<Ping>();
    /// # }
    /// ```
    #[track_caller]
    pub fn assert_command_dispatched<C: Command>(&self) {
        let state = self.recorder.lock();
        let (of_type, _) = Self::count_commands::<C>(&state, |_| true);
        assert!(
            of_type > 0,
            "expected a command `{}` to be dispatched, but none was; dispatched: {}",
            short_name::<C>(),
            commands_summary(&state)
        );
    }

    /// Asserts a command of type `C` for which `predicate` holds was dispatched.
    ///
    /// # Panics
    ///
    /// When none was, saying how many `C` commands were.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{Bus, Command};
    ///
    /// #[derive(Clone)]
    /// struct Transfer { cents: u64 }
    /// impl Command for Transfer { type Output = (); type Error = std::convert::Infallible; }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let (bus, fake) = Bus::builder().handle(|_: Transfer| async { Ok(()) }).fake();
    /// bus.dispatch(Transfer { cents: 250 }).await.unwrap();
    /// fake.assert_command_dispatched_with(|t: &Transfer| t.cents == 250);
    /// # }
    /// ```
    #[track_caller]
    pub fn assert_command_dispatched_with<C: Command>(&self, predicate: impl FnMut(&C) -> bool) {
        let state = self.recorder.lock();
        let (of_type, matched) = Self::count_commands::<C>(&state, predicate);
        assert!(
            matched > 0,
            "expected a command `{}` matching the predicate to be dispatched, but none of the {} \
             dispatched matched; dispatched: {}",
            short_name::<C>(),
            of_type,
            commands_summary(&state)
        );
    }

    /// Asserts exactly `times` commands of type `C` were dispatched.
    ///
    /// # Panics
    ///
    /// When another number was, listing the commands that were.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{Bus, Command};
    ///
    /// #[derive(Clone)]
    /// struct Ping;
    /// impl Command for Ping { type Output = (); type Error = std::convert::Infallible; }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let (bus, fake) = Bus::builder().handle(|_: Ping| async { Ok(()) }).fake();
    /// for _ in 0..3 {
    ///     bus.dispatch(Ping).await.unwrap();
    /// }
    /// fake.assert_command_dispatched_times::<Ping>(3);
    /// # }
    /// ```
    #[track_caller]
    pub fn assert_command_dispatched_times<C: Command>(&self, times: usize) {
        let state = self.recorder.lock();
        let (of_type, _) = Self::count_commands::<C>(&state, |_| true);
        assert!(
            of_type == times,
            "expected `{}` to be dispatched {} time(s), but it was dispatched {} time(s); \
             dispatched: {}",
            short_name::<C>(),
            times,
            of_type,
            commands_summary(&state)
        );
    }

    /// Asserts no command of type `C` was dispatched.
    ///
    /// # Panics
    ///
    /// When one was, saying how many.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{Bus, Command};
    ///
    /// #[derive(Clone)]
    /// struct Ping;
    /// impl Command for Ping { type Output = (); type Error = std::convert::Infallible; }
    ///
    /// let (_bus, fake) = Bus::builder().fake();
    /// fake.assert_command_not_dispatched::<Ping>();
    /// ```
    #[track_caller]
    pub fn assert_command_not_dispatched<C: Command>(&self) {
        let state = self.recorder.lock();
        let (of_type, _) = Self::count_commands::<C>(&state, |_| true);
        assert!(
            of_type == 0,
            "expected no command `{}` to be dispatched, but it was dispatched {} time(s)",
            short_name::<C>(),
            of_type
        );
    }

    /// Asserts no command of type `C` for which `predicate` holds was dispatched.
    ///
    /// # Panics
    ///
    /// When one was, saying how many.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{Bus, Command};
    ///
    /// #[derive(Clone)]
    /// struct Transfer { cents: u64 }
    /// impl Command for Transfer { type Output = (); type Error = std::convert::Infallible; }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let (bus, fake) = Bus::builder().handle(|_: Transfer| async { Ok(()) }).fake();
    /// bus.dispatch(Transfer { cents: 250 }).await.unwrap();
    /// fake.assert_command_not_dispatched_with(|t: &Transfer| t.cents > 1_000);
    /// # }
    /// ```
    #[track_caller]
    pub fn assert_command_not_dispatched_with<C: Command>(
        &self,
        predicate: impl FnMut(&C) -> bool,
    ) {
        let state = self.recorder.lock();
        let (of_type, matched) = Self::count_commands::<C>(&state, predicate);
        assert!(
            matched == 0,
            "expected no command `{}` matching the predicate to be dispatched, but {} of the {} \
             dispatched matched",
            short_name::<C>(),
            matched,
            of_type
        );
    }

    /// Asserts no command of any type was dispatched.
    ///
    /// # Panics
    ///
    /// When one was, listing the commands that were.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::Bus;
    ///
    /// let (_bus, fake) = Bus::builder().fake();
    /// fake.assert_no_command_dispatched();
    /// ```
    #[track_caller]
    pub fn assert_no_command_dispatched(&self) {
        let state = self.recorder.lock();
        assert!(
            state.commands.is_empty(),
            "expected no command to be dispatched, but {} command(s) were: {}",
            state.commands.len(),
            commands_summary(&state)
        );
    }
}
