//! Lowers one case into straight-line C: `case_setup()`, the setup operations this case needs
//! in the order the executor builds them (`exec/child/setup.rs`, each named by its
//! [`SetupOp`]), and `case_steps()`, its steps and behavioural probes as `exec/child.rs` runs
//! them. The C primitives they call live in `setup.c` and `clone3.c`.

use std::fmt::Write;

use super::{ReproError, c_str};
use crate::case::idmap::IdmapLines;
use crate::case::{Case, Chroot, Privilege, Setup, Sibling, Step};
use crate::exec::child::record::{FDS, SIBS, SetupOp};
use crate::model::Expected;

/// The setup operations the C code names (`OP_*`, defined from [`SetupOp::describe`]).
pub(super) const SETUP_OPS: [(&str, SetupOp); 28] = [
    ("OP_SETPGID", SetupOp::Setpgid),
    ("OP_PDEATHSIG", SetupOp::Pdeathsig),
    ("OP_CAPSET_DROP_SYS_ADMIN", SetupOp::CapsetDropSysAdmin),
    ("OP_SETGROUPS", SetupOp::Setgroups),
    ("OP_SETGID_NOBODY", SetupOp::SetgidNobody),
    ("OP_SETUID_NOBODY", SetupOp::SetuidNobody),
    ("OP_DUMPABLE", SetupOp::Dumpable),
    ("OP_UNSHARE_USER_NS", SetupOp::UnshareUserNs),
    ("OP_WRITE_SETGROUPS", SetupOp::WriteSetgroups),
    ("OP_WRITE_UID_MAP", SetupOp::WriteUidMap),
    ("OP_WRITE_GID_MAP", SetupOp::WriteGidMap),
    ("OP_PTHREAD_CREATE", SetupOp::PthreadCreate),
    ("OP_PID_NESTING", SetupOp::PidNesting),
    ("OP_USER_NESTING", SetupOp::UserNesting),
    ("OP_WRITE_LIMIT", SetupOp::WriteLimit),
    ("OP_FOREIGN_PIDNS", SetupOp::ForeignPidns),
    ("OP_CHROOT", SetupOp::Chroot),
    ("OP_OPEN_FDS", SetupOp::OpenFds),
    ("OP_SEMAPHORE", SetupOp::Semaphore),
    ("OP_CWD_UMASK", SetupOp::CwdUmask),
    ("OP_SIBLING", SetupOp::Sibling),
    ("OP_VFORK", SetupOp::Vfork),
    ("OP_PLAN", SetupOp::Plan),
    ("OP_CLONE3_PREP", SetupOp::Clone3Prep),
    ("OP_HIGH_FD", SetupOp::HighFd),
    ("OP_SHM", SetupOp::Shm),
    ("OP_NSFS_BIND", SetupOp::NsfsBind),
    ("OP_SHARED_MOUNT", SetupOp::SharedMount),
];

/// The C name of a setup operation.
fn op_name(op: SetupOp) -> &'static str {
    SETUP_OPS.iter().find(|(_, o)| *o == op).map_or("\"setup\"", |(name, _)| name)
}

fn chroot_dir(kind: Chroot) -> &'static str {
    match kind {
        Chroot::Subdir => "CHROOT_DIR",
        Chroot::Root => "\"/\"",
    }
}

/// A call whose 0 / -1 result ends the setup with `op` on failure.
fn op(out: &mut String, op: SetupOp, call: &str) {
    let _ = writeln!(out, "\tsetup_op(x, {}, {call});", op_name(op));
}

/// The setup's fd 100 and SysV shm segments (after the fds, before the semaphore).
fn high_fd_and_shm(out: &mut String, s: &Setup) {
    if s.high_fd {
        let _ = writeln!(out, "\thigh_fd(x, {});", crate::case::HIGH_FD);
    }
    match s.shm {
        Some(crate::case::Shm::Attached) => out.push_str("\tshm_segments(x, 0);\n"),
        Some(crate::case::Shm::RmidForced) => out.push_str("\tshm_segments(x, 1);\n"),
        None => {}
    }
}

