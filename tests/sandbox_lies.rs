//! A kernel that reports success for the outer sandbox's unshare without doing it must not
//! make the harness touch the namespaces it was started in (issue "Right wherever it runs",
//! item 3). Each test starts the built binary under `confine --unshare FLAG=0` (a seccomp filter
//! that fakes success, tests/support/confine.c) INSIDE a throwaway set of namespaces that the test
//! makes first with `unshare --uts --ipc --net --mount --pid --fork --mount-proc`, and compares
//! that namespace's hostname, mounts, processes, interfaces and SysV objects before and after.
//! Root only (the throwaway namespaces need it): otherwise each test prints why it is skipped.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Prints the throwaway namespace's state with shell builtins only (no process of its own shows
/// up in the process list): hostname, mountinfo, process names, interfaces, SysV objects.
const SNAPSHOT: &str = r#"
snap() {
    read -r h < /proc/sys/kernel/hostname; echo "hostname $h"
    while read -r line; do echo "mount $line"; done < /proc/self/mountinfo
    for p in /proc/[0-9]*; do read -r c < "$p/comm" && echo "process $c"; done
    while read -r line; do case "$line" in *:*) echo "interface ${line%%:*}";; esac; done < /proc/net/dev
    for f in /proc/sysvipc/msg /proc/sysvipc/sem /proc/sysvipc/shm; do
        while read -r line; do echo "sysvipc ${f##*/} $line"; done < "$f"
    done
}
echo '=== before'; snap
echo '=== run'; "$@" 2>&1; echo "=== rc $?"
echo '=== after'; snap
"#;

/// Why these tests cannot run here, if they cannot.
fn skip_reason() -> Option<String> {
    if !common::is_root() {
        return Some("not root: the throwaway namespaces (unshare --uts --ipc --net --mount --pid) need root".into());
    }
    let probe =
        Command::new("unshare").args(["--uts", "--ipc", "--net", "--mount", "--pid", "--fork", "true"]).output();
    match probe {
        Ok(o) if o.status.success() => None,
        Ok(o) => {
            Some(format!("`unshare --uts --ipc --net --mount --pid --fork true` failed here: {}", common::text(&o)))
        }
        Err(e) => Some(format!("the unshare(1) tool cannot run: {e}")),
    }
}

/// Returns true (and prints why, visibly) when the tests must be skipped.
fn skipped(test: &str) -> bool {
    match skip_reason() {
        Some(why) => {
            eprintln!("SKIPPED {test}: {why}");
            println!("SKIPPED {test}: {why}");
            true
        }
        None => false,
    }
}

/// tests/support/confine.c, compiled once per test process.
fn confine() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            // Built once for all the tests of this binary: kept.
            let dir = common::temp_dir("sandbox-lies-confine").keep();
            let out = dir.join("confine");
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/confine.c");
            let gcc = Command::new("gcc")
                .arg("-O1")
                .arg("-o")
                .arg(&out)
                .arg(&src)
                .output()
                .expect("gcc must be installed (apt-get install gcc)");
            assert!(gcc.status.success(), "{}", common::text(&gcc));
            out
        })
        .clone()
}

/// What the throwaway namespace saw.
struct Throwaway {
    before: String,
    after: String,
    output: String,
    code: i32,
}

