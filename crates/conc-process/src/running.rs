//! A started process: the handle, and the task that drives it.

use std::fmt;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use conc_core::metrics as names;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::Instrument;

use crate::command::{ChunkCallback, Input, LineCallback};
use crate::{ExitStatus, ProcessError, ProcessOutput, Signal, Stream, TimeoutKind};

/// Size of each read from an output pipe.
const READ_CHUNK: usize = 8 * 1024;

/// Everything the driver task needs, taken from the builder at spawn.
pub(crate) struct Spawned {
    pub(crate) program: String,
    pub(crate) child: Child,
    pub(crate) input: Option<Input>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) capture: bool,
    pub(crate) on_output: Option<ChunkCallback>,
    pub(crate) on_line: Option<LineCallback>,
    pub(crate) drain_grace: Duration,
    pub(crate) group: bool,
}

/// Requests from a handle to the driver.
enum Control {
    Signal(Signal, oneshot::Sender<Result<(), ProcessError>>),
    Stop(Duration),
    Detach,
}

/// Output captured so far, shared by the driver and the handle.
#[derive(Default)]
struct Captured {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// Each chunk as read: its stream and where it ends in that stream's buffer.
    chunks: Vec<(Stream, usize)>,
    /// The final result, once the run has ended (taken by `wait`).
    result: Option<Result<ProcessOutput, ProcessError>>,
    finished: bool,
}

struct Shared {
    pid: u32,
    exited: AtomicBool,
    state: Mutex<Captured>,
    changed: watch::Sender<()>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Captured> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A process started with [`Process::start`](crate::Process::start).
///
/// The process is driven by a task of its own: output is read, timeouts fire
/// and the exit is reaped whether or not this handle is polled. **Dropping
/// the handle kills the process group** (and the process is still reaped, so
/// no zombie is left); call [`detach`](Self::detach) to let it run on.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_process::{Process, Signal};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_process::ProcessError> {
/// let mut server = Process::shell("echo listening; exec sleep 30").start().await?;
/// assert!(server.wait_until(|_, chunk| chunk.starts_with(b"listening")).await);
/// assert!(server.is_running());
/// let output = server.stop(Duration::from_secs(5)).await?;
/// assert_eq!(output.signal(), Some(Signal::TERM));
/// # Ok(()) }
/// ```
#[must_use = "dropping a RunningProcess kills it"]
pub struct RunningProcess {
    shared: Arc<Shared>,
    program: String,
    control: mpsc::UnboundedSender<Control>,
    changes: watch::Receiver<()>,
    /// Chunks already shown to `wait_until`.
    chunk_cursor: usize,
    /// Bytes of each stream already shown to `wait_until`.
    seen: [usize; 2],
    /// Bytes of each stream already returned by `latest_*`.
    latest: [usize; 2],
}

impl RunningProcess {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.shared.pid
    }

    /// The program as given.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// Whether the process has not exited yet.
    pub fn is_running(&self) -> bool {
        !self.shared.exited.load(Ordering::Acquire)
    }

    /// Standard output written since the last call (all of it on the first).
    pub fn latest_output(&mut self) -> Vec<u8> {
        self.latest_of(Stream::Stdout)
    }

    /// Standard error written since the last call (all of it on the first).
    pub fn latest_error_output(&mut self) -> Vec<u8> {
        self.latest_of(Stream::Stderr)
    }

    /// Standard output so far.
    pub fn output(&self) -> Vec<u8> {
        self.with_buffers(|stdout, _| stdout.to_vec())
    }

    /// Standard error so far.
    pub fn error_output(&self) -> Vec<u8> {
        self.with_buffers(|_, stderr| stderr.to_vec())
    }

    fn latest_of(&mut self, stream: Stream) -> Vec<u8> {
        let index = stream_index(stream);
        let from = self.latest[index];
        let bytes = self.with_buffers(|stdout, stderr| {
            let buffer = if stream == Stream::Stdout { stdout } else { stderr };
            buffer.get(from..).unwrap_or_default().to_vec()
        });
        self.latest[index] = from + bytes.len();
        bytes
    }

