//! clone3(2) next to unshare(2): clone3's acceptance rules as an ordered check table (the
//! same [`Check`] rows as unshare's, read from the kernel's clone3 path), what the child of a
//! successful call should look like from both sides, and what the call leaves behind in the
//! caller, which is the process that continues the case.
//!
//! # References
//! Read from (details and commits in docs/clone3.md):
//! * Kingxukai/linux kernel/fork.c @ 0291023e7330 (≈6.17): `clone3_args_valid`,
//!   `copy_clone_args_from_user`, `kernel_clone`, `copy_process`, `copy_semundo` order;
//! * Kingxukai/linux kernel/nsproxy.c @ 9b44fff655e2: `copy_namespaces`, `create_new_namespaces`;
//! * torvalds/linux kernel/fork.c @ b501d4dc83aa (≈6.3) for the same functions before the
//!   CLONE_NEWTIME fix a402f1e35313 and before 83b290c9e3b5 (PIDFD|THREAD allowed, 6.9).

#![deny(missing_docs)]

use crate::abi::errno::{CallResult, Errno};
use crate::abi::flags::{CSIGNAL, NON_USER_NAMESPACES, RawFlags, bits};
use crate::abi::ns::NsLink;
use crate::case::clone3_exit_signal;
use crate::env::Environment;

use super::checks::{Check, Ctx};
pub use super::expect::{ChildExpect, ChildLink, ChildTid, Clone3Expect};
use super::expect::{Creds, KcmpExpect, LinkExpect, PidExpect};
use super::profile::KernelProfile;
use super::state::{CallerState, PIDNS_MAX_LEVEL, PidChildren, USERNS_MAX_DEPTH};
use crate::case::{NsType, SetTidStep};

/// The bits `clone3_args_valid` lets through its first test: the 32 legacy bits and the two
/// clone3-only ones (CSIGNAL and DETACHED are refused by the second test).
const CLONE3_KNOWN: u64 = 0xffff_ffff | bits::CLEAR_SIGHAND | bits::INTO_CGROUP;

macro_rules! row {
    ($id:literal, $step:literal, $errno:ident, $doc:literal, $cond:expr) => {
        Check { id: $id, step: $step, errno: Errno::$errno, cond: $cond, doc: $doc }
    };
}

/// The id of the first row reached after `copy_semundo` (which gives the caller an undo
/// list for CLONE_SYSVSEM even if the call then fails).
pub const FIRST_ROW_AFTER_COPY_SEMUNDO: &str = "ns-needs-cap-sys-admin";
/// The id of the first row reached after `alloc_pid` (a failure there, for the first process
/// of a pending pid namespace, leaves that namespace unable to take any process).
pub const FIRST_ROW_AFTER_ALLOC_PID: &str = "clone3-into-cgroup-bad-fd";

