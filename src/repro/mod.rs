//! C reproducers: a [`Case`] plus the model's expectations for it become one
//! standalone C program (libc only, `gcc repro.c`) that a kernel developer can
//! run without Rust. The flag and link tables come from [`crate::abi::flags::FLAGS`]
//! and [`NsLink::ALL`], the expectations from [`crate::model::predict`], and
//! the sandbox, setup and comparison code from `prelude.c` (pulled in with
//! `include_str!`), which follows `exec/sandbox.rs`, `exec/child_setup.rs`,
//! `exec/child.rs`, `exec/sibling.rs` and the invariants step by step: every
//! setup field and every step kind is built and run as the executor does, and
//! the setup-operation names, `CHROOT_DIR` and the `CLONE_*` bits are generated
//! from the harness's own constants.

use std::fmt::Write;

use crate::abi::errno::{CallResult, Errno};
use crate::abi::flags::{FLAGS, bits};
use crate::abi::ns::{NsLink, NsObserver};
use crate::case::{CLONE3_CGROUP_FD, Case, CaseError, Chroot, Privilege, Setup, Sibling, Step};
use crate::env::Environment;
use crate::exec::child::record::SetupOp;
use crate::exec::child::{CHROOT_DIR, CHROOT_LEVELS};
use crate::model::clone3::{ChildLink, ChildTid, Clone3Expect};
use crate::model::{
    Expected, FinalExpect, KcmpExpect, KernelProfile, LinkExpect, PidExpect, Prediction, SemExpect, predict,
};

/// The C helpers shared by every reproducer.
pub const PRELUDE: &str = include_str!("prelude.c");

/// Why no reproducer could be made.
#[derive(Debug, thiserror::Error)]
pub enum ReproError {
    /// The file is not JSON, or its case does not have the case shape.
    #[error("not a case file: {0}")]
    Parse(#[source] serde_json::Error),
    /// The case breaks a limit of the executor.
    #[error("invalid case: {0}")]
    Invalid(#[from] CaseError),
    /// The model cannot predict the case in this environment.
    #[error("the model skips this case in this environment: {0}")]
    Skipped(String),
    /// The case uses a setup the C prelude does not build.
    #[error("the C reproducer does not support this setup yet: {0}")]
    Unsupported(String),
}

/// Reads a case from JSON: a bare [`Case`], or any object with a `case` key
/// (a corpus file; its other keys are ignored). The case must be valid.
///
/// # Errors
/// [`ReproError::Parse`] or [`ReproError::Invalid`], saying what is wrong.
pub fn case_from_json(text: &str) -> Result<Case, ReproError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(ReproError::Parse)?;
    let inner = match value {
        serde_json::Value::Object(mut map) if map.contains_key("case") => map.remove("case").unwrap_or_default(),
        other => other,
    };
    let case: Case = serde_json::from_value(inner).map_err(ReproError::Parse)?;
    case.validate()?;
    Ok(case)
}

/// A C string literal (octal escapes, so no escape can swallow the next character).
fn c_str(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            b' '..=b'~' if b != b'?' => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
    out.push('"');
    out
}

fn privilege_enum(p: Privilege) -> &'static str {
    match p {
        Privilege::Root => "PRIV_ROOT",
        Privilege::RootWithoutSysAdmin => "PRIV_ROOT_WITHOUT_SYS_ADMIN",
        Privilege::Nobody => "PRIV_NOBODY",
        Privilege::UserNs => "PRIV_USER_NS",
    }
}

/// Refuses a setup with fields the prelude does not build (a field added to [`Setup`] later
/// makes this comparison differ until the prelude learns it).
fn check_supported(setup: &Setup) -> Result<(), ReproError> {
    #[allow(
        clippy::needless_update,
        reason = "fields added to Setup later must make this comparison refuse, not compile away"
    )]
    let known = Setup {
        privilege: setup.privilege,
        threads: setup.threads,
        pidns_level: setup.pidns_level,
        userns_depth: setup.userns_depth,
        limit_zero: setup.limit_zero,
        foreign_pidns: setup.foreign_pidns,
        chroot: setup.chroot,
        fds: setup.fds,
        sem_undo: setup.sem_undo,
        cwd_umask: setup.cwd_umask,
        siblings: setup.siblings.clone(),
        vfork: setup.vfork,
        ..Setup::default()
    };
    if known == *setup { Ok(()) } else { Err(ReproError::Unsupported(format!("{setup:?}"))) }
}

