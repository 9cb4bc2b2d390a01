//! The named invariants: each a stable id, a sentence, what it needs from the
//! environment, and a check over one step (prediction next to observation).
//! The ids are part of the reports' public shape: never rename one.

#![deny(missing_docs)]

use crate::abi::errno::{CallResult, Errno};
use crate::abi::flags::bits;
use crate::abi::ns::NsLink;
use crate::exec::observe::NsValue;
use crate::model::{LinkExpect, PidExpect};

// The context and vocabulary of a step check live in `step.rs`, below this table and
// `clone3.rs`, which both use them.
use super::sharing::{
    files_private_after_unshare, fs_private_after_unshare, fs_struct_kept_unless_copied, kcmp_matches_model,
    newns_and_newuser_imply_fs, noop_flags_change_nothing, sighand_einval_when_shared, sysvsem_undo_detached,
    thread_einval_when_multithreaded, vm_unshare_einval_when_shared,
};
pub use super::step::{Invariant, StepCheck, StepCtx};
use super::step::{link_problems, needs_kcmp, needs_link, nothing_needed, state_diff, verdict};

fn unknown_bits_einval(ctx: &StepCtx) -> Option<Result<(), String>> {
    if !ctx.is_unshare || ctx.expected.unknown_bits == 0 {
        return None;
    }
    Some(match ctx.observed.result {
        CallResult::Failure(Errno::EINVAL) => unchanged(ctx),
        other => {
            Err(format!("bits {:#x} are unknown to unshare, expected EINVAL, got {other}", ctx.expected.unknown_bits))
        }
    })
}

fn int80_passes_low_32_bits(ctx: &StepCtx) -> Option<Result<(), String>> {
    if ctx.dropped_bits == 0 {
        return None;
    }
    let low = format!("through int $0x80 the kernel should see only the low 32 bits {}", ctx.flags);
    errno_matches_model(ctx).map(|r| r.map_err(|e| format!("{low} (dropping {:#x}): {e}", ctx.dropped_bits)))
}

fn unchanged(ctx: &StepCtx) -> Result<(), String> {
    super::step::unchanged_state(ctx)
}

fn errno_matches_model(ctx: &StepCtx) -> Option<Result<(), String>> {
    let (want, got) = (ctx.expected.result, ctx.observed.result);
    Some(if want == got {
        Ok(())
    } else {
        Err(format!("model expected {want} (rule {}), got {got}", ctx.expected.rule))
    })
}

fn errno_precedence(ctx: &StepCtx) -> Option<Result<(), String>> {
    if ctx.expected.also_failing.is_empty() {
        return None;
    }
    let (want, got) = (ctx.expected.result, ctx.observed.result);
    Some(if want == got {
        Ok(())
    } else {
        Err(format!(
            "several checks fail ({} first, then {}); expected {want}, got {got}",
            ctx.expected.rule,
            ctx.expected.also_failing.join(", ")
        ))
    })
}

fn failure_changes_nothing(ctx: &StepCtx) -> Option<Result<(), String>> {
    // A clone3 that reached copy_semundo with CLONE_SYSVSEM leaves the caller an undo list even
    // when it fails; clone3-matches-model judges those steps with that one exception.
    if ctx.observed.result.is_success() || ctx.expected.clone3.as_ref().is_some_and(|c| c.undo_list_made) {
        return None;
    }
    // A thread_call step whose thread's unshare failed leaves that thread behind (one thread
    // more): thread-call-changes-only-the-thread judges it.
    if ctx.expected.thread_call.is_some() {
        return None;
    }
    if ctx.expected.root_detached {
        return Some(only_root_detached(ctx));
    }
    Some(unchanged(ctx))
}