/// clone3's sequence, in order, as on Linux 6.18; two rows exist only on older kernels and
/// read the profile (`newtime_blocks_threads`: 5.6 to 6.1; `clone3_pidfd_refuses_thread`:
/// before 6.9). `step` names the kernel function. Rows with the ids of unshare's table
/// ([`super::checks::CHECKS_6_18`]) are the same kernel code (create_user_ns,
/// copy_namespaces' helpers) reached from copy_process.
///
/// Not in the table, because the executor never provokes them: `exit_signal` with
/// THREAD|PARENT (it passes 0 then), a bad stack or a bad `set_tid`, PIDFD and PARENT_SETTID
/// sharing one pointer, EFAULT from the pointers (all valid), RLIMIT_NPROC/max_threads EAGAIN,
/// ENOMEM. See docs/clone3.md.
#[rustfmt::skip]
pub const CLONE3_CHECKS: &[Check] = &[
    row!("clone3-unknown-bit", "clone3_args_valid", EINVAL, "a bit outside the 32 legacy bits, CLEAR_SIGHAND and INTO_CGROUP (and the profile's newer clone3 bits)",
        |c| c.f & !(CLONE3_KNOWN | c.profile.clone3_extra_bits) != 0),
    row!("clone3-csignal-or-detached", "clone3_args_valid", EINVAL, "a CSIGNAL bit other than NEWTIME (exit_signal is its own field), or DETACHED",
        |c| c.has(bits::DETACHED | (CSIGNAL & !bits::NEWTIME))),
    row!("clone3-sighand-and-clear-sighand", "clone3_args_valid", EINVAL, "SIGHAND together with CLEAR_SIGHAND",
        |c| c.f & (bits::SIGHAND | bits::CLEAR_SIGHAND) == bits::SIGHAND | bits::CLEAR_SIGHAND),
    row!("clone-newns-with-fs", "copy_process", EINVAL, "NEWNS together with FS (no shared root across mount namespaces)",
        |c| c.f & (bits::NEWNS | bits::FS) == bits::NEWNS | bits::FS),
    row!("clone-newuser-with-fs", "copy_process", EINVAL, "NEWUSER together with FS",
        |c| c.f & (bits::NEWUSER | bits::FS) == bits::NEWUSER | bits::FS),
    row!("clone-thread-without-sighand", "copy_process", EINVAL, "THREAD without SIGHAND",
        |c| c.has(bits::THREAD) && !c.has(bits::SIGHAND)),
    row!("clone-sighand-without-vm", "copy_process", EINVAL, "SIGHAND without VM",
        |c| c.has(bits::SIGHAND) && !c.has(bits::VM)),
    row!("clone-parent-from-init", "copy_process", EINVAL, "PARENT from the init of a pid namespace (SIGNAL_UNKILLABLE)",
        |c| c.has(bits::PARENT) && c.state.is_init),
    row!("clone-thread-into-new-user-or-pid-ns", "copy_process", EINVAL, "THREAD together with NEWUSER or NEWPID",
        |c| c.has(bits::THREAD) && c.has(bits::NEWUSER | bits::NEWPID)),
    row!("clone-thread-after-newpid", "copy_process", EINVAL, "THREAD while pid_for_children is not the active pid namespace",
        |c| c.has(bits::THREAD) && c.state.pid_children != PidChildren::Active),
    row!("clone-vm-or-thread-after-newtime", "copy_process", EINVAL, "VM or THREAD while time_for_children differs from time (5.6 to 6.1; removed by 2b5f9dad32ed)",
        |c| c.profile.newtime_blocks_threads && c.has(bits::VM | bits::THREAD) && c.state.time_pending),
    row!("clone-pidfd-with-thread", "copy_process", EINVAL, "PIDFD together with THREAD (refused before 6.9; allowed by 83b290c9e3b5)",
        |c| c.profile.clone3_pidfd_refuses_thread && c.has(bits::PIDFD) && c.has(bits::THREAD)),
    row!("user-missing", "copy_creds", EINVAL, "NEWUSER on a kernel without user namespaces",
        |c| c.missing(bits::NEWUSER, NsLink::User)),
    row!("user-depth", "copy_creds", ENOSPC, "NEWUSER when the caller is already 33 levels deep",
        |c| c.has(bits::NEWUSER) && c.state.userns_depth.is_some_and(|d| d >= USERNS_MAX_DEPTH)),
    row!("user-ucount", "copy_creds", ENOSPC, "NEWUSER with max_user_namespaces exhausted",
        |c| c.has(bits::NEWUSER) && c.ucount_full(NsType::User)),
    row!("user-chrooted", "copy_creds", EPERM, "NEWUSER while chrooted",
        |c| c.has(bits::NEWUSER) && c.state.chrooted),
    row!("user-unmapped", "copy_creds", EPERM, "NEWUSER with euid or egid unmapped in the current user ns",
        |c| c.has(bits::NEWUSER) && !c.state.ids_mapped),
    row!("ns-needs-cap-sys-admin", "copy_namespaces", EPERM, "a non-user namespace without CAP_SYS_ADMIN in the target user ns",
        |c| c.has(NON_USER_NAMESPACES) && !c.target_has_sys_admin()),
    row!("clone-newipc-with-sysvsem", "copy_namespaces", EINVAL, "NEWIPC together with SYSVSEM (checked after the capability)",
        |c| c.f & (bits::NEWIPC | bits::SYSVSEM) == bits::NEWIPC | bits::SYSVSEM),
    row!("mnt-missing", "copy_mnt_ns", EINVAL, "NEWNS on a kernel without mount namespaces",
        |c| c.missing(bits::NEWNS, NsLink::Mnt)),
    row!("mnt-ucount", "copy_mnt_ns", ENOSPC, "NEWNS with max_mnt_namespaces exhausted",
        |c| c.has(bits::NEWNS) && c.ucount_full(NsType::Mnt)),
    row!("uts-missing", "copy_utsname", EINVAL, "NEWUTS without CONFIG_UTS_NS",
        |c| c.missing(bits::NEWUTS, NsLink::Uts)),
    row!("uts-ucount", "copy_utsname", ENOSPC, "NEWUTS with max_uts_namespaces exhausted",
        |c| c.has(bits::NEWUTS) && c.ucount_full(NsType::Uts)),
    row!("ipc-missing", "copy_ipcs", EINVAL, "NEWIPC without CONFIG_IPC_NS",
        |c| c.missing(bits::NEWIPC, NsLink::Ipc)),
    row!("ipc-ucount", "copy_ipcs", ENOSPC, "NEWIPC with max_ipc_namespaces exhausted",
        |c| c.has(bits::NEWIPC) && c.ucount_full(NsType::Ipc)),
    row!("pid-missing", "copy_pid_ns", EINVAL, "NEWPID without CONFIG_PID_NS",
        |c| c.missing(bits::NEWPID, NsLink::PidForChildren)),
    row!("pid-already-unshared", "copy_pid_ns", EINVAL, "NEWPID when pid_for_children is not the active pid ns",
        |c| c.has(bits::NEWPID) && c.state.pid_children != PidChildren::Active),
    row!("pid-owner-not-ancestor", "create_pid_namespace", EINVAL, "NEWPID where the target user ns does not descend from the owner of the pid ns being extended",
        |c| c.has(bits::NEWPID) && c.state.pid_owner_foreign),
    row!("pid-depth", "create_pid_namespace", ENOSPC, "NEWPID when the new pid namespace would be deeper than level 32",
        |c| c.has(bits::NEWPID) && c.state.pid_level.is_some_and(|l| l >= PIDNS_MAX_LEVEL)),
    row!("pid-ucount", "create_pid_namespace", ENOSPC, "NEWPID with max_pid_namespaces exhausted",
        |c| c.has(bits::NEWPID) && c.ucount_full(NsType::Pid)),
    row!("cgroup-ucount", "copy_cgroup_ns", ENOSPC, "NEWCGROUP with max_cgroup_namespaces exhausted",
        |c| c.has(bits::NEWCGROUP) && c.ucount_full(NsType::Cgroup)),
    row!("net-missing", "copy_net_ns", EINVAL, "NEWNET without CONFIG_NET_NS",
        |c| c.missing(bits::NEWNET, NsLink::Net)),
    row!("net-ucount", "copy_net_ns", ENOSPC, "NEWNET with max_net_namespaces exhausted",
        |c| c.has(bits::NEWNET) && c.ucount_full(NsType::Net)),
    row!("time-missing", "copy_time_ns", EINVAL, "NEWTIME without CONFIG_TIME_NS",
        |c| c.missing(bits::NEWTIME, NsLink::TimeForChildren)),
    row!("time-ucount", "copy_time_ns", ENOSPC, "NEWTIME with max_time_namespaces exhausted",
        |c| c.has(bits::NEWTIME) && c.ucount_full(NsType::Time)),
    row!("clone-pid-ns-dead", "alloc_pid", ENOMEM, "the pid namespace for children can take no process (its init exited, or its first fork failed)",
        |c| c.state.pid_children == PidChildren::Dead),
    row!("clone3-into-cgroup-bad-fd", "cgroup_can_fork", EBADF, "INTO_CGROUP with clone_args.cgroup not a cgroup v2 directory (the harness passes a closed fd)",
        |c| c.has(bits::INTO_CGROUP)),
];

