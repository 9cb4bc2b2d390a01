//! The spec's measured tables (unshare-semantics.md §5.2 sharing matrix, §5.4
//! privileges/chroot/nesting, §5.5 precedence, §5.6 atomicity) as cases run on
//! the real kernel: for every row, the kernel's results must equal the table,
//! the model's predictions must equal the table, and no invariant may fail.
//! Where this kernel disagrees with the spec, the row follows the kernel and
//! docs/kernel-vs-spec.md records it.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

mod common;

use std::time::Duration;

use unshare_fuzz::abi::errno::CallResult;
use unshare_fuzz::abi::flags::RawFlags;
use unshare_fuzz::case::{Case, Chroot, NsType, Privilege, Setup, Sibling, Step};
use unshare_fuzz::check::judge;
use unshare_fuzz::exec::Executor;
use unshare_fuzz::model::{Prediction, predict, profile::LINUX_6_18};

fn u(flags: &str) -> Step {
    Step::Unshare(flags.parse::<RawFlags>().unwrap())
}

struct Row {
    spec: &'static str,
    setup: Setup,
    steps: Vec<Step>,
    want: &'static [&'static str],
}

fn row(spec: &'static str, setup: Setup, steps: Vec<Step>, want: &'static [&'static str]) -> Row {
    Row { spec, setup, steps, want }
}

fn with(f: impl FnOnce(&mut Setup)) -> Setup {
    let mut s = Setup::default();
    f(&mut s);
    s
}

fn sharing_matrix() -> Vec<Row> {
    let cols = ["THREAD", "SIGHAND", "VM", "NEWUSER", "FS", "FILES", "NEWNS", "NEWPID", "NEWTIME", "SYSVSEM", "NEWNET"];
    let table: [(&str, Setup, [&str; 11]); 7] = [
        ("§5.2 single-threaded", Setup::default(), ["success"; 11]),
        (
            "§5.2 second pthread",
            with(|s| s.threads = 1),
            [
                "EINVAL", "EINVAL", "EINVAL", "EINVAL", "success", "success", "success", "success", "success",
                "success", "success",
            ],
        ),
        (
            "§5.2 CLONE_VM sibling",
            with(|s| s.siblings = vec![Sibling::Vm]),
            [
                "success", "success", "EINVAL", "success", "success", "success", "success", "success", "success",
                "success", "success",
            ],
        ),
        (
            "§5.2 CLONE_VM|SIGHAND sibling",
            with(|s| s.siblings = vec![Sibling::VmSighand]),
            [
                "success", "EINVAL", "EINVAL", "success", "success", "success", "success", "success", "success",
                "success", "success",
            ],
        ),
        ("§5.2 CLONE_FILES sibling", with(|s| s.siblings = vec![Sibling::Files]), ["success"; 11]),
        ("§5.2 CLONE_FS sibling", with(|s| s.siblings = vec![Sibling::Fs]), ["success"; 11]),
        ("§5.2 CLONE_SYSVSEM sibling", with(|s| s.siblings = vec![Sibling::Sysvsem]), ["success"; 11]),
    ];
    let mut rows = Vec::new();
    for (spec, setup, results) in table {
        for (col, want) in cols.iter().zip(results) {
            let want: &'static [&'static str] = match want {
                "success" => &["success"],
                _ => &["EINVAL"],
            };
            rows.push(Row { spec, setup: setup.clone(), steps: vec![u(col)], want });
        }
    }
    let vfork = with(|s| s.vfork = true);
    rows.push(row("§5.2 vfork child THREAD", vfork.clone(), vec![u("THREAD")], &["success"]));
    rows.push(row("§5.2 vfork child SIGHAND", vfork.clone(), vec![u("SIGHAND")], &["success"]));
    rows.push(row("§5.2 vfork child VM", vfork, vec![u("VM")], &["EINVAL"]));
    rows
}

