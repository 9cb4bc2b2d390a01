//! What the `idmap` steps and NEWUSER record for later steps (issue 16 class 3,
//! `model::idmap`, `model::idmap_witness`), carried in `CallerState`.

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
    /// A map written by the witness left the caller's own uid or gid without a mapping.
    pub caller_unmapped: bool,
    /// Successful NEWUSER steps so far (the witness stays where the setup left the caller).
    pub newuser_steps: u8,
    /// The caller's euid and egid in the witness's user namespace at its first NEWUSER step:
    /// the owner of the first namespace a step made.
    pub first_outer: (u32, u32),
    /// The inside witness, as the setup left it (`model::idmap_witness`).
    pub witness: WitnessView,
}

/// The inside witness, forked after the setup: what decides its writes of the caller's maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WitnessView {
    /// Its euid and egid, read in its user namespace (the one the setup left).
    pub ids: (u32, u32),
    /// Its ids are mapped there (false: they read as the overflow ids).
    pub ids_mapped: bool,
    /// Its effective capabilities (over its own user namespace).
    pub cap_eff: u64,
    /// The caller's `/proc/self` could be opened before the first step.
    pub proc: bool,
    /// Its fork fails with EMFILE: the fd table (rounded up to 64 slots) is larger than the
    /// lowered `fs.nr_open` of a guest-only setup (`case::guest`).
    pub fork_emfile: bool,
    /// Its user namespace maps the ids next to its own (`own ^ 1`): the initial namespace
    /// maps every id, the harness's own namespaces (sandbox, setup) one each; `None`: not known.
    pub maps_other: Option<bool>,
}

impl WitnessView {
    /// `cap` is in the witness's effective set.
    pub fn has(&self, cap: u32) -> bool {
        self.cap_eff & (1u64 << cap) != 0
    }
}