/// The row of the clone3 table that `alloc_pid` decides: its set_tid checks come just before.
const ALLOC_PID_ROW: &str = "clone-pid-ns-dead";

/// The position of `id` in the clone3 table.
fn position(id: &str) -> usize {
    CLONE3_CHECKS.iter().position(|r| r.id == id).unwrap_or(CLONE3_CHECKS.len())
}

fn child_links(profile: &KernelProfile, f: RawFlags, env: &Environment) -> [ChildLink; NsLink::COUNT] {
    let new = |bit: u64, link: NsLink| {
        if f.intersects(bit) && env.has_link(link) { ChildLink::Fresh } else { ChildLink::ParentBefore(link) }
    };
    let mut l = [ChildLink::Fresh; NsLink::COUNT];
    l[NsLink::Cgroup.index()] = new(bits::NEWCGROUP, NsLink::Cgroup);
    l[NsLink::Ipc.index()] = new(bits::NEWIPC, NsLink::Ipc);
    l[NsLink::Mnt.index()] = new(bits::NEWNS, NsLink::Mnt);
    l[NsLink::Net.index()] = new(bits::NEWNET, NsLink::Net);
    l[NsLink::User.index()] = new(bits::NEWUSER, NsLink::User);
    l[NsLink::Uts.index()] = new(bits::NEWUTS, NsLink::Uts);
    let newpid = f.intersects(bits::NEWPID) && env.has_link(NsLink::PidForChildren);
    // Without NEWPID the child lives in the parent's pid_for_children (its first process if
    // that namespace was pending); with it, it is the init of a new one.
    l[NsLink::Pid.index()] = if newpid { ChildLink::Fresh } else { ChildLink::ParentAfter(NsLink::PidForChildren) };
    l[NsLink::PidForChildren.index()] =
        if newpid { ChildLink::Child(NsLink::Pid) } else { ChildLink::ParentAfter(NsLink::PidForChildren) };
    // copy_namespaces: a CLONE_VM child keeps the caller's time namespace (timens_on_fork is
    // skipped); any other child enters time_for_children, new with NEWTIME. Before 6.2
    // (2b5f9dad32ed, the profiles with `newtime_blocks_threads`) every child entered it, VM or
    // not (measured on 5.10.262 and 6.1.192).
    let newtime = f.intersects(bits::NEWTIME) && env.has_link(NsLink::TimeForChildren);
    let vm = f.intersects(bits::VM) && !profile.newtime_blocks_threads;
    l[NsLink::TimeForChildren.index()] = match (newtime, vm) {
        (true, true) => ChildLink::Fresh,
        (true, false) => ChildLink::Child(NsLink::Time),
        (false, _) => ChildLink::ParentBefore(NsLink::TimeForChildren),
    };
    l[NsLink::Time.index()] = match (newtime, vm) {
        (_, true) => ChildLink::ParentBefore(NsLink::Time),
        (true, false) => ChildLink::Fresh,
        (false, false) => ChildLink::ParentBefore(NsLink::TimeForChildren),
    };
    l
}