#[expect(clippy::too_many_lines, reason = "a data table: one row per spec case, read as a table")]
fn privileges_and_nesting() -> Vec<Row> {
    let no_admin = Setup::with_privilege(Privilege::RootWithoutSysAdmin);
    let nobody = Setup::with_privilege(Privilege::Nobody);
    let chrooted = with(|s| s.chroot = Some(Chroot::Subdir));
    vec![
        row(
            "§5.4 no CAP_SYS_ADMIN: namespaces",
            no_admin.clone(),
            vec![u("NEWNS"), u("NEWUTS|NEWIPC"), u("NEWPID"), u("NEWCGROUP|NEWNET|NEWTIME")],
            &["EPERM", "EPERM", "EPERM", "EPERM"],
        ),
        row(
            "§5.4 no CAP_SYS_ADMIN: user ns",
            no_admin.clone(),
            vec![u("NEWUSER|NEWNS"), u("NEWUSER")],
            &["success", "EPERM"],
        ),
        row(
            "§5.4 no CAP_SYS_ADMIN: sharing flags",
            no_admin,
            vec![u("FILES|FS|SYSVSEM"), u("THREAD|SIGHAND|VM")],
            &["success", "success"],
        ),
        row(
            "§5.4 nobody step by step (1)",
            nobody.clone(),
            vec![u("NEWUSER"), u("NEWNS"), u("NEWUSER"), u("NEWUSER|0x100000000")],
            &["success", "success", "EPERM", "EINVAL"],
        ),
        row(
            "§5.4 nobody step by step (2)",
            nobody,
            vec![u("NEWUSER"), Step::WriteMaps, u("NEWUSER")],
            &["success", "success", "success"],
        ),
        row(
            "§5.4 chroot: NEWUSER",
            chrooted.clone(),
            vec![u("NEWUSER"), u("NEWUSER|NEWNS"), u("NEWUSER|0x100000000"), u("NEWNS")],
            &["EPERM", "EPERM", "EINVAL", "success"],
        ),
        row(
            "§5.4 chroot: still EPERM after NEWNS",
            chrooted.clone(),
            vec![u("NEWNS"), u("NEWUSER")],
            &["success", "EPERM"],
        ),
        row(
            "§5.4 chroot + thread",
            with(|s| {
                s.chroot = Some(Chroot::Subdir);
                s.threads = 1
            }),
            vec![u("NEWUSER")],
            &["EINVAL"],
        ),
        row(
            "§5.4 chroot(\"/\") does not count",
            with(|s| s.chroot = Some(Chroot::Root)),
            vec![u("NEWUSER")],
            &["success"],
        ),
        row(
            "§5.4 user-ns depth 33",
            with(|s| s.userns_depth = Some(33)),
            vec![u("NEWUSER"), u("NEWUSER|0x100000000"), u("NEWNS")],
            &["ENOSPC", "EINVAL", "success"],
        ),
        row(
            "§5.4 user-ns depth 33 chrooted",
            with(|s| {
                s.userns_depth = Some(33);
                s.chroot = Some(Chroot::Subdir)
            }),
            vec![u("NEWUSER")],
            &["ENOSPC"],
        ),
        row(
            "§5.4 user-ns depth 32",
            with(|s| s.userns_depth = Some(32)),
            vec![u("NEWUSER"), Step::WriteMaps, u("NEWUSER")],
            &["success", "success", "ENOSPC"],
        ),
        row("§5.4 pid-ns level 32", with(|s| s.pidns_level = Some(32)), vec![u("NEWPID")], &["ENOSPC"]),
        row(
            "§5.4 pid-ns level 31",
            with(|s| s.pidns_level = Some(31)),
            vec![u("NEWPID"), Step::Fork, u("NEWPID")],
            &["success", "success", "ENOSPC"],
        ),
        row(
            "§5.4 NEWPID twice",
            Setup::default(),
            vec![u("NEWPID"), u("NEWPID"), u("NEWPID|NEWUTS")],
            &["success", "EINVAL", "EINVAL"],
        ),
        row(
            "§5.4 NEWPID in the new init",
            Setup::default(),
            vec![u("NEWPID"), Step::Fork, u("NEWPID")],
            &["success", "success", "success"],
        ),
        row(
            "§5.8 after the init died",
            Setup::default(),
            vec![u("NEWPID"), Step::ForkExit, Step::Fork, u("NEWPID")],
            &["success", "success", "ENOMEM", "EINVAL"],
        ),
        row(
            "§5.8 threads after NEWPID",
            Setup::default(),
            vec![u("NEWPID"), Step::SpawnThread, Step::Fork, Step::SpawnThread],
            &["success", "EINVAL", "success", "success"],
        ),
        row(
            "§5.4 NEWTIME twice",
            Setup::default(),
            vec![u("NEWTIME"), u("NEWTIME"), Step::SpawnThread, Step::Fork],
            &["success", "success", "success", "success"],
        ),
    ]
}

