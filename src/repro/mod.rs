//! C reproducers: a [`Case`] plus the model's expectations for it become one
//! standalone C program (libc only, `gcc repro.c`) that a kernel developer can
//! run without Rust. The program is the case itself as straight-line C, generated here
//! from the harness's own plan and model, on top of a small set of C primitives:
//!
//! * `tables`: constants from the harness's tables ([`crate::abi::flags::FLAGS`],
//!   [`crate::abi::ns::NsLink::ALL`], the errno names, the [`crate::exec::child::record::SetupOp`] names, the
//!   chroot tree, the depth limits);
//! * the primitives, pulled in with `include_str!`: `prelude.c` (raw calls, snapshots, the
//!   sibling server), `setup.c` (setup operations, simple steps, behavioural probes),
//!   `clone3.c`, `checks.c` (one comparison per kind of expectation), `markers.c` (namespace
//!   identity by behaviour, as `exec/child/markers.rs`), `inside.c` (life inside the namespaces, as
//!   `exec/child/inside.rs`) and `sandbox.c` (the
//!   probe of this kernel, the outer sandbox, the watchdog, the verdict);
//! * `lower`: `case_setup()` (the setup operations this case needs, in the executor's
//!   order) and `case_steps()` (its steps and probes);
//! * `judge`: `case_judge()`, each expectation of [`crate::model::predict`] as one check
//!   with the expected value inline.
//!
//! Like the executor, the program probes the kernel it runs on before the case (the room for
//! nested namespaces, from which it places itself; which `/proc/self/ns` links name
//! namespaces reliably; kcmp, clone3, pidfd_open) and turns off, and prints, the checks that
//! need what is missing.

use std::fmt::Write;

use crate::abi::ns::NsObserver;
use crate::case::{Case, CaseError, Setup};
use crate::env::Environment;
use crate::model::{Expected, FinalExpect, KernelProfile, Prediction, predict};

mod guest;
mod judge;
mod lower;
mod tables;
mod witness;

/// The C primitives shared by every reproducer, in the order they are pasted.
pub const PRIMITIVES: [(&str, &str); 10] = [
    ("prelude.c", include_str!("prelude.c")),
    ("setup.c", include_str!("setup.c")),
    ("clone3.c", include_str!("clone3.c")),
    ("caps.c", include_str!("caps.c")),
    ("checks.c", include_str!("checks.c")),
    ("markers.c", include_str!("markers.c")),
    ("inside.c", include_str!("inside.c")),
    ("sandbox.c", include_str!("sandbox.c")),
    ("idmap.c", include_str!("idmap.c")),
    ("witness.c", include_str!("witness.c")),
];

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

/// Refuses a setup with fields the reproducer does not build (a field added to [`Setup`] later
/// makes this comparison differ until the reproducer learns it).
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
        high_fd: setup.high_fd,
        shm: setup.shm,
        sem_clamp: setup.sem_clamp,
        nsfs_bind: setup.nsfs_bind,
        fd_at: setup.fd_at,
        nr_open: setup.nr_open,
        // The witness is reproduced (`witness.c`): started before the steps, judged after them.
        inside_witness: setup.inside_witness,
        // Its setup op (`shared_mount`) and readings are in `witness.c`.
        shared_mount: setup.shared_mount,
        ..Setup::default()
    };
    if known == *setup { Ok(()) } else { Err(ReproError::Unsupported(format!("{setup:?}"))) }
}

/// Refuses an invalid case, a guest-only one (it runs only in a qemu guest) and a setup the
/// reproducer cannot build.
fn buildable(case: &Case) -> Result<(), ReproError> {
    case.validate()?;
    if let Some(n) = case.setup.fail_nth {
        // Skipped like a case the model skips here: such a case runs only in a qemu guest.
        return Err(ReproError::Skipped(format!(
            "guest-only setup (fail-nth {n}): the C reproducer does not write fail-nth; \
             replay the case in a scripts/kcov.sh guest (docs/guest-only.md)"
        )));
    }
    check_supported(&case.setup)?;
    Ok(())
}

