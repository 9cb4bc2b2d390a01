//! Where the harness thread that feeds a pinned executor runs while it does.
//!
//! * **Apart** (the default when the run leaves a CPU without an executor, e.g. one job on two
//!   CPUs): the thread runs on the spare CPUs, keeps [`DEPTH_APART`] cases in flight and waits
//!   for reports by napping ([`crate::exec::Executor::set_patient`]), so that predicting and
//!   judging overlap the executor's cases, no report wakes a halted CPU, and nothing but the
//!   executor and its case children runs on the executor's CPU. That last point is what made
//!   it the default: any second task woken on the executor's CPU per case (the harness beside
//!   it) puts the kernel's expedited-RCU worker on the other CPU, and then every case whose
//!   exit tears down a mount namespace waits for two cross-CPU wake-ups (docs/throughput.md,
//!   "Why NEWNS was slow"). `UNSHARE_FUZZ_HARNESS_APART=0` turns it off.
//! * **Beside** otherwise (every CPU has an executor, or the mode is off): on the executor's own
//!   CPU, two cases in flight. On a virtual machine a CPU with nothing to run halts, and
//!   waking it for every report costs more than the judging it would overlap: with a blocked
//!   reader on the other CPU, `bench` measured 500 to 800 µs per case outside every phase on a
//!   quiet machine, about 95 µs with both on one CPU (docs/throughput.md, "Wake-ups on a quiet
//!   virtual machine").

use crate::sys;

/// Cases in flight per executor for a harness apart from it: enough work queued (about 2 ms of
/// single-flag cases) that the executor never waits for a napping harness.
pub const DEPTH_APART: usize = 8;

/// The variable that, set to `0`, keeps harness threads beside their executors (`1`, or unset:
/// apart when there is a spare CPU).
pub const APART_VAR: &str = "UNSHARE_FUZZ_HARNESS_APART";

/// Whether [`APART_VAR`]'s value allows the apart mode: unset, empty or `1` do, `0` does not;
/// any other value is refused with a message naming the variable and its values.
///
/// # Errors
/// The message for a value that is neither `0` nor `1`.
pub fn apart_allowed(value: Option<&str>) -> Result<bool, String> {
    match value {
        None | Some("" | "1") => Ok(true),
        Some("0") => Ok(false),
        Some(other) => Err(format!(
            "{APART_VAR}={other:?} is not understood: use 0 (harness thread beside its executor) or 1 (apart on \
             a spare CPU, the default)"
        )),
    }
}

/// The allowed CPUs that none of `executor_cpus` runs on (none when one of them is unpinned),
/// unless [`APART_VAR`] is `0`. A value that is neither `0` nor `1` is said on stderr once and
/// taken as the default.
pub fn spare_cpus(executor_cpus: &[Option<u32>]) -> Vec<usize> {
    let value = std::env::var(APART_VAR).ok();
    let allowed = apart_allowed(value.as_deref()).unwrap_or_else(|why| {
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| eprintln!("unshare-fuzz: {why}; using the default"));
        true
    });
    if !allowed {
        return Vec::new();
    }
    spare_of(executor_cpus)
}

/// The allowed CPUs that none of `executor_cpus` runs on: none when one of them is unpinned.
fn spare_of(executor_cpus: &[Option<u32>]) -> Vec<usize> {
    if executor_cpus.iter().any(Option::is_none) {
        return Vec::new();
    }
    let taken: Vec<usize> = executor_cpus.iter().flatten().map(|&c| c as usize).collect();
    sys::allowed_cpus().unwrap_or_default().into_iter().filter(|c| !taken.contains(c)).collect()
}

/// Where a harness thread was placed; dropping it lets the thread run where it could before.
#[derive(Debug)]
pub struct HarnessPlace {
    restore: Option<Vec<usize>>,
    /// The thread runs apart from its executor (on the spare CPUs, `spare`).
    pub apart: bool,
    spare: Vec<usize>,
}

