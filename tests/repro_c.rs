//! C reproducers end to end: generate them for a sample of generated cases that covers every
//! kind of setup and every kind of step, and for corpus files, compile each with gcc (warnings
//! are errors, and glibc's `unshare` identifier is poisoned), run them, and check that they
//! agree with the model and with the harness's own run of the same case on this kernel. Also:
//! each kind of wrong expectation (result, link, pid, kcmp, final probe, behaviour) makes a
//! reproducer exit 1 and say what differs. Only processes are spawned; the test never forks.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use unshare_fuzz::case::{Case, Chroot, Privilege, Setup, Sibling, Step};
use unshare_fuzz::command::run::cases_for_seed;
use unshare_fuzz::env::Environment;
use unshare_fuzz::exec::Executor;
use unshare_fuzz::model::{KcmpExpect, PidExpect, Prediction, predict, profile::LINUX_6_18};
use unshare_fuzz::repro::{ReproError, c_source, c_source_with};

#[path = "support/repro_build.rs"]
mod repro_build;
use repro_build::{agree_with_harness, build_and_run, compile_all, observed, probed_environment, run};

/// Sampled cases per feature (at least).
const PER_FEATURE: usize = 2;

/// Every setup kind and step kind the sample must cover.
fn all_features() -> Vec<String> {
    let mut f: Vec<String> = Privilege::ALL.iter().map(|p| format!("privilege {}", p.name())).collect();
    f.extend(
        [
            "threads",
            "pidns_level",
            "userns_depth",
            "limit_zero",
            "foreign_pidns",
            "chroot subdir",
            "chroot /",
            "fds",
            "sem_undo",
            "cwd_umask",
            "vfork",
        ]
        .map(String::from),
    );
    f.extend(Sibling::ALL.iter().map(|s| format!("sibling {}", s.name())));
    f.extend(
        [
            "step unshare",
            "step fork",
            "step fork_exit",
            "step write_maps",
            "step drop_sys_admin",
            "step chroot subdir",
            "step chroot /",
            "step spawn_thread",
            "step clone3",
            "step caps",
            "step thread_call",
            "step setns",
            "step clone3_set_tid",
            "step idmap",
        ]
        .map(String::from),
    );
    f
}

/// The feature name of a step kind; `None` for a kind this test does not know (one added
/// on another branch), which the reproducer may refuse.
fn step_feature(step: &Step) -> Option<&'static str> {
    #[allow(unreachable_patterns, reason = "step kinds added on other branches are not sampled here")]
    Some(match step {
        Step::Unshare(_) => "step unshare",
        Step::Fork => "step fork",
        Step::ForkExit => "step fork_exit",
        Step::WriteMaps => "step write_maps",
        Step::DropSysAdmin => "step drop_sys_admin",
        Step::Chroot(Chroot::Subdir) => "step chroot subdir",
        Step::Chroot(Chroot::Root) => "step chroot /",
        Step::SpawnThread => "step spawn_thread",
        Step::Clone3(_) => "step clone3",
        Step::Caps(_) => "step caps",
        Step::ThreadCall(_) => "step thread_call",
        Step::Setns(_) => "step setns",
        Step::Clone3SetTid(_) => "step clone3_set_tid",
        Step::Idmap(_) => "step idmap",
        Step::WitnessIdmap(_) => "step witness_idmap",
        _ => return None,
    })
}

fn features(case: &Case) -> Vec<String> {
    let s = &case.setup;
    let mut f = vec![format!("privilege {}", s.privilege.name())];
    let flags = [
        ("threads", s.threads > 0),
        ("pidns_level", s.pidns_level.is_some()),
        ("userns_depth", s.userns_depth.is_some()),
        ("limit_zero", s.limit_zero.is_some()),
        ("foreign_pidns", s.foreign_pidns),
        ("chroot subdir", s.chroot == Some(Chroot::Subdir)),
        ("chroot /", s.chroot == Some(Chroot::Root)),
        ("fds", s.fds > 0),
        ("sem_undo", s.sem_undo),
        ("cwd_umask", s.cwd_umask),
        ("vfork", s.vfork),
    ];
    f.extend(flags.iter().filter(|(_, on)| *on).map(|(n, _)| n.to_string()));
    f.extend(s.siblings.iter().map(|k| format!("sibling {}", k.name())));
    f.extend(case.steps.iter().filter_map(step_feature).map(String::from));
    f.sort();
    f.dedup();
    f
}

