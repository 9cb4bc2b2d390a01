//! Where the harness thread that feeds a pinned executor runs while it does.
//!
//! * **Apart**, only when `UNSHARE_FUZZ_HARNESS_APART=1` and the run leaves a CPU without an
//!   executor: the thread runs on the spare CPUs, keeps [`DEPTH_APART`] cases in flight and
//!   waits for reports by napping ([`crate::exec::Executor::set_patient`]), so that predicting
//!   and judging overlap the executor's cases and no report wakes a halted CPU. Experimental:
//!   under the full test suite's load it left some cases without a report for 10 s, which is
//!   not explained yet and did not come back under artificial load (docs/throughput.md, "The
//!   harness apart" and "The apart mode's waits looked for").
//! * **Beside** otherwise (the default): on the executor's own CPU, two cases in flight. On a virtual machine
//!   a CPU with nothing to run halts, and waking it for every report costs more than the
//!   judging it would overlap: with the harness woken on the other CPU, `bench` measured 500 to
//!   800 µs per case outside every phase on a quiet machine, about 95 µs with both on one CPU
//!   (docs/throughput.md, "Wake-ups on a quiet virtual machine").

use crate::sys;

/// Cases in flight per executor for a harness apart from it: enough work queued (about 2 ms of
/// single-flag cases) that the executor never waits for a napping harness.
pub const DEPTH_APART: usize = 8;

/// The variable that, set to `1`, lets harness threads run apart from their executors.
pub const APART_VAR: &str = "UNSHARE_FUZZ_HARNESS_APART";

/// With [`APART_VAR`] set to `1`, the allowed CPUs that none of `executor_cpus` runs on (none
/// when one of them is unpinned); without it, none.
pub fn spare_cpus(executor_cpus: &[Option<u32>]) -> Vec<usize> {
    if !std::env::var(APART_VAR).is_ok_and(|v| v == "1") {
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
}