/// The prelude's `enum step_kind` name of a step.
fn step_kind(step: &Step) -> Result<&'static str, ReproError> {
    #[allow(
        unreachable_patterns,
        reason = "a step kind added later (on another branch) is refused until the prelude runs it"
    )]
    Ok(match step {
        Step::Unshare(_) => "STEP_UNSHARE",
        Step::Fork => "STEP_FORK",
        Step::ForkExit => "STEP_FORK_EXIT",
        Step::WriteMaps => "STEP_WRITE_MAPS",
        Step::DropSysAdmin => "STEP_DROP_SYS_ADMIN",
        Step::Chroot(Chroot::Subdir) => "STEP_CHROOT_SUBDIR",
        Step::Chroot(Chroot::Root) => "STEP_CHROOT_ROOT",
        Step::SpawnThread => "STEP_SPAWN_THREAD",
        Step::Clone3(_) => "STEP_CLONE3",
        other => return Err(ReproError::Unsupported(format!("step {other}"))),
    })
}

/// The setup operations the prelude names in its BROKEN lines, from [`SetupOp::describe`].
const SETUP_OPS: [(&str, SetupOp); 24] = [
    ("SETPGID", SetupOp::Setpgid),
    ("PDEATHSIG", SetupOp::Pdeathsig),
    ("CAPSET_DROP_SYS_ADMIN", SetupOp::CapsetDropSysAdmin),
    ("SETGROUPS", SetupOp::Setgroups),
    ("SETGID_NOBODY", SetupOp::SetgidNobody),
    ("SETUID_NOBODY", SetupOp::SetuidNobody),
    ("DUMPABLE", SetupOp::Dumpable),
    ("UNSHARE_USER_NS", SetupOp::UnshareUserNs),
    ("WRITE_SETGROUPS", SetupOp::WriteSetgroups),
    ("WRITE_UID_MAP", SetupOp::WriteUidMap),
    ("WRITE_GID_MAP", SetupOp::WriteGidMap),
    ("PTHREAD_CREATE", SetupOp::PthreadCreate),
    ("PID_NESTING", SetupOp::PidNesting),
    ("USER_NESTING", SetupOp::UserNesting),
    ("WRITE_LIMIT", SetupOp::WriteLimit),
    ("FOREIGN_PIDNS", SetupOp::ForeignPidns),
    ("CHROOT", SetupOp::Chroot),
    ("OPEN_FDS", SetupOp::OpenFds),
    ("SEMAPHORE", SetupOp::Semaphore),
    ("CWD_UMASK", SetupOp::CwdUmask),
    ("SIBLING", SetupOp::Sibling),
    ("VFORK", SetupOp::Vfork),
    ("PLAN", SetupOp::Plan),
    ("CLONE3_PREP", SetupOp::Clone3Prep),
];

