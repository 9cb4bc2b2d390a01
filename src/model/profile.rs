//! Kernel profiles: the set of rules (mask, what happens to unknown bits,
//! implications, check table, effects) that describe one kernel's unshare.
//! Linux 6.18 is the reference; older kernels are data next to it: their own
//! implication tables and check rows (`checks.rs`), and flags. A profile that
//! differs from another in one respect is written with struct-update syntax
//! (`..LINUX_6_18`), so adding a kernel is adding a `const` and listing it in
//! [`PROFILES`].
//!
//! The historical profiles (spec §6) also serve as *model mutants*: run as the
//! oracle against a 6.18 kernel, each must disagree on some generated case
//! (`unshare-fuzz selftest`), which shows that the generators exercise the rules
//! that make them differ.

use crate::abi::flags::{IMPLICATIONS_6_18, Implication, UNSHARE_VALID_MASK, bits};

use super::checks::{CHECKS_2_6_16, CHECKS_3_11, CHECKS_6_18};
pub use super::rules::{KernelProfile, UnknownBits};

/// Linux 6.18.44, as measured in unshare-semantics.md.
pub const LINUX_6_18: KernelProfile = KernelProfile {
    name: "linux-6.18",
    describes: "Linux 6.9 and later with the 2026 unshare_fs fix (6.18.44 measured; 6.12.118 too under qemu)",
    sources: "§1-§5 (measured on 6.18.44)",
    valid_mask: UNSHARE_VALID_MASK,
    unknown_bits: UnknownBits::Checked,
    implications: IMPLICATIONS_6_18,
    checks: CHECKS_6_18,
    newns_always_new_fs: true,
    newtime_blocks_threads: false,
    pid_for_children_visible_at_once: false,
    empty_mntns_bit: None,
    clone3_pidfd_refuses_thread: false,
    clone3_extra_bits: 0,
    failed_first_child_kills_pending_pidns: true,
    kernels: ((6, 9), (6, 18)),
};

/// Linux 6.2 to 6.8: as 6.18, except that clone3 still refuses PIDFD with THREAD (allowed from
/// 6.9 by 83b290c9e3b5). Not measured here (no Debian kernel of these series); the unshare
/// rules are those of 6.18, which 6.2 already had (the NEWTIME thread rule went in 6.2).
pub const LINUX_6_8: KernelProfile = KernelProfile {
    name: "linux-6.8",
    describes: "Linux 6.2 to 6.8: as linux-6.18, but clone3 refuses PIDFD|THREAD (not measured here)",
    sources: "§1-§5 as 6.18; copy_process before 83b290c9e3b5 (6.9)",
    clone3_pidfd_refuses_thread: true,
    kernels: ((6, 2), (6, 8)),
    ..LINUX_6_18
};

/// Linux 5.6 to 6.1 (Debian 5.10.262 and 6.1.192 measured under qemu): as 6.18, but threads
/// and CLONE_VM children are refused after NEWTIME (spec §6 M8), and clone3 refuses PIDFD
/// with THREAD.
pub const LINUX_5_10: KernelProfile = KernelProfile {
    name: "linux-5.10",
    describes: "Linux 5.6 to 6.1: time namespaces refuse threads until exec, clone3 refuses PIDFD|THREAD (5.10.262, 6.1.192 measured)",
    sources: "§6 M8; copy_process before 6.2 and 6.9; measured under qemu (docs/multi-kernel.md)",
    newtime_blocks_threads: true,
    clone3_pidfd_refuses_thread: true,
    kernels: ((5, 6), (6, 1)),
    ..LINUX_6_18
};

/// The 6.18 implications plus UNSHARE_EMPTY_MNTNS => NEWNS (then NEWNS => FS).
pub const IMPLICATIONS_7_3: &[Implication] = &[
    Implication { when: bits::NEWUSER, adds: bits::THREAD | bits::FS },
    Implication { when: bits::VM, adds: bits::SIGHAND },
    Implication { when: bits::SIGHAND, adds: bits::THREAD },
    Implication { when: EMPTY_MNTNS, adds: bits::NEWNS },
    Implication { when: bits::NEWNS, adds: bits::FS },
];

/// Bit 20: CLONE_PARENT_SETTID for clone, UNSHARE_EMPTY_MNTNS for unshare from 7.x.
pub const EMPTY_MNTNS: u64 = 0x10_0000;

