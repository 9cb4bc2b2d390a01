//! Runs that end early, and runs that must not start: through the built binary.
//! SIGTERM mid-run, a stdout closed by its reader, an unwritable report path, `--cases 0`,
//! a watchdog timeout too short to mean anything, and an executor stopped with SIGSTOP.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

/// Cases enough that no run below finishes before it is stopped (generated in about 4 s by
/// the debug build; the executors start after that).
const MANY: &str = "20000";

fn start(args: &[&str]) -> Child {
    Command::new(common::binary())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start unshare-fuzz")
}

/// The pids of `pid`'s children (every thread's).
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(text.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
    }
    out
}

/// (the process the harness started, the sandbox's pid 1 it forked) for the harness `pid`:
/// the executor that serves cases is the latter.
fn executor_of(pid: u32) -> Option<(u32, u32)> {
    children(pid).into_iter().find_map(|relay| children(relay).first().map(|&pid1| (relay, pid1)))
}

/// Whether process `pid` leads a process group of its own: the executor makes every case child
/// do so (`setpgid(pid, pid)`), while the children of its start (the environment probe) stay
/// in its group.
fn leads_own_group(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // Fields after the command's closing parenthesis: state, ppid, pgrp.
    let pgrp = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(2)?.parse::<u32>().ok());
    pgrp == Some(pid)
}

/// Waits until the harness `pid` has an executor that serves the run's cases (its pid 1 has
/// had two case children, ones that lead their own process group: the first is the start's
/// timeout probe), then half a second more, so that a signal sent next lands mid-run with a
/// case of the run submitted, not in the executor's start: the start's probe children do not
/// count (under load the start takes seconds, and a SIGSTOP there is a stop before the hello,
/// which the harness waits 60 s for), nor the timeout probe alone (a SIGTERM right after it
/// could come before the run's first case).
fn serving_executor(pid: u32) -> (u32, u32) {
    let mut seen: Vec<(u32, u32)> = Vec::new();
    let found = wait_for("an executor serving cases", Duration::from_secs(180), || {
        let (relay, pid1) = executor_of(pid)?;
        for case_child in children(pid1).into_iter().filter(|&c| leads_own_group(c)) {
            if !seen.contains(&(pid1, case_child)) {
                seen.push((pid1, case_child));
            }
        }
        (seen.iter().filter(|(p, _)| *p == pid1).count() >= 2).then_some((relay, pid1))
    });
    std::thread::sleep(Duration::from_millis(500));
    found
}

fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for the harness to exit (at most `limit`), returning its exit code, stdout, stderr.
fn finish(mut child: Child, limit: Duration) -> (i32, String, String) {
    let mut out = child.stdout.take().map(|s| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(s).read_to_string(&mut text);
            text
        })
    });
    let err = child.stderr.take().map(|s| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(s).read_to_string(&mut text);
            text
        })
    });
    let status = wait_for("the harness to exit", limit, || child.try_wait().unwrap());
    let out = out.take().map(|h| h.join().unwrap()).unwrap_or_default();
    let err = err.map(|h| h.join().unwrap()).unwrap_or_default();
    (status.code().unwrap_or(-1), out, err)
}

fn json_report(path: &Path, context: &str) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no JSON report at {} ({e}):\n{context}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("the JSON report does not parse ({e}):\n{text}"))
}

fn signal(pid: u32, sig: Signal) {
    kill(Pid::from_raw(pid as i32), sig).unwrap();
}

