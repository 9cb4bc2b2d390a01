//! Signal dispositions of the harness: SIGPIPE, and the stop signals (SIGINT, SIGTERM,
//! SIGHUP) recorded by an async-signal-safe handler in an atomic, plus their names.
//! Nothing here allocates; dispositions are process-wide, as std's own handling of SIGPIPE is.

#![allow(unsafe_code)]

use crate::abi::errno::Errno;

use super::ret_int;

/// Restores the default SIGPIPE action, so that `unshare-fuzz run | head` ends quietly
/// instead of panicking on a closed stdout (Rust ignores SIGPIPE by default).
pub fn default_sigpipe() {
    // SAFETY: installing SIG_DFL for SIGPIPE has no memory-safety requirements.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// Ignores SIGPIPE for the whole process, as a Rust `main` does at startup (a
/// fuzz binary's `main` is libFuzzer's, which does not): writing to a pipe whose
/// reader died then fails with EPIPE instead of killing the process.
pub fn ignore_sigpipe() {
    // SAFETY: SIG_IGN is a valid disposition for SIGPIPE; no handler code runs.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// The first stop signal (SIGINT, SIGTERM, SIGHUP) caught since [`catch_stop_signals`], or 0.
static STOP_SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// The stop signals' handler: one lock-free atomic store, which is async-signal-safe.
extern "C" fn on_stop_signal(sig: libc::c_int) {
    use std::sync::atomic::Ordering;
    let _ = STOP_SIGNAL.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
}

/// Catches SIGINT, SIGTERM and SIGHUP with a handler that only records the signal
/// ([`stop_signal`]); the harness checks it between cases and ends the run with the
/// report of the cases done. `SA_RESETHAND`: a second such signal gets the default
/// action, so a second Ctrl-C still ends the process at once. A signal that was ignored
/// when the process started (`nohup`, a background job's SIGINT) stays ignored.
///
/// # Errors
/// The errno of `sigaction`.
pub fn catch_stop_signals() -> Result<(), Errno> {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: sigaction is a plain C struct; all-zero is a valid value (SIG_DFL, no flags).
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a null new action only reads the current one into `old`, a valid sigaction.
        ret_int(unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) })?;
        if old.sa_sigaction == libc::SIG_IGN {
            continue;
        }
        // SAFETY: as above, all-zero is a valid sigaction.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART | libc::SA_RESETHAND;
        // SAFETY: sa_mask is a valid sigset_t inside `action`.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: the handler only does an atomic compare-exchange on a static (async-signal-safe),
        // and `action` is fully initialised.
        ret_int(unsafe { libc::sigaction(sig, &action, std::ptr::null_mut()) })?;
    }
    Ok(())
}

/// The stop signal caught since [`catch_stop_signals`], if any.
pub fn stop_signal() -> Option<i32> {
    match STOP_SIGNAL.load(std::sync::atomic::Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}

/// The name of a stop signal (`SIGTERM`); `"a signal"` for any other number.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}