/// `case_setup()`: the setup operations of `s`, in the executor's order.
pub(super) fn setup_c(s: &Setup) -> String {
    let mut out = String::from("/* The setup, in the executor's order (exec/child/setup.rs). */\n");
    out.push_str("static void case_setup(struct ctx *x)\n{\n");
    op(&mut out, SetupOp::Setpgid, "setpgid(0, 0)");
    op(&mut out, SetupOp::Pdeathsig, "prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)");
    if s.shared_mount {
        out.push_str("\tshared_mount(x);\n");
    }
    if s.nsfs_bind {
        out.push_str("\tnsfs_bind(x);\n");
    }
    if s.pidns_level.is_some() || s.userns_depth.is_some() {
        let _ = writeln!(
            out,
            "\tnest(x); /* to pid-ns level {}, user-ns depth {} (-1: as it is) */",
            s.pidns_level.map_or(-1, i32::from),
            s.userns_depth.map_or(-1, i32::from)
        );
    }
    if let Some(t) = s.limit_zero {
        out.push_str("\tenter_mapped_userns(x, OP_WRITE_LIMIT);\n");
        let path = format!("/proc/sys/user/max_{}_namespaces", t.name());
        op(&mut out, SetupOp::WriteLimit, &format!("write_file({}, \"0\")", c_str(&path)));
    }
    if s.foreign_pidns {
        out.push_str("\tforeign_pidns(x);\n");
    }
    if let Some(kind) = s.chroot {
        op(&mut out, SetupOp::Chroot, &format!("do_chroot({})", chroot_dir(kind)));
    }
    super::guest::guest_setup_c(&mut out, s);
    for i in 0..usize::from(s.fds).min(FDS) {
        out.push_str(if i % 2 == 1 { "\topen_fd(x, O_CLOEXEC);\n" } else { "\topen_fd(x, 0);\n" });
    }
    high_fd_and_shm(&mut out, s);
    if s.sem_undo {
        out.push_str("\tsem_undo(x);\n");
        if s.sem_clamp {
            out.push_str("\tsem_clamp(x);\n");
        }
    }
    if s.cwd_umask {
        op(&mut out, SetupOp::CwdUmask, "chdir(\"/proc\")");
        out.push_str("\tumask(077);\n");
    }
    match s.privilege {
        Privilege::Root => {}
        Privilege::RootWithoutSysAdmin => op(&mut out, SetupOp::CapsetDropSysAdmin, "drop_sys_admin()"),
        Privilege::Nobody => out.push_str("\tbecome_nobody(x);\n"),
        Privilege::UserNs => out.push_str("\tenter_mapped_userns(x, OP_UNSHARE_USER_NS);\n"),
    }
    out.push_str("\tx->outer_uid = geteuid();\n\tx->outer_gid = getegid();\n");
    for kind in s.siblings.iter().take(SIBS) {
        let _ = writeln!(out, "\tadd_sibling(x, {:#x}UL); /* {} */", kind.clone_flags(), kind.name());
    }
    for _ in 0..s.threads {
        out.push_str("\tadd_thread(x);\n");
    }
    out.push_str("}\n\n");
    out
}