impl HarnessPlace {
    /// Apart on `spare` when there are spare CPUs and the executor is pinned (`executor_cpu`),
    /// else beside it ([`BesideExecutor::pin`]); unpinned executors change nothing. A thread
    /// that cannot be moved stays where it was.
    pub fn take(executor_cpu: Option<u32>, spare: &[usize]) -> HarnessPlace {
        let before = sys::allowed_cpus().ok();
        if executor_cpu.is_some() && !spare.is_empty() {
            if let Some(before) = before
                && sys::set_allowed_cpus(spare).is_ok()
            {
                return HarnessPlace { restore: Some(before), apart: true, spare: spare.to_vec() };
            }
            return HarnessPlace { restore: None, apart: false, spare: Vec::new() };
        }
        let mut beside = BesideExecutor::pin(executor_cpu);
        HarnessPlace { restore: beside.restore.take(), apart: false, spare: Vec::new() }
    }

    /// Runs `start` (which starts an executor) with the CPUs the thread had before it was
    /// placed, so that a replacement executor inherits those and leases its CPU as the first
    /// one did, not one of the spare CPUs.
    pub fn as_before<T>(&self, start: impl FnOnce() -> T) -> T {
        let (Some(before), true) = (&self.restore, self.apart) else { return start() };
        let _ = sys::set_allowed_cpus(before);
        let out = start();
        let _ = sys::set_allowed_cpus(&self.spare);
        out
    }
}

impl Drop for HarnessPlace {
    fn drop(&mut self) {
        if let Some(cpus) = &self.restore {
            let _ = sys::set_allowed_cpus(cpus);
        }
    }
}

/// While alive, the calling thread is pinned beside an executor; dropping it lets the thread
/// run where it could before.
#[derive(Debug)]
pub struct BesideExecutor {
    restore: Option<Vec<usize>>,
}

impl BesideExecutor {
    /// Pins the calling thread to `cpu` (the executor's, `None` when it is unpinned: then
    /// nothing changes). A thread that cannot be pinned stays where it was.
    pub fn pin(cpu: Option<u32>) -> BesideExecutor {
        let restore = cpu.and_then(|c| {
            let before = sys::allowed_cpus().ok()?;
            sys::pin_to_cpu(c as usize).ok()?;
            Some(before)
        });
        BesideExecutor { restore }
    }
}

impl Drop for BesideExecutor {
    fn drop(&mut self) {
        if let Some(cpus) = &self.restore {
            let _ = sys::set_allowed_cpus(cpus);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thread_runs_beside_the_executor_and_where_it_could_afterwards() {
        let before = sys::allowed_cpus().unwrap();
        let cpu = before[0];
        {
            let _beside = BesideExecutor::pin(Some(cpu as u32));
            assert_eq!(sys::allowed_cpus().unwrap(), vec![cpu]);
        }
        assert_eq!(sys::allowed_cpus().unwrap(), before);
        let _unpinned = BesideExecutor::pin(None);
        assert_eq!(sys::allowed_cpus().unwrap(), before);
    }

    #[test]
    fn a_harness_apart_runs_on_the_spare_cpus_and_starts_executors_where_it_was() {
        let before = sys::allowed_cpus().unwrap();
        let executor_cpu = before[0] as u32;
        let spare: Vec<usize> = before[1..].to_vec();
        {
            let place = HarnessPlace::take(Some(executor_cpu), &spare);
            assert_eq!(place.apart, !spare.is_empty());
            let expected_now = if spare.is_empty() { vec![before[0]] } else { spare.clone() };
            assert_eq!(sys::allowed_cpus().unwrap(), expected_now);
            let during = place.as_before(|| sys::allowed_cpus().unwrap());
            assert_eq!(during, if place.apart { before.clone() } else { expected_now.clone() });
            assert_eq!(sys::allowed_cpus().unwrap(), expected_now);
        }
        assert_eq!(sys::allowed_cpus().unwrap(), before);
        assert!(spare_of(&[Some(executor_cpu), None]).is_empty(), "an unpinned executor leaves no spare CPU");
        assert_eq!(spare_of(&[Some(executor_cpu)]), spare);
    }

    #[test]
    fn the_apart_variable_takes_0_and_1_and_names_itself_otherwise() {
        assert_eq!(apart_allowed(None), Ok(true));
        assert_eq!(apart_allowed(Some("1")), Ok(true));
        assert_eq!(apart_allowed(Some("")), Ok(true));
        assert_eq!(apart_allowed(Some("0")), Ok(false));
        let why = apart_allowed(Some("yes")).unwrap_err();
        assert!(why.contains(APART_VAR) && why.contains("\"yes\"") && why.contains("use 0"), "{why}");
    }
}