    /// Runs `f` on the output so far: the live buffers while running, the
    /// result's once finished.
    fn with_buffers<R>(&self, f: impl FnOnce(&[u8], &[u8]) -> R) -> R {
        let state = self.shared.lock();
        match final_output(&state) {
            Some(output) => f(&output.stdout, &output.stderr),
            None => f(&state.stdout, &state.stderr),
        }
    }

    /// Sends `signal` to the process (not to its group). Fails with
    /// [`ProcessError::NotRunning`] once it has exited; the signal can never
    /// reach another process that reused the id.
    pub async fn signal(&self, signal: Signal) -> Result<(), ProcessError> {
        let (reply, answer) = oneshot::channel();
        let not_running = || ProcessError::NotRunning { pid: self.pid(), signal };
        self.control.send(Control::Signal(signal, reply)).map_err(|_| not_running())?;
        answer.await.map_err(|_| not_running())?
    }

    /// Stops the process: `SIGTERM` to its process group, then `SIGKILL` to
    /// the group if it is still running after `grace`. Returns the result,
    /// whose status shows which signal ended it.
    pub async fn stop(self, grace: Duration) -> Result<ProcessOutput, ProcessError> {
        // A send error means the run already ended: the result is waiting.
        let _ = self.control.send(Control::Stop(grace));
        self.wait().await
    }

    /// Waits for the run to end and returns its result.
    pub async fn wait(mut self) -> Result<ProcessOutput, ProcessError> {
        loop {
            if let Some(result) = self.shared.lock().result.take() {
                return result;
            }
            if self.changes.changed().await.is_err() {
                // The driver task is gone without a result: its runtime shut down.
                return Err(ProcessError::Cancelled { name: self.program.clone() });
            }
        }
    }

    /// Waits until `predicate` returns `true` for a chunk of output (each
    /// chunk as read, tagged with its stream), and returns `true`; returns
    /// `false` if the run ended first. Chunks are shown once across calls.
    /// In quiet mode nothing is captured, so this waits for the end.
    pub async fn wait_until(&mut self, mut predicate: impl FnMut(Stream, &[u8]) -> bool) -> bool {
        loop {
            {
                let state = self.shared.lock();
                if let Some(output) = final_output(&state) {
                    // The chunk records are gone; show what was not seen yet
                    // as one chunk per stream.
                    for (stream, buffer) in
                        [(Stream::Stdout, &output.stdout), (Stream::Stderr, &output.stderr)]
                    {
                        let index = stream_index(stream);
                        let rest = buffer.get(self.seen[index]..).unwrap_or_default();
                        self.seen[index] = buffer.len();
                        if !rest.is_empty() && predicate(stream, rest) {
                            return true;
                        }
                    }
                    return false;
                }
                if state.finished {
                    return false;
                }
                while let Some(&(stream, end)) = state.chunks.get(self.chunk_cursor) {
                    self.chunk_cursor += 1;
                    let index = stream_index(stream);
                    let buffer =
                        if stream == Stream::Stdout { &state.stdout } else { &state.stderr };
                    let chunk = &buffer[self.seen[index]..end];
                    self.seen[index] = end;
                    if predicate(stream, chunk) {
                        return true;
                    }
                }
            }
            if self.changes.changed().await.is_err() {
                return false;
            }
        }
    }

    /// Lets the process run on without this handle: it is no longer killed
    /// on drop. Its timeouts still apply and it is still reaped when it exits.
    pub fn detach(self) {
        let _ = self.control.send(Control::Detach);
    }
}

impl fmt::Debug for RunningProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningProcess")
            .field("program", &self.program)
            .field("pid", &self.pid())
            .field("running", &self.is_running())
            .finish_non_exhaustive()
    }
}

fn final_output(state: &Captured) -> Option<&ProcessOutput> {
    match state.result.as_ref()? {
        Ok(output) => Some(output),
        Err(err) => err.output(),
    }
}