/// Cases from the seeded stream, taken greedily until every feature is covered
/// PER_FEATURE times; only cases the model predicts here (a skipped case has no
/// reproducer) and that a reproducer supports. Returns (case, C source) pairs.
fn sample(env: &Environment) -> Vec<(Case, String)> {
    let want = all_features();
    let mut seen: BTreeMap<String, usize> = want.iter().map(|f| (f.clone(), 0)).collect();
    let mut out = Vec::new();
    for case in cases_for_seed(20_261_129).take(50_000) {
        let fs = features(&case);
        if fs.iter().all(|f| seen.get(f).is_none_or(|n| *n >= PER_FEATURE)) {
            continue;
        }
        let src = match c_source(&case, &LINUX_6_18, env) {
            Ok(src) => src,
            Err(ReproError::Skipped(_)) => continue,
            Err(ReproError::Unsupported(_)) if case.steps.iter().any(|s| step_feature(s).is_none()) => continue,
            Err(e) => panic!("{case}: the reproducer refuses a generated case: {e}"),
        };
        for f in &fs {
            *seen.entry(f.clone()).or_default() += 1;
        }
        out.push((case, src));
        if seen.values().all(|n| *n >= PER_FEATURE) {
            break;
        }
    }
    let missing: Vec<&String> = seen.iter().filter(|(_, n)| **n < PER_FEATURE).map(|(f, _)| f).collect();
    assert!(missing.is_empty(), "the sample does not cover {missing:?} {PER_FEATURE} times");
    out
}

#[test]
fn reproducers_of_every_setup_and_step_kind_agree_with_the_harness() {
    let dir = common::temp_dir("repro-c");
    let mut executor = Executor::spawn(common::binary(), &[]).expect("start the executor");
    // The executor's own environment: its baseline inodes are the ones alive during its cases.
    let env = executor.environment().clone();
    let sample = sample(&env);
    let sources: Vec<String> = sample.iter().map(|(_, s)| s.clone()).collect();
    let bins = compile_all(&dir, &sources);
    let (successes, other_steps_ok, failures) = agree_with_harness(&mut executor, &env, &sample, &bins);
    eprintln!(
        "{} reproducers agree with the harness: {successes} unshare successes, {other_steps_ok} other steps, \
         {failures} failures",
        sample.len()
    );
    assert!(successes >= 10 && other_steps_ok >= 5 && failures >= 5, "{successes} {other_steps_ok} {failures}");
}

