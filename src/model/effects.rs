//! What a successful unshare changes (unshare-semantics.md §4), as
//! expectations on each observed link, and the matching update of the
//! model's state (namespaces, credentials, sharing, the undo list).

#![deny(missing_docs)]

use crate::abi::flags::{RawFlags, bits, by_bit};
use crate::abi::ns::NsLink;
use crate::env::Environment;

use super::expect::LinkExpect;
use super::profile::KernelProfile;
use super::state::{CAP_SYS_ADMIN, CallerState, PidChildren, Undo};

/// True if a successful call with `f` (after implications) gives the caller a new fs_struct
/// (spec §2.2 step 5): FS while the fs_struct is shared, with a sibling or with the caller's
/// own threads (pthread_create passes CLONE_FS), and NEWNS always on kernels with the fix.
pub fn fs_struct_replaced(profile: &KernelProfile, state: &CallerState, f: RawFlags) -> bool {
    f.intersects(bits::FS)
        && (state.fs_shared() || state.threads > 1 || (f.intersects(bits::NEWNS) && profile.newns_always_new_fs))
}

/// Check rows decided inside `create_new_namespaces` after `copy_mnt_ns` (spec §2.2 steps 8d
/// to 8i: uts, ipc, pid, cgroup, net, time). A call that fails at one of them has already run
/// `copy_mnt_ns`.
pub const AFTER_COPY_MNT_NS: &[&str] = &["8d", "8e", "8f", "8g", "8h", "8i"];

/// True if a call with `f` (after implications) that fails at `first` leaves the caller's root
/// and cwd on the detached copy of its mount tree: a kernel without the unshare_fs fix (spec §6
/// M12, before 6c4b2243cb6c) hands `copy_mnt_ns` the caller's live fs_struct whenever it is not
/// shared (no FS copy), which switches root and cwd to the new tree; the later failure frees
/// that namespace and unmounts everything below its root.
pub fn failure_detaches_root(
    profile: &KernelProfile,
    state: &CallerState,
    f: RawFlags,
    first: &super::checks::Check,
) -> bool {
    !profile.newns_always_new_fs
        && f.intersects(bits::NEWNS)
        && !fs_struct_replaced(profile, state, f)
        && AFTER_COPY_MNT_NS.contains(&first.step)
}

/// True if the copy NEWNS makes in a call with `f` has its mounts locked: it is owned by
/// another user namespace than the one it copies (NEWUSER in the same call, or a caller whose
/// user namespace does not own its mount namespace: `lock_mnt_tree`), or it copies mounts that
/// are locked already.
pub fn copy_is_locked(state: &CallerState, f: RawFlags) -> bool {
    state.mounts_locked || f.intersects(bits::NEWUSER) || !state.mnt_owned_by_userns
}

/// Applies a detached root (see [`failure_detaches_root`]) to `state` and `links`. The root is
/// no longer the root of the mount namespace, which is what `current_chrooted()` tests. When
/// the copy's mounts were not locked, `umount_tree` disconnected everything below the root:
/// /proc is an empty directory there, so every namespace link reads ENOENT (the pidfd ioctls
/// do not go through /proc) and the caller no longer reaches /proc.
pub fn apply_detached_root(
    env: &Environment,
    state: &mut CallerState,
    f: RawFlags,
    links: &mut [LinkExpect; NsLink::COUNT],
) {
    // The caller's root is no longer the root of its mount namespace: chrooted from now on
    // (a later NEWNS copies the namespace's tree, which the detached root is not part of).
    state.chrooted = true;
    // A copy with its mounts locked keeps them attached (`umount_tree` leaves locked mounts
    // connected): /proc stays where it was.
    if copy_is_locked(state, f) {
        return;
    }
    if env.ns_observer == crate::abi::ns::NsObserver::ProcLinks {
        for link in NsLink::ALL {
            if env.has_link(link) {
                links[link.index()] = LinkExpect::Unreadable(crate::abi::errno::Errno::ENOENT);
            }
        }
    }
    state.proc_visible = false;
}