fn stream_index(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

fn shared_for(spawned: &Spawned) -> Arc<Shared> {
    let pid = spawned.child.id().unwrap_or(0);
    metrics::counter!(names::PROCESS_SPAWNED).increment(1);
    let (notifier, _) = watch::channel(());
    Arc::new(Shared {
        pid,
        exited: AtomicBool::new(false),
        state: Mutex::default(),
        changed: notifier,
    })
}

/// Starts the driver task for a freshly spawned child.
pub(crate) fn launch(spawned: Spawned) -> RunningProcess {
    let shared = shared_for(&spawned);
    let changes = shared.changed.subscribe();
    let (control, control_rx) = mpsc::unbounded_channel();
    let program = spawned.program.clone();
    let span = tracing::debug_span!("process", program = %program, pid = shared.pid);
    let task_shared = Arc::clone(&shared);
    let publish = Publish { shared: Arc::clone(&shared), name: program.clone() };
    tokio::spawn(
        async move {
            let result = drive(spawned, Arc::clone(&task_shared), Some(control_rx)).await;
            publish.finish(result);
        }
        .instrument(span),
    );
    RunningProcess {
        shared,
        program,
        control,
        changes,
        chunk_cursor: 0,
        seen: [0; 2],
        latest: [0; 2],
    }
}

/// Publishes the driver task's result to the handle. Dropped without one
/// (the task panicked, or its runtime shut down), it publishes
/// [`ProcessError::Cancelled`], so a waiting handle does not wait forever:
/// the handle keeps the notifier alive, so its closing cannot tell it.
struct Publish {
    shared: Arc<Shared>,
    name: String,
}

impl Publish {
    fn finish(self, result: Result<ProcessOutput, ProcessError>) {
        self.publish(result);
    }

    fn publish(&self, result: Result<ProcessOutput, ProcessError>) {
        let mut state = self.shared.lock();
        if state.finished {
            return;
        }
        state.chunks = Vec::new();
        state.result = Some(result);
        state.finished = true;
        drop(state);
        self.shared.changed.send_replace(());
    }
}

impl Drop for Publish {
    fn drop(&mut self) {
        self.publish(Err(ProcessError::Cancelled { name: self.name.clone() }));
    }
}

/// Drives a freshly spawned child on the caller's task, for `run()`: the
/// caller polls it to the end, so no task of its own is needed. Dropping the
/// future kills the process group; tokio reaps the child.
pub(crate) async fn run_inline(spawned: Spawned) -> Result<ProcessOutput, ProcessError> {
    let shared = shared_for(&spawned);
    let span = tracing::debug_span!("process", program = %spawned.program, pid = shared.pid);
    drive(spawned, shared, None).instrument(span).await
}

/// Kills what is left of the process if the driver task is dropped before
/// the child was reaped (runtime shutdown, task abort).
struct KillGuard {
    pid: u32,
    group: bool,
    armed: bool,
}

impl KillGuard {
    /// Sends `signal` to the group (or the child alone without containment).
    /// Only called before the child is reaped, so its id (and group id) cannot
    /// have been reused.
    fn kill(&self, signal: Signal) {
        let result = if self.group {
            crate::sys::kill_group(self.pid, signal)
        } else {
            crate::sys::kill(self.pid, signal)
        };
        if let Err(err) = result {
            tracing::debug!(pid = self.pid, %signal, error = %err, "signal not delivered");
        }
    }
}

impl Drop for KillGuard {
    fn drop(&mut self) {
        if self.armed {
            self.kill(Signal::KILL);
        }
    }
}

/// Why the run ended early, if it did.
enum Outcome {
    Normal,
    TimedOut(TimeoutKind, Duration),
    Panicked(String),
}

/// Output plumbing of one run: capture, callbacks, line splitting.
struct Sink {
    shared: Arc<Shared>,
    capture: bool,
    on_output: Option<ChunkCallback>,
    on_line: Option<LineCallback>,
    partial: [Vec<u8>; 2],
    panicked: Option<String>,
}

impl Sink {
    fn deliver(&mut self, stream: Stream, data: &[u8]) {
        if self.capture {
            let mut state = self.shared.lock();
            let buffer =
                if stream == Stream::Stdout { &mut state.stdout } else { &mut state.stderr };
            buffer.extend_from_slice(data);
            let end = buffer.len();
            state.chunks.push((stream, end));
            drop(state);
            self.shared.changed.send_replace(());
        }
        if self.panicked.is_some() {
            return;
        }
        if let Some(callback) = &self.on_output {
            guarded(&mut self.panicked, || callback(stream, data));
        }
        if let Some(callback) = self.on_line.clone() {
            let partial = &mut self.partial[stream_index(stream)];
            partial.extend_from_slice(data);
            let mut lines = Vec::new();
            let mut start = 0;
            while let Some(offset) = partial[start..].iter().position(|&b| b == b'\n') {
                lines.push(start..start + offset);
                start += offset + 1;
            }
            let text: Vec<String> =
                lines.into_iter().map(|range| line_text(&partial[range])).collect();
            partial.drain(..start);
            for line in text {
                self.guarded(|| callback(stream, &line));
                if self.panicked.is_some() {
                    break;
                }
            }
        }
    }

    /// Delivers a last line without a newline.
    fn finish(&mut self, stream: Stream) {
        let partial = std::mem::take(&mut self.partial[stream_index(stream)]);
        if let (Some(callback), false, None) =
            (self.on_line.clone(), partial.is_empty(), &self.panicked)
        {
            let line = line_text(&partial);
            self.guarded(|| callback(stream, &line));
        }
    }

    fn guarded(&mut self, f: impl FnOnce()) {
        guarded(&mut self.panicked, f);
    }
}

/// Runs a user callback, recording its panic instead of unwinding.
fn guarded(panicked: &mut Option<String>, f: impl FnOnce()) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(f)) {
        *panicked = Some(conc_core::driver::panic_message(panic.as_ref()));
    }
}

