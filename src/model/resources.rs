//! What a case needs of the process and descriptor limits, and whether the limits measured
//! by the executor ([`crate::env::resources::Resources`]) leave that much. Pure: a case whose need
//! exceeds the headroom is skipped with a reason naming the limit, never run and mis-judged.
//!
//! The counts are upper bounds of what is alive at once, read off the executor's code
//! (`exec/child.rs`, `child_setup.rs`, `sibling.rs`, `clone3.rs`):
//!
//! * tasks (RLIMIT_NPROC and a pids cgroup count processes and threads alike): the case child;
//!   one waiting parent per pid-ns nesting round; the foreign pid namespace's helper, its init
//!   and the child we continue in (3); each sibling; each setup thread; the vfork child; each
//!   `fork`, `spawn_thread` and `clone3` step (their parents and threads stay; a clone3 child
//!   with exit_signal 0 or CLONE_PARENT stays a zombie nobody in the case reaps); one more at a
//!   time for `fork_exit` steps (their child is reaped before the next step).
//! * descriptors (RLIMIT_NOFILE; each process has its own table, all alike): the setup fds;
//!   4 pipe ends per sibling; on top of those the most any one moment adds: 2 while a snapshot
//!   reads namespace ids (a pidfd and a namespace fd), 2 memfds of the final probes, 6 in a
//!   clone3 step (two pipes, the pidfd, a pidfd to make sure the child is gone), 3 while the
//!   foreign pid namespace is entered (a pipe and a pidfd, before any setup fd exists).

use crate::case::{Case, Step};
use crate::env::Environment;

/// The most tasks any case can need (pid nesting from level 1 to 32, the foreign pid
/// namespace, 3 siblings, 2 threads, vfork and 4 steps): below the probe's cap.
pub const MAX_TASKS: u32 = 1 + 31 + 3 + 3 + 2 + 1 + 4;

/// Tasks taken after the probe measured the headroom that are not the case's own: the harness
/// (the executor's parent, same uid and cgroup) starts its worker thread for the executor once
/// the executor has reported its environment, so one task of what the probe saw spare is gone
/// for the whole run (measured: the harness has 2 threads during a `--jobs 1` run, 1 while the
/// executor probes). Leftovers of the previous case are not counted: under a process limit the
/// executor reaps every one before the next case (`Plan::reap_all`). Other processes of the
/// same uid or cgroup started later (another job, another user of uid 65534) are not known
/// here: a step that then fails with EAGAIN is not judged (`check::judge`).
pub const TASK_MARGIN: u32 = 1;

/// What one case needs at most at any moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// Processes and threads, the case child included.
    pub tasks: u32,
    /// Descriptors beyond those the case child inherits.
    pub fds: u32,
}

/// The need of `case` when the executor is at pid-namespace level `executor_pid_level`.
pub fn need(case: &Case, executor_pid_level: Option<u32>) -> Need {
    let s = &case.setup;
    let nesting = match (s.pidns_level, executor_pid_level) {
        (Some(target), Some(level)) => u32::from(target).saturating_sub(level),
        _ => 0,
    };
    let sibs = s.siblings.len() as u32;
    let mut tasks = 1 + nesting + if s.foreign_pidns { 3 } else { 0 } + sibs + u32::from(s.threads);
    tasks += u32::from(s.vfork);
    let mut transient = 0;
    let mut step_fds = 2;
    for step in &case.steps {
        match step {
            Step::Fork | Step::SpawnThread | Step::ThreadCall(_) => tasks += 1,
            Step::ForkExit => transient = 1,
            // A child with exit_signal 0 (THREAD or PARENT) or a CLONE_PARENT one is nobody's
            // to reap in the case: it stays a zombie, counted, until the case ends.
            Step::Clone3(_) | Step::Clone3SetTid(_) => {
                tasks += 1;
                step_fds = 6;
            }
            _ => {}
        }
    }
    let (setns_fds, setns_tasks) = super::setns::need(case);
    step_fds += setns_fds;
    transient = transient.max(setns_tasks);
    // high_fd's descriptor, and the namespace descriptors nsfs_bind and shm rmid-forced keep.
    let held = u32::from(s.high_fd) + u32::from(s.nsfs_bind) + u32::from(s.shm == Some(crate::case::Shm::RmidForced));
    // The inside witness (case::inside) stays, with two pipe ends; its exchange forks a clock
    // child with a pipe of its own.
    tasks += 2 * u32::from(s.inside_witness);
    let step_fds = step_fds + 4 * u32::from(s.inside_witness);
    let fds = (u32::from(s.fds) + held + 4 * sibs + step_fds).max(if s.foreign_pidns { 3 } else { 0 });
    Need { tasks: tasks + transient, fds }
}