#[expect(clippy::too_many_lines, reason = "a data table: one row per spec case, read as a table")]
fn precedence() -> Vec<Row> {
    let no_admin = Setup::with_privilege(Privilege::RootWithoutSysAdmin);
    let mut rows = vec![
        row(
            "§5.5 no CAP + unknown bit",
            no_admin.clone(),
            vec![u("NEWNS|0x100000000"), u("NEWNS|IO")],
            &["EINVAL", "EINVAL"],
        ),
        row(
            "§5.5 thread + no CAP + VM",
            with(|s| {
                s.privilege = Privilege::RootWithoutSysAdmin;
                s.threads = 1
            }),
            vec![u("NEWNS|VM"), u("NEWNS")],
            &["EINVAL", "EPERM"],
        ),
        row(
            "§5.5 NEWPID, drop CAP, NEWPID",
            Setup::default(),
            vec![u("NEWPID"), Step::DropSysAdmin, u("NEWPID")],
            &["success", "success", "EPERM"],
        ),
        row(
            "§5.5 NEWPID, chroot, NEWUSER|NEWPID",
            Setup::default(),
            vec![u("NEWPID"), Step::Chroot(Chroot::Subdir), u("NEWUSER|NEWPID")],
            &["success", "success", "EPERM"],
        ),
        row(
            "§5.5 user ns without CAP_SYS_ADMIN",
            Setup::with_privilege(Privilege::UserNs),
            vec![Step::DropSysAdmin, u("NEWNS"), u("NEWUSER|NEWNS")],
            &["success", "EPERM", "success"],
        ),
        row(
            "§5.5 foreign pid ns",
            with(|s| s.foreign_pidns = true),
            vec![u("NEWPID"), u("NEWUSER|NEWPID")],
            &["EINVAL", "EINVAL"],
        ),
        row(
            "§5.5 max_user=0 + NEWUSER|NEWNS",
            with(|s| s.limit_zero = Some(NsType::User)),
            vec![u("NEWUSER|NEWNS")],
            &["ENOSPC"],
        ),
        row(
            "§5.5 max_user=0 + chrooted NEWUSER",
            with(|s| {
                s.limit_zero = Some(NsType::User);
                s.chroot = Some(Chroot::Subdir)
            }),
            vec![u("NEWUSER")],
            &["ENOSPC"],
        ),
        row(
            "§5.5 max_uts=0 + NEWNS|NEWUTS",
            with(|s| s.limit_zero = Some(NsType::Uts)),
            vec![u("NEWNS|NEWUTS")],
            &["ENOSPC"],
        ),
        row(
            "§5.5 max_mnt=0 + NEWNS|NEWPID after NEWPID",
            with(|s| s.limit_zero = Some(NsType::Mnt)),
            vec![u("NEWPID"), u("NEWNS|NEWPID")],
            &["success", "ENOSPC"],
        ),
        row("§5.5 max_pid=0 after NEWPID", with(|s| s.limit_zero = Some(NsType::Pid)), vec![u("NEWPID")], &["ENOSPC"]),
        row(
            "§5.5 max_net=0 + UTS|NET|TIME",
            with(|s| s.limit_zero = Some(NsType::Net)),
            vec![u("NEWUTS|NEWNET|NEWTIME")],
            &["ENOSPC"],
        ),
    ];
    for t in NsType::ALL {
        let flag = unshare_fuzz::abi::flags::RawFlags(t.flag()).to_string();
        rows.push(Row {
            spec: "§5.5 private user ns, max_X_namespaces=0",
            setup: with(|s| s.limit_zero = Some(t)),
            steps: vec![u(&flag)],
            want: &["ENOSPC"],
        });
    }
    rows
}

