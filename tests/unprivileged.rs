//! The harness works unprivileged: as root, the tests re-run it as uid 65534
//! (from a copy of the binary that uid can execute); as a normal user they run
//! it as that user. Either way every invariant must hold and the `nobody`
//! setup must be skipped with a reason, not passed.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

#[test]
fn run_as_an_unprivileged_user_holds_every_invariant() {
    let dir = common::temp_dir("unpriv");
    let mut cmd = if common::is_root() {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let copy = dir.join("unshare-fuzz");
        std::fs::copy(common::binary(), &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut c = Command::new(copy);
        c.uid(65534).gid(65534); // std also clears supplementary groups when root changes uid
        c
    } else {
        Command::new(common::binary())
    };
    let out = cmd.args(["run", "--cases", "400", "--seed", "21"]).current_dir(&dir).output().unwrap();
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("with its own user namespace"), "an unprivileged run builds a user-ns sandbox:\n{text}");
    assert!(
        text.contains("skipped") && text.contains("65534 are not mapped"),
        "nobody setups are skipped with a reason:\n{text}"
    );
    assert!(text.contains("result: all invariants held"), "{text}");
}
