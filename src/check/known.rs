//! Known kernel bugs: a violation of the current contract that one named, documented bug
//! explains exactly. A missing bug fix is not a kernel fact the model adapts to (the profile
//! stays the one of current Linux); instead each violating case is judged a second time
//! against the same profile without that fix, and when that variant predicts everything that
//! was seen, the case's violations are labelled with the bug, so that a distribution's CI
//! learns which fix it lacks. A case that the variant does not explain keeps no label.

#![deny(missing_docs)]

use serde::Serialize;

use crate::case::Case;
use crate::env::Environment;
use crate::exec::observe::Outcome;
use crate::model::{KernelProfile, Prediction, predict};

use super::{CaseVerdict, judge};

/// One known bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KnownBug {
    /// Stable id, used in reports and baselines (`unshare-fs-fix-missing`).
    pub id: &'static str,
    /// What the kernel does wrong.
    pub title: &'static str,
    /// The upstream fix.
    pub upstream: &'static str,
    /// Where the fix reached distribution kernels (as measured).
    pub backports: &'static str,
    /// The profile variant that describes a kernel with the bug (`--kernel-profile ...`).
    pub profile_suffix: &'static str,
}

/// The kernel lacks upstream 6c4b2243cb6c (spec §5.7, §6 M12).
pub const UNSHARE_FS_FIX_MISSING: KnownBug = KnownBug {
    id: "unshare-fs-fix-missing",
    title: "the kernel lacks the unshare_fs fix: NEWNS reuses an unshared fs_struct, and a NEWNS call that \
            fails at a later namespace leaves root and cwd on a detached copy of the mount tree (/proc gone, \
            the caller counts as chrooted)",
    upstream: "6c4b2243cb6c \"unshare: fix unshare_fs() handling\" (2026, in the stable backports)",
    backports: "Debian, measured with scripts/kernels.sh --all on 2026-12-03 (docs/multi-kernel.md): missing in \
                5.10.218-1, 5.10.223-1 (bullseye) and 5.10.251-5, carried from 5.10.262-1 (bullseye-security); \
                carried by every bookworm 6.1 (6.1.170-3 to 6.1.192-2); missing in bookworm-backports 6.12.43 to \
                6.12.74, carried from 6.12.85-1~bpo12+1 and by every trixie 6.12 (6.12.90-1 to 6.12.118-1); \
                missing in trixie-backports 6.16.3 to 6.19.8, carried from 6.19.10-1~bpo13+1 and by every 7.x \
                (7.0.4 to 7.3.4, sid 7.2.13-1, experimental 7.3~rc7). Update the kernel, or accept the bug with \
                --kernel-profile <profile>-without-unshare-fs-fix or a --baseline",
    profile_suffix: crate::model::profile::WITHOUT_FS_FIX,
};

/// Every known bug, by id.
pub const KNOWN_BUGS: &[KnownBug] = &[UNSHARE_FS_FIX_MISSING];

/// Looks a known bug up by id.
pub fn by_id(id: &str) -> Option<&'static KnownBug> {
    KNOWN_BUGS.iter().find(|b| b.id == id)
}

/// Labels `verdict` with the known bug that explains all of it, if there is one: the case is
/// judged again against `profile` without the unshare_fs fix, and the label is given only when
/// that variant leaves no violation, no broken case and no skipped case. `profile` itself
/// lacking the fix labels nothing (its violations are not that bug's).
pub fn label(profile: &KernelProfile, env: &Environment, case: &Case, outcome: &Outcome, verdict: &mut CaseVerdict) {
    if verdict.violations.is_empty() || !profile.newns_always_new_fs {
        return;
    }
    let variant = KernelProfile { newns_always_new_fs: false, ..*profile };
    let prediction = predict(&variant, env, case);
    if matches!(prediction, Prediction::Skip { .. }) {
        return;
    }
    let again = judge(env, case, &prediction, outcome);
    if again.violations.is_empty() && again.broken.is_none() && again.case_skipped.is_none() {
        verdict.known_bug = Some(UNSHARE_FS_FIX_MISSING.id);
    }
}
