//! The facts setns steps read (issue 16 class 4), carried in [`super::state::CallerState`]
//! from step to step: who owns the namespaces a setns may name, and how deep the caller went
//! into new pid namespaces. `model::setns` reads and updates them.

#![deny(missing_docs)]

/// Who owns a namespace, as setns's capability checks see it: `Some(g)` is the user namespace
/// the case's caller was in after `g` successful NEWUSER steps (0: the one it started in),
/// `None` one above the case's first user namespace (the caller never has capabilities there).
pub type SetnsOwner = Option<u32>;

/// The facts setns steps read (issue 16 class 4, `model::setns`), carried from step to step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetnsState {
    /// Successful NEWUSER steps so far: the caller's user namespace is `Some(userns_gen)`.
    pub userns_gen: u32,
    /// Owner of the uts, pid and user namespaces the case started in.
    pub start_owner: SetnsOwner,
    /// Owner of the time namespace the case started in; `None` inside the pair also when it
    /// cannot be known ([`Self::time_owner_known`] false).
    pub start_time_owner: SetnsOwner,
    /// Whether [`Self::start_time_owner`] is known (the sandbox makes no time namespace: in a
    /// user namespace below the initial one, its owner is not known here).
    pub time_owner_known: bool,
    /// Owner of the active pid namespace.
    pub pid_owner: SetnsOwner,
    /// Owner of pid_for_children.
    pub pid_children_owner: SetnsOwner,
    /// Owner of the active time namespace.
    pub time_owner: SetnsOwner,
    /// Owner of time_for_children.
    pub time_children_owner: SetnsOwner,
    /// Forks into a new pid namespace since the case started: the start pid namespace is an
    /// ancestor of the active one when above 0.
    pub pid_depth: u32,
    /// The active pid namespace is one setns cannot judge (the setup's foreign pid namespace).
    pub pid_unmodelled: bool,
}

impl Default for SetnsState {
    fn default() -> SetnsState {
        SetnsState {
            userns_gen: 0,
            start_owner: Some(0),
            start_time_owner: Some(0),
            time_owner_known: true,
            pid_owner: Some(0),
            pid_children_owner: Some(0),
            time_owner: Some(0),
            time_children_owner: Some(0),
            pid_depth: 0,
            pid_unmodelled: false,
        }
    }
}