/// Renders `case` as a standalone C program that checks the kernel against the
/// expectations `profile` gives in `env`. The program reads the `/proc/self/ns` links, so the
/// expectations are computed for that observer whatever `env` says.
///
/// # Errors
/// [`ReproError`] if the case is invalid, skipped by the model here, or uses a
/// setup or step the reproducer cannot build.
pub fn c_source(case: &Case, profile: &KernelProfile, env: &Environment) -> Result<String, ReproError> {
    buildable(case)?;
    let mut env = Environment { ns_observer: NsObserver::ProcLinks, ..env.clone() };
    if case.setup.nr_open.is_some() && env.guest.is_none() {
        // Predicted for the throwaway guest it must run in; the program refuses to run elsewhere.
        env.guest = crate::model::guest::reference_for(case).guest;
    }
    let env = &env;
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
    buildable(case)?;
    if steps.len() != case.steps.len() {
        return Err(ReproError::Unsupported(format!("{} expectations for {} steps", steps.len(), case.steps.len())));
    }
    if case.setup.siblings.len() > crate::exec::child::record::SIBS {
        return Err(ReproError::Unsupported(format!("{} siblings", case.setup.siblings.len())));
    }
    let case_steps = lower::steps_c(case, steps)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "/* unshare-fuzz reproducer, generated by unshare-fuzz {}.\n * case: {}\n * \
         build and run:  gcc -O2 -Wall -o repro repro.c && ./repro   (add -pthread on glibc < 2.34)\n * \
         exit status: 0 the kernel agrees with the model, 1 mismatch (or timeout, crash), 2 could not run\n */",
        env!("CARGO_PKG_VERSION"),
        lower::c_comment(&case.to_string())
    );
    tables::tables(&mut out);
    witness::defines(&mut out);
    for (_, text) in PRIMITIVES {
        out.push_str(text);
    }
    if guest::uses_guest_c(&case.setup) {
        out.push_str(&guest::guest_c());
    }
    out.push_str("\n/* ---- the case, generated from the harness's plan and model ---- */\n");
    out.push_str(&lower::setup_c(&case.setup));
    out.push_str(&case_steps);
    out.push_str(&judge::judge_c(case, steps, final_probe, env.kcmp));
    let json = serde_json::to_string(case).map_err(ReproError::Parse)?;
    let level = |v: Option<u8>| v.map_or(-1, i32::from);
    let _ = writeln!(
        out,
        "int main(void)\n{{\n{}{}\treturn repro_main({},\n\t\t\t  {},\n\t\t\t  {}, {},\n\t\t\t  {},\n\t\t\t  {}, {});\n}}",
        if case.steps.iter().any(|s| matches!(s, crate::case::Step::UnshareInt80(_))) {
            "\tcase_uses_int80 = 1;\n"
        } else {
            ""
        },
        // A lowered fs.nr_open: refused outside a throwaway guest, written back at exit.
        if case.setup.nr_open.is_some() { "\tguest_begin();\n\tatexit(guest_end);\n" } else { "" },
        c_str(&case.to_string()),
        c_str(&json),
        c_str(model),
        c_str(&env.kernel_release),
        c_str(&env.sandbox),
        level(case.setup.pidns_level),
        level(case.setup.userns_depth),
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::flags::RawFlags;
    use crate::abi::flags::bits;
    use crate::case::{Chroot, Privilege, Sibling, Step};
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
        assert!(src.contains("step_done(x, 0, step_unshare(x, 0x100020000ULL));"), "{src}");
        assert!(src.contains("step_result(r, 0, \"unshare(NEWNS|0x100000000)\", EINVAL, \"unknown-bit, effective flags 0x100020200\");"), "{src}");
        assert!(src.contains("step_done(x, 1, step_unshare(x, 0x40000000ULL));"));
        assert!(src.contains("step_result(r, 1, \"unshare(NEWNET)\", 0, \"success, effective flags 0x40000000\");"));
        assert!(src.contains("link_is(1, &f, b, a, 3 /* net */, LINK_FRESH);"), "{src}");
        assert!(src.contains("syscall(SYS_unshare, (unsigned long)flags)"));
        // pthread.h brings in <sched.h> and its int unshare(); the identifier is poisoned after
        // the includes, so a call to it does not compile.
        assert!(src.contains("#pragma GCC poison unshare"));
        assert!(!src.contains("<sched.h>"));
        assert!(src.contains("#define U_CLONE_NEWTIME 0x80ULL"));
        assert!(src.contains("#define CHROOT_DIR \"/tmp/uf-chroot\""));
        assert!(src.contains("#define OP_PID_NESTING \"unshare(NEWPID) + fork (pid-ns nesting)\""));
        assert!(src.contains("#define USERNS_MAX_DEPTH 33") && src.contains("#define PIDNS_MAX_LEVEL 32"));
        // Straight-line: no setup field and no step this case does not have.
        assert!(!src.contains("sem_undo(x);") && !src.contains("add_sibling(x,") && !src.contains("nest(x);"));
    }

    #[test]
    fn guest_only_cases_are_refused() {
        let mut case = Case::unshare(&[crate::abi::flags::bits::FILES]);
        case.setup.siblings = vec![Sibling::Files];
        case.setup.fd_at = Some(200);
        case.setup.nr_open = Some(64);
        // The EMFILE case is built: predicted for a throwaway guest, refused by the program
        // itself anywhere else, fs.nr_open written back at exit.
        let src = c_source(&case, &LINUX_6_18, &Environment::reference()).unwrap();
        assert!(src.contains("\tguest_begin();\n\tatexit(guest_end);\n"), "{src}");
        assert!(src.contains("\tguest_fd_at(x, 200);\n\tguest_nr_open(x, 64);\n"), "{src}");
        assert!(src.contains("EMFILE, \"files-over-nr-open"), "{src}");
        assert!(src.contains("#define GUEST_TOKEN \"pid1-of-a-throwaway-qemu-guest\""), "{src}");
        assert!(src.contains("#define GUEST_CMDLINE_MARK \"uf.args=\""));
        assert!(
            !c_source(&Case::unshare(&[0]), &LINUX_6_18, &Environment::reference()).unwrap().contains("guest_begin")
        );
        case.setup.nr_open = None;
        case.setup.fd_at = None;
        case.setup.fail_nth = Some(2);
        let e = c_source(&case, &LINUX_6_18, &Environment::reference()).unwrap_err().to_string();
        assert!(e.contains("guest-only") && e.contains("fail-nth 2"), "{e}");
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
                high_fd: true,
                shm: Some(crate::case::Shm::Attached),
                sem_clamp: true,
                nsfs_bind: true,
                // Guest-only fields: guest_only_cases_are_refused.
                fd_at: None,
                nr_open: None,
                fail_nth: None,
                inside_witness: false,
                shared_mount: false,
            },
            steps: vec![Step::Fork, Step::ForkExit, Step::WriteMaps, Step::SpawnThread],
        };
        let src = c_source(&case, &LINUX_6_18, &Environment::reference()).unwrap();
        for needle in [
            "\tsetup_op(x, OP_SETPGID, setpgid(0, 0));\n\tsetup_op(x, OP_PDEATHSIG, prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0));\n\
             \tnsfs_bind(x);\n\tnest(x); /* to pid-ns level 3, user-ns depth 2 (-1: as it is) */\n\
             \tenter_mapped_userns(x, OP_WRITE_LIMIT);\n\
             \tsetup_op(x, OP_WRITE_LIMIT, write_file(\"/proc/sys/user/max_ipc_namespaces\", \"0\"));\n\
             \tforeign_pidns(x);\n\tsetup_op(x, OP_CHROOT, do_chroot(\"/\"));\n\
             \topen_fd(x, 0);\n\topen_fd(x, O_CLOEXEC);\n\thigh_fd(x, 100);\n\tshm_segments(x, 0);\n\
             \tsem_undo(x);\n\tsem_clamp(x);\n\
             \tsetup_op(x, OP_CWD_UMASK, chdir(\"/proc\"));\n\tumask(077);\n\
             \tsetup_op(x, OP_CAPSET_DROP_SYS_ADMIN, drop_sys_admin());\n",
            "\tadd_sibling(x, 0x200UL); /* fs */\n\tadd_sibling(x, 0x400UL); /* files */\n\
             \tadd_sibling(x, 0x900UL); /* vm-sighand */\n\tadd_thread(x);\n}",
            "in_vfork_child(x, steps_in_vfork_child);",
            "step_done(x, 0, step_fork());",
            "step_done(x, 1, step_fork_exit());",
            "step_done(x, 2, step_write_maps(x));",
            "step_done(x, 3, spawn_parked_thread());",
            "probe_files(x, 1);\n\tprobe_fs(x, 0);\n\tprobe_sem(x);",
            "return repro_main(",
            "\t\t\t  3, 2);",
        ] {
            assert!(src.contains(needle), "no {needle:?} in the source:\n{src}");
        }
        let chroot = Case { steps: vec![Step::Chroot(Chroot::Subdir), Step::DropSysAdmin], ..Case::unshare(&[0]) };
        let src = c_source(&chroot, &LINUX_6_18, &Environment::reference()).unwrap();
        assert!(src.contains("step_done(x, 0, step_rc(do_chroot(CHROOT_DIR)));"), "{src}");
        assert!(src.contains("step_done(x, 1, step_rc(drop_sys_admin()));"));
    }

    #[test]
    fn clone3_steps_are_rendered_with_their_checks() {
        // clone3: a new UTS namespace with a pidfd, then one that fails (INTO_CGROUP, bad fd).
        let clone3 = Case {
            steps: vec![Step::Clone3(RawFlags(bits::NEWUTS | bits::PIDFD)), Step::Clone3(RawFlags(bits::INTO_CGROUP))],
            ..Case::unshare(&[0])
        };
        let src = c_source(&clone3, &LINUX_6_18, &Environment::reference()).unwrap();
        for needle in [
            "step_done(x, 0, step_clone3(x, 0x4001000ULL, 17, &x->r->step[0].child));",
            "step_result(r, 0, \"clone3(PIDFD|NEWUTS)\", K.clone3 ? 0 : ENOSYS, K.clone3 ? \"success\" : \"clone3-missing\");",
            "if (child_there(0, o, K.clone3)) {",
            "child_link_is(0, &cf, b, a, &o->state, 0 /* cgroup */, CL_PARENT_BEFORE(0) /* cgroup */);",
            "child_link_is(0, &cf, b, a, &o->state, 9 /* uts */, CL_FRESH);",
            "child_seen(0, o, 1, 1, 1, 0);",
            "K.clone3 ? EBADF : ENOSYS",
            "(void)child_there(1, o, 0);",
            "#define CLONE3_CGROUP_FD 2147483647ULL",
        ] {
            assert!(src.contains(needle), "no {needle:?} in the source:\n{src}");
        }
    }

    #[test]
    fn every_primitive_file_stays_small() {
        for (name, text) in PRIMITIVES {
            assert!(text.lines().count() < 500, "{name} has {} lines", text.lines().count());
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