fn line_text(line: &[u8]) -> String {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    String::from_utf8_lossy(line).into_owned()
}

/// Reads from `pipe` if there is one; pends forever otherwise.
async fn read_from<R: AsyncRead + Unpin>(
    pipe: &mut Option<R>,
    buf: &mut [u8],
) -> io::Result<usize> {
    match pipe {
        Some(pipe) => pipe.read(buf).await,
        None => std::future::pending().await,
    }
}

/// Receives the next request if there is a handle; pends forever otherwise.
async fn receive(control: &mut Option<mpsc::UnboundedReceiver<Control>>) -> Option<Control> {
    match control {
        Some(control) => control.recv().await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `deadline` if there is one; pends forever otherwise.
pub(crate) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

async fn write_input(mut stdin: ChildStdin, input: Input) {
    // A child that exits (or closes stdin) without reading everything makes
    // the write fail with EPIPE: that is its choice, not an error of the run.
    let _ = match input {
        Input::Bytes(bytes) => stdin.write_all(&bytes).await,
        Input::Reader(mut reader) => tokio::io::copy(&mut reader, &mut stdin).await.map(drop),
    };
    let _ = stdin.shutdown().await;
}

/// Drives one run to its end: feeds input, reads output, enforces timeouts,
/// serves the handle's requests, reaps the child, drains the pipes.
#[allow(clippy::too_many_lines, reason = "one select loop per phase reads best in one place")]
async fn drive(
    spawned: Spawned,
    shared: Arc<Shared>,
    mut control: Option<mpsc::UnboundedReceiver<Control>>,
) -> Result<ProcessOutput, ProcessError> {
    let Spawned {
        program,
        mut child,
        input,
        timeout,
        idle_timeout,
        capture,
        on_output,
        on_line,
        drain_grace,
        group,
    } = spawned;
    let pid = shared.pid;
    let started = Instant::now();
    let mut guard = KillGuard { pid, group, armed: true };
    let writer = match (input, child.stdin.take()) {
        (Some(input), Some(stdin)) => Some(tokio::spawn(write_input(stdin, input))),
        _ => None,
    };
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let (mut out_buf, mut err_buf) = if stdout.is_some() || stderr.is_some() {
        (vec![0; READ_CHUNK], vec![0; READ_CHUNK])
    } else {
        (Vec::new(), Vec::new())
    };
    let mut sink = Sink {
        shared: Arc::clone(&shared),
        capture,
        on_output,
        on_line,
        partial: [Vec::new(), Vec::new()],
        panicked: None,
    };

    // A deadline too far away to represent is no deadline at all.
    let mut total_deadline = timeout.and_then(|timeout| started.checked_add(timeout));
    let mut idle_deadline = idle_timeout.and_then(|timeout| started.checked_add(timeout));
    let mut kill_deadline = None;
    let mut control_open = control.is_some();
    let mut detached = false;
    let mut outcome = Outcome::Normal;

    // On Linux, learn of the exit through a pidfd first, so the kernel's
    // resource usage can be read before the child is reaped.
    let exit_watch = ExitWatch::new(pid);
    let mut exited = !exit_watch.available();
    let mut usage = None;
    let status = loop {
        tokio::select! {
            biased;
            status = child.wait(), if exited => break status,
            () = exit_watch.exited(), if !exited => {
                usage = exit_watch.usage();
                exited = true;
            }
            read = read_from(&mut stdout, &mut out_buf) => match read {
                Ok(n) if n > 0 => {
                    sink.deliver(Stream::Stdout, &out_buf[..n]);
                    idle_deadline = idle_timeout.filter(|_| idle_deadline.is_some()).and_then(|timeout| Instant::now().checked_add(timeout));
                }
                _ => { sink.finish(Stream::Stdout); stdout = None; }
            },
            read = read_from(&mut stderr, &mut err_buf) => match read {
                Ok(n) if n > 0 => {
                    sink.deliver(Stream::Stderr, &err_buf[..n]);
                    idle_deadline = idle_timeout.filter(|_| idle_deadline.is_some()).and_then(|timeout| Instant::now().checked_add(timeout));
                }
                _ => { sink.finish(Stream::Stderr); stderr = None; }
            },
            message = receive(&mut control), if control_open => match message {
                Some(Control::Signal(signal, reply)) => {
                    let sent = crate::sys::kill(pid, signal).map_err(|source| ProcessError::Signal { pid, signal, source });
                    let _ = reply.send(sent);
                }
                Some(Control::Stop(grace)) => {
                    tracing::debug!(?grace, "stopping");
                    guard.kill(Signal::TERM);
                    guard.kill(Signal::CONT);
                    kill_deadline = Instant::now().checked_add(grace);
                }
                Some(Control::Detach) => { detached = true; control_open = false; }
                None => {
                    control_open = false;
                    if !detached {
                        tracing::debug!("handle dropped: killing");
                        guard.kill(Signal::KILL);
                        total_deadline = None;
                        idle_deadline = None;
                    }
                }
            },
            () = sleep_until(total_deadline) => {
                tracing::debug!(?timeout, "timed out");
                guard.kill(Signal::KILL);
                outcome = Outcome::TimedOut(TimeoutKind::Total, timeout.unwrap_or_default());
                total_deadline = None;
                idle_deadline = None;
            }
            () = sleep_until(idle_deadline) => {
                tracing::debug!(?idle_timeout, "idle timeout");
                guard.kill(Signal::KILL);
                outcome = Outcome::TimedOut(TimeoutKind::Idle, idle_timeout.unwrap_or_default());
                total_deadline = None;
                idle_deadline = None;
            }
            () = sleep_until(kill_deadline) => {
                tracing::debug!("grace elapsed: killing");
                guard.kill(Signal::KILL);
                kill_deadline = None;
            }
        }
        if let (Some(message), Outcome::Normal) = (&sink.panicked, &outcome) {
            guard.kill(Signal::KILL);
            outcome = Outcome::Panicked(message.clone());
            total_deadline = None;
            idle_deadline = None;
        }
    };
    // Reaped: from here on the id may be reused, so nothing is signalled.
    guard.armed = false;
    shared.exited.store(true, Ordering::Release);
    let duration = started.elapsed();
    // Keep reading what the child wrote before it exited, for a bounded time:
    // a descendant that inherited the pipes may hold them open forever.
    let mut output_held_open = false;
    let drain_deadline = Instant::now().checked_add(drain_grace);
    while stdout.is_some() || stderr.is_some() {
        tokio::select! {
            biased;
            read = read_from(&mut stdout, &mut out_buf) => match read {
                Ok(n) if n > 0 => sink.deliver(Stream::Stdout, &out_buf[..n]),
                _ => { sink.finish(Stream::Stdout); stdout = None; }
            },
            read = read_from(&mut stderr, &mut err_buf) => match read {
                Ok(n) if n > 0 => sink.deliver(Stream::Stderr, &err_buf[..n]),
                _ => { sink.finish(Stream::Stderr); stderr = None; }
            },
            () = sleep_until(drain_deadline) => {
                output_held_open = true;
                tracing::debug!(?drain_grace, "output still held open by a descendant");
                sink.finish(Stream::Stdout);
                sink.finish(Stream::Stderr);
                break;
            }
        }
    }
    if let Some(writer) = writer {
        writer.abort();
    }
    if let (Some(message), Outcome::Normal) = (&sink.panicked, &outcome) {
        outcome = Outcome::Panicked(message.clone());
    }

    match status {
        Err(source) => Err(ProcessError::Wait { pid, source }),
        Ok(status) => {
            let mut state = shared.lock();
            let output = ProcessOutput {
                program: program.clone(),
                pid,
                status: ExitStatus::from(status),
                stdout: std::mem::take(&mut state.stdout),
                stderr: std::mem::take(&mut state.stderr),
                duration,
                output_held_open,
                usage,
            };
            drop(state);
            metrics::histogram!(names::PROCESS_DURATION).record(duration.as_secs_f64());
            if output.failed() {
                metrics::counter!(names::PROCESS_FAILED).increment(1);
            }
            tracing::debug!(status = %output.status, ?duration, output_held_open, "process exited");
            match outcome {
                Outcome::Normal => Ok(output),
                Outcome::TimedOut(kind, after) => {
                    metrics::counter!(names::PROCESS_TIMED_OUT).increment(1);
                    Err(ProcessError::TimedOut { kind, after, output: Box::new(output) })
                }
                Outcome::Panicked(message) => {
                    Err(ProcessError::CallbackPanicked { program, message })
                }
            }
        }
    }
}

/// Spawns `command` from one long-lived thread, so that a parent-death signal
/// (which the kernel ties to the spawning thread) fires only when the whole
/// parent dies.
pub(crate) async fn spawn_on_keeper_thread(
    mut command: tokio::process::Command,
) -> io::Result<Child> {
    type Job = Box<dyn FnOnce() + Send>;
    static KEEPER: OnceLock<Mutex<std::sync::mpsc::Sender<Job>>> = OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("conc-process-spawner".into())
            .spawn(move || {
                for job in queue {
                    job();
                }
            })
            .expect("spawning the process spawner thread");
        Mutex::new(jobs)
    });
    let runtime = tokio::runtime::Handle::current();
    let (reply, answer) = oneshot::channel();
    let job: Job = Box::new(move || {
        let _runtime = runtime.enter();
        let _ = reply.send(command.spawn());
    });
    keeper
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .send(job)
        .map_err(|_| io::Error::other("the process spawner thread is gone"))?;
    answer.await.map_err(|_| io::Error::other("the process spawner thread is gone"))?
}