/// Linux 7.x (Debian 7.3.4 measured under qemu): bit 20 is UNSHARE_EMPTY_MNTNS, and
/// pid_for_children is readable right after NEWPID.
pub const LINUX_7_3: KernelProfile = KernelProfile {
    name: "linux-7.3",
    describes: "Linux 7.x: UNSHARE_EMPTY_MNTNS (bit 20) accepted, pid_for_children visible at once, clone3 bits 35 and 37 accepted, a failed first child keeps a pending pid namespace (7.3.4 measured)",
    valid_mask: UNSHARE_VALID_MASK | EMPTY_MNTNS,
    implications: IMPLICATIONS_7_3,
    pid_for_children_visible_at_once: true,
    empty_mntns_bit: Some(EMPTY_MNTNS),
    clone3_extra_bits: (1 << 35) | (1 << 37),
    failed_first_child_kills_pending_pidns: false,
    kernels: ((7, 3), (7, 3)),
    sources: "§1 (the future UNSHARE_EMPTY_MNTNS); measured under qemu on 7.3.4 (docs/multi-kernel.md)",
    ..LINUX_6_18
};

/// Parses "6.18.44-fc-v657" into (6, 18).
pub fn parse_release(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The profile for a running kernel, and a note when it is a fallback rather than a match.
pub fn for_release(release: &str) -> (&'static KernelProfile, Option<String>) {
    let Some(v) = parse_release(release) else {
        return (&LINUX_6_18, Some(format!("cannot read a version from {release:?}; using {}", LINUX_6_18.name)));
    };
    if let Some(p) = RELEASE_PROFILES.iter().find(|p| p.kernels.0 <= v && v <= p.kernels.1) {
        return (p, None);
    }
    // Nearest: the newest profile that starts at or before this release, else the oldest.
    let nearest =
        RELEASE_PROFILES.iter().find(|p| p.kernels.0 <= v).unwrap_or(&RELEASE_PROFILES[RELEASE_PROFILES.len() - 1]);
    let note = format!(
        "no profile describes Linux {}.{}; falling back to the nearest, {} ({}); differences may be kernel changes \
         the model does not know yet",
        v.0, v.1, nearest.name, nearest.describes
    );
    (nearest, Some(note))
}

/// Appended to a profile name: the same kernel without the 2026 stable backport of
/// 6c4b2243cb6c, so NEWNS reuses an unshared fs_struct (`newns_always_new_fs` off).
pub const WITHOUT_FS_FIX: &str = "-without-unshare-fs-fix";

/// `base` without the 2026 unshare_fs backport, named `<base>-without-unshare-fs-fix`. Made
/// once per run from the command line, so it is leaked to live as long as the built-in ones.
fn without_fs_fix(base: &KernelProfile) -> &'static KernelProfile {
    let name: &'static str = Box::leak(format!("{}{WITHOUT_FS_FIX}", base.name).into_boxed_str());
    let describes: &'static str = Box::leak(
        format!("{}, without the 2026 unshare_fs backport (NEWNS reuses an unshared fs_struct)", base.describes)
            .into_boxed_str(),
    );
    Box::leak(Box::new(KernelProfile { name, describes, newns_always_new_fs: false, ..*base }))
}

/// Resolves a `--kernel-profile` value: a profile name, `auto` for the profile of `release`
/// (with a note when that is a fallback), or either with [`WITHOUT_FS_FIX`] appended.
///
/// # Errors
/// A message listing the known names when `name` is unknown.
pub fn resolve(name: &str, release: &str) -> Result<(&'static KernelProfile, Option<String>), String> {
    if name == "auto" {
        return Ok(for_release(release));
    }
    if let Some(p) = by_name(name) {
        return Ok((p, None));
    }
    if let Some(base) = name.strip_suffix(WITHOUT_FS_FIX) {
        let (base, note) = resolve(base, release)?;
        if base.newns_always_new_fs {
            return Ok((without_fs_fix(base), note));
        }
        return Ok((base, note));
    }
    let names: Vec<&str> = PROFILES.iter().map(|p| p.name).collect();
    Err(format!(
        "unknown kernel profile {name:?}; known: auto, {}, and any of them (or auto) followed by {WITHOUT_FS_FIX}",
        names.join(", ")
    ))
}
/// Linux 6.18 without upstream 6c4b2243cb6c "unshare: fix unshare_fs() handling".
///
/// Step 5 copies the fs_struct only when it is shared, so NEWNS on an unshared fs_struct
/// switches the live one to the new tree. The other half of that bug (spec §6 M12: a NEWNS
/// that fails at a later namespace leaves root and cwd on detached mounts) is not in the
/// model: the snapshot records (dev, ino) of cwd, which a detached copy keeps, and no mount ids.
pub const LINUX_6_18_WITHOUT_UNSHARE_FS_FIX: KernelProfile = KernelProfile {
    name: "linux-6.18-without-unshare-fs-fix",
    describes: "Linux 6.2 to 6.18 before the 2026 stable backport of 6c4b2243cb6c: NEWNS reuses an unshared fs_struct",
    sources: "§2.2 [†], §5.7, §6 M12",
    newns_always_new_fs: false,
    ..LINUX_6_18
};

