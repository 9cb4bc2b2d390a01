//! `Resources`: the process, thread and descriptor limits the executor works under, and
//! whether its root is the root of its mount namespace, as measured inside the sandbox
//! (`exec::executor::limits`). Pure data: part of [`crate::env::Environment`]; the model reads it
//! (`model::resources`) to skip cases that need more than the limits leave.

use serde::{Deserialize, Serialize};

/// The most extra processes the probe forks to measure the headroom. No case needs this
/// many (see `model::resources::MAX_TASKS`), so reaching it means "not limited here".
pub const PROBE_TASKS_CAP: u32 = 64;

/// Limits and their headroom, measured once per executor after its sandbox is built.
///
/// `Default` (every field unknown, `measured: false`) is what reports written before this
/// section existed and the model-only reference machine carry: the model then assumes no
/// resource limit binds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// The executor measured this section (false: nothing below is known).
    pub measured: bool,
    /// RLIMIT_NOFILE soft limit (`None`: unlimited or unreadable).
    pub nofile_soft: Option<u64>,
    /// RLIMIT_NOFILE hard limit.
    pub nofile_hard: Option<u64>,
    /// Descriptors the executor holds while it serves cases (informative: a case child closes
    /// all but 0..2 and its report pipe first).
    pub fds_open: Option<u32>,
    /// Descriptors a case child keeps from the executor: those of 0, 1, 2 that are open, and
    /// its report pipe.
    pub fds_inherited: Option<u32>,
    /// RLIMIT_NPROC soft limit (`None`: unlimited or unreadable). It counts every process and
    /// thread of the real uid (per user namespace level, charged up the chain).
    pub nproc_soft: Option<u64>,
    /// RLIMIT_NPROC hard limit.
    pub nproc_hard: Option<u64>,
    /// How many more tasks (processes or threads) the executor could create when probed:
    /// forked until EAGAIN, at most [`PROBE_TASKS_CAP`]. `None` if the probe could not run.
    pub spare_tasks: Option<u32>,
    /// The errno that stopped the probe before the cap (EAGAIN for RLIMIT_NPROC or pids.max).
    pub spare_tasks_stop: Option<String>,
    /// The executor's cgroup (v2 path from `/proc/self/cgroup`), if readable.
    pub cgroup: Option<String>,
    /// `pids.max` of that cgroup or the lowest of its readable ancestors (`None`: "max" or
    /// unreadable).
    pub pids_max: Option<u64>,
    /// `pids.current` of the cgroup whose `pids.max` is given.
    pub pids_current: Option<u64>,
    /// The executor's root is not the root of its mount namespace (what the kernel's
    /// `current_chrooted()` tests), found by `setns` into its own mount namespace in a throwaway
    /// child and comparing the roots' mount id, device and inode; `None` if that could not run.
    pub chrooted: Option<bool>,
    /// Plain-language notes on what was found or could not be measured.
    pub notes: Vec<String>,
}

impl Resources {
    /// Descriptors a case child can still open: the soft limit minus what it keeps from the
    /// executor (0..2 and its report pipe). `None` when not limited or unknown.
    pub fn spare_fds(&self) -> Option<u64> {
        if !self.measured {
            return None;
        }
        let soft = self.nofile_soft?;
        Some(soft.saturating_sub(u64::from(self.fds_inherited.unwrap_or(4))))
    }

    /// Extra tasks a case may create, when limited: `None` if the probe reached its cap
    /// (not limited as far as any case is concerned) or nothing was measured.
    pub fn task_limit(&self) -> Option<u32> {
        if !self.measured {
            return None;
        }
        match self.spare_tasks {
            Some(n) if n >= PROBE_TASKS_CAP => None,
            Some(n) => Some(n),
            // Measured but the probe could not fork at all.
            None => Some(0),
        }
    }

    /// Names what limits the tasks (for skip reasons): the pids cgroup when its room explains
    /// what the probe found (RLIMIT_NPROC does not bind root of the initial user namespace),
    /// else RLIMIT_NPROC.
    pub fn task_limit_name(&self) -> String {
        let cgroup_room = self.pids_max.zip(self.pids_current).map(|(m, c)| m.saturating_sub(c));
        match (cgroup_room, self.spare_tasks, self.nproc_soft) {
            (Some(room), Some(spare), _) if room <= u64::from(spare) + 1 => {
                format!("pids.max {}", self.pids_max.unwrap_or(0))
            }
            (_, _, Some(n)) => format!("RLIMIT_NPROC {n}"),
            _ => "a process limit".into(),
        }
    }

    /// Names the descriptor limit (for skip reasons).
    pub fn fd_limit_name(&self) -> String {
        match (self.nofile_soft, self.fds_inherited) {
            (Some(s), Some(o)) => format!("RLIMIT_NOFILE {s} with {o} kept from the executor"),
            (Some(s), None) => format!("RLIMIT_NOFILE {s}"),
            _ => "the descriptor limit".into(),
        }
    }

    /// Lines for the human report.
    pub fn describe(&self) -> Vec<String> {
        if !self.measured {
            return vec!["not measured".into()];
        }
        let opt = |v: Option<u64>| v.map_or("unlimited".to_string(), |v| v.to_string());
        let mut lines = vec![
            format!(
                "RLIMIT_NOFILE {}/{} (soft/hard), {} fds open in the executor, {} kept by a case, {} left to it",
                opt(self.nofile_soft),
                opt(self.nofile_hard),
                self.fds_open.map_or("?".into(), |n| n.to_string()),
                self.fds_inherited.map_or("?".into(), |n| n.to_string()),
                self.spare_fds().map_or("unlimited".into(), |n| n.to_string())
            ),
            format!("RLIMIT_NPROC {}/{} (soft/hard)", opt(self.nproc_soft), opt(self.nproc_hard)),
            format!(
                "spare tasks: {}{}",
                match self.spare_tasks {
                    Some(n) if n >= PROBE_TASKS_CAP => format!("at least {n} (not limited for any case)"),
                    Some(n) => format!("{n}"),
                    None => "unknown (the probe could not run)".into(),
                },
                self.spare_tasks_stop.as_ref().map_or(String::new(), |e| format!(" (fork stopped with {e})"))
            ),
            format!(
                "pids cgroup: {} pids.max {} pids.current {}",
                self.cgroup.as_deref().unwrap_or("unknown"),
                opt(self.pids_max),
                self.pids_current.map_or("?".into(), |n| n.to_string())
            ),
            format!(
                "root is the mount namespace's root: {}",
                match self.chrooted {
                    Some(true) => "no (chrooted)",
                    Some(false) => "yes",
                    None => "unknown",
                }
            ),
        ];
        lines.extend(self.notes.iter().cloned());
        lines
    }
}