/// The C call that runs step `k`, giving 0 or the errno.
fn step_call(k: usize, step: &Step, exp: &Expected) -> Result<String, ReproError> {
    #[allow(
        unreachable_patterns,
        reason = "a step kind added later (on another branch) is refused until the reproducer runs it"
    )]
    Ok(match step {
        Step::Unshare(f) => format!("step_unshare(x, {:#x}ULL)", f.0),
        Step::UnshareInt80(f) => format!("step_unshare_int80(x, {:#x}ULL)", f.0),
        Step::Fork => "step_fork()".into(),
        Step::ForkExit => "step_fork_exit()".into(),
        Step::WriteMaps => "step_write_maps(x)".into(),
        Step::DropSysAdmin => "step_rc(drop_sys_admin())".into(),
        Step::Chroot(kind) => format!("step_rc(do_chroot({}))", chroot_dir(*kind)),
        Step::SpawnThread => "spawn_parked_thread()".into(),
        Step::Clone3(f) => {
            let signal = exp.clone3.as_ref().map_or(libc::SIGCHLD as u64, |c| c.exit_signal);
            format!("step_clone3(x, {:#x}ULL, {signal}, &x->r->step[{k}].child)", f.0)
        }
        Step::Clone3SetTid(st) => {
            let signal = exp.clone3.as_ref().map_or(libc::SIGCHLD as u64, |c| c.exit_signal);
            let [t0, t1, t2, t3] = st.tids;
            format!(
                "step_clone3_set_tid(x, {:#x}ULL, {signal}, {}, {}, {t0}, {t1}, {t2}, {t3}, &x->r->step[{k}].child)",
                st.flags.0,
                i32::from(st.null),
                st.size
            )
        }
        Step::Caps(op) => {
            let i = crate::case::CapsOp::ALL.iter().position(|o| o == op).unwrap_or(0);
            format!("step_caps({i}, {:#x}ULL)", op.drop_mask())
        }
        Step::ThreadCall(f) => format!("step_thread_call({:#x}ULL)", f.0),
        Step::Setns(st) => format!(
            "step_setns({}, {}, {:#x}ULL)",
            st.target.index(),
            i32::from(st.target.opened_at_start()),
            st.nstype.0
        ),
        Step::Idmap(op) => {
            let (file, lines) = op.target();
            let kind = lines.and_then(|l| IdmapLines::ALL.iter().position(|k| *k == l)).unwrap_or(0);
            format!("step_idmap(x, {}, {kind})", file as u8)
        }
        Step::WitnessIdmap(op) => {
            format!(
                "step_witness_idmap({})",
                crate::case::idmap::IdmapOp::ALL.iter().position(|o| o == op).unwrap_or(0)
            )
        }
        other => return Err(ReproError::Unsupported(format!("step {other}"))),
    })
}

/// `case_steps()`: a snapshot, each step with a snapshot after it, then the behavioural probes
/// the setup allows; in a vfork child when the case asks for one.
pub(super) fn steps_c(case: &Case, exps: &[Expected]) -> Result<String, ReproError> {
    let s = &case.setup;
    let mut body = String::new();
    for step in &case.steps {
        if let Step::Setns(st) = step
            && st.target.opened_at_start()
        {
            let _ = writeln!(body, "\tsetns_open_at_start({}); /* {} */", st.target.index(), st.target.name());
        }
    }
    body.push_str(super::witness::start(case));
    body.push_str("\tsnapshot(x, &x->r->before);\n\tread_marks(&x->r->mark[0]);\n\tread_inside(&x->r->mark[0]);\n");
    for (k, (step, exp)) in case.steps.iter().zip(exps).enumerate() {
        let _ =
            writeln!(body, "\tstep_done(x, {k}, {}); /* {} */", step_call(k, step, exp)?, c_comment(&step.to_string()));
    }
    body.push_str(super::witness::readings(s));
    let first = |kind: Sibling| s.siblings.iter().take(SIBS).position(|k| *k == kind);
    if let Some(i) = first(Sibling::Files) {
        let _ = writeln!(body, "\tprobe_files(x, {i});");
    }
    if let Some(i) = first(Sibling::Fs) {
        let _ = writeln!(body, "\tprobe_fs(x, {i});");
    }
    if s.sem_undo && !s.siblings.is_empty() {
        body.push_str("\tprobe_sem(x);\n");
    }
    body.push_str(
        "\tread_marks(&x->r->mark[1]);\n\tread_inside(&x->r->mark[1]);\n\tx->r->done = 1;\n\twrite_uts(x->r);\n",
    );
    let mut out = String::from("/* The steps, then the behavioural probes (exec/child.rs). */\n");
    if s.vfork {
        out.push_str("static int steps_in_vfork_child(void *arg)\n{\n\tstruct ctx *x = arg;\n");
        out.push_str(&body);
        out.push_str("\t_exit(0);\n}\n\nstatic void case_steps(struct ctx *x)\n{\n");
        out.push_str("\tin_vfork_child(x, steps_in_vfork_child);\n}\n\n");
    } else {
        out.push_str("static void case_steps(struct ctx *x)\n{\n");
        out.push_str(&body);
        out.push_str("}\n\n");
    }
    Ok(out)
}

/// Text safe inside a C comment.
pub(super) fn c_comment(s: &str) -> String {
    s.replace("*/", "* /")
}