/// The tables the prelude reads, generated from the harness's own.
fn tables(out: &mut String) {
    let _ = writeln!(out, "#define NLINKS {}", NsLink::COUNT);
    let _ = writeln!(out, "#define MAX_STEPS {}", crate::case::MAX_STEPS);
    let _ = writeln!(out, "#define SIBS {}", crate::exec::child::record::SIBS);
    let _ = writeln!(out, "#define FDS {}", crate::exec::child::record::FDS);
    let links: Vec<String> = NsLink::ALL.iter().map(|l| c_str(l.file_name())).collect();
    let _ = writeln!(out, "static const char *const LINK_NAMES[NLINKS] = {{ {} }};", links.join(", "));
    for f in FLAGS {
        let _ = writeln!(out, "#define U_CLONE_{} {:#x}ULL", f.name, f.bit);
    }
    let named: Vec<_> = FLAGS.iter().filter(|f| f.print_by_name).collect();
    let _ = writeln!(out, "#define NFLAGS {}", named.len());
    let names: Vec<String> = named.iter().map(|f| c_str(f.name)).collect();
    let bits: Vec<String> = named.iter().map(|f| format!("{:#x}ULL", f.bit)).collect();
    let _ = writeln!(out, "static const char *const FLAG_NAMES[NFLAGS] = {{ {} }};", names.join(", "));
    let _ = writeln!(out, "static const unsigned long long FLAG_BITS[NFLAGS] = {{ {} }};", bits.join(", "));
    let errnos: Vec<(i32, &str)> = (1..200).filter_map(|e| Errno(e).name().map(|n| (e, n))).collect();
    let _ = writeln!(out, "#define NERRNOS {}", errnos.len());
    let values: Vec<String> = errnos.iter().map(|(e, _)| e.to_string()).collect();
    let strs: Vec<String> = errnos.iter().map(|(_, n)| c_str(n)).collect();
    let _ = writeln!(out, "static const int ERRNO_VALUES[NERRNOS] = {{ {} }};", values.join(", "));
    let _ = writeln!(out, "static const char *const ERRNO_STRS[NERRNOS] = {{ {} }};", strs.join(", "));
    for (name, op) in SETUP_OPS {
        let _ = writeln!(out, "#define OP_{name} {}", c_str(SetupOp::describe(op as u32)));
    }
    let _ = writeln!(out, "#define CHROOT_DIR {}", c_str(&CHROOT_DIR.to_string_lossy()));
    let _ = writeln!(out, "#define CHROOT_LEVELS {CHROOT_LEVELS}");
    let _ = writeln!(out, "#define CLONE3_CGROUP_FD {CLONE3_CGROUP_FD}ULL");
}

fn link_expect(e: LinkExpect) -> String {
    match e {
        LinkExpect::Unchanged => "LINK_UNCHANGED".into(),
        LinkExpect::Fresh => "LINK_FRESH".into(),
        LinkExpect::Unreadable(e) => format!("-{} /* {e} */", e.0),
        LinkExpect::BeforeOf(l) => format!("LINK_BEFORE_OF({}) /* {l} */", l.index()),
        LinkExpect::AfterOf(l) => format!("LINK_AFTER_OF({}) /* {l} */", l.index()),
    }
}

fn kcmp_expect(e: KcmpExpect) -> String {
    match e {
        KcmpExpect::Unmodelled => "KC_UNMODELLED".into(),
        KcmpExpect::Same => "KC_SAME".into(),
        KcmpExpect::Different => "KC_DIFFERENT".into(),
        KcmpExpect::Error(e) => format!("-{} /* {e} */", e.0),
    }
}

fn errno_of(r: CallResult) -> i32 {
    match r {
        CallResult::Success => 0,
        CallResult::Failure(e) => e.0,
    }
}

