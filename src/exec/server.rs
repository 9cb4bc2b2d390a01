//! The executor process: the harness binary re-executed with a hidden
//! subcommand. It enters the sandbox, probes the environment, then reads one
//! JSON request per line on stdin and answers one JSON line per case on
//! stdout. Single-threaded by construction: it never starts a thread.

use std::io::{BufRead, Write};
use std::time::Duration;

use super::plan::Plan;
use super::protocol::{Request, Response};
use super::{probe, sandbox, watch};

fn send(out: &mut impl Write, response: &Response) -> bool {
    match serde_json::to_string(response) {
        Ok(line) => writeln!(out, "{line}").and_then(|()| out.flush()).is_ok(),
        Err(_) => false,
    }
}

/// Runs the executor until stdin closes; returns the process exit code.
pub fn executor_main() -> i32 {
    executor_main_with(None)
}

/// As [`executor_main`], with a selftest mutant (a seccomp filter that makes unshare lie)
/// installed after the sandbox is built and before the environment probe, so the probe and
/// every case see the lying kernel; the mutant is named first in the environment's restrictions.
pub fn executor_main_with(mutant: Option<&str>) -> i32 {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let info = match sandbox::enter() {
        Ok(info) => info,
        Err(message) => {
            send(&mut out, &Response::Fatal { message });
            return 2;
        }
    };
    let lie = match mutant.map(crate::selftest::mutants::install) {
        None => None,
        Some(Ok(note)) => Some(note),
        Some(Err(message)) => {
            send(&mut out, &Response::Fatal { message });
            return 2;
        }
    };
    let mut env = probe::environment(&info);
    env.restrictions.splice(0..0, lie);
    if !send(&mut out, &Response::Hello { environment: Box::new(env.clone()) }) {
        return 2;
    }
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { return 2 };
        if line.trim().is_empty() {
            continue;
        }
        let response = match serde_json::from_str::<Request>(&line) {
            Err(e) => Response::Error { id: None, message: format!("bad request: {e}") },
            Ok(Request { id, bare_loop: Some(flags), .. }) => match watch::bare_loop(&flags) {
                Ok(nanos) => Response::Bare { id, nanos, stats: own_stats() },
                Err(e) => Response::Error { id: Some(id), message: format!("bare loop failed: {e}") },
            },
            Ok(req) => {
                match req.case.validate().map_err(|e| e.to_string()).and_then(|()| Plan::new(&req.case.setup, &env)) {
                    Err(e) => Response::Error { id: Some(req.id), message: format!("bad case: {e}") },
                    Ok(plan) => match watch::run_one(&req.case, plan, Duration::from_millis(req.timeout_ms)) {
                        Ok(outcome) => Response::Outcome { id: req.id, outcome: Box::new(outcome) },
                        Err(e) => Response::Error { id: Some(req.id), message: format!("executor failure: {e}") },
                    },
                }
            }
        };
        if !send(&mut out, &response) {
            return 2;
        }
    }
    0
}

/// The executor's own resources (it is pid 1 of the sandbox, so every other pid in its /proc
/// is something a case left behind).
fn own_stats() -> super::protocol::ExecutorStats {
    // A process killed at the end of the last case may only now have died: reap it first.
    watch::reap_orphans();
    let mut buf = [0u8; 8192];
    let n = crate::sys::read_file_into(c"/proc/self/status", &mut buf).unwrap_or(0);
    let count = |dir: &str| std::fs::read_dir(dir).map_or(0, |d| d.count() as u64);
    let pids = std::fs::read_dir("/proc").map_or(0, |d| {
        d.filter_map(Result::ok).filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit())).count()
            as u64
    });
    super::protocol::ExecutorStats {
        rss_kib: crate::sys::proc::field_u64(&buf[..n], b"VmRSS:").unwrap_or(0),
        fds: count("/proc/self/fd").saturating_sub(1),
        mounts: std::fs::read_to_string("/proc/self/mountinfo").map_or(0, |m| m.lines().count() as u64),
        other_processes: pids.saturating_sub(1),
    }
}
