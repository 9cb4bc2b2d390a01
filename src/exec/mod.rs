//! Execution: runs cases on the real kernel. The harness talks to a separate
//! executor process (this binary, re-executed with the hidden subcommand
//! `__executor`), which lives in an outer sandbox of fresh namespaces, stays
//! single-threaded, and forks one child per case under a watchdog.
//!
//! This module knows nothing of predictions or generators: a [`Case`] goes
//! in, an [`Outcome`] comes out.

pub mod child;
pub mod child_setup;
pub mod clone3;
pub mod plan;
pub mod probe;
pub mod protocol;
pub mod record;
pub mod sandbox;
pub mod server;
pub mod sibling;
pub mod watch;

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use crate::case::Case;
use crate::env::Environment;
use crate::observe::Outcome;

use protocol::{Request, Response};

/// The hidden subcommand that turns the binary into an executor.
pub const EXECUTOR_SUBCOMMAND: &str = "__executor";

/// Harness-side failures of the executor (never kernel errnos).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The executor binary could not be started.
    #[error("cannot start the executor {binary}: {source}")]
    Spawn {
        /// Path tried.
        binary: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The executor could not build its sandbox.
    #[error("{0}")]
    Sandbox(String),
    /// The executor said something unreadable, or refused a request.
    #[error("executor protocol error: {0}")]
    Protocol(String),
    /// The executor went away.
    #[error("the executor died ({0}); its last case is lost unless reported as broken")]
    Died(String),
}

/// A running executor.
pub struct Executor {
    child: Child,
    stdin: Option<BufWriter<ChildStdin>>,
    stdout: BufReader<ChildStdout>,
    env: Environment,
    next_id: u64,
}

impl Executor {
    /// Starts `binary __executor [extra_args]` and waits for its environment report.
    ///
    /// # Errors
    /// [`ExecError`] if it cannot start or cannot build its sandbox.
    pub fn spawn(binary: &Path, extra_args: &[String]) -> Result<Executor, ExecError> {
        let mut child = Command::new(binary)
            .arg(EXECUTOR_SUBCOMMAND)
            .args(extra_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|source| ExecError::Spawn { binary: binary.to_path_buf(), source })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(ExecError::Protocol("no pipes to the executor".into()));
        };
        let mut stdout = BufReader::new(stdout);
        let env = match read_response(&mut stdout)? {
            Response::Hello { environment } => *environment,
            Response::Fatal { message } => {
                let _ = child.wait();
                return Err(ExecError::Sandbox(message));
            }
            other => {
                return Err(ExecError::Protocol(format!("expected hello, got {other:?}")));
            }
        };
        Ok(Executor { child, stdin: Some(BufWriter::new(stdin)), stdout, env, next_id: 0 })
    }

    /// Starts the executor from the currently running binary.
    ///
    /// # Errors
    /// As [`Executor::spawn`].
    pub fn spawn_self(extra_args: &[String]) -> Result<Executor, ExecError> {
        let exe =
            std::env::current_exe().map_err(|source| ExecError::Spawn { binary: "/proc/self/exe".into(), source })?;
        Executor::spawn(&exe, extra_args)
    }

    /// What the executor probed at start.
    pub fn environment(&self) -> &Environment {
        &self.env
    }

    /// Runs one case.
    ///
    /// # Errors
    /// [`ExecError`] if the executor fails or dies; the case is then not run or its result lost.
    pub fn run(&mut self, case: &Case, timeout: Duration) -> Result<Outcome, ExecError> {
        self.next_id += 1;
        let id = self.next_id;
        let req = Request { id, case: case.clone(), timeout_ms: timeout.as_millis() as u64, bare_loop: None };
        let line = serde_json::to_string(&req).map_err(|e| ExecError::Protocol(e.to_string()))?;
        let stdin = self.stdin.as_mut().ok_or_else(|| ExecError::Died("stdin closed".into()))?;
        writeln!(stdin, "{line}").and_then(|()| stdin.flush()).map_err(|e| ExecError::Died(e.to_string()))?;
        match read_response(&mut self.stdout)? {
            Response::Outcome { id: got, outcome } if got == id => Ok(*outcome),
            Response::Error { message, .. } => Err(ExecError::Protocol(message)),
            other => Err(ExecError::Protocol(format!("unexpected response {other:?}"))),
        }
    }
}

impl Executor {
    /// Runs the bare reference loop (fork + unshare + wait per word) inside the executor;
    /// returns the nanoseconds and the executor's resources afterwards (an empty list only
    /// reports the resources).
    ///
    /// # Errors
    /// [`ExecError`] if the executor fails.
    pub fn bare_loop(&mut self, flags: &[u64]) -> Result<(u64, protocol::ExecutorStats), ExecError> {
        self.next_id += 1;
        let id = self.next_id;
        let req = Request { id, case: Case::unshare(&[0]), timeout_ms: 0, bare_loop: Some(flags.to_vec()) };
        let line = serde_json::to_string(&req).map_err(|e| ExecError::Protocol(e.to_string()))?;
        let stdin = self.stdin.as_mut().ok_or_else(|| ExecError::Died("stdin closed".into()))?;
        writeln!(stdin, "{line}").and_then(|()| stdin.flush()).map_err(|e| ExecError::Died(e.to_string()))?;
        match read_response(&mut self.stdout)? {
            Response::Bare { id: got, nanos, stats } if got == id => Ok((nanos, stats)),
            other => Err(ExecError::Protocol(format!("unexpected response {other:?}"))),
        }
    }
}

fn read_response(stdout: &mut BufReader<ChildStdout>) -> Result<Response, ExecError> {
    let mut line = String::new();
    match stdout.read_line(&mut line) {
        Ok(0) => Err(ExecError::Died("it closed its output".into())),
        Ok(_) => serde_json::from_str(&line).map_err(|e| ExecError::Protocol(format!("{e} in {line:?}"))),
        Err(e) => Err(ExecError::Died(e.to_string())),
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.wait();
    }
}