/// One `struct expect_step` initializer.
fn expect_step(step: &Step, exp: &Expected) -> Result<String, ReproError> {
    let kind = step_kind(step)?;
    let flags = match step {
        Step::Unshare(f) | Step::Clone3(f) => f.0,
        _ => 0,
    };
    if exp.siblings.len() > crate::exec::child::record::SIBS {
        return Err(ReproError::Unsupported(format!("{} siblings", exp.siblings.len())));
    }
    let links: Vec<String> = NsLink::ALL.iter().map(|l| link_expect(exp.links[l.index()])).collect();
    let pid = match exp.pid {
        PidExpect::Unchanged => "PID_UNCHANGED",
        PidExpect::Changed => "PID_CHANGED",
        PidExpect::One => "PID_ONE",
    };
    let (sem_kind, sem_value) = match exp.semval {
        SemExpect::NoSemaphore => ("SEM_NONE", 0),
        SemExpect::Value(v) => ("SEM_VALUE", v),
        SemExpect::Error(e) => ("SEM_ERROR", e.0),
    };
    let b = exp.before;
    let check_sem = matches!(step, Step::Unshare(_))
        && exp.effective_flags.intersects(bits::SYSVSEM | bits::NEWIPC)
        && (b.undo_private || b.undo_shared);
    let kcmp: Vec<String> = exp
        .siblings
        .iter()
        .map(|s| format!("{{ {} }}", s.kcmp.iter().map(|k| kcmp_expect(*k)).collect::<Vec<_>>().join(", ")))
        .collect();
    let kcmp_fds: Vec<String> = exp.siblings.iter().map(|s| kcmp_expect(s.fds)).collect();
    let mut s = String::new();
    let _ = write!(
        s,
        "\t{{ .kind = {kind}, .what = {}, .flags = {flags:#x}ULL, .effective = {:#x}ULL,\n\t  \
         .expect_errno = {} /* {} */, .rule = {},\n\t  .link = {{ {} }},\n\t  \
         .uid = {}, .gid = {}, .cap_eff = {:#x}ULL, .pid = {pid}, .threads = {}, .cwd_changes = {},\n\t  \
         .check_sem = {}, .sem_kind = {sem_kind}, .sem_value = {sem_value}, .nsibs = {}",
        c_str(&step.to_string()),
        exp.effective_flags.0,
        errno_of(exp.result),
        exp.result,
        c_str(exp.rule),
        links.join(", "),
        exp.creds.uid,
        exp.creds.gid,
        exp.creds.cap_eff,
        exp.threads,
        i32::from(exp.cwd_changes),
        i32::from(check_sem),
        exp.siblings.len(),
    );
    if !exp.siblings.is_empty() {
        let _ = write!(s, ",\n\t  .kcmp = {{ {} }},\n\t  .kcmp_fds = {{ {} }}", kcmp.join(", "), kcmp_fds.join(", "));
    }
    if let Some(c3) = &exp.clone3 {
        s.push_str(&clone3_fields(c3));
    }
    s.push_str(" },\n");
    Ok(s)
}

fn child_link(l: ChildLink) -> String {
    match l {
        ChildLink::Fresh => "CL_FRESH".into(),
        ChildLink::ParentBefore(p) => format!("CL_PARENT_BEFORE({}) /* {p} */", p.index()),
        ChildLink::ParentAfter(p) => format!("CL_PARENT_AFTER({}) /* {p} */", p.index()),
        ChildLink::Child(c) => format!("CL_CHILD({}) /* {c} */", c.index()),
    }
}

/// The clone3 part of a `struct expect_step` initializer (exit signal, undo list, the child).
fn clone3_fields(c3: &Clone3Expect) -> String {
    let mut s = format!(
        ",\n\t  .exit_signal = {}, .undo_list_made = {}, .child = {}",
        c3.exit_signal,
        i32::from(c3.undo_list_made),
        i32::from(c3.child.is_some())
    );
    if let Some(ch) = &c3.child {
        let links: Vec<String> = ch.links.iter().map(|l| child_link(*l)).collect();
        let kcmp =
            ch.kcmp.map_or("0".to_string(), |k| k.iter().map(|e| kcmp_expect(*e)).collect::<Vec<_>>().join(", "));
        let _ = write!(
            s,
            ",\n\t  .child_link = {{ {} }},\n\t  .child_tid_one = {}, .child_uid = {}, .child_gid = {}, \
             .child_cap = {:#x}ULL,\n\t  .child_kcmp_known = {}, .child_kcmp = {{ {kcmp} }},\n\t  \
             .child_reaped = {}, .child_sigchld = {}, .child_pidfd = {}, .child_parent_tid = {}",
            links.join(", "),
            i32::from(ch.tid == ChildTid::One),
            ch.creds.uid,
            ch.creds.gid,
            ch.creds.cap_eff,
            i32::from(ch.kcmp.is_some()),
            i32::from(ch.reaped_by_caller),
            opt_bool(ch.sigchld),
            i32::from(ch.pidfd),
            i32::from(ch.parent_tid),
        );
    }
    s
}

fn opt_bool(v: Option<bool>) -> i32 {
    v.map_or(-1, i32::from)
}

