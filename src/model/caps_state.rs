//! What the caps steps and NEWUSER record for later steps (issue 16 class 5, `model::caps`),
//! carried in `CallerState`.

#![deny(missing_docs)]

/// What the caps steps and NEWUSER leave for later steps (a field of `CallerState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapsState {
    /// Permitted capabilities missing from the effective set: what a `keepcaps-nobody` step
    /// kept in the permitted set while clearing the effective one, and a `raise` step brings
    /// back. 0 wherever the two sets are equal.
    pub prm_only: u64,
    /// The current user namespace was made by a NEWUSER step of a caller with euid 0 and
    /// without CAP_SETFCAP in its effective set (`parent_could_setfcap` false): its uid_map
    /// cannot map the parent's uid 0 (`verify_root_map`, 5.12+).
    pub root_map_refused: bool,
}