/// Step 10: NEWIPC or SYSVSEM detach the undo list; the last holder applies it. Threads
/// share the list (pthread_create passes CLONE_SYSVSEM), so with threads it stays pending.
fn detach_semundo(state: &mut CallerState, f: RawFlags) {
    if f.intersects(bits::SYSVSEM | bits::NEWIPC) {
        state.siblings.iter_mut().for_each(|s| s.undo = false);
        state.undo_list = false;
        let threads = state.threads;
        if let Some(sem) = state.sem.as_mut() {
            if sem.undo == Undo::Private && threads == 1 {
                // exit_sem clamps a value the adjustment would make negative to 0 (the setup's
                // `sem_clamp` leaves 0 with the -1 pending).
                sem.value = (sem.value - 1).max(0);
            }
            sem.undo = Undo::None;
        }
    }
    if f.intersects(bits::NEWIPC)
        && let Some(sem) = state.sem.as_mut()
    {
        sem.caller_in_ns = false;
    }
}

/// Applies a successful call with `f` (after implications) to `state`; returns the link expectations.
pub fn apply_unshare_success(
    profile: &KernelProfile,
    env: &Environment,
    state: &mut CallerState,
    f: RawFlags,
) -> [LinkExpect; NsLink::COUNT] {
    let mut links = [LinkExpect::Unchanged; NsLink::COUNT];
    let mut bit = 1u64;
    while bit != 0 {
        if f.0 & bit != 0
            && let Some(link) = by_bit(bit).and_then(|s| s.ns_link)
            && env.has_link(link)
        {
            links[link.index()] = LinkExpect::Fresh;
        }
        bit <<= 1;
    }
    if f.intersects(bits::NEWPID) && env.has_link(NsLink::PidForChildren) {
        // The new pid ns has no init yet: up to 6.18 the link is hidden until the first fork
        // (spec §5.9 item 7); 7.x shows it at once.
        if !profile.pid_for_children_visible_at_once {
            links[NsLink::PidForChildren.index()] = LinkExpect::Unreadable(crate::abi::errno::Errno::ENOENT);
        }
        state.pid_children = PidChildren::Pending;
    }
    if profile.empty_mntns_bit.is_some_and(|b| f.intersects(b)) {
        // A new, empty mount namespace: root and cwd no longer lead to /proc.
        state.proc_visible = false;
    }
    if f.intersects(bits::NEWTIME) {
        state.time_pending = true;
    }
    // Step 5: FS copies root/cwd/umask if shared, and (with the 2026 fix) always for NEWNS.
    if f.intersects(bits::FS) && (state.fs_shared() || (f.intersects(bits::NEWNS) && profile.newns_always_new_fs)) {
        state.siblings.iter_mut().for_each(|s| s.fs = false);
    }
    if f.intersects(bits::FILES) {
        state.siblings.iter_mut().for_each(|s| s.files = false);
    }
    detach_semundo(state, f);
    if f.intersects(bits::NEWNS) && copy_is_locked(state, f) {
        state.mounts_locked = true;
    }
    if f.intersects(bits::NEWUSER | bits::NEWNS) {
        // NEWNS alone makes a namespace owned by the caller's user namespace, NEWUSER alone
        // leaves the old one under the old owner, both together give the new pair.
        state.mnt_owned_by_userns = f.intersects(bits::NEWNS);
    }
    if f.intersects(bits::NEWUSER) {
        // Read before the new credentials replace the old ones (model::caps).
        state.caps.root_map_refused = super::caps::root_map_refused(state);
        super::idmap::on_newuser(state);
        state.cap_sys_admin = true;
        state.ids_mapped = false;
        state.maps_writable = true;
        state.userns_depth = state.userns_depth.map(|d| d + 1);
        state.uid = env.overflow_uid;
        state.gid = env.overflow_gid;
        state.cap_eff = env.full_caps();
        state.siblings.iter_mut().for_each(|s| s.kcmp_allowed = false);
    }
    debug_assert!(!f.intersects(bits::NEWUSER) || state.cap_eff & (1 << CAP_SYS_ADMIN) != 0);
    links
}