/// A failed NEWNS call on a kernel without the unshare_fs fix (spec §6 M12) changes nothing but
/// the caller's root and cwd, which now lie on a detached copy of the mount tree. When the
/// copy's mounts were not locked, nothing is mounted below that root any more: every link the
/// model says so reads its errno (ENOENT: /proc is an empty directory there), and the thread
/// count, read from /proc/self/task, can no longer be read (ENOENT). Everything else, cwd's
/// (dev, ino) included, must be as before.
fn only_root_detached(ctx: &StepCtx) -> Result<(), String> {
    let after = &ctx.observed.after;
    let mut want = ctx.before.clone();
    for link in NsLink::ALL {
        if let LinkExpect::Unreadable(e) = ctx.expected.links[link.index()] {
            want.ns[link.index()] = NsValue::Error(e);
        }
    }
    let mut problems = Vec::new();
    if ctx.expected.proc_visible {
        // The copy's mounts were locked and stay attached to the detached root: /proc is there.
    } else if after.threads_error == Some(Errno::ENOENT) {
        (want.threads, want.threads_error) = (after.threads, after.threads_error);
    } else if after.threads_error.is_none() {
        problems.push(format!(
            "/proc/self/task should be gone with the detached root, but {} threads were read",
            after.threads
        ));
        want.threads = after.threads;
    }
    problems.extend(state_diff(&want, after));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("a failed NEWNS should only detach root and cwd (spec §6 M12): {}", problems.join(", ")))
    }
}

fn success_changes_exactly_predicted(ctx: &StepCtx) -> Option<Result<(), String>> {
    if !(ctx.observed.result.is_success() && ctx.expected.result.is_success()) {
        return None;
    }
    let (b, a, e) = (ctx.before, &ctx.observed.after, ctx.expected);
    let mut problems = link_problems(ctx);
    let c = e.creds;
    if (a.uid, a.gid, a.euid, a.egid, a.cap_eff) != (c.uid, c.gid, c.uid, c.gid, c.cap_eff) {
        problems.push(format!(
            "credentials: expected uid/gid {}/{} CapEff {:#x}, got uid {} gid {} euid {} egid {} CapEff {:#x}",
            c.uid, c.gid, c.cap_eff, a.uid, a.gid, a.euid, a.egid, a.cap_eff
        ));
    }
    let pid_ok = match e.pid {
        PidExpect::Unchanged => a.pid == b.pid,
        PidExpect::Changed => a.pid != b.pid,
        PidExpect::One => a.pid == 1,
    };
    if !pid_ok {
        problems.push(format!("getpid {} -> {}, expected {:?}", b.pid, a.pid, e.pid));
    }
    if a.threads != e.threads {
        problems.push(format!("threads {} -> {}, expected {}", b.threads, a.threads, e.threads));
    }
    if !e.cwd_changes && a.cwd != b.cwd {
        problems.push(format!("cwd changed {:?} -> {:?}", b.cwd, a.cwd));
    }
    if a.umask != b.umask {
        problems.push(format!("umask changed {:o} -> {:o}", b.umask, a.umask));
    }
    if a.fd_flags != b.fd_flags {
        problems.push(format!("fd flags changed {:?} -> {:?}", b.fd_flags, a.fd_flags));
    }
    verdict(problems)
}

fn newpid_affects_children_only(ctx: &StepCtx) -> Option<Result<(), String>> {
    if !(ctx.is_unshare && ctx.flags.intersects(bits::NEWPID) && ctx.observed.result.is_success()) {
        return None;
    }
    let after = &ctx.observed.after;
    let mut problems = Vec::new();
    if after.link(NsLink::Pid) != ctx.before.link(NsLink::Pid) {
        problems.push("the caller's own ns/pid changed".to_string());
    }
    if after.pid != ctx.before.pid {
        problems.push(format!("getpid changed {} -> {}", ctx.before.pid, after.pid));
    }
    if after.link(NsLink::PidForChildren) == ctx.before.link(NsLink::PidForChildren) {
        problems.push("ns/pid_for_children did not change".to_string());
    }
    verdict(problems)
}

fn newtime_affects_children_only(ctx: &StepCtx) -> Option<Result<(), String>> {
    if !(ctx.is_unshare && ctx.flags.intersects(bits::NEWTIME) && ctx.observed.result.is_success()) {
        return None;
    }
    let after = &ctx.observed.after;
    let mut problems = Vec::new();
    if after.link(NsLink::Time) != ctx.before.link(NsLink::Time) {
        problems.push("the caller's own ns/time changed".to_string());
    }
    match (ctx.before.link(NsLink::TimeForChildren), after.link(NsLink::TimeForChildren)) {
        (was, now) if was == now => problems.push("ns/time_for_children did not change".to_string()),
        (_, NsValue::Error(e)) => problems.push(format!("ns/time_for_children unreadable after NEWTIME: {e}")),
        _ => {}
    }
    verdict(problems)
}

