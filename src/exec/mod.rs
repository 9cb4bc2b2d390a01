//! Execution: runs cases on the real kernel. The harness talks to a separate
//! executor process (this binary, re-executed with the hidden subcommand
//! `__executor`), which lives in an outer sandbox of fresh namespaces, stays
//! single-threaded, and forks one child per case under a watchdog.
//!
//! This module knows nothing of predictions or generators: a [`Case`] goes
//! in, an [`Outcome`] comes out.

pub mod child;
pub mod executor;
pub mod observe;
pub mod wire;

use std::collections::VecDeque;
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::case::Case;
use crate::env::Environment;
use crate::exec::observe::Outcome;
use executor::{phases, sandbox};

use wire::protocol::{
    ExecutorStats, MAX_FRAME, REPORT_HEADER, REQ_BARE, REQ_CASE, RESP_BARE, RESP_ERROR, RESP_FATAL, RESP_HELLO,
    RESP_INEFFECTIVE, RESP_REPORT, begin_frame, finish_frame, read_i32, read_u64,
};
use wire::{case_codec, collect};

/// The hidden subcommand that turns the binary into an executor.
pub const EXECUTOR_SUBCOMMAND: &str = "__executor";

static THROWAWAY_KERNEL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The KCOV device every executor started from now on opens (coverage mode, [`executor::kcov`]).
static KCOV_DEVICE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Turns the coverage mode on for every executor started from now on: each opens `device`
/// (normally `/sys/kernel/debug/kcov`) and reports each case's PCs ([`Executor::last_pcs`]).
pub fn declare_coverage_mode(device: &str) {
    let _ = KCOV_DEVICE.set(device.to_string());
}

/// Declares the whole kernel a throwaway (`--throwaway-kernel`): every executor started from
/// now on gets `UNSHARE_FUZZ_THROWAWAY_KERNEL=1`, so an ineffective outer sandbox is reported
/// as a violation and the cases still run (see [`sandbox::THROWAWAY_VAR`]).
pub fn declare_throwaway_kernel() {
    THROWAWAY_KERNEL.store(true, std::sync::atomic::Ordering::Relaxed);
    // On a throwaway kernel whose unshare(NEWNS) is not new (gVisor 2022), the first executor's
    // /proc and /tmp mounts land in the harness's own mount namespace, where /proc/self/exe then
    // names nothing: the binary's path is resolved now, while /proc is still the harness's.
    let _ = own_exe();
}

/// The running binary's path, resolved once (see [`declare_throwaway_kernel`]).
fn own_exe() -> Result<std::path::PathBuf, std::io::Error> {
    static EXE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    if let Some(p) = EXE.get() {
        return Ok(p.clone());
    }
    let p = std::env::current_exe()?;
    Ok(EXE.get_or_init(|| p).clone())
}

/// Harness-side failures of the executor (never kernel errnos).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The executor binary could not be started.
    #[error("cannot start the executor {binary}: {cause}")]
    Spawn {
        /// Path tried.
        binary: PathBuf,
        /// Cause (in the message, not a `source`: `{:#}` would print it twice).
        cause: std::io::Error,
    },
    /// The executor could not build its sandbox.
    #[error("{0}")]
    Sandbox(String),
    /// unshare reported success for the outer sandbox but a namespace is not new: a violation
    /// of unshare's contract (`sandbox-namespaces-are-new`), found before anything was written.
    /// Commands report it as a VIOLATION and exit 1, not as a broken run.
    #[error("VIOLATION {0}")]
    IneffectiveSandbox(String),
    /// The executor said something unreadable, or refused a request.
    #[error("executor protocol error: {0}")]
    Protocol(String),
    /// The executor went away.
    #[error("the executor died ({0}); its last case is lost unless reported as broken")]
    Died(String),
    /// The executor gave no answer in time: it is stopped (SIGSTOP, SIGTTOU) or hung.
    /// The caller kills it ([`Executor::kill`]) and may start a fresh one.
    #[error("the executor gave no answer to {what} within {waited_ms} ms (stopped or hung)")]
    Hung {
        /// The request that got no answer.
        what: String,
        /// How long the harness waited.
        waited_ms: u64,
    },
    /// A trivial case could not finish within the watchdog timeout: every case would be a
    /// watchdog timeout, not a kernel result.
    #[error(
        "--timeout-ms {timeout_ms} is too short on this machine: a trivial case (unshare(0) in a fresh child) \
         {detail}; use a longer timeout (the default is 5000)"
    )]
    TimeoutTooShort {
        /// The timeout asked for.
        timeout_ms: u64,
        /// What the trivial case did.
        detail: String,
    },
}