/// The `struct repro_case` initializer.
fn case_struct(case: &Case, model: &str, env: &Environment, fin: &FinalExpect) -> Result<String, ReproError> {
    let s = &case.setup;
    let json = serde_json::to_string(case).map_err(ReproError::Parse)?;
    if s.siblings.len() > crate::exec::child::record::SIBS {
        return Err(ReproError::Unsupported(format!("{} siblings", s.siblings.len())));
    }
    let first = |kind: Sibling| s.siblings.iter().position(|k| *k == kind).map_or(-1, |i| i as i32);
    let flags: Vec<String> = s.siblings.iter().map(|k| format!("{:#x}UL", k.clone_flags())).collect();
    let names: Vec<String> = s.siblings.iter().map(|k| c_str(k.name())).collect();
    let chroot = match s.chroot {
        None => "CHROOT_NONE",
        Some(Chroot::Subdir) => "CHROOT_SUBDIR",
        Some(Chroot::Root) => "CHROOT_ROOT",
    };
    let limit =
        s.limit_zero.map_or("NULL".to_string(), |t| c_str(&format!("/proc/sys/user/max_{}_namespaces", t.name())));
    let mut out = String::new();
    let mut field = |name: &str, value: String| {
        let _ = writeln!(out, "\t.{name} = {value},");
    };
    field("title", c_str(&case.to_string()));
    field("json", c_str(&json));
    field("model", c_str(model));
    field("gen_kernel", c_str(&env.kernel_release));
    field("gen_sandbox", c_str(&env.sandbox));
    field("privilege", privilege_enum(s.privilege).into());
    field("threads", s.threads.to_string());
    field("pidns_level", s.pidns_level.map_or(-1, i32::from).to_string());
    field("userns_depth", s.userns_depth.map_or(-1, i32::from).to_string());
    field("limit_zero", limit);
    field("foreign_pidns", i32::from(s.foreign_pidns).to_string());
    field("chroot", chroot.into());
    field("fds", s.fds.to_string());
    field("sem_undo", i32::from(s.sem_undo).to_string());
    field("cwd_umask", i32::from(s.cwd_umask).to_string());
    field("nsiblings", s.siblings.len().to_string());
    if !s.siblings.is_empty() {
        field("sibling_flags", format!("{{ {} }}", flags.join(", ")));
        field("sibling_names", format!("{{ {} }}", names.join(", ")));
    }
    field("files_sibling", first(Sibling::Files).to_string());
    field("fs_sibling", first(Sibling::Fs).to_string());
    field("vfork", i32::from(s.vfork).to_string());
    field("kcmp_available", i32::from(env.kcmp).to_string());
    field("nsteps", case.steps.len().to_string());
    field("steps", "STEPS".into());
    field("final_files_shared", opt_bool(fin.files_shared).to_string());
    field("final_close_is_shared", opt_bool(fin.close_is_shared).to_string());
    field("final_fs_shared", opt_bool(fin.fs_shared).to_string());
    field("final_sem_outside_set", i32::from(fin.sem_value_outside.is_some()).to_string());
    field("final_sem_outside", fin.sem_value_outside.unwrap_or(0).to_string());
    Ok(out)
}

/// Renders `case` as a standalone C program that checks the kernel against the
/// expectations `profile` gives in `env`. The program reads the `/proc/self/ns` links, so the
/// expectations are computed for that observer whatever `env` says.
///
/// # Errors
/// [`ReproError`] if the case is invalid, skipped by the model here, or uses a
/// setup or step the prelude cannot build.
pub fn c_source(case: &Case, profile: &KernelProfile, env: &Environment) -> Result<String, ReproError> {
    case.validate()?;
    check_supported(&case.setup)?;
    for step in &case.steps {
        step_kind(step)?;
    }
    let env = &Environment { ns_observer: NsObserver::ProcLinks, ..env.clone() };
    match predict(profile, env, case) {
        Prediction::Skip { reason } => Err(ReproError::Skipped(reason)),
        Prediction::Steps { steps, final_probe } => c_source_with(case, &steps, &final_probe, profile.name, env),
    }
}