fn newuser_credentials(ctx: &StepCtx) -> Option<Result<(), String>> {
    if !(ctx.is_unshare && ctx.flags.intersects(bits::NEWUSER) && ctx.observed.result.is_success()) {
        return None;
    }
    let a = &ctx.observed.after;
    let (ou, og, full) = (ctx.env.overflow_uid, ctx.env.overflow_gid, ctx.env.full_caps());
    Some(if (a.uid, a.euid, a.gid, a.egid, a.cap_eff) == (ou, ou, og, og, full) {
        Ok(())
    } else {
        Err(format!(
            "after NEWUSER expected uid/euid {ou}, gid/egid {og} (unmapped overflow ids) and CapEff {full:#x}; got uid {} euid {} gid {} egid {} CapEff {:#x}",
            a.uid, a.euid, a.gid, a.egid, a.cap_eff
        ))
    })
}

/// Every step-level invariant, in report order.
pub const INVARIANTS: &[Invariant] = &[
    Invariant {
        id: "unknown-bits-einval",
        doc: "a flag word with a bit unshare does not know fails with EINVAL and changes nothing",
        needs: nothing_needed,
        check: unknown_bits_einval,
    },
    Invariant {
        id: "int80-passes-low-32-bits",
        doc: "unshare through the i386 entry (int $0x80) sees only the low 32 bits of the word: bits above them change nothing, the result is that of the low word",
        needs: nothing_needed,
        check: int80_passes_low_32_bits,
    },
    Invariant {
        id: "errno-matches-model",
        doc: "every call returns what the model predicts: success, or the errno of the first failing check",
        needs: nothing_needed,
        check: errno_matches_model,
    },
    Invariant {
        id: "errno-precedence",
        doc: "when several checks would fail, the errno is that of the first in the kernel's order (spec §2.2)",
        needs: nothing_needed,
        check: errno_precedence,
    },
    Invariant {
        id: "failure-changes-nothing",
        doc: "a failed call changes no namespace, id, capability, thread, cwd, umask, semaphore, sharing or fd flag",
        needs: nothing_needed,
        check: failure_changes_nothing,
    },
    Invariant {
        id: "success-changes-exactly-predicted",
        doc: "a successful call gives exactly the predicted namespaces new inodes (not alive before) and changes ids, pid, threads and cwd only as predicted",
        needs: nothing_needed,
        check: success_changes_exactly_predicted,
    },
    Invariant {
        id: "newpid-affects-children-only",
        doc: "NEWPID changes only pid_for_children; the caller keeps its pid and its pid namespace",
        needs: |env| needs_link(env, NsLink::PidForChildren, "pid namespaces"),
        check: newpid_affects_children_only,
    },
    Invariant {
        id: "newtime-affects-children-only",
        doc: "NEWTIME changes only time_for_children; the caller stays in its time namespace",
        needs: |env| needs_link(env, NsLink::TimeForChildren, "time namespaces"),
        check: newtime_affects_children_only,
    },
    Invariant {
        id: "newuser-credentials",
        doc: "after NEWUSER the ids read as the overflow ids until mapped, and CapEff is the full set",
        needs: |env| needs_link(env, NsLink::User, "user namespaces"),
        check: newuser_credentials,
    },
    Invariant {
        id: "noop-flags-change-nothing",
        doc: "THREAD, SIGHAND, VM, FS, FILES, SYSVSEM and 0 never change a namespace link, an id or a capability",
        needs: nothing_needed,
        check: noop_flags_change_nothing,
    },
    Invariant {
        id: "kcmp-matches-model",
        doc: "after every step, kcmp against each sibling shows exactly the sharing the model predicts",
        needs: needs_kcmp,
        check: kcmp_matches_model,
    },
    Invariant {
        id: "files-private-after-unshare",
        doc: "FILES with a shared fd table makes it private: the same open file descriptions, FD_CLOEXEC kept, later opens invisible to the other side",
        needs: needs_kcmp,
        check: files_private_after_unshare,
    },
    Invariant {
        id: "fs-private-after-unshare",
        doc: "FS with a shared fs_struct makes it private with the same root, cwd and umask; the sibling's chdir/umask no longer reach us",
        needs: needs_kcmp,
        check: fs_private_after_unshare,
    },
    Invariant {
        id: "newns-and-newuser-imply-fs",
        doc: "NEWNS and NEWUSER unshare a shared fs_struct even without FS",
        needs: needs_kcmp,
        check: newns_and_newuser_imply_fs,
    },
    Invariant {
        id: "fs-struct-kept-unless-copied",
        doc: "a successful call replaces the caller's fs_struct (kcmp FS against a sibling changes) only when the model copies it: FS while shared, NEWNS since the 2026 unshare_fs fix",
        needs: needs_kcmp,
        check: fs_struct_kept_unless_copied,
    },
    Invariant {
        id: "vm-unshare-einval-when-shared",
        doc: "VM never unshares memory: EINVAL when the mm is shared, a no-op otherwise",
        needs: nothing_needed,
        check: vm_unshare_einval_when_shared,
    },
    Invariant {
        id: "sighand-einval-when-shared",
        doc: "SIGHAND (and VM) fail with EINVAL while the signal handlers are shared",
        needs: nothing_needed,
        check: sighand_einval_when_shared,
    },
    Invariant {
        id: "thread-einval-when-multithreaded",
        doc: "THREAD (and SIGHAND, VM, NEWUSER) fail with EINVAL in a multithreaded process",
        needs: nothing_needed,
        check: thread_einval_when_multithreaded,
    },
    Invariant {
        id: "sysvsem-undo-detached",
        doc: "SYSVSEM and NEWIPC detach the undo list: applied now if we were its last user, later if shared",
        needs: nothing_needed,
        check: sysvsem_undo_detached,
    },
    Invariant {
        id: "clone3-matches-model",
        doc: "a clone3 step returns what the model predicts, and its child shows the predicted namespaces, TID, ids, kcmp against the parent, reaping, SIGCHLD, pidfd and parent_tid; a failed one changes nothing in the caller (but the undo list SYSVSEM may give it)",
        needs: nothing_needed,
        check: super::clone3::clone3_matches_model,
    },
    Invariant {
        id: "files-fs-opposite-meanings",
        doc: "FILES and FS mean 'share' in clone3 (kcmp with the child 0 with the flag, not 0 without) and 'make a private copy' in unshare (kcmp with the sharing sibling not 0 afterwards)",
        needs: needs_kcmp,
        check: super::clone3::files_fs_opposite_meanings,
    },
    Invariant {
        id: "files-emfile-over-nr-open",
        doc: "FILES with a shared fd table whose highest fd needs a table (rounded up to 64) larger than the lowered fs.nr_open fails with EMFILE and changes nothing, the table still shared (guest-only; spec §3 step 6)",
        needs: nothing_needed,
        check: super::guest_rows::files_emfile_over_nr_open,
    },
    Invariant {
        id: "fault-injection-enomem-or-predicted",
        doc: "under fail-nth the armed unshare returns the model's prediction, or ENOMEM with nothing changed (guest-only; every allocation of ksys_unshare precedes its commit point)",
        needs: nothing_needed,
        check: super::fault::enomem_or_predicted,
    },
    Invariant {
        id: "missing-namespace-type-einval",
        doc: "a namespace flag whose type the kernel was built without (CONFIG_UTS_NS=n and friends) fails with EINVAL and changes nothing",
        needs: nothing_needed,
        check: super::guest_rows::missing_namespace_type_einval,
    },
    Invariant {
        id: "caps-only-sys-admin-decides",
        doc: "an unshare made while capabilities other than CAP_SYS_ADMIN are missing from the effective set (dropped, or cleared by a uid change under PR_SET_KEEPCAPS) gets the result the model computes from CAP_SYS_ADMIN alone",
        needs: nothing_needed,
        check: super::caps::only_sys_admin_decides,
    },
    Invariant {
        id: "thread-call-changes-only-the-thread",
        doc: "an unshare from a thread other than the main one, while the main thread is alive, gives the model's result (THREAD, SIGHAND, VM and NEWUSER fail with EINVAL), changes that thread's own namespaces as predicted and nothing of the main thread but its thread count",
        needs: nothing_needed,
        check: super::caps::changes_only_the_thread,
    },
];