/// How long the harness waits for an executor's hello (its sandbox and environment probe).
pub const HELLO_LIMIT: Duration = Duration::from_secs(60);

/// How long the harness waits for the report of a case whose watchdog timeout is `timeout`,
/// from the moment it starts waiting (the case has started by then, or starts at once): the
/// timeout, then as much again (at least 3 s) for the kill, the reaping and the report.
/// An executor that says nothing for that long is stopped or hung.
pub fn reply_limit(timeout: Duration) -> Duration {
    timeout + timeout.max(Duration::from_secs(3))
}

/// How long the harness waits for a bare loop of `words` iterations (and the resource count).
fn bare_limit(words: usize) -> Duration {
    Duration::from_secs(30) + Duration::from_millis(50).saturating_mul(u32::try_from(words).unwrap_or(u32::MAX))
}

/// A running executor. Cases may be pipelined: [`Executor::submit`] queues a case (the
/// executor reads the next request while the harness judges the previous report), and
/// [`Executor::receive`] takes the reports back in order.
pub struct Executor {
    child: Child,
    stdin: Option<BufWriter<ChildStdin>>,
    stdout: BufReader<ChildStdout>,
    env: Environment,
    next_id: u64,
    /// Ids and timeouts of submitted cases whose reports have not been received.
    in_flight: VecDeque<(u64, Duration)>,
    frame: Vec<u8>,
    request: Vec<u8>,
    last_phases: Option<phases::Phases>,
    last_pcs: Option<executor::kcov::CasePcs>,
    /// Wait for reports by napping instead of asking to be woken ([`Executor::set_patient`]).
    patient: bool,
}