/// Exit notification through a pidfd, with the exited child's resource
/// usage (Linux). Elsewhere, or without pidfd support, it is unavailable and
/// the driver waits with `Child::wait` alone.
struct ExitWatch {
    #[cfg(target_os = "linux")]
    fd: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
    #[cfg(target_os = "linux")]
    pid: u32,
}

impl ExitWatch {
    #[cfg(target_os = "linux")]
    fn new(pid: u32) -> Self {
        Self { fd: crate::sys::exit_notifier(pid), pid }
    }

    #[cfg(not(target_os = "linux"))]
    fn new(_pid: u32) -> Self {
        Self {}
    }

    fn available(&self) -> bool {
        #[cfg(target_os = "linux")]
        return self.fd.is_some();
        #[cfg(not(target_os = "linux"))]
        false
    }

    /// Resolves once the child has exited (it is then a zombie until reaped).
    async fn exited(&self) {
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            loop {
                let Ok(mut ready) = fd.readable().await else { return };
                match crate::sys::exit_usage(self.pid) {
                    Ok(None) => ready.clear_ready(),
                    Ok(Some(_)) | Err(_) => return,
                }
            }
        }
        std::future::pending::<()>().await;
    }

    fn usage(&self) -> Option<crate::ResourceUsage> {
        #[cfg(target_os = "linux")]
        return crate::sys::exit_usage(self.pid).ok().flatten();
        #[cfg(not(target_os = "linux"))]
        None
    }
}