/// Invariants that read /proc (namespace links, thread count, umask), skipped after the
/// caller lost /proc (UNSHARE_EMPTY_MNTNS).
pub const NEEDS_PROC: &[&str] = &[
    "success-changes-exactly-predicted",
    "newpid-affects-children-only",
    "newtime-affects-children-only",
    "noop-flags-change-nothing",
    "fs-private-after-unshare",
    "failure-changes-nothing",
    "unknown-bits-einval",
    "clone3-matches-model",
    "clone3-and-unshare-agree-on-namespaces",
    "thread-call-changes-only-the-thread",
];

/// Case-level invariant: the case's process ends by itself, within the timeout, without a signal.
pub const CASE_COMPLETES: &str = "case-completes";

/// Not checked per case: the executor checks, before it writes anything, that every namespace
/// of its outer sandbox that unshare reported as made is new (`exec::executor::sandbox::verify`). A kernel
/// that fails it is refused (exit 1), or on a kernel declared a throwaway counted once per
/// finding ([`super::Tally::add_environment`]).
pub const SANDBOX_NAMESPACES_ARE_NEW: &str = crate::exec::executor::sandbox::SANDBOX_INVARIANT;

/// The errno conditions of spec §3 that the harness can provoke safely: (rule id, errno, spec reference).
pub const PROVOKABLE: &[(&str, &str, &str)] = &[
    ("unknown-bit", "EINVAL", "§3 EINVAL (a)"),
    ("thread-multithreaded", "EINVAL", "§3 EINVAL (b)"),
    ("sighand-shared", "EINVAL", "§3 EINVAL (c)"),
    ("vm-shared", "EINVAL", "§3 EINVAL (d)"),
    ("pid-already-unshared", "EINVAL", "§3 EINVAL (e)"),
    ("pid-owner-not-ancestor", "EINVAL", "§3 EINVAL (f)"),
    ("ns-needs-cap-sys-admin", "EPERM", "§3 EPERM (a)"),
    ("user-chrooted", "EPERM", "§3 EPERM (b)"),
    ("user-unmapped", "EPERM", "§3 EPERM (c)"),
    ("user-depth", "ENOSPC", "§3 ENOSPC (a)"),
    ("pid-depth", "ENOSPC", "§3 ENOSPC (b)"),
    ("user-ucount", "ENOSPC", "§3 ENOSPC (c) user"),
    ("mnt-ucount", "ENOSPC", "§3 ENOSPC (c) mnt"),
    ("uts-ucount", "ENOSPC", "§3 ENOSPC (c) uts"),
    ("ipc-ucount", "ENOSPC", "§3 ENOSPC (c) ipc"),
    ("pid-ucount", "ENOSPC", "§3 ENOSPC (c) pid"),
    ("cgroup-ucount", "ENOSPC", "§3 ENOSPC (c) cgroup"),
    ("net-ucount", "ENOSPC", "§3 ENOSPC (c) net"),
    ("time-ucount", "ENOSPC", "§3 ENOSPC (c) time"),
    ("thread-after-newpid", "EINVAL", "§3 not unshare's own: pthread_create after NEWPID"),
    ("fork-after-init-exit", "ENOMEM", "§3 not unshare's own: fork after the new init exited"),
    ("files-over-nr-open", "EMFILE", "§3 EMFILE (guest-only: lowered fs.nr_open)"),
    ("fault-injected-enomem", "ENOMEM", "§3 ENOMEM (guest-only: fail-nth)"),
    ("uts-missing", "EINVAL", "§3 EINVAL (g) uts (kernel without it)"),
    ("ipc-missing", "EINVAL", "§3 EINVAL (g) ipc (kernel without it)"),
    ("time-missing", "EINVAL", "§3 EINVAL (g) time (kernel without it)"),
    ("caps-bound-needs-cap-setpcap", "EPERM", "not unshare's own: PR_CAPBSET_DROP without CAP_SETPCAP (caps step)"),
    ("caps-setresuid-needs-cap-setuid", "EPERM", "not unshare's own: setresuid(65534) without CAP_SETUID (caps step)"),
    ("caps-nobody-unmapped", "EINVAL", "not unshare's own: setresuid to an unmapped uid 65534 (caps step)"),
    (
        "caps-root-map-needs-setfcap",
        "EPERM",
        "not unshare's own: uid_map \"0 0 1\" after a NEWUSER made without CAP_SETFCAP",
    ),
    // setns steps (issue 16 class 4, model::setns): not unshare's own, the spec's setns notes.
    ("setns-pid-for-children-pending", "ENOENT", "setns: pid_for_children before its init"),
    ("setns-nstype-mismatch", "EINVAL", "setns: nstype not the file's type"),
    ("setns-pidfd-flags-invalid", "EINVAL", "setns: pidfd with nstype 0 or no ns type"),
    ("setns-pidfd-exited", "ESRCH", "setns: pidfd of a reaped process"),
    ("setns-time-not-single-threaded", "EUSERS", "setns: time ns with the mm shared"),
    ("setns-userns-same", "EINVAL", "setns: own user ns"),
    ("setns-userns-multithreaded", "EINVAL", "setns: user ns, multithreaded"),
    ("setns-userns-no-cap-in-target", "EPERM", "setns: user ns without CAP_SYS_ADMIN in it"),
    ("setns-needs-cap-sys-admin", "EPERM", "setns: no CAP_SYS_ADMIN"),
    ("setns-owner-userns-no-cap", "EPERM", "setns: no CAP_SYS_ADMIN over the owner"),
    ("setns-pidns-not-descendant", "EINVAL", "setns: pid ns not a descendant"),
    // clone3 set_tid (issue 16 class 4, model::set_tid): not unshare's own.
    ("set-tid-size-over-max", "EINVAL", "clone3 set_tid: set_tid_size above 32"),
    ("set-tid-size-without-array", "EINVAL", "clone3 set_tid: a size without an array"),
    ("set-tid-array-without-size", "EINVAL", "clone3 set_tid: an array with size 0"),
    ("set-tid-size-above-levels", "EINVAL", "clone3 set_tid: size above the pid-ns level + 1"),
    ("set-tid-out-of-range", "EINVAL", "clone3 set_tid: a pid below 1 or not below pid_max"),
    ("set-tid-no-init-yet", "EINVAL", "clone3 set_tid: a pid other than 1 in a pid ns without init"),
    ("set-tid-no-cap-over-owner", "EPERM", "clone3 set_tid: no CAP_CHECKPOINT_RESTORE over the owner"),
    ("set-tid-in-use", "EEXIST", "clone3 set_tid: the pid is in use"),
    // idmap steps (issue 16 class 3, model::idmap): the caller's own uid_map, gid_map, setgroups.
    ("idmap-setgroups-needs-cap-sys-admin", "EACCES", "idmap: setgroups opened for writing without CAP_SYS_ADMIN"),
    ("idmap-setgroups-after-gid-map", "EPERM", "idmap: setgroups deny once the gid map is written"),
    ("idmap-map-already-written", "EPERM", "idmap: a map written twice, or not of a namespace made by a step"),
    ("idmap-map-needs-cap-sys-admin", "EPERM", "idmap: a map written without CAP_SYS_ADMIN in its namespace"),
    ("idmap-extent-invalid", "EINVAL", "idmap: an extent of count 0 or overlapping extents"),
    ("idmap-unprivileged-needs-own-id", "EPERM", "idmap: not one extent of count 1 mapping the writer's own id"),
    ("idmap-gid-needs-setgroups-deny", "EPERM", "idmap: the own gid while setgroups is allow"),
    // witness_idmap steps (issue 16 class 3, model::idmap_witness): the parent writes the
    // caller's maps. Its other rules (no /proc, no CAP_DAC_OVERRIDE, no CAP_SETFCAP) need a
    // witness the setups cannot make: model::idmap_witness's unit tests cover them.
    (
        "witness-idmap-setgroups-needs-cap-sys-admin",
        "EACCES",
        "witness_idmap: setgroups opened without CAP_SYS_ADMIN over the caller's namespace",
    ),
    ("witness-idmap-not-parent", "EPERM", "witness_idmap: the caller's namespace is a grandchild of the witness's"),
    ("witness-idmap-map-needs-cap-sys-admin", "EPERM", "witness_idmap: no CAP_SYS_ADMIN over the caller's namespace"),
    ("witness-idmap-needs-setid", "EPERM", "witness_idmap: more than the own id without CAP_SETUID/CAP_SETGID"),
    ("witness-idmap-outer-id-unmapped", "EPERM", "witness_idmap: an outer id the witness's namespace does not map"),
];
