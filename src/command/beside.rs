//! Where the harness thread that feeds a pinned executor runs while it does.
//!
//! * **Apart**, when the run leaves a CPU without an executor: the thread runs on the spare
//!   CPUs, keeps [`DEPTH_APART`] cases in flight and waits for reports by napping
//!   ([`crate::exec::Executor::set_patient`]), so that predicting and judging overlap the
//!   executor's cases and no report wakes a halted CPU. `UNSHARE_FUZZ_HARNESS_APART=0` turns
//!   this off.
//! * **Beside** otherwise: on the executor's own CPU, two cases in flight. On a virtual machine
//!   a CPU with nothing to run halts, and waking it for every report costs more than the
//!   judging it would overlap: with the harness woken on the other CPU, `bench` measured 500 to
//!   800 µs per case outside every phase on a quiet machine, about 95 µs with both on one CPU
//!   (docs/throughput.md, "Wake-ups on a quiet virtual machine").

use crate::sys;

/// Cases in flight per executor for a harness apart from it: enough work queued (about 2 ms of
/// single-flag cases) that the executor never waits for a napping harness.
pub const DEPTH_APART: usize = 8;

/// The variable that, set to `0`, keeps every harness thread beside its executor.
pub const APART_VAR: &str = "UNSHARE_FUZZ_HARNESS_APART";

/// The allowed CPUs that none of `executor_cpus` runs on: empty when one of them is unpinned,
/// or when [`APART_VAR`] is `0`.
pub fn spare_cpus(executor_cpus: &[Option<u32>]) -> Vec<usize> {
    if std::env::var(APART_VAR).is_ok_and(|v| v == "0") || executor_cpus.iter().any(Option::is_none) {
        return Vec::new();
    }
    let taken: Vec<usize> = executor_cpus.iter().flatten().map(|&c| c as usize).collect();
    sys::allowed_cpus().unwrap_or_default().into_iter().filter(|c| !taken.contains(c)).collect()
}

/// Where a harness thread was placed; dropping it lets the thread run where it could before.
#[derive(Debug)]
pub struct HarnessPlace {
    restore: Option<Vec<usize>>,
    /// The thread runs apart from its executor (on `spare` CPUs).
    pub apart: bool,
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
                return HarnessPlace { restore: Some(before), apart: true };
            }
            return HarnessPlace { restore: None, apart: false };
        }
        let mut beside = BesideExecutor::pin(executor_cpu);
        HarnessPlace { restore: beside.restore.take(), apart: false }
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
}
