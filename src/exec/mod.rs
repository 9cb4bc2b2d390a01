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
mod reading;
pub mod start_limit;
pub mod wire;

use std::collections::VecDeque;
use std::io::{BufReader, BufWriter, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::case::Case;
use crate::env::Environment;
use crate::exec::observe::Outcome;
use executor::{phases, sandbox};

use reading::{Waiting, read_frame};
use wire::protocol::{
    ExecutorStats, REPORT_HEADER, REQ_BARE, REQ_CASE, RESP_BARE, RESP_ERROR, RESP_FATAL, RESP_HELLO, RESP_INEFFECTIVE,
    RESP_REPORT, begin_frame, finish_frame, read_i32, read_u64,
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
    /// The executor did not say hello within the start-up limit ([`hello_limit`]).
    #[error(
        "the executor did not finish its start within {waited_ms} ms (outer sandbox, then the environment probe: \
         namespaces nested 32 and 33 deep, one of each type, a probe child per flag bit); it is stopped or hung, or \
         the machine is slow (qemu TCG, heavy load): set {START_LIMIT_VAR} to a longer limit in seconds (default \
         60, 900 with --throwaway-kernel)"
    )]
    SlowStart {
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

use start_limit::bare_limit;
pub use start_limit::{HELLO_LIMIT, HELLO_LIMIT_THROWAWAY, START_LIMIT_VAR, hello_limit, reply_limit};

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
        let limit = hello_limit()?;
        if let Err(e) = read_frame(&mut stdout, &mut frame, Some(limit), "its start (the hello frame)", Waiting::Woken)
        {
            let _ = child.kill();
            let _ = child.wait();
            return Err(match e {
                ExecError::Hung { waited_ms, .. } => ExecError::SlowStart { waited_ms },
                e => e,
            });
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
