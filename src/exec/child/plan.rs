//! Lowers a case's absolute placement (pid-ns level, user-ns depth) into
//! counts relative to the executor's own position, and carries how the child
//! reads its namespace ids here. Done before fork.

use crate::case::Setup;
use crate::env::Environment;

/// Nesting counts for one case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Plan {
    /// unshare(NEWPID) + fork rounds.
    pub pid_nesting: u8,
    /// unshare(NEWUSER) + maps rounds.
    pub user_nesting: u8,
    /// How the child reads its namespace ids (the environment's choice).
    pub ns_observer: crate::abi::ns::NsObserver,
    /// Processes are limited here (RLIMIT_NPROC, pids.max): after a case, wait until every
    /// process it left is reaped, so the next case finds the whole headroom the probe measured.
    pub reap_all: bool,
    /// The executor's namespace markers (set by the executor, not by [`Plan::new`]).
    pub markers: super::markers::Markers,
    /// The executor's message queue marker (set by the executor, not by [`Plan::new`]).
    pub inside: super::inside::InsideMarkers,
}

impl Plan {
    /// The plan for `setup` from the executor's position in `env`.
    ///
    /// # Errors
    /// When the position is unknown or already past the target.
    pub fn new(setup: &Setup, env: &Environment) -> Result<Plan, String> {
        let mut plan =
            Plan { ns_observer: env.ns_observer, reap_all: env.resources.task_limit().is_some(), ..Plan::default() };
        if let Some(target) = setup.pidns_level {
            let level = env.pidns_level.ok_or("the executor's pid-namespace level is unknown")?;
            plan.pid_nesting = u8::try_from(
                u32::from(target).checked_sub(level).ok_or("the executor is deeper than the pid-ns level asked for")?,
            )
            .map_err(|_| "pid nesting out of range")?;
        }
        if let Some(target) = setup.userns_depth {
            let depth = env.userns_depth.ok_or("the executor's user-namespace depth is unknown")?;
            plan.user_nesting = u8::try_from(
                u32::from(target)
                    .checked_sub(depth)
                    .ok_or("the executor is deeper than the user-ns depth asked for")?,
            )
            .map_err(|_| "user nesting out of range")?;
        }
        Ok(plan)
    }
}
