//! The harness works unprivileged: as root, the tests re-run it as uid 65534
//! (from a copy of the binary that uid can execute); as a normal user they run
//! it as that user. Either way every invariant must hold and the `nobody`
//! setup must be skipped with a reason, not passed.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Held by each test while it copies the binary and runs the copy: a copy still open for
/// writing in one test's forked child (not yet exec'd) makes the other's exec fail with
/// ETXTBSY.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The harness as an unprivileged user, started in `dir`: as root, a copy of the binary in
/// `dir` run as uid 65534; as a normal user, the binary itself.
fn unprivileged(dir: &std::path::Path) -> Command {
    if common::is_root() {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let copy = dir.join("unshare-fuzz");
        std::fs::copy(common::binary(), &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut c = Command::new(copy);
        c.uid(65534).gid(65534); // std also clears supplementary groups when root changes uid
        c.current_dir(dir);
        c
    } else {
        let mut c = Command::new(common::binary());
        c.current_dir(dir);
        c
    }
}

#[test]
fn run_as_an_unprivileged_user_holds_every_invariant() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = common::temp_dir("unpriv");
    let out = unprivileged(&dir).args(["run", "--cases", "400", "--seed", "21"]).output().unwrap();
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("with its own user namespace"), "an unprivileged run builds a user-ns sandbox:\n{text}");
    assert!(
        text.contains("skipped") && text.contains("65534 are not mapped"),
        "nobody setups are skipped with a reason:\n{text}"
    );
    assert!(text.contains("result: all invariants held"), "{text}");
}

/// Unprivileged, the checker floor enters a sandbox of its own too (with a user namespace, as
/// the executor's), so that its NEWNS words succeed as the harness's do instead of failing
/// with EPERM outside any namespace.
#[test]
fn bench_as_an_unprivileged_user_runs_the_floor_in_a_sandbox() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = common::temp_dir("unpriv-bench");
    let out = unprivileged(&dir).args(["bench", "--cases", "20", "--mix", "NEWNS"]).output().unwrap();
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("checker floor: ") && text.contains(", own sandbox, "), "{text}");
    assert!(!text.contains("no sandbox") && !text.contains("not run"), "{text}");
}
