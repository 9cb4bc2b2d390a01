//! The executor's side of guest-only cases (`case::guest`, docs/guest-only.md):
//! it refuses them unless it found a throwaway qemu guest (`env::guest`), and
//! puts `fs.nr_open` back after every case that lowered it.

use crate::case::Case;
use crate::env::Environment;

/// `Ok` for an ordinary case, or a guest-only one in a guest that can run it.
///
/// # Errors
/// A protocol error naming what the case needs and why it cannot have it here.
pub fn admit(case: &Case, env: &Environment) -> Result<(), String> {
    let needs = crate::case::guest::needs(case);
    let Some(first) = needs.first() else { return Ok(()) };
    match &env.guest {
        None => Err(format!(
            "bad case: guest-only ({first}), and this executor is not in a throwaway qemu guest started by the \
             harness's /init (docs/guest-only.md)"
        )),
        Some(g) if case.setup.fail_nth.is_some() && !g.fault_injection => Err(format!(
            "bad case: guest-only ({first}), and this guest has no fault injection set up (a kernel with \
             FAULT_INJECTION and FAILSLAB: scripts/kcov-kernel.sh)"
        )),
        Some(_) => Ok(()),
    }
}

/// After the case: `fs.nr_open` back to the value the executor found at start.
///
/// # Errors
/// When it cannot be written back (every later case would run under the lowered limit).
pub fn restore(case: &Case, env: &Environment) -> Result<(), String> {
    let (Some(_), Some(g)) = (case.setup.nr_open, &env.guest) else { return Ok(()) };
    std::fs::write("/proc/sys/fs/nr_open", g.nr_open.to_string())
        .map_err(|e| format!("executor failure: cannot restore fs.nr_open to {}: {e}", g.nr_open))
}

/// Whether this executor runs in a throwaway qemu guest (`env::guest::decide` over the guest
/// init's variables, the kernel command line and `fs.nr_open`).
pub fn detect() -> Option<crate::env::guest::GuestKernel> {
    use crate::env::guest;
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open").ok().and_then(|t| t.trim().parse::<u32>().ok());
    let faults = std::env::var(guest::FAULTS_VAR).is_ok_and(|v| v == "1")
        && std::path::Path::new("/proc/thread-self/fail-nth").exists();
    guest::decide(
        std::env::var(guest::GUEST_VAR).ok().as_deref(),
        &std::fs::read_to_string("/proc/cmdline").unwrap_or_default(),
        nr_open,
        faults,
    )
}