#[test]
fn sigterm_mid_run_gives_the_report_of_the_cases_done_in_every_format() {
    let dir = common::temp_dir("sigterm");
    let (json, ktap, junit) = (dir.join("r.json"), dir.join("r.ktap"), dir.join("r.xml"));
    let child = start(&[
        "run",
        "--cases",
        MANY,
        "--seed",
        "7",
        "--json",
        json.to_str().unwrap(),
        "--ktap",
        ktap.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let pid = child.id();
    serving_executor(pid);
    std::thread::sleep(Duration::from_millis(1000));
    signal(pid, Signal::SIGTERM);
    let stopped = Instant::now();
    let (code, out, err) = finish(child, Duration::from_secs(30));
    let text = format!("{out}\n{err}");
    assert!(stopped.elapsed() < Duration::from_secs(15), "it took {:?} to stop:\n{text}", stopped.elapsed());
    assert!(!err.contains("panicked"), "{text}");
    let report = json_report(&json, &text);
    let done = report["tally"]["cases"].as_u64().unwrap();
    assert!(done > 0 && done < 20000, "some cases ran, not all: {done}\n{text}");
    assert_eq!(report["interrupted"]["after_cases"], done);
    assert_eq!(report["interrupted"]["planned_cases"], 20000);
    assert_eq!(report["interrupted"]["cause"], "SIGTERM");
    let line = format!("interrupted after {done} of 20000 cases (SIGTERM)");
    assert!(out.contains(&line), "the human report says it: {line}\n{text}");
    assert!(out.contains("result: INTERRUPTED after"), "{text}");
    assert_eq!(code & 2, 2, "interrupted is exit status 2 (ORed with 1 for violations): {code}\n{text}");
    assert_eq!(report["exit_status"], code);
    let ktap = std::fs::read_to_string(&ktap).unwrap();
    assert!(ktap.contains(&format!("every-case-judged # ERROR {line}")), "{ktap}");
    let junit = std::fs::read_to_string(&junit).unwrap();
    assert!(junit.contains(&format!("<error message=\"{line}\" type=\"interrupted\">")), "{junit}");
}

#[test]
fn a_stdout_closed_by_its_reader_stops_the_run_without_a_panic_and_the_json_is_written() {
    let dir = common::temp_dir("stdout-closed");
    let json = dir.join("r.json");
    let mut child = start(&["run", "--cases", MANY, "--seed", "8", "--json", json.to_str().unwrap()]);
    // `run | head -1`: read the seed line, then close the pipe.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("seed: 8"), "{first}");
    drop(stdout);
    let (code, _, err) = finish(child, Duration::from_secs(120));
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(code, 2, "{err}");
    let report = json_report(&json, &err);
    assert!(report["interrupted"]["cause"].as_str().unwrap().starts_with("stdout closed"), "{report:#}");
    assert!(report["tally"]["cases"].as_u64().unwrap() < 20000);
    assert!(err.contains("result: INTERRUPTED after"), "the verdict goes to stderr instead: {err}");
}

#[test]
fn replay_into_a_closed_stdout_does_not_panic_and_writes_its_json() {
    let dir = common::temp_dir("replay-closed");
    let json = dir.join("r.json");
    let mut child = start(&["replay", "corpus", "--json", json.to_str().unwrap()]);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    drop(stdout);
    let (code, _, err) = finish(child, Duration::from_secs(120));
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(code & 2, 2, "the report did not reach stdout: {code}\n{err}");
    let report = json_report(&json, &err);
    assert!(report["tally"]["cases"].as_u64().unwrap() > 0, "{report:#}");
}

#[test]
fn an_unwritable_report_path_is_a_usage_error_before_any_case() {
    let dir = common::temp_dir("unwritable");
    let cases: &[(&str, String, &str)] = &[
        ("--json", "/nonexistent-unshare-fuzz-dir/r.json".into(), "No such file or directory"),
        ("--ktap", dir.to_str().unwrap().into(), "Is a directory"),
        ("--junit", "/proc/version/r.xml".into(), "Not a directory"),
        ("--save-failures", "/proc/version/saved".into(), "cannot create the directory"),
    ];
    for (option, path, os_error) in cases {
        let start = Instant::now();
        // A million cases would take minutes to generate: the check must come first.
        let out = common::run(&["run", "--cases", "1000000", option, path]);
        let text = common::text(&out);
        assert_eq!(out.status.code(), Some(2), "{option} {path}:\n{text}");
        assert!(text.contains(&format!("{option} {path}")), "names the option and the path:\n{text}");
        assert!(text.contains(os_error), "says the OS error:\n{text}");
        assert!(!text.contains("seed:"), "before the run starts:\n{text}");
        assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
    }
    assert!(!Path::new("/nonexistent-unshare-fuzz-dir").exists());
    let out = common::run(&["replay", "corpus/single-bits", "--json", "/nonexistent-unshare-fuzz-dir/r.json"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::text(&out));
    assert!(common::text(&out).contains("--json /nonexistent-unshare-fuzz-dir/r.json"));
    assert!(!common::text(&out).contains("PASS"), "no file was replayed");
}

#[test]
fn a_run_of_no_case_is_not_a_pass() {
    let out = common::run(&["run", "--cases", "0"]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("result: NO CASE REACHED THE SYSCALL (no case was run)"), "{text}");
}

#[test]
fn a_timeout_too_short_for_any_case_is_a_usage_error() {
    for args in [&["run", "--timeout-ms", "1"][..], &["run", "--timeout-ms", "99"], &["replay", "--timeout-ms", "10"]] {
        let out = common::run(args);
        let text = common::text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {text}");
        assert!(text.contains("below the floor of 100 ms"), "{args:?}: {text}");
        assert!(!text.contains("VIOLATION"), "no watchdog violations: {text}");
    }
}

#[test]
fn a_stopped_executor_is_killed_and_replaced_and_its_case_reported_broken() {
    let dir = common::temp_dir("sigstop");
    let json = dir.join("r.json");
    let mut child =
        start(&["run", "--cases", MANY, "--seed", "9", "--timeout-ms", "1000", "--json", json.to_str().unwrap()]);
    let pid = child.id();
    let (relay, pid1) = serving_executor(pid);
    signal(pid1, Signal::SIGSTOP);
    let stopped = Instant::now();
    // Timeout 1000 ms: the harness gives up after 1 s + 3 s.
    let mut ended = None;
    let fresh = wait_for("a fresh executor", Duration::from_secs(30), || {
        if let Some(status) = child.try_wait().unwrap() {
            ended = Some(status);
            return Some(None);
        }
        executor_of(pid).filter(|(r, _)| *r != relay).map(Some)
    });
    let Some((new_relay, _)) = fresh else {
        let (_, out, err) = finish(child, Duration::from_secs(5));
        panic!("the harness ended ({ended:?}) instead of replacing its executor:\n{out}\n{err}");
    };
    let replaced_after = stopped.elapsed();
    assert!(new_relay != relay);
    assert!(wait_for("the stopped executor to be gone", Duration::from_secs(10), || {
        (!Path::new(&format!("/proc/{pid1}")).exists()).then_some(true)
    }));
    std::thread::sleep(Duration::from_millis(500));
    signal(pid, Signal::SIGTERM);
    let (code, out, err) = finish(child, Duration::from_secs(30));
    let text = format!("{out}\n{err}");
    assert!(replaced_after >= Duration::from_secs(3), "not before the limit: {replaced_after:?}");
    assert!(replaced_after < Duration::from_secs(20), "{replaced_after:?}");
    let report = json_report(&json, &text);
    let broken = report["tally"]["broken"].as_object().unwrap();
    let hung: Vec<_> = broken.iter().filter(|(k, _)| k.starts_with("executor stopped or hung")).collect();
    assert_eq!(hung.len(), 1, "{broken:?}");
    assert_eq!(hung[0].1, 1, "one case was in flight: {broken:?}");
    assert!(hung[0].0.contains("killed and replaced"), "{broken:?}");
    assert_eq!(report["interrupted"]["cause"], "SIGTERM");
    assert!(report["tally"]["cases"].as_u64().unwrap() > 1, "the run went on after the replacement");
    assert_eq!(code & 2, 2, "{text}");
}

#[test]
fn sigterm_during_the_selftest_exits_2_with_a_partial_report_that_says_so() {
    let child = start(&["selftest", "--seed", "42", "--cases-per-mutant", "20000", "--format", "json"]);
    let pid = child.id();
    serving_executor(pid);
    signal(pid, Signal::SIGTERM);
    let (code, out, err) = finish(child, Duration::from_secs(60));
    assert_eq!(code, 2, "an interrupted selftest proves nothing:\n{out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}:\n{out}\n{err}"));
    let why = report["interrupted"].as_str().unwrap();
    assert!(why.starts_with("SIGTERM, during the honest run"), "{why}");
    assert_eq!(report["verdict"]["passed"], false);
    assert!(report["verdict"]["problems"][0].as_str().unwrap().starts_with("INTERRUPTED (SIGTERM"), "{report:#}");
}

/// Tasks (processes and threads) whose real uid is `uid`, as RLIMIT_NPROC counts them.
fn tasks_of(uid: u32) -> u64 {
    let Ok(procs) = std::fs::read_dir("/proc") else { return 0 };
    let mut n = 0;
    for p in procs.flatten() {
        let Ok(status) = std::fs::read_to_string(p.path().join("status")) else { continue };
        let real = status.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(1));
        if real == Some(uid.to_string().as_str()) {
            n += status
                .lines()
                .find(|l| l.starts_with("Threads:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .unwrap_or(1);
        }
    }
    n
}

#[test]
fn a_thread_that_cannot_start_under_rlimit_nproc_is_a_note_not_a_panic() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = common::temp_dir("nproc");
    // As root: an otherwise unused uid, so that the limit counts only this run's tasks (the
    // harness, and two executors of two processes each: 5; the second worker thread would
    // be the sixth). Otherwise this user, with its current tasks added to the limit.
    let (mut cmd, limit) = if common::is_root() {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let copy = dir.join("unshare-fuzz");
        std::fs::copy(common::binary(), &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        let uid = 54_321;
        assert_eq!(tasks_of(uid), 0, "uid {uid} must be unused for this test");
        let mut c = Command::new("bash");
        c.arg("-c").arg("ulimit -u 5 && exec \"$0\" \"$@\"").arg(copy).uid(uid).gid(uid);
        (c, 5)
    } else {
        let uid: u32 = std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap();
        let limit = tasks_of(uid) + 5;
        let mut c = Command::new("bash");
        c.arg("-c").arg(format!("ulimit -u {limit} && exec \"$0\" \"$@\"")).arg(common::binary());
        (c, limit)
    };
    let out = cmd.args(["run", "--cases", "40", "--seed", "1", "--jobs", "2"]).current_dir(&dir).output().unwrap();
    let text = common::text(&out);
    assert!(!text.contains("panicked"), "{text}");
    assert!(matches!(out.status.code(), Some(0..=3)), "{text}");
    assert!(text.contains("result: "), "a report, whatever the cases gave: {text}");
    if common::is_root() {
        // One executor: the harness and its two processes reach the limit of 3 (the old
        // runner panicked here, starting its one worker thread).
        let copy = dir.join("unshare-fuzz");
        let out = Command::new("bash")
            .arg("-c")
            .arg("ulimit -u 3 && exec \"$0\" \"$@\"")
            .arg(&copy)
            .args(["run", "--cases", "40", "--seed", "1"])
            .uid(54_321)
            .gid(54_321)
            .current_dir(&dir)
            .output()
            .unwrap();
        let one = common::text(&out);
        assert!(!one.contains("panicked"), "{one}");
        assert!(matches!(out.status.code(), Some(0..=3)), "{one}");
        assert!(one.contains("result: "), "{one}");
        let note = format!(
            "note: cannot start a thread for executor 1: EAGAIN: Resource temporarily unavailable (os error 11) (RLIMIT_NPROC is {limit})"
        );
        assert!(text.contains(&note), "{text}");
        assert!(text.contains("lower --jobs or raise the limit"), "{text}");
    }
}