/// Implications of Linux 3.9 to 3.11 (spec §6 M3, M4), in the order `sys_unshare` applied them.
pub const IMPLICATIONS_3_11: &[Implication] = &[
    Implication { when: bits::NEWUSER, adds: bits::THREAD | bits::FS },
    Implication { when: bits::NEWPID, adds: bits::THREAD },
    Implication { when: bits::THREAD, adds: bits::VM },
    Implication { when: bits::VM, adds: bits::SIGHAND },
    Implication { when: bits::NEWNS, adds: bits::FS },
];

/// Linux 3.9 to 3.11: NEWPID implies THREAD; THREAD implies VM implies SIGHAND, and all
/// three fail while the mm has other users; no cgroup or time namespaces; the user-ns depth
/// limit gives EUSERS and the pid-ns one EINVAL; no per-user-ns limits.
pub const LINUX_3_11: KernelProfile = KernelProfile {
    name: "linux-3.11",
    describes: "Linux 3.9 to 3.11 (3.8 also lacked NEWUSER => FS and the chroot check)",
    sources: "§6 M2, M3, M4, M6, M7",
    valid_mask: UNSHARE_VALID_MASK & !(bits::NEWCGROUP | bits::NEWTIME),
    unknown_bits: UnknownBits::Checked,
    implications: IMPLICATIONS_3_11,
    checks: CHECKS_3_11,
    newns_always_new_fs: false,
    newtime_blocks_threads: false,
    pid_for_children_visible_at_once: false,
    empty_mntns_bit: None,
    clone3_pidfd_refuses_thread: true,
    clone3_extra_bits: 0,
    failed_first_child_kills_pending_pidns: true,
    kernels: ((3, 9), (3, 11)),
};

/// Implications of Linux 2.6.16 (spec §6 M1). "SIGHAND implies THREAD when the signal
/// struct is shared" is the `sighand-shared` row's thread condition in [`CHECKS_2_6_16`].
pub const IMPLICATIONS_2_6_16: &[Implication] = &[
    Implication { when: bits::THREAD, adds: bits::VM },
    Implication { when: bits::VM, adds: bits::SIGHAND },
    Implication { when: bits::NEWNS, adds: bits::FS },
];

/// Linux 2.6.16 as the seed article describes it: unknown flags ignored, only
/// THREAD|FS|NEWNS|SIGHAND|VM|FILES|SYSVSEM known, THREAD and SYSVSEM always EINVAL.
pub const LINUX_2_6_16: KernelProfile = KernelProfile {
    name: "linux-2.6.16",
    describes: "Linux 2.6.16 (the first unshare; unknown flags ignored as in the -mm series)",
    sources: "§6 M0, M1, M2",
    valid_mask: bits::THREAD | bits::FS | bits::NEWNS | bits::SIGHAND | bits::VM | bits::FILES | bits::SYSVSEM,
    unknown_bits: UnknownBits::Ignored,
    implications: IMPLICATIONS_2_6_16,
    checks: CHECKS_2_6_16,
    newns_always_new_fs: false,
    newtime_blocks_threads: false,
    pid_for_children_visible_at_once: false,
    empty_mntns_bit: None,
    clone3_pidfd_refuses_thread: true,
    clone3_extra_bits: 0,
    failed_first_child_kills_pending_pidns: true,
    kernels: ((2, 6), (2, 6)),
};

/// The profiles of older kernels (spec §6), each a model mutant of [`LINUX_6_18`].
pub const HISTORICAL: &[KernelProfile] = &[LINUX_6_18_WITHOUT_UNSHARE_FS_FIX, LINUX_3_11, LINUX_2_6_16];

/// Profiles chosen by kernel release (`--kernel-profile auto`), newest first.
pub const RELEASE_PROFILES: &[KernelProfile] =
    &[LINUX_7_3, LINUX_6_18, LINUX_6_8, LINUX_5_10, LINUX_3_11, LINUX_2_6_16];