/// The child is the init of a pid namespace: a new one (NEWPID), or the pending one an
/// unshare(NEWPID) left for the caller's first child.
fn child_is_init(f: RawFlags, state: &CallerState) -> bool {
    f.intersects(bits::NEWPID) || state.pid_children == PidChildren::Pending
}

/// The child's exit sets SIGCHLD to SIG_IGN in the caller's handlers: a pid-ns init that
/// shares them (zap_pid_ns_processes, kernel/pid_namespace.c).
fn ignores_sigchld_at_exit(f: RawFlags, state: &CallerState) -> bool {
    child_is_init(f, state) && f.intersects(bits::SIGHAND)
}

/// The child outlives the step as a zombie that still holds the caller's signal handlers: a
/// CLONE_SIGHAND|CLONE_PARENT process is its parent's (the caller's parent's) to reap, and
/// `release_task` → `__exit_signal` → `__cleanup_sighand` only drops its `sighand->count`
/// reference then. copy_process gives it the caller's own exit signal (SIGCHLD here, whatever
/// clone_args.exit_signal says), so `do_notify_parent` reaps it at exit only when that parent
/// ignores SIGCHLD. A CLONE_THREAD child never stays: exit_notify releases a sub-thread at once.
fn leaves_sighand_zombie(f: RawFlags, state: &CallerState) -> bool {
    f.intersects(bits::SIGHAND)
        && f.intersects(bits::PARENT)
        && !f.intersects(bits::THREAD)
        && !state.parent_ignores_sigchld
}

fn child_expect(profile: &KernelProfile, f: RawFlags, env: &Environment, state: &CallerState) -> ChildExpect {
    let same = |bit: u64| if f.intersects(bit) { KcmpExpect::Same } else { KcmpExpect::Different };
    // KCMP_SYSVSEM compares undo-list pointers: without CLONE_SYSVSEM the child has none, which
    // equals the caller's only if the caller has none either.
    let sysvsem =
        if f.intersects(bits::SYSVSEM) || !state.undo_list { KcmpExpect::Same } else { KcmpExpect::Different };
    let other_pid_ns = child_is_init(f, state);
    let kcmp_blind = f.intersects(bits::VFORK) && (other_pid_ns || f.intersects(bits::NEWUSER));
    // A thread is never reaped by its creator, a CLONE_PARENT child is its parent's; any other
    // child is auto-reaped (no SIGCHLD, waitpid ECHILD) once SIGCHLD is ignored, which its own
    // exit does when it is a pid-ns init sharing our handlers.
    let ignored_at_exit = state.sigchld_ignored || ignores_sigchld_at_exit(f, state);
    let reaped = !f.intersects(bits::THREAD | bits::PARENT) && !ignored_at_exit;
    let creds = if f.intersects(bits::NEWUSER) {
        Creds { uid: env.overflow_uid, gid: env.overflow_gid, cap_eff: env.full_caps() }
    } else {
        Creds { uid: state.uid, gid: state.gid, cap_eff: state.cap_eff }
    };
    ChildExpect {
        links: child_links(profile, f, env),
        tid: if other_pid_ns { ChildTid::One } else { ChildTid::Returned },
        creds,
        kcmp: (!kcmp_blind).then_some([
            same(bits::FILES),
            same(bits::FS),
            same(bits::VM),
            same(bits::SIGHAND),
            sysvsem,
        ]),
        reaped_by_caller: reaped,
        sigchld: (state.threads == 1).then_some(reaped),
        pidfd: f.intersects(bits::PIDFD),
        parent_tid: f.intersects(bits::PARENT_SETTID),
        set_tid: None,
    }
}