#[test]
fn the_cli_writes_a_reproducer_for_a_corpus_file() {
    let dir = common::temp_dir("repro-cli");
    let file = dir.join("case.json");
    std::fs::write(
        &file,
        r#"{"format": 1, "title": "user ns then mount ns", "origin": "manual",
            "case": {"setup": {"privilege": "root-without-sys-admin", "threads": 0},
                     "steps": [{"unshare": "NEWNS"}, {"unshare": "NEWUSER|NEWNS"}, {"unshare": "NEWUTS|0x100000000"}]}}"#,
    )
    .unwrap();
    let out = common::run(&["repro", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", common::text(&out));
    let (code, stdout) = build_and_run(&dir, "cli", &String::from_utf8(out.stdout).unwrap());
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(observed(&stdout), ["EPERM", "success", "EINVAL"], "{stdout}");

    std::fs::write(&file, r#"{"case": {"steps": [{"unshare": "NEWBOGUS"}]}}"#).unwrap();
    let out = common::run(&["repro", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(common::text(&out).contains("NEWBOGUS"), "{}", common::text(&out));
}

#[test]
fn a_wrong_expectation_makes_the_reproducer_exit_1_and_say_what_differs() {
    // The model is told the executor lacks CAP_SYS_ADMIN, so it predicts EPERM for NEWUTS
    // as root; the kernel, run as root, succeeds.
    let mut env = probed_environment();
    env.baseline.cap_eff &= !(1 << 21);
    let case = Case::unshare(&[0x400_0000]);
    let src = c_source(&case, &LINUX_6_18, &env).unwrap();
    let (code, stdout) = build_and_run(&common::temp_dir("repro-mismatch"), "wrong", &src);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("MISMATCH (step 0): the model expected EPERM, the kernel returned success"), "{stdout}");
    // The model keeps the UTS namespace of a call it expects to fail; behaviour shows a new one.
    assert!(stdout.contains("(final probe): the hostname the caller set after the steps did not reach"));
    assert!(stdout.contains("RESULT: MISMATCH, 2 difference(s)"), "{stdout}");
}

type Tamper = fn(&mut Vec<unshare_fuzz::model::Expected>, &mut unshare_fuzz::model::FinalExpect);

/// One tampered expectation of each kind: what it is, how it is made, what the program must say.
fn tampers() -> [(&'static str, Tamper, &'static str); 8] {
    [
        (
            "result",
            |s, _| s[2].result = unshare_fuzz::abi::errno::CallResult::Failure(unshare_fuzz::abi::errno::Errno::EPERM),
            "the model expected EPERM, the kernel returned success",
        ),
        (
            "link",
            |s, _| {
                s[0].links[unshare_fuzz::abi::ns::NsLink::PidForChildren.index()] =
                    unshare_fuzz::model::LinkExpect::Unchanged
            },
            "ns/pid_for_children should not change",
        ),
        ("pid", |s, _| s[1].pid = PidExpect::Unchanged, "expected unchanged"),
        (
            "kcmp",
            |s, _| s[0].siblings[0].kcmp[0] = KcmpExpect::Same,
            "kcmp files with sibling 0 (files): expected Same",
        ),
        ("probe", |_, f| f.files_shared = Some(true), "MISMATCH (final probe): the sibling's new fd is visible to us"),
        ("behaviour", |_, f| f.kept.net = Some(false), "the abstract unix socket is still reachable after the steps"),
        (
            "inside, IPC",
            |_, f| f.inside.mq_kept = Some(false),
            "the POSIX message queue is still visible after the steps",
        ),
        (
            "inside, network",
            |_, f| f.inside.devices = Some(unshare_fuzz::model::DevicesExpect::Fresh),
            "a new network namespace should hold as many devices as the sandbox's",
        ),
    ]
}

#[test]
fn each_kind_of_tampered_expectation_is_caught() {
    let env = probed_environment();
    let dir = common::temp_dir("repro-tampered");
    // FILES and FS siblings, fds, a semaphore: unshare(FILES|FS), then fork into a new pid ns.
    let case = Case {
        setup: Setup { fds: 1, sem_undo: true, siblings: vec![Sibling::Files, Sibling::Fs], ..Setup::default() },
        steps: vec![
            Step::Unshare(unshare_fuzz::abi::flags::RawFlags(0x600 | 0x2000_0000)),
            Step::Fork,
            Step::Chroot(Chroot::Subdir),
        ],
    };
    let Prediction::Steps { steps, final_probe } = predict(&LINUX_6_18, &env, &case) else {
        panic!("the model skips {case} here")
    };
    let honest = c_source_with(&case, &steps, &final_probe, "honest", &env).unwrap();
    let (code, stdout) = build_and_run(&dir, "honest", &honest);
    assert_eq!(code, 0, "the untampered expectations must hold:\n{stdout}");

    let tampers = tampers();
    let mut sources = Vec::new();
    for (_, tamper, _) in &tampers {
        let (mut s, mut f) = (steps.clone(), final_probe);
        tamper(&mut s, &mut f);
        sources.push(c_source_with(&case, &s, &f, "tampered", &env).unwrap());
    }
    let bins = compile_all(&dir, &sources);
    for ((what, _, needle), bin) in tampers.iter().zip(&bins) {
        let (code, stdout) = run(bin);
        assert_eq!(code, 1, "tampered {what}: expected exit 1:\n{stdout}");
        assert!(stdout.contains(needle), "tampered {what}: no {needle:?} in:\n{stdout}");
        assert!(stdout.contains("RESULT: MISMATCH"), "{stdout}");
    }
}

/// Clone3 steps get their own, larger sample: the first generated cases with a clone3 step
/// that the model predicts here, until CLONE3_CASES are taken.
const CLONE3_CASES: usize = 45;

#[test]
fn clone3_reproducers_agree_with_the_harness() {
    let dir = common::temp_dir("repro-clone3");
    let mut executor = Executor::spawn(common::binary(), &[]).expect("start the executor");
    let env = executor.environment().clone();
    let mut sample = Vec::new();
    for case in cases_for_seed(20_261_130).take(50_000) {
        if !case.steps.iter().any(|s| matches!(s, Step::Clone3(_))) {
            continue;
        }
        match c_source(&case, &LINUX_6_18, &env) {
            Ok(src) => sample.push((case, src)),
            Err(ReproError::Skipped(_)) => continue,
            Err(e) => panic!("{case}: the reproducer refuses a clone3 case: {e}"),
        }
        if sample.len() == CLONE3_CASES {
            break;
        }
    }
    assert_eq!(sample.len(), CLONE3_CASES, "not enough clone3 cases in the stream");
    let sources: Vec<String> = sample.iter().map(|(_, s)| s.clone()).collect();
    let bins = compile_all(&dir, &sources);
    agree_with_harness(&mut executor, &env, &sample, &bins);
    // How many clone3 calls succeeded and failed, from the reproducers' own output.
    let (mut ok, mut failed) = (0, 0);
    for ((case, _), bin) in sample.iter().zip(&bins) {
        let (_, stdout) = run(bin);
        for (step, r) in case.steps.iter().zip(observed(&stdout)) {
            if matches!(step, Step::Clone3(_)) {
                if r == "success" { ok += 1 } else { failed += 1 }
            }
        }
    }
    eprintln!("{CLONE3_CASES} clone3 reproducers agree with the harness: {ok} clone3 successes, {failed} failures");
    assert!(ok >= 10 && failed >= 5, "{ok} successes, {failed} failures");
}

#[test]
fn each_kind_of_tampered_clone3_expectation_is_caught() {
    use unshare_fuzz::abi::ns::NsLink;
    use unshare_fuzz::model::clone3::{ChildLink, ChildTid};
    let env = probed_environment();
    let dir = common::temp_dir("repro-clone3-tampered");
    // A FILES sibling (no undo list), then clone3 with a new UTS namespace, a pidfd, the
    // parent's TID slot and SYSVSEM, which gives the caller an undo list.
    let flags = 0x0400_0000 | 0x1000 | 0x0010_0000 | 0x0004_0000;
    let case = Case {
        setup: Setup { siblings: vec![Sibling::Files], ..Setup::default() },
        steps: vec![Step::Clone3(unshare_fuzz::abi::flags::RawFlags(flags))],
    };
    let Prediction::Steps { steps, final_probe } = predict(&LINUX_6_18, &env, &case) else {
        panic!("the model skips {case} here")
    };
    let c3 = steps[0].clone3.as_ref().expect("a clone3 expectation");
    assert!(c3.undo_list_made && c3.child.is_some(), "{c3:?}");
    let honest = c_source_with(&case, &steps, &final_probe, "honest", &env).unwrap();
    let (code, stdout) = build_and_run(&dir, "honest", &honest);
    assert_eq!(code, 0, "the untampered expectations must hold:\n{stdout}");

    type Tamper = fn(&mut unshare_fuzz::model::clone3::Clone3Expect);
    let tampers: [(&str, Tamper, &str); 7] = [
        (
            "child link",
            |c| c.child.as_mut().unwrap().links[NsLink::Uts.index()] = ChildLink::ParentBefore(NsLink::Uts),
            "child ns/uts is",
        ),
        ("child tid", |c| c.child.as_mut().unwrap().tid = ChildTid::One, "child TID"),
        (
            "child kcmp",
            |c| c.child.as_mut().unwrap().kcmp.as_mut().unwrap()[0] = KcmpExpect::Same,
            "kcmp files parent/child: expected Same",
        ),
        ("reaping", |c| c.child.as_mut().unwrap().reaped_by_caller = false, "waitpid by the caller gave 0"),
        ("pidfd", |c| c.child.as_mut().unwrap().pidfd = false, "pidfd stored: yes, expected no"),
        ("undo list", |c| c.undo_list_made = false, "kcmp sysvsem with sibling 0"),
        ("no child", |c| c.child = None, "a child was observed for a failing call"),
    ];
    let mut sources = Vec::new();
    for (_, tamper, _) in &tampers {
        let mut s = steps.clone();
        tamper(s[0].clone3.as_mut().unwrap());
        sources.push(c_source_with(&case, &s, &final_probe, "tampered", &env).unwrap());
    }
    let bins = compile_all(&dir, &sources);
    for ((what, _, needle), bin) in tampers.iter().zip(&bins) {
        let (code, stdout) = run(bin);
        assert_eq!(code, 1, "tampered {what}: expected exit 1:\n{stdout}");
        assert!(stdout.contains(needle), "tampered {what}: no {needle:?} in:\n{stdout}");
    }
}

/// Every CORPUS_STRIDE-th corpus file (sorted by path) that pins no other kernel's behaviour
/// (no `"profile"`): its reproducer, built with warnings as errors, must agree with the model
/// on this Linux (exit 0), as the file itself replays clean here. Files the model skips in this
/// environment have no reproducer and are counted apart; at least half of the sample must run.
/// One corpus file in this many is sampled (all of them take about a minute of gcc).
const CORPUS_STRIDE: usize = 3;

#[test]
fn corpus_reproducers_compile_cleanly_and_agree_with_linux() {
    let dir = common::temp_dir("repro-corpus");
    let executor = Executor::spawn(common::binary(), &[]).expect("start the executor");
    let env = executor.environment().clone();
    let everything_here = env.kcmp && env.ns_links.len() == unshare_fuzz::abi::ns::NsLink::COUNT;
    let mut files: Vec<PathBuf> = std::fs::read_dir("corpus")
        .expect("list corpus/")
        .flat_map(|d| std::fs::read_dir(d.expect("corpus entry").path()).into_iter().flatten())
        .map(|e| e.expect("corpus file").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let files: Vec<PathBuf> = files.into_iter().step_by(CORPUS_STRIDE).collect();
    let (mut sample, mut skipped, mut pinned) = (Vec::new(), 0, 0);
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read a corpus file");
        let value: serde_json::Value = serde_json::from_str(&text).expect("corpus JSON");
        if value.get("profile").is_some() {
            pinned += 1;
            continue;
        }
        let case = unshare_fuzz::repro::case_from_json(&text).expect("a valid corpus case");
        if case.setup.nr_open.is_some() {
            // guest: runs only in a throwaway qemu guest (guest_only_reproducers_refuse_on_a_host).
            skipped += 1;
            continue;
        }
        match c_source(&case, &LINUX_6_18, &env) {
            Ok(src) => sample.push((file.clone(), src)),
            Err(ReproError::Skipped(_)) => skipped += 1,
            Err(e) => panic!("{}: no reproducer: {e}", file.display()),
        }
    }
    assert!(sample.len() * 2 >= files.len(), "only {} of {} corpus files have a reproducer", sample.len(), files.len());
    let sources: Vec<String> = sample.iter().map(|(_, s)| s.clone()).collect();
    let bins = compile_all(&dir, &sources);
    for ((file, _), bin) in sample.iter().zip(&bins) {
        let (code, stdout) = run(bin);
        assert_eq!(code, 0, "the reproducer of {} disagrees with this kernel:\n{stdout}", file.display());
        assert!(stdout.contains("RESULT: the kernel agrees with the model"), "{stdout}");
        // Where the harness found every link reliable and kcmp working, the program must too.
        if everything_here {
            assert!(!stdout.contains("\noff: "), "{}: a check was turned off here:\n{stdout}", file.display());
        }
    }
    let n = sample.len();
    eprintln!("{n} corpus reproducers agree with this kernel ({skipped} skipped here, {pinned} pin a profile)");
}

/// guest: the reproducer of a guest-only EMFILE case (it lowers the global fs.nr_open) refuses to
/// run on this host, even with the guest init's variable set by hand (the host's kernel command
/// line has no `uf.args=`), says so and exits 2, and fs.nr_open is unchanged. In a guest it
/// reproduces the EMFILE (docs/guest-only.md, measured with scripts/kernels.sh `uf.exec=`).
#[test]
fn guest_only_reproducers_refuse_on_a_host() {
    let dir = common::temp_dir("repro-guest");
    let text = std::fs::read_to_string("corpus/guest-only/emfile-shared-table-over-nr-open.json").expect("corpus file");
    let case = unshare_fuzz::repro::case_from_json(&text).expect("a valid corpus case");
    let src = c_source(&case, &LINUX_6_18, &unshare_fuzz::env::Environment::reference()).expect("a reproducer");
    assert!(src.contains("guest_nr_open(x, 64);"), "{src}");
    let bins = compile_all(&dir, &[src]);
    let before = std::fs::read_to_string("/proc/sys/fs/nr_open").expect("read fs.nr_open");
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    assert!(!cmdline.contains("uf.args="), "this test must run on a host, not in a guest: {cmdline}");
    for with_var in [false, true] {
        let mut cmd = std::process::Command::new(&bins[0]);
        if with_var {
            cmd.env(unshare_fuzz::env::guest::GUEST_VAR, unshare_fuzz::env::guest::GUEST_TOKEN);
        }
        let out = cmd.output().expect("run the reproducer");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "{stdout}");
        assert!(stdout.starts_with("SKIP: this case lowers the global fs.nr_open"), "{stdout}");
        assert!(!stdout.contains("step 0"), "nothing may run: {stdout}");
    }
    assert_eq!(std::fs::read_to_string("/proc/sys/fs/nr_open").expect("read fs.nr_open"), before);
}
