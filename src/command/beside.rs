//! The harness thread that feeds a pinned executor runs on that executor's CPU while it does.
//! On a virtual machine a CPU with nothing to run halts, and waking it for every report costs
//! more than the judging it would overlap: with the harness on the other CPU, `bench` measured
//! 500 to 800 µs per case outside every phase on a quiet machine, about 95 µs with both on one
//! CPU (docs/throughput.md, "Wake-ups on a quiet virtual machine").

use crate::sys;

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