#[expect(clippy::too_many_lines, reason = "a data table: one row per spec case, read as a table")]
fn atomicity() -> Vec<Row> {
    vec![
        row("§5.6 NEWNS|NEWPID", Setup::default(), vec![u("NEWPID"), u("NEWNS|NEWPID")], &["success", "EINVAL"]),
        row(
            "§5.6 all non-user namespaces",
            Setup::default(),
            vec![u("NEWPID"), u("NEWNS|NEWUTS|NEWIPC|NEWPID|NEWCGROUP|NEWNET|NEWTIME")],
            &["success", "EINVAL"],
        ),
        row("§5.6 NEWUSER|all", Setup::default(), vec![u("NEWPID"), u("0x7E020080")], &["success", "EINVAL"]),
        row(
            "§5.6 FILES(shared)|NEWPID",
            with(|s| {
                s.siblings = vec![Sibling::Files];
                s.fds = 2
            }),
            vec![u("NEWPID"), u("FILES|NEWPID")],
            &["success", "EINVAL"],
        ),
        row(
            "§5.6 FS(shared)|NEWPID",
            with(|s| s.siblings = vec![Sibling::Fs]),
            vec![u("NEWPID"), u("FS|NEWPID")],
            &["success", "EINVAL"],
        ),
        row(
            "§5.6 SYSVSEM|NEWPID with semadj",
            with(|s| {
                s.sem_undo = true;
                s.siblings = vec![Sibling::Vm]
            }),
            vec![u("NEWPID"), u("SYSVSEM|NEWPID"), u("NEWIPC|NEWPID")],
            &["success", "EINVAL", "EINVAL"],
        ),
        row(
            "§5.3 SYSVSEM applies a private undo list",
            with(|s| {
                s.sem_undo = true;
                s.siblings = vec![Sibling::Vm]
            }),
            vec![u("SYSVSEM")],
            &["success"],
        ),
        row(
            "§5.3 SYSVSEM with a shared undo list",
            with(|s| {
                s.sem_undo = true;
                s.siblings = vec![Sibling::Sysvsem]
            }),
            vec![u("SYSVSEM")],
            &["success"],
        ),
        row(
            "§5.3 FILES then FS with siblings",
            with(|s| {
                s.siblings = vec![Sibling::Files, Sibling::Fs];
                s.fds = 3;
                s.cwd_umask = true
            }),
            vec![u("FILES"), u("NEWNS")],
            &["success", "success"],
        ),
    ]
}

fn check_rows(rows: Vec<Row>) {
    let mut ex = Executor::spawn(common::binary(), &[]).unwrap();
    let env = ex.environment().clone();
    let mut failures = Vec::new();
    let mut ran = 0;
    for r in rows {
        let case = Case { setup: r.setup, steps: r.steps };
        let want: Vec<CallResult> =
            r.want.iter().map(|w| serde_json::from_value(serde_json::json!(w)).unwrap()).collect();
        let prediction = predict(&LINUX_6_18, &env, &case);
        let Prediction::Steps { steps, .. } = &prediction else {
            eprintln!("SKIP {}: {case}: {prediction:?}", r.spec);
            continue;
        };
        let model: Vec<CallResult> = steps.iter().map(|e| e.result).collect();
        let outcome = ex.run(&case, Duration::from_secs(10)).unwrap();
        let kernel: Vec<CallResult> = match &outcome {
            unshare_fuzz::exec::observe::Outcome::Completed { trace } => trace.steps.iter().map(|s| s.result).collect(),
            other => {
                failures.push(format!("{}: {case}: {other:?}", r.spec));
                continue;
            }
        };
        ran += 1;
        let verdict = judge(&env, &case, &prediction, &outcome);
        if kernel != want || model != want || !verdict.violations.is_empty() || verdict.broken.is_some() {
            failures.push(format!(
                "{}: {case}\n    spec   {want:?}\n    kernel {kernel:?}\n    model  {model:?}\n    violations {:?} broken {:?}",
                r.spec,
                verdict.violations.iter().map(|v| format!("{}: {}", v.invariant, v.detail)).collect::<Vec<_>>(),
                verdict.broken
            ));
        }
    }
    assert!(failures.is_empty(), "{} of the rows disagree:\n{}", failures.len(), failures.join("\n"));
    assert!(ran > 0, "no row could run here");
}

#[test]
fn sharing_matrix_of_spec_5_2() {
    check_rows(sharing_matrix());
}

#[test]
fn privileges_chroot_and_nesting_of_spec_5_4() {
    check_rows(privileges_and_nesting());
}

#[test]
fn precedence_of_spec_5_5() {
    check_rows(precedence());
}

#[test]
fn atomicity_of_spec_5_6() {
    check_rows(atomicity());
}
