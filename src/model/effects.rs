//! What a successful unshare changes (unshare-semantics.md §4), as
//! expectations on each observed link, and the matching update of the
//! model's state (namespaces, credentials, sharing, the undo list).

#![deny(missing_docs)]

use crate::env::Environment;
use crate::flags::{RawFlags, bits, by_bit};
use crate::ns::NsLink;

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
            links[NsLink::PidForChildren.index()] = LinkExpect::Unreadable(crate::errno::Errno::ENOENT);
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
    // Step 10: NEWIPC or SYSVSEM detach the undo list; the last holder applies it. Threads
    // share the list (pthread_create passes CLONE_SYSVSEM), so with threads it stays pending.
    if f.intersects(bits::SYSVSEM | bits::NEWIPC) {
        state.siblings.iter_mut().for_each(|s| s.undo = false);
        state.undo_list = false;
        let threads = state.threads;
        if let Some(sem) = state.sem.as_mut() {
            if sem.undo == Undo::Private && threads == 1 {
                sem.value -= 1;
            }
            sem.undo = Undo::None;
        }
    }
    if f.intersects(bits::NEWIPC)
        && let Some(sem) = state.sem.as_mut()
    {
        sem.caller_in_ns = false;
    }
    if f.intersects(bits::NEWUSER) {
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