/// Renders `case` with the given expectations (one per step) and final probes, as
/// [`c_source`] does with the model's; tests use it to show that every kind of
/// difference makes the program exit 1. The expectations must be those of an environment
/// whose `ns_observer` is [`NsObserver::ProcLinks`], as the program reads the links.
///
/// # Errors
/// As [`c_source`], and when `steps` does not have one expectation per step.
pub fn c_source_with(
    case: &Case,
    steps: &[Expected],
    final_probe: &FinalExpect,
    model: &str,
    env: &Environment,
) -> Result<String, ReproError> {
    case.validate()?;
    check_supported(&case.setup)?;
    if steps.len() != case.steps.len() {
        return Err(ReproError::Unsupported(format!("{} expectations for {} steps", steps.len(), case.steps.len())));
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "/* unshare-fuzz reproducer, generated by unshare-fuzz {}.\n * case: {}\n * \
         build and run:  gcc -O2 -Wall -o repro repro.c && ./repro   (add -pthread on glibc < 2.34)\n * \
         exit status: 0 the kernel agrees with the model, 1 mismatch (or timeout, crash), 2 could not run\n */",
        env!("CARGO_PKG_VERSION"),
        case.to_string().replace("*/", "* /")
    );
    tables(&mut out);
    out.push_str(PRELUDE);
    out.push_str("\nstatic const struct expect_step STEPS[] = {\n");
    for (step, exp) in case.steps.iter().zip(steps) {
        out.push_str(&expect_step(step, exp)?);
    }
    out.push_str("};\n\nstatic const struct repro_case CASE = {\n");
    out.push_str(&case_struct(case, model, env, final_probe)?);
    out.push_str("};\n\nint main(void)\n{\n\treturn repro_main(&CASE);\n}\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::flags::RawFlags;
    use crate::model::profile::LINUX_6_18;

    #[test]
    fn reads_bare_cases_and_corpus_files() {
        let bare = r#"{"setup":{"privilege":"nobody","threads":1},"steps":[{"unshare":"NEWNS|0x100000000"}]}"#;
        let case = case_from_json(bare).unwrap();
        assert_eq!(case.setup.privilege, Privilege::Nobody);
        let corpus = format!(r#"{{"format":1,"title":"x","note":"y","case":{bare}}}"#);
        assert_eq!(case_from_json(&corpus).unwrap(), case);
        let e = case_from_json(r#"{"steps":[]}"#).unwrap_err().to_string();
        assert!(e.contains("1 to 4 steps"), "{e}");
        let e = case_from_json("{").unwrap_err().to_string();
        assert!(e.starts_with("not a case file"), "{e}");
        let e = case_from_json(r#"{"case":{"steps":[{"unshare":"NEWBOGUS"}]}}"#).unwrap_err().to_string();
        assert!(e.contains("NEWBOGUS"), "{e}");
    }

    #[test]
    fn c_strings_escape_everything_odd() {
        assert_eq!(c_str("a\"b\\c\n??/"), "\"a\\\"b\\\\c\\012\\077\\077/\"");
    }

    #[test]
    fn source_embeds_the_raw_flags_and_the_prediction() {
        let case = Case::unshare(&[0x2_0000 | 0x1_0000_0000, 0x4000_0000]);
        let src = c_source(&case, &LINUX_6_18, &Environment::reference()).unwrap();
        assert!(src.contains(".flags = 0x100020000ULL, .effective = 0x100020200ULL"), "{src}");
        assert!(src.contains(".expect_errno = 22 /* EINVAL */, .rule = \"unknown-bit\""));
        assert!(src.contains(".flags = 0x40000000ULL, .effective = 0x40000000ULL"));
        assert!(src.contains(".expect_errno = 0 /* success */, .rule = \"success\""));
        assert!(src.contains("syscall(SYS_unshare, (unsigned long)flags)"));
        // pthread.h brings in <sched.h> and its int unshare(); the identifier is poisoned after
        // the includes, so a call to it does not compile.
        assert!(src.contains("#pragma GCC poison unshare"));
        assert!(!src.contains("<sched.h>"));
        assert!(src.contains("\"NEWTIME\"") && src.contains("0x20000ULL"));
        assert!(src.contains("#define CHROOT_DIR \"/tmp/uf-chroot\""));
        assert!(src.contains("#define OP_PID_NESTING \"unshare(NEWPID) + fork (pid-ns nesting)\""));
    }

    #[test]
    fn every_setup_field_and_step_kind_is_rendered() {
        use crate::case::NsType;
        let case = Case {
            setup: Setup {
                privilege: Privilege::RootWithoutSysAdmin,
                threads: 1,
                pidns_level: Some(3),
                userns_depth: Some(2),
                limit_zero: Some(NsType::Ipc),
                foreign_pidns: true,
                chroot: Some(Chroot::Root),
                fds: 2,
                sem_undo: true,
                cwd_umask: true,
                siblings: vec![Sibling::Fs, Sibling::Files, Sibling::VmSighand],
                vfork: true,
            },
            steps: vec![Step::Fork, Step::ForkExit, Step::WriteMaps, Step::SpawnThread],
        };
        let src = c_source(&case, &LINUX_6_18, &Environment::reference()).unwrap();
        for needle in [
            ".pidns_level = 3,",
            ".userns_depth = 2,",
            ".limit_zero = \"/proc/sys/user/max_ipc_namespaces\",",
            ".foreign_pidns = 1,",
            ".chroot = CHROOT_ROOT,",
            ".fds = 2,",
            ".sem_undo = 1,",
            ".cwd_umask = 1,",
            ".sibling_flags = { 0x200UL, 0x400UL, 0x900UL },",
            ".files_sibling = 1,",
            ".fs_sibling = 0,",
            ".vfork = 1,",
            ".privilege = PRIV_ROOT_WITHOUT_SYS_ADMIN,",
            ".kind = STEP_FORK,",
            ".kind = STEP_FORK_EXIT,",
            ".kind = STEP_WRITE_MAPS,",
            ".kind = STEP_SPAWN_THREAD,",
            ".nsibs = 3",
        ] {
            assert!(src.contains(needle), "no {needle:?} in the source");
        }
        let chroot = Case { steps: vec![Step::Chroot(Chroot::Subdir), Step::DropSysAdmin], ..Case::unshare(&[0]) };
        let src = c_source(&chroot, &LINUX_6_18, &Environment::reference()).unwrap();
        assert!(src.contains(".kind = STEP_CHROOT_SUBDIR,") && src.contains(".kind = STEP_DROP_SYS_ADMIN,"));
        // clone3: a new UTS namespace with a pidfd, then one that fails (INTO_CGROUP, bad fd).
        let clone3 = Case {
            steps: vec![Step::Clone3(RawFlags(bits::NEWUTS | bits::PIDFD)), Step::Clone3(RawFlags(bits::INTO_CGROUP))],
            ..Case::unshare(&[0])
        };
        let src = c_source(&clone3, &LINUX_6_18, &Environment::reference()).unwrap();
        for needle in [
            ".kind = STEP_CLONE3, .what = \"clone3(PIDFD|NEWUTS)\", .flags = 0x4001000ULL",
            ".exit_signal = 17, .undo_list_made = 0, .child = 1",
            ".child_link = { CL_PARENT_BEFORE(0) /* cgroup */,",
            "CL_PARENT_AFTER(5) /* pid_for_children */, CL_PARENT_BEFORE(7) /* time_for_children */",
            "CL_FRESH },",
            ".child_pidfd = 1, .child_parent_tid = 0",
            ".expect_errno = 9 /* EBADF */",
            ".exit_signal = 17, .undo_list_made = 0, .child = 0 }",
            "#define CLONE3_CGROUP_FD 2147483647ULL",
        ] {
            assert!(src.contains(needle), "no {needle:?} in the source");
        }
    }

    #[test]
    fn wrong_expectation_counts_are_refused() {
        let case = Case::unshare(&[0, 0]);
        let Prediction::Steps { steps, final_probe } = predict(&LINUX_6_18, &Environment::reference(), &case) else {
            panic!("the reference machine runs a root case")
        };
        let e = c_source_with(&case, &steps[..1], &final_probe, "m", &Environment::reference()).unwrap_err();
        assert!(e.to_string().contains("1 expectations for 2 steps"), "{e}");
    }

    #[test]
    fn skipped_cases_are_refused_with_the_reason() {
        let mut env = Environment::reference();
        env.nobody_mapped = false;
        let mut case = Case::unshare(&[0]);
        case.setup.privilege = Privilege::Nobody;
        let e = c_source(&case, &LINUX_6_18, &env).unwrap_err().to_string();
        assert!(e.contains("65534"), "{e}");
    }
}