/// `Err(reason)` when the limits measured here leave less than `case` needs.
///
/// # Errors
/// The reason, naming the limit, for the case's skip.
pub fn fits(env: &Environment, case: &Case) -> Result<(), String> {
    let r = &env.resources;
    let n = need(case, env.pidns_level);
    if let Some(spare) = r.task_limit() {
        // The case child itself is one of the tasks the probe could fork.
        if n.tasks + TASK_MARGIN > spare {
            return Err(format!(
                "needs {} processes/threads (+{TASK_MARGIN} margin), {} leaves {spare}",
                n.tasks,
                r.task_limit_name()
            ));
        }
    }
    // dup3 to a number at or above RLIMIT_NOFILE fails with EBADF, whatever is free below it.
    if case.setup.high_fd
        && let Some(limit) = r.nofile_soft
        && limit <= crate::case::HIGH_FD as u64
    {
        return Err(format!(
            "needs descriptor number {} (high_fd), {} allows numbers below {limit} only",
            crate::case::HIGH_FD,
            r.fd_limit_name()
        ));
    }
    if let Some(spare) = r.spare_fds()
        && u64::from(n.fds) > spare
    {
        return Err(format!("needs {} file descriptors, {} leaves {spare}", n.fds, r.fd_limit_name()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::{Setup, Sibling};
    use crate::env::resources::Resources;

    fn limited(spare_tasks: u32, nofile: u64, open: u32) -> Environment {
        let mut env = Environment::reference();
        env.pidns_level = Some(1);
        env.resources = Resources {
            measured: true,
            nofile_soft: Some(nofile),
            fds_inherited: Some(open),
            nproc_soft: Some(10),
            spare_tasks: Some(spare_tasks),
            ..Resources::default()
        };
        env
    }

    #[test]
    fn counts_every_process_the_setup_and_steps_make() {
        let mut case = Case::unshare(&[0]);
        assert_eq!(need(&case, Some(1)), Need { tasks: 1, fds: 2 });
        case.setup = Setup {
            pidns_level: Some(4),
            foreign_pidns: true,
            siblings: vec![Sibling::Files, Sibling::Vm],
            threads: 2,
            vfork: true,
            fds: 3,
            ..Setup::default()
        };
        case.steps = vec![Step::Fork, Step::ForkExit, Step::SpawnThread];
        // 1 + 3 nesting + 3 foreign + 2 siblings + 2 threads + vfork + fork + spawn + 1 fork_exit.
        assert_eq!(need(&case, Some(1)), Need { tasks: 15, fds: 3 + 8 + 2 });
        assert!(need(&case, Some(1)).tasks <= MAX_TASKS);
    }

    #[test]
    fn a_case_over_the_headroom_is_skipped_naming_the_limit() {
        let mut case = Case::unshare(&[0]);
        case.setup.siblings = vec![Sibling::Files, Sibling::Fs, Sibling::Vm];
        let env = limited(3, 1024, 10);
        let reason = fits(&env, &case).unwrap_err();
        assert!(reason.contains("needs 4 processes") && reason.contains("RLIMIT_NPROC 10"), "{reason}");
        let env = limited(64, 20, 10);
        let reason = fits(&env, &case).unwrap_err();
        assert!(reason.contains("needs 14 file descriptors") && reason.contains("leaves 10"), "{reason}");
        assert_eq!(fits(&limited(64, 1024, 10), &case), Ok(()));
        case.setup.high_fd = true;
        let reason = fits(&limited(64, 100, 10), &case).unwrap_err();
        assert!(reason.contains("descriptor number 100") && reason.contains("below 100"), "{reason}");
        assert_eq!(fits(&limited(64, 101, 10), &case), Ok(()));
        // Unmeasured (older reports, the reference machine): nothing is skipped.
        assert_eq!(fits(&Environment::reference(), &case), Ok(()));
    }
}
