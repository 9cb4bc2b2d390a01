//! How long the harness waits for its executors: the start-up limit for the hello (outer
//! sandbox, environment probe), short on an ordinary machine, long on a kernel declared a
//! throwaway (emulated qemu guests), settable with [`START_LIMIT_VAR`], and the note for a slow
//! start; a case's report ([`reply_limit`]) and a bare loop (`bare_limit`).

use std::io::Write;
use std::time::Duration;

use super::ExecError;

/// How long the harness waits for an executor's hello (its sandbox and environment probe) on
/// an ordinary machine, where the start takes well under a second.
pub const HELLO_LIMIT: Duration = Duration::from_secs(60);
/// The same on a kernel declared a throwaway (`--throwaway-kernel`: the qemu guests of
/// `scripts/kernels.sh` and `scripts/kcov.sh`, gVisor). The start makes namespaces nested 32
/// and 33 deep, one of each type, and forks a probe child per flag bit
/// (`executor::headroom`, `executor::call_probe`); under qemu's TCG emulation, with a KCOV
/// kernel and two other guests or builds on the host's cores, that took more than 60 s
/// (docs/guest-only.md).
pub const HELLO_LIMIT_THROWAWAY: Duration = Duration::from_secs(900);
/// Environment variable that sets the start-up limit, in whole seconds (1 or more), for every
/// executor the harness starts; it overrides both defaults.
pub const START_LIMIT_VAR: &str = "UNSHARE_FUZZ_START_LIMIT_S";

/// The start-up limit: [`START_LIMIT_VAR`] when set, else [`HELLO_LIMIT_THROWAWAY`] on a
/// throwaway kernel and [`HELLO_LIMIT`] elsewhere.
///
/// # Errors
/// [`ExecError::Protocol`] when the variable is set but not a whole number of seconds >= 1.
pub fn hello_limit() -> Result<Duration, ExecError> {
    let throwaway = super::THROWAWAY_KERNEL.load(std::sync::atomic::Ordering::Relaxed);
    start_limit_from(std::env::var(START_LIMIT_VAR).ok().as_deref(), throwaway)
}

/// [`hello_limit`] from the variable's value and the throwaway declaration.
fn start_limit_from(var: Option<&str>, throwaway: bool) -> Result<Duration, ExecError> {
    match var.map(|v| (v, v.trim().parse::<u64>())) {
        None => Ok(if throwaway { HELLO_LIMIT_THROWAWAY } else { HELLO_LIMIT }),
        Some((_, Ok(s))) if s >= 1 => Ok(Duration::from_secs(s)),
        Some((v, _)) => Err(ExecError::Protocol(format!(
            "{START_LIMIT_VAR}={v:?} is not a start-up limit: give a whole number of seconds, 1 or more"
        ))),
    }
}

/// Says on stderr how long starting `count` executors took, one after the other, when that was
/// over 10 s (a qemu guest under TCG, a loaded machine), with the limit each start is held to.
pub fn note_slow_start(count: usize, took: Duration) {
    if took > Duration::from_secs(10) {
        let limit = hello_limit().map_or_else(|e| e.to_string(), |l| format!("{} s each", l.as_secs()));
        let _ = writeln!(
            std::io::stderr(),
            "note: starting {count} executor(s) took {:.1} s (start-up limit {limit}; {START_LIMIT_VAR} sets it)",
            took.as_secs_f64()
        );
    }
}

/// How long the harness waits for the report of a case whose watchdog timeout is `timeout`,
/// from the moment it starts waiting (the case has started by then, or starts at once): the
/// timeout, then as much again (at least 3 s) for the kill, the reaping and the report.
/// An executor that says nothing for that long is stopped or hung.
pub fn reply_limit(timeout: Duration) -> Duration {
    timeout + timeout.max(Duration::from_secs(3))
}

/// How long the harness waits for a bare loop of `words` iterations (and the resource count).
pub(super) fn bare_limit(words: usize) -> Duration {
    Duration::from_secs(30) + Duration::from_millis(50).saturating_mul(u32::try_from(words).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_longer_on_a_throwaway_kernel_and_the_variable_wins() {
        assert_eq!(start_limit_from(None, false).unwrap(), HELLO_LIMIT);
        assert_eq!(start_limit_from(None, true).unwrap(), HELLO_LIMIT_THROWAWAY);
        assert!(HELLO_LIMIT_THROWAWAY > HELLO_LIMIT);
        assert_eq!(start_limit_from(Some("1800"), false).unwrap(), Duration::from_secs(1800));
        assert_eq!(start_limit_from(Some(" 5 "), true).unwrap(), Duration::from_secs(5));
        for bad in ["0", "", "1.5", "-3", "ten"] {
            let e = start_limit_from(Some(bad), true).unwrap_err().to_string();
            assert!(e.contains(START_LIMIT_VAR) && e.contains("whole number of seconds"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_case_report_is_awaited_for_its_timeout_and_as_much_again_at_least_3_s() {
        assert_eq!(reply_limit(Duration::from_millis(1000)), Duration::from_millis(4000));
        assert_eq!(reply_limit(Duration::from_secs(5)), Duration::from_secs(10));
        assert_eq!(bare_limit(0), Duration::from_secs(30));
        assert_eq!(bare_limit(100), Duration::from_secs(35));
    }
}