impl Executor {
    /// Starts `binary __executor [extra_args]` and waits for its environment report.
    ///
    /// # Errors
    /// [`ExecError`] if it cannot start or cannot build its sandbox.
    pub fn spawn(binary: &Path, extra_args: &[String]) -> Result<Executor, ExecError> {
        let mut command = Command::new(binary);
        if THROWAWAY_KERNEL.load(std::sync::atomic::Ordering::Relaxed) {
            command.env(sandbox::THROWAWAY_VAR, "1");
        }
        if let Some(device) = KCOV_DEVICE.get() {
            command.env(executor::kcov::KCOV_VAR, device);
        }
        let mut child = command
            .arg(EXECUTOR_SUBCOMMAND)
            .args(extra_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // Its own process group: a Ctrl-C on the terminal, or `timeout`'s SIGTERM to the
            // harness's group, reaches only the harness, which then ends the run and stops
            // its executors itself, reporting the cases done.
            .process_group(0)
            .spawn()
            .map_err(|cause| ExecError::Spawn { binary: binary.to_path_buf(), cause })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(ExecError::Protocol("no pipes to the executor".into()));
        };
        let mut stdout = BufReader::with_capacity(64 << 10, stdout);
        let mut frame = Vec::new();
        if let Err(e) =
            read_frame(&mut stdout, &mut frame, Some(HELLO_LIMIT), "its start (the hello frame)", Waiting::Woken)
        {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        let env = match frame[0] {
            RESP_HELLO => serde_json::from_slice(&frame[1..])
                .map_err(|e| ExecError::Protocol(format!("unreadable environment report: {e}")))?,
            RESP_FATAL => {
                let _ = child.wait();
                return Err(ExecError::Sandbox(String::from_utf8_lossy(&frame[1..]).into_owned()));
            }
            RESP_INEFFECTIVE => {
                let _ = child.wait();
                return Err(ExecError::IneffectiveSandbox(String::from_utf8_lossy(&frame[1..]).into_owned()));
            }
            tag => return Err(ExecError::Protocol(format!("expected the hello frame, got tag {tag}"))),
        };
        Ok(Executor {
            child,
            stdin: Some(BufWriter::new(stdin)),
            stdout,
            env,
            next_id: 0,
            in_flight: VecDeque::new(),
            frame,
            request: Vec::new(),
            last_phases: None,
            last_pcs: None,
            patient: false,
        })
    }

    /// Starts the executor from the currently running binary.
    ///
    /// # Errors
    /// As [`Executor::spawn`].
    pub fn spawn_self(extra_args: &[String]) -> Result<Executor, ExecError> {
        let exe = own_exe().map_err(|cause| ExecError::Spawn { binary: "/proc/self/exe".into(), cause })?;
        Executor::spawn(&exe, extra_args)
    }

    /// What the executor probed at start.
    pub fn environment(&self) -> &Environment {
        &self.env
    }

    /// While on, [`Executor::receive`] waits for a report that is not there yet by short naps
    /// and a look at the pipe, never by a blocking poll. For a harness thread on another CPU
    /// than its executor, with several cases in flight: a blocked reader would make every
    /// report wake the reader's CPU, and on a virtual machine a wake-up of a halted CPU costs
    /// the writer more than the report (docs/throughput.md, "The harness apart").
    pub fn set_patient(&mut self, on: bool) {
        self.patient = on;
    }

    /// Cases submitted and not yet received.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    fn send_request(&mut self) -> Result<(), ExecError> {
        finish_frame(&mut self.request);
        let stdin = self.stdin.as_mut().ok_or_else(|| ExecError::Died("stdin closed".into()))?;
        stdin.write_all(&self.request).and_then(|()| stdin.flush()).map_err(|e| ExecError::Died(e.to_string()))
    }

    /// Queues one case; its report comes back from [`Executor::receive`], in submission order.
    ///
    /// # Errors
    /// [`ExecError::Died`] if the executor is gone.
    pub fn submit(&mut self, case: &Case, timeout: Duration) -> Result<(), ExecError> {
        self.next_id += 1;
        let id = self.next_id;
        begin_frame(&mut self.request, REQ_CASE);
        self.request.extend_from_slice(&id.to_le_bytes());
        self.request.extend_from_slice(&(timeout.as_millis() as u64).to_le_bytes());
        case_codec::encode(case, &mut self.request);
        self.send_request()?;
        self.in_flight.push_back((id, timeout));
        self.last_phases = None;
        self.last_pcs = None;
        Ok(())
    }

    /// The outcome of the oldest submitted case.
    ///
    /// # Errors
    /// [`ExecError::Protocol`] if the executor refused that case (the others stay queued),
    /// [`ExecError::Died`] if it is gone (every queued case is lost).
    pub fn receive(&mut self) -> Result<Outcome, ExecError> {
        let Some((id, timeout)) = self.in_flight.pop_front() else {
            return Err(ExecError::Protocol("receive without a submitted case".into()));
        };
        let what = format!("case {id}");
        let waiting = if self.patient { Waiting::Napping } else { Waiting::Woken };
        if let Err(e) = read_frame(&mut self.stdout, &mut self.frame, Some(reply_limit(timeout)), &what, waiting) {
            self.in_flight.clear();
            return Err(e);
        }
        let f = &self.frame;
        let got = read_u64(f, 1);
        match f[0] {
            RESP_REPORT if got == Some(id) && f.len() >= REPORT_HEADER => {
                let status = read_i32(f, 9).unwrap_or(0);
                let stamp = |k: usize| read_u64(f, 14 + 8 * k).unwrap_or(0);
                let raw = &f[REPORT_HEADER..];
                let raw = if KCOV_DEVICE.get().is_some() {
                    let (msgs, pcs) = executor::kcov::split_trailer(raw);
                    self.last_pcs = pcs;
                    msgs
                } else {
                    raw
                };
                self.last_phases = phases::Phases::from_records(raw, [stamp(0), stamp(1), stamp(2)]);
                Ok(collect::outcome(raw, status, f[13] != 0, timeout))
            }
            RESP_ERROR if got == Some(id) => Err(ExecError::Protocol(String::from_utf8_lossy(&f[9..]).into_owned())),
            tag => {
                self.in_flight.clear();
                Err(ExecError::Died(format!("it answered case {id} with tag {tag} for request {got:?}")))
            }
        }
    }