/// Predicts one clone3 call and updates `state` (the caller's) as the kernel would.
pub(super) fn decide(
    profile: &KernelProfile,
    env: &Environment,
    state: &mut CallerState,
    flags: RawFlags,
) -> super::Decided {
    decide_with(profile, env, state, flags, None)
}

/// [`decide`] for a clone3 call with the `set_tid` of a clone3_set_tid step (`model::set_tid`).
pub(super) fn decide_with(
    profile: &KernelProfile,
    env: &Environment,
    state: &mut CallerState,
    flags: RawFlags,
    set_tid: Option<&SetTidStep>,
) -> super::Decided {
    if super::limits::clone3_missing(env) {
        let mut d = super::refused(flags, Errno::ENOSYS, super::limits::CLONE3_MISSING_RULE);
        d.clone3 =
            Some(Clone3Expect { flags, exit_signal: clone3_exit_signal(flags), child: None, undo_list_made: false });
        return d;
    }
    let ctx = Ctx { f: flags.0, valid_mask: crate::abi::flags::CLONE3_VALID_MASK, state, env, profile };
    let mut failing = super::checks::all_failing(CLONE3_CHECKS, &ctx);
    let mut reached = failing.first().map_or(CLONE3_CHECKS.len(), |r| position(r.id));
    let exact = env.headroom.pid_exact();
    let set_tid_unknown = set_tid.and_then(|st| {
        super::set_tid::splice(ctx.state, exact, st, &mut failing, &mut reached, position(ALLOC_PID_ROW))
    });
    if let Some(reason) = super::limits::unknowable(CLONE3_CHECKS, &ctx, reached).or(set_tid_unknown) {
        state.unknowable.get_or_insert(reason);
    }
    let undo_list_made =
        flags.intersects(bits::SYSVSEM) && !state.undo_list && reached >= position(FIRST_ROW_AFTER_COPY_SEMUNDO);
    if flags.intersects(bits::SYSVSEM) && reached >= position(FIRST_ROW_AFTER_COPY_SEMUNDO) {
        state.undo_list = true;
    }
    let mut links = [LinkExpect::Unchanged; NsLink::COUNT];
    let mut expect = Clone3Expect { flags, exit_signal: clone3_exit_signal(flags), child: None, undo_list_made };
    let (result, rule, also_failing) = match failing.split_first() {
        Some((first, rest)) => {
            // free_pid of a pending namespace's first pid clears PIDNS_ADDING for good (up to
            // 6.18; 7.3.4 keeps the namespace pending).
            if profile.failed_first_child_kills_pending_pidns
                && state.pid_children == PidChildren::Pending
                && !flags.intersects(bits::NEWPID)
                && reached >= position(FIRST_ROW_AFTER_ALLOC_PID)
            {
                state.pid_children = PidChildren::Dead;
            }
            (CallResult::Failure(first.errno), first.id, rest.iter().map(|r| r.id).collect())
        }
        None => {
            let mut child = child_expect(profile, flags, env, state);
            child.set_tid = set_tid.and_then(|st| super::set_tid::expect(state, st));
            expect.child = Some(child);
            state.sigchld_ignored |= ignores_sigchld_at_exit(flags, state);
            state.sighand_held_by_zombie |= leaves_sighand_zombie(flags, state);
            if state.pid_children == PidChildren::Pending {
                // The child was the new namespace's init; it has exited, the namespace is dead
                // and pid_for_children becomes readable (as after fork + exit), unless this
                // kernel showed it at once.
                if !profile.pid_for_children_visible_at_once {
                    links[NsLink::PidForChildren.index()] = LinkExpect::Fresh;
                }
                state.pid_children = PidChildren::Dead;
            }
            (CallResult::Success, "success", Vec::new())
        }
    };
    super::Decided {
        effective: flags,
        result,
        rule,
        also_failing,
        links,
        pid: PidExpect::Unchanged,
        cwd_changes: false,
        clone3: Some(expect),
        // The caller's fs_struct is never replaced by clone3 (its child gets a copy or shares it).
        fs_struct_kept: true,
        // copy_process copies the fs_struct before copy_namespaces: a failed clone3 never
        // touches the caller's root (spec §6 M12 is an unshare bug only).
        root_detached: false,
    }
}

#[cfg(test)]
mod tests;
