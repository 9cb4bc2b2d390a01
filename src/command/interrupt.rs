//! Why a run stops before its last case: a stop signal (SIGINT, SIGTERM, SIGHUP), or a
//! stdout that can no longer be written (its reader closed the pipe: `run | head -1`; or
//! the disk is full: `> /dev/full`). The run loops ([`crate::command::run`],
//! [`crate::command::replay`]) ask [`requested`] between cases; they then take back the
//! cases in flight, stop their executors and return the report of the cases done, with
//! [`crate::command::run::Interruption`] saying after how many cases and why.
//!
//! Nothing is armed by default: the command line calls [`catch_signals`] and
//! [`watch_stdout`], so a library user (a test, the fuzz targets) is never stopped.

use std::io;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::sys;

/// Why the run stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// A stop signal was caught (its number).
    Signal(i32),
    /// Writing to stdout failed, or its reader has gone (the text says which).
    Stdout(String),
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cause::Signal(sig) => f.write_str(sys::signal_name(*sig)),
            Cause::Stdout(why) => f.write_str(why),
        }
    }
}

static STDOUT_FAILED: OnceLock<String> = OnceLock::new();
static WATCH_STDOUT: AtomicBool = AtomicBool::new(false);
/// When stdout was last polled (monotonic ns), to poll it at most every [`WATCH_EVERY_NS`].
static LAST_WATCH: AtomicU64 = AtomicU64::new(0);
const WATCH_EVERY_NS: u64 = 50_000_000;

/// Catches SIGINT, SIGTERM and SIGHUP: the first one only sets a flag that [`requested`]
/// reports; a second one ends the process with the default action.
///
/// # Errors
/// The OS error of `sigaction`.
pub fn catch_signals() -> io::Result<()> {
    sys::catch_stop_signals().map_err(|e| io::Error::from_raw_os_error(e.0))
}

/// Also stop the run when stdout's reader goes away (checked at most every 50 ms with a
/// zero-timeout `poll`, which shows POLLERR on a pipe without readers).
pub fn watch_stdout() {
    WATCH_STDOUT.store(true, Ordering::Relaxed);
}

/// Records that writing to stdout failed with `e`; the run stops at the next case. Returns
/// the text that says so (`stdout closed (EPIPE: ...)`), recorded once.
pub fn stdout_failed(e: &io::Error) -> String {
    let why = match e.raw_os_error() {
        Some(libc::EPIPE) => format!("stdout closed (EPIPE: {e})"),
        Some(libc::ENOSPC) => format!("stdout full (ENOSPC: {e})"),
        _ => format!("stdout unwritable ({e})"),
    };
    STDOUT_FAILED.get_or_init(|| why).clone()
}

/// True once writing to stdout has failed (later output to stdout is dropped).
pub fn stdout_is_broken() -> bool {
    STDOUT_FAILED.get().is_some()
}

/// Whether the run should stop, and why; `None` while it may go on.
pub fn requested() -> Option<Cause> {
    if let Some(sig) = sys::stop_signal() {
        return Some(Cause::Signal(sig));
    }
    if WATCH_STDOUT.load(Ordering::Relaxed) && STDOUT_FAILED.get().is_none() {
        let now = sys::monotonic_ns();
        let last = LAST_WATCH.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= WATCH_EVERY_NS
            && LAST_WATCH.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
            && stdout_reader_gone()
        {
            let _ = STDOUT_FAILED.set("stdout closed (its reader has gone)".to_string());
        }
    }
    STDOUT_FAILED.get().map(|why| Cause::Stdout(why.clone()))
}

/// A zero-timeout poll of fd 1: POLLERR means a pipe whose reader has closed it.
fn stdout_reader_gone() -> bool {
    let mut fds = [libc::pollfd { fd: 1, events: 0, revents: 0 }];
    matches!(sys::poll(&mut fds, 0), Ok(1) if fds[0].revents & libc::POLLERR != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_name_the_signal_or_the_stdout_error() {
        assert_eq!(Cause::Signal(libc::SIGTERM).to_string(), "SIGTERM");
        assert_eq!(Cause::Signal(libc::SIGINT).to_string(), "SIGINT");
        let e = io::Error::from_raw_os_error(libc::ENOSPC);
        assert!(Cause::Stdout(format!("stdout full (ENOSPC: {e})")).to_string().starts_with("stdout full (ENOSPC"));
    }

    #[test]
    fn nothing_is_requested_unless_armed() {
        // No handler is installed and stdout is not watched in the unit tests.
        assert_eq!(requested(), None);
    }
}