    /// The KCOV PCs of the case last received (coverage mode only, [`declare_coverage_mode`]).
    pub fn last_pcs(&self) -> Option<&executor::kcov::CasePcs> {
        self.last_pcs.as_ref()
    }

    /// The phase timeline of the case last received, if its child reached its end.
    pub fn last_phases(&self) -> Option<phases::Phases> {
        self.last_phases
    }

    /// Runs one case (nothing else may be in flight).
    ///
    /// # Errors
    /// [`ExecError`] if the executor fails or dies; the case is then not run or its result lost.
    pub fn run(&mut self, case: &Case, timeout: Duration) -> Result<Outcome, ExecError> {
        if !self.in_flight.is_empty() {
            return Err(ExecError::Protocol("run() with pipelined cases still in flight".into()));
        }
        self.submit(case, timeout)?;
        self.receive()
    }

    /// Runs the bare reference loop (fork + unshare + wait per word) inside the executor;
    /// returns the nanoseconds and the executor's resources afterwards (an empty list only
    /// reports the resources). Nothing may be in flight.
    ///
    /// # Errors
    /// [`ExecError`] if the executor fails.
    pub fn bare_loop(&mut self, flags: &[u64]) -> Result<(u64, ExecutorStats), ExecError> {
        if !self.in_flight.is_empty() {
            return Err(ExecError::Protocol("bare_loop() with pipelined cases still in flight".into()));
        }
        self.next_id += 1;
        let id = self.next_id;
        begin_frame(&mut self.request, REQ_BARE);
        self.request.extend_from_slice(&id.to_le_bytes());
        for f in flags {
            self.request.extend_from_slice(&f.to_le_bytes());
        }
        self.send_request()?;
        read_frame(&mut self.stdout, &mut self.frame, Some(bare_limit(flags.len())), "a bare loop", Waiting::Woken)?;
        let f = &self.frame;
        match (f[0], read_u64(f, 1)) {
            (RESP_BARE, Some(got)) if got == id => {
                let nanos = read_u64(f, 9).unwrap_or(0);
                let stats = ExecutorStats::decode(&f[17..])
                    .ok_or_else(|| ExecError::Protocol("short bare-loop report".into()))?;
                Ok((nanos, stats))
            }
            (RESP_ERROR, _) => Err(ExecError::Protocol(String::from_utf8_lossy(&f[9..]).into_owned())),
            (tag, got) => {
                Err(ExecError::Protocol(format!("expected the bare-loop report {id}, got tag {tag} for {got:?}")))
            }
        }
    }

