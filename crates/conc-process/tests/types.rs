//! Every public handle, report and future can cross threads.

use conc_process::driver::{Handlers, ProcessDriver, ProcessDriverBuilder};
use conc_process::{
    ChildMetrics, ChildState, ExitStatus, FakeResult, FakeRun, FakeRunner, GiveUpReason, Pipe,
    PipeOutput, Process, ProcessError, ProcessOutput, ProcessPool, ProcessPoolBuilder,
    ProcessPoolEvent, ProcessPoolMetrics, ProcessPoolResults, ProcessRunner, ResourceUsage,
    RestartPolicy, RunningProcess, Signal, Supervisor, SupervisorBuilder, SupervisorEvent,
    SupervisorMetrics, SystemRunner,
};
use static_assertions::assert_impl_all;

// Handles.
assert_impl_all!(RunningProcess: Send, Sync);
assert_impl_all!(Supervisor: Send, Sync);
assert_impl_all!(ProcessPool: Send, Sync, Clone);
assert_impl_all!(ProcessDriver: Send, Sync);
assert_impl_all!(FakeRunner: Send, Sync, Clone);
assert_impl_all!(SystemRunner: Send, Sync, Copy);
assert_impl_all!(tokio::sync::broadcast::Receiver<SupervisorEvent>: Send, Sync);

// Builders. A `Process` may hold an input reader that is `Send` only.
assert_impl_all!(Process: Send);
assert_impl_all!(Pipe: Send);
assert_impl_all!(ProcessPoolBuilder: Send, Sync);
assert_impl_all!(SupervisorBuilder: Send, Sync);
assert_impl_all!(ProcessDriverBuilder: Send, Sync);
assert_impl_all!(Handlers: Send, Sync);
assert_impl_all!(FakeResult: Send, Sync, Clone);

// Reports, events and errors.
assert_impl_all!(ProcessOutput: Send, Sync, Clone);
assert_impl_all!(PipeOutput: Send, Sync);
assert_impl_all!(ProcessPoolResults: Send, Sync);
assert_impl_all!(ProcessPoolMetrics: Send, Sync, Copy);
assert_impl_all!(SupervisorMetrics: Send, Sync, Clone);
assert_impl_all!(ChildMetrics: Send, Sync, Clone);
assert_impl_all!(ProcessPoolEvent<'static>: Send, Sync, Copy);
assert_impl_all!(SupervisorEvent: Send, Sync, Clone);
assert_impl_all!(ProcessError: Send, Sync, std::error::Error);
assert_impl_all!(FakeRun: Send, Sync, Clone);
assert_impl_all!(ResourceUsage: Send, Sync, Copy);
assert_impl_all!(ExitStatus: Send, Sync, Copy);
assert_impl_all!(Signal: Send, Sync, Copy);
assert_impl_all!(ChildState: Send, Sync, Copy);
assert_impl_all!(GiveUpReason: Send, Sync, Copy);
assert_impl_all!(RestartPolicy: Send, Sync, Copy);

fn send<T: Send>(_: T) {}

/// Type-checked, never called: the futures of a running handle are `Send`.
#[allow(dead_code, reason = "compiling it is the assertion")]
fn handle_futures_are_send(mut handle: RunningProcess) {
    send(handle.wait_until(|_, _| true));
    send(handle.signal(Signal::TERM));
    send(handle.stop(std::time::Duration::from_secs(1)));
}

#[allow(dead_code, reason = "compiling it is the assertion")]
fn wait_is_send(handle: RunningProcess) {
    send(handle.wait());
}

#[test]
fn public_futures_are_send() {
    send(Process::new("true").run());
    send(Process::new("true").start());
    send(Pipe::new().pipe(Process::new("true")).run());
    let pool = ProcessPool::builder().build().unwrap();
    send(pool.run(Vec::<(String, Process)>::new()));
    let fake = FakeRunner::new();
    send(fake.run(Process::new("true")));
    send(fake.run_pipe(Pipe::new()));
    send(SystemRunner.run(Process::new("true")));
    let supervisor = Supervisor::builder().build().unwrap();
    let mut events = supervisor.events();
    send(events.recv());
    send(supervisor.shutdown());
}