/// Runs `command` inside fresh namespaces and snapshots them around it.
fn in_throwaway_namespaces(command: &[&str], env: &[(&str, &str)]) -> Throwaway {
    let mut c = Command::new("unshare");
    c.args(["--uts", "--ipc", "--net", "--mount", "--pid", "--fork", "--mount-proc", "sh", "-c", SNAPSHOT, "sh"]);
    c.args(command);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("start unshare(1)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "the throwaway shell failed:\n{}", common::text(&out));
    let part = |from: &str, to: Option<&str>| {
        let start = text.find(from).unwrap_or_else(|| panic!("no {from:?} in:\n{text}")) + from.len();
        let end = to.map_or(text.len(), |t| text[start..].find(t).map_or(text.len(), |i| start + i));
        text[start..end].to_string()
    };
    let rc = part("=== rc ", Some("\n"));
    Throwaway {
        before: part("=== before\n", Some("=== run\n")),
        after: part("=== after\n", None),
        output: part("=== run\n", Some("=== rc ")),
        code: rc.trim().parse().unwrap_or_else(|_| panic!("no exit status in:\n{text}")),
    }
}

fn harness_under_lie(flag: &str, extra: &[&str]) -> Throwaway {
    let confine = confine();
    let rule = format!("{flag}=0");
    let mut command = vec![confine.to_str().unwrap(), "--unshare", &rule, "--", common::binary().to_str().unwrap()];
    command.extend_from_slice(&["run", "--cases", "20", "--seed", "1"]);
    command.extend_from_slice(extra);
    in_throwaway_namespaces(&command, &[])
}

/// The namespace `flag` is named as not new, with the invariant, and nothing changed.
fn assert_refused_and_untouched(flag: &str, label: &str) {
    let t = harness_under_lie(flag, &[]);
    let out = &t.output;
    assert_eq!(t.code, 1, "a faked outer sandbox is a violation (exit 1), not broken:\n{out}");
    assert!(out.contains("VIOLATION sandbox-namespaces-are-new"), "the ineffective sandbox is named:\n{out}");
    assert!(out.contains(&format!("the {label} namespace is unchanged")), "the {label} namespace is named:\n{out}");
    assert!(out.contains("nothing was written"), "{out}");
    assert!(!out.contains("cases: "), "no case may run:\n{out}");
    assert_eq!(t.before, t.after, "the starting namespaces changed under a lying {flag}:\n{out}");
    for kind in ["hostname ", "mount ", "process ", "interface lo"] {
        assert!(t.before.contains(kind), "the snapshot has no {kind:?}:\n{}", t.before);
    }
}

#[test]
fn lying_newuts_is_refused_and_the_starting_namespaces_are_untouched() {
    if !skipped("lying_newuts") {
        assert_refused_and_untouched("NEWUTS", "UTS");
    }
}

#[test]
fn lying_newns_is_refused_and_the_starting_namespaces_are_untouched() {
    if !skipped("lying_newns") {
        assert_refused_and_untouched("NEWNS", "mount");
    }
}

#[test]
fn lying_newpid_is_refused_and_the_starting_namespaces_are_untouched() {
    if !skipped("lying_newpid") {
        assert_refused_and_untouched("NEWPID", "PID");
    }
}

#[test]
fn lying_newnet_is_refused_and_the_starting_namespaces_are_untouched() {
    if !skipped("lying_newnet") {
        assert_refused_and_untouched("NEWNET", "network");
    }
}

#[test]
fn lying_newipc_is_refused_and_the_starting_namespaces_are_untouched() {
    if !skipped("lying_newipc") {
        assert_refused_and_untouched("NEWIPC", "IPC");
    }
}

#[test]
fn on_a_throwaway_kernel_the_run_goes_on_and_still_fails() {
    if skipped("throwaway_kernel") {
        return;
    }
    let t = harness_under_lie("NEWUTS", &["--throwaway-kernel"]);
    let out = &t.output;
    assert_eq!(t.code, 1, "{out}");
    assert!(out.contains("INEFFECTIVE SANDBOX: sandbox-namespaces-are-new"), "listed in the environment:\n{out}");
    assert!(out.contains("VIOLATION of the outer sandbox"), "{out}");
    assert!(out.contains("cases: 20"), "the cases ran:\n{out}");
    let row = out.lines().find(|l| l.starts_with("sandbox-namespaces-are-new ")).unwrap_or_else(|| panic!("{out}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert!(cols[3].parse::<u64>().unwrap() >= 1, "counted as violated: {row}");
    // The UTS namespace was not new, so the hostname was left alone.
    let host = |s: &str| s.lines().find(|l| l.starts_with("hostname ")).map(str::to_string);
    assert_eq!(host(&t.before), host(&t.after), "{out}");

    // The environment variable says the same to the executor.
    let confine = confine();
    let bin = common::binary().to_str().unwrap();
    let command = [confine.to_str().unwrap(), "--unshare", "NEWNS=0", "--", bin, "env"];
    let t = in_throwaway_namespaces(&command, &[("UNSHARE_FUZZ_THROWAWAY_KERNEL", "1")]);
    assert_eq!(t.code, 0, "env itself only reports:\n{}", t.output);
    assert!(t.output.contains("INEFFECTIVE SANDBOX: sandbox-namespaces-are-new"), "{}", t.output);
}

#[test]
fn the_honest_kernel_runs_and_leaves_the_starting_namespaces_alone() {
    if skipped("honest") {
        return;
    }
    let bin = common::binary().to_str().unwrap();
    let t = in_throwaway_namespaces(&[bin, "run", "--cases", "20", "--seed", "1"], &[]);
    assert_eq!(t.code, 0, "{}", t.output);
    assert!(t.output.contains("every namespace checked to be new"), "{}", t.output);
    assert!(!t.output.contains("INEFFECTIVE"), "{}", t.output);
    assert_eq!(t.before, t.after, "an honest run changed the starting namespaces:\n{}", t.output);
}

/// The shared libraries `ldd` lists for `binary` (empty for a static binary).
fn libraries(binary: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(binary).output().expect("ldd must be installed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with('/')).map(PathBuf::from))
        .collect()
}

/// A chroot into a plain directory (not a mount point), as build systems make: `/` cannot be
/// made private with mount(MS_REC|MS_PRIVATE) (EINVAL), yet the harness must run, and nothing it
/// mounts may propagate out, even when every mount around it is shared.
#[test]
fn a_chroot_into_a_plain_directory_runs_and_propagates_nothing() {
    if skipped("chroot") {
        return;
    }
    let root = common::temp_dir("sandbox-chroot");
    for dir in ["proc", "tmp"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::copy(common::binary(), root.join("unshare-fuzz")).unwrap();
    for lib in libraries(common::binary()) {
        let to = root.join(lib.strip_prefix("/").unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&lib, &to).unwrap();
    }
    // In throwaway mount, UTS, IPC and net namespaces (the host's pid namespace, so that /proc
    // in the chroot gives the harness its real pid-namespace level): every mount made shared,
    // /proc mounted in the chroot, then a mount namespace whose mounts are peers of those.
    let script = r#"
        set -e
        mount --make-rshared /
        mount -t proc proc "$1/proc"
        before=$(cat /proc/self/mountinfo)
        set +e
        unshare --mount --propagation unchanged chroot "$1" /unshare-fuzz run --cases 200 --seed 5 2>&1
        echo "=== rc $?"
        after=$(cat /proc/self/mountinfo)
        if [ "$before" = "$after" ]; then echo "=== mounts unchanged"; else echo "=== mounts changed:"; echo "$after"; fi
    "#;
    let out = Command::new("unshare")
        .args(["--uts", "--ipc", "--net", "--mount", "sh", "-c", script, "sh"])
        .arg(&root)
        .output()
        .expect("start unshare(1)");
    let text = common::text(&out);
    let _ = std::fs::remove_dir_all(&root);
    assert!(text.contains("=== rc 0"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("chrooted:") && l.contains("true")), "{text}");
    assert!(text.contains("/ is not a mount point (chrooted)"), "{text}");
    assert!(text.contains("broken: 0"), "{text}");
    assert!(text.contains("result: all invariants held"), "{text}");
    assert!(text.contains("=== mounts unchanged"), "a mount of the sandbox propagated out of it:\n{text}");
}

/// Every command that starts an executor refuses the same way: VIOLATION, exit 1, nothing changed.
#[test]
fn every_command_that_starts_an_executor_refuses_a_faked_sandbox() {
    if skipped("every_command") {
        return;
    }
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/article-2006/csignal-is-invalid.json");
    let corpus = corpus.to_str().unwrap();
    let out_dir = common::temp_dir("sandbox-lies-commands");
    let minimized = out_dir.join("min.json");
    let commands: [&[&str]; 7] = [
        &["env"],
        &["flags"],
        &["replay", corpus],
        &["selftest", "--cases-per-mutant", "5", "--mutant", "fs-noop"],
        &["bench", "--cases", "5"],
        &["minimize", corpus, "-o", minimized.to_str().unwrap()],
        &["repro", corpus],
    ];
    let confine = confine();
    for args in commands {
        let mut command =
            vec![confine.to_str().unwrap(), "--unshare", "NEWUTS=0", "--", common::binary().to_str().unwrap()];
        command.extend_from_slice(args);
        let t = in_throwaway_namespaces(&command, &[]);
        let out = &t.output;
        assert_eq!(t.code, 1, "{args:?}:\n{out}");
        assert!(out.contains("VIOLATION sandbox-namespaces-are-new"), "{args:?}:\n{out}");
        assert!(out.contains("the UTS namespace is unchanged"), "{args:?}:\n{out}");
        assert_eq!(t.before, t.after, "{args:?} changed the starting namespaces:\n{out}");
    }
    let _ = std::fs::remove_dir_all(out_dir);
}

/// A kernel that fakes NEWNS, NEWUTS, NEWIPC and NEWNET in the cases' own steps is caught by
/// behaviour (`namespaces-by-behaviour`: the executor's markers stay reachable, the mount id of
/// `/` stays, a hostname set afterwards reaches the executor), not only through the links; and
/// the executor puts the throwaway namespace's hostname back after every case.
#[test]
fn namespaces_faked_in_the_steps_are_caught_by_behaviour() {
    if skipped("faked_namespaces_by_behaviour") {
        return;
    }
    let confine = confine();
    let bin = common::binary().to_str().unwrap().to_string();
    let command = [
        confine.to_str().unwrap(),
        "--unshare",
        "NEWNS|NEWUTS|NEWIPC|NEWNET=0",
        "--",
        &bin,
        "--throwaway-kernel",
        "run",
        "--cases",
        "200",
        "--seed",
        "4",
    ];
    let t = in_throwaway_namespaces(&command, &[]);
    let out = &t.output;
    assert_eq!(t.code, 1, "{out}");
    let row = out.lines().find(|l| l.starts_with("namespaces-by-behaviour ")).unwrap_or_else(|| panic!("{out}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert!(cols[3].parse::<u64>().unwrap() >= 1, "violated: {row}");
    for what in ["network namespace", "IPC namespace", "UTS namespace", "mount namespace"] {
        assert!(out.contains(&format!("[namespaces-by-behaviour] case: final probe, {what}")), "{what}:\n{out}");
    }
    let host = |s: &str| s.lines().find(|l| l.starts_with("hostname ")).map(str::to_string);
    assert_eq!(host(&t.before), host(&t.after), "{out}");
}