    /// Kills the executor (SIGKILL to the process the harness started; the sandbox's pid 1
    /// dies with it by its parent-death signal, and its cases with pid 1) and reaps it.
    /// Used when it is stopped or hung; every case in flight is lost.
    pub fn kill(&mut self) {
        self.stdin.take();
        self.in_flight.clear();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a reader waits for bytes that are not there yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// In `poll`, woken by the writer.
    Woken,
    /// By naps of [`NAP`], looking at the pipe after each (see [`Executor::set_patient`]).
    Napping,
}

/// One nap of a patient reader: short against the cases in flight (several of about 0.3 ms
/// each), long enough that the napping costs its CPU little.
const NAP: Duration = Duration::from_micros(200);

/// Reads one frame's body into `frame`, waiting at most `limit` (`None`: for ever) for it.
fn read_frame(
    stdout: &mut BufReader<ChildStdout>,
    frame: &mut Vec<u8>,
    limit: Option<Duration>,
    what: &str,
    waiting: Waiting,
) -> Result<(), ExecError> {
    let deadline = limit.map(|l| (Instant::now() + l, l));
    let mut len = [0u8; 4];
    read_exact_by(stdout, &mut len, deadline, what, waiting).map_err(|e| e.or_died("reading its output"))?;
    let len = u32::from_le_bytes(len) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(ExecError::Died(format!("it sent a frame of {len} bytes")));
    }
    frame.resize(len, 0);
    read_exact_by(stdout, frame, deadline, what, waiting)
        .map_err(|e| e.or_died(&format!("reading a frame of {len} bytes")))
}

/// Why a bounded read failed.
enum ReadFailure {
    Io(std::io::Error),
    Hung(ExecError),
}

impl ReadFailure {
    fn or_died(self, doing: &str) -> ExecError {
        match self {
            ReadFailure::Io(e) => ExecError::Died(format!("{doing}: {e}")),
            ReadFailure::Hung(e) => e,
        }
    }
}

/// `read_exact`, but waiting with `poll` until `deadline` whenever nothing is buffered.
fn read_exact_by(
    stdout: &mut BufReader<ChildStdout>,
    mut buf: &mut [u8],
    deadline: Option<(Instant, Duration)>,
    what: &str,
    waiting: Waiting,
) -> Result<(), ReadFailure> {
    while !buf.is_empty() {
        if stdout.buffer().is_empty()
            && let Some((at, limit)) = deadline
        {
            wait_readable(stdout.get_ref().as_raw_fd(), at, waiting).map_err(|e| match e {
                None => {
                    ReadFailure::Hung(ExecError::Hung { what: what.to_string(), waited_ms: limit.as_millis() as u64 })
                }
                Some(e) => ReadFailure::Io(e),
            })?;
        }
        match stdout.read(buf) {
            Ok(0) => return Err(ReadFailure::Io(std::io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => buf = &mut buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadFailure::Io(e)),
        }
    }
    Ok(())
}

/// Waits until `fd` is readable (or closed) or `deadline` passes (`Err(None)`).
fn wait_readable(fd: std::os::fd::RawFd, deadline: Instant, waiting: Waiting) -> Result<(), Option<std::io::Error>> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(None);
        }
        let ms = match waiting {
            Waiting::Woken => i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX),
            Waiting::Napping => 0,
        };
        let mut fds = [libc::pollfd { fd, events: libc::POLLIN, revents: 0 }];
        match crate::sys::poll(&mut fds, ms) {
            Ok(0) if waiting == Waiting::Napping => std::thread::sleep(NAP.min(left)),
            Ok(0) => {}
            Ok(_) => return Ok(()),
            Err(e) if e == crate::abi::errno::Errno::EINTR => {}
            Err(e) => return Err(Some(std::io::Error::from_raw_os_error(e.0))),
        }
    }
}

impl Drop for Executor {
    /// Closes its stdin (it ends after the cases in flight) and reaps it; one that does not
    /// end within the cases' time plus a margin is killed, so that dropping never hangs.
    fn drop(&mut self) {
        self.stdin.take();
        let budget: Duration = self.in_flight.iter().map(|(_, t)| reply_limit(*t)).sum();
        let deadline = Instant::now() + budget + Duration::from_secs(5);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_report_is_awaited_for_its_timeout_and_as_much_again_at_least_3_s() {
        assert_eq!(reply_limit(Duration::from_millis(1000)), Duration::from_millis(4000));
        assert_eq!(reply_limit(Duration::from_secs(5)), Duration::from_secs(10));
        assert_eq!(bare_limit(0), Duration::from_secs(30));
        assert_eq!(bare_limit(100), Duration::from_secs(35));
    }
}