/// Every profile, by name.
pub const PROFILES: &[KernelProfile] =
    &[LINUX_7_3, LINUX_6_18, LINUX_6_8, LINUX_5_10, LINUX_6_18_WITHOUT_UNSHARE_FS_FIX, LINUX_3_11, LINUX_2_6_16];

/// Looks a profile up by name.
pub fn by_name(name: &str) -> Option<&'static KernelProfile> {
    PROFILES.iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_pick_their_profile_or_say_it_is_a_fallback() {
        assert_eq!(for_release("6.18.44-fc-v657").0.name, "linux-6.18");
        assert!(for_release("6.18.44-fc-v657").1.is_none());
        assert_eq!(for_release("6.12.118+deb13-cloud-amd64").0.name, "linux-6.18");
        assert_eq!(for_release("5.10.0-46-cloud-amd64").0.name, "linux-5.10");
        assert_eq!(for_release("6.1.0-56-cloud-amd64").0.name, "linux-5.10");
        assert_eq!(for_release("6.2.0").0.name, "linux-6.8");
        assert_eq!(for_release("6.8.0-49-generic").0.name, "linux-6.8");
        assert!(for_release("6.8.0-49-generic").1.is_none());
        assert_eq!(for_release("6.9.1").0.name, "linux-6.18");
        assert_eq!(for_release("7.3.4+deb13-cloud-amd64").0.name, "linux-7.3");
        let (p, note) = for_release("7.1.2");
        assert_eq!(p.name, "linux-6.18");
        assert!(note.unwrap().contains("falling back"));
        let (p, note) = for_release("8.0.0");
        assert_eq!(p.name, "linux-7.3");
        assert!(note.is_some());
        assert!(for_release("4.19.0").1.is_some());
        assert!(for_release("garbage").1.is_some());
    }

    #[test]
    fn any_profile_can_drop_the_unshare_fs_fix() {
        let (p, note) = resolve("linux-6.8-without-unshare-fs-fix", "6.18.44").unwrap();
        assert_eq!(p.name, "linux-6.8-without-unshare-fs-fix");
        assert!(!p.newns_always_new_fs && p.clone3_pidfd_refuses_thread && note.is_none());
        let (p, note) = resolve("auto-without-unshare-fs-fix", "6.8.0-49-generic").unwrap();
        assert_eq!(p.name, "linux-6.8-without-unshare-fs-fix");
        assert!(note.is_none());
        // The built-in one is found by name, not rebuilt.
        let (p, _) = resolve("linux-6.18-without-unshare-fs-fix", "6.18.44").unwrap();
        assert_eq!(p.describes, LINUX_6_18_WITHOUT_UNSHARE_FS_FIX.describes);
        // A profile that already lacks the fix stays itself.
        let (p, _) = resolve("linux-3.11-without-unshare-fs-fix", "6.18.44").unwrap();
        assert_eq!(p.name, "linux-3.11");
        let e = resolve("linux-9.9-without-unshare-fs-fix", "6.18.44").unwrap_err();
        assert!(e.contains("unknown kernel profile \"linux-9.9\"") && e.contains(WITHOUT_FS_FIX), "{e}");
    }

    #[test]
    fn release_ranges_do_not_overlap() {
        for (i, a) in RELEASE_PROFILES.iter().enumerate() {
            assert!(a.kernels.0 <= a.kernels.1, "{}", a.name);
            for b in &RELEASE_PROFILES[i + 1..] {
                assert!(a.kernels.1 < b.kernels.0 || b.kernels.1 < a.kernels.0, "{} and {} overlap", a.name, b.name);
            }
        }
    }

    #[test]
    fn linux_6_8_is_linux_6_18_but_for_pidfd_with_thread() {
        let (a, b) = (&LINUX_6_8, &LINUX_6_18);
        assert!(a.clone3_pidfd_refuses_thread && !b.clone3_pidfd_refuses_thread);
        assert_eq!(
            (a.valid_mask, a.newns_always_new_fs, a.newtime_blocks_threads, a.pid_for_children_visible_at_once),
            (b.valid_mask, b.newns_always_new_fs, b.newtime_blocks_threads, b.pid_for_children_visible_at_once)
        );
        assert_eq!(
            (a.empty_mntns_bit, a.clone3_extra_bits, a.failed_first_child_kills_pending_pidns),
            (b.empty_mntns_bit, b.clone3_extra_bits, b.failed_first_child_kills_pending_pidns)
        );
        assert!(std::ptr::eq(a.checks, b.checks) && std::ptr::eq(a.implications, b.implications));
    }
}
