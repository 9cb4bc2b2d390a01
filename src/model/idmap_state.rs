//! What the `idmap` steps and NEWUSER record for later steps (issue 16 class 3,
//! `model::idmap`), carried in `CallerState`.

#![deny(missing_docs)]

/// The caller's user namespace's maps, as far as the steps made them (a field of `CallerState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IdmapState {
    /// The current user namespace was made by a step (its maps started unwritten).
    pub made_by_step: bool,
    /// Its uid map is written.
    pub uid_written: bool,
    /// Its gid map is written.
    pub gid_written: bool,
    /// Its setgroups reads "deny" (`None`: not known here).
    pub setgroups_deny: Option<bool>,
    /// The caller's euid and egid in the parent namespace (set at NEWUSER).
    pub outer: (u32, u32),
}
