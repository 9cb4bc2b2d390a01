//! The guest-only setups a C reproducer builds (`case::guest`, docs/guest-only.md): the fd at
//! `fd_at` and the lowered global `fs.nr_open` (EMFILE). The program refuses, before anything,
//! to run such a case outside a throwaway qemu guest (the same two marks as `env::guest`) and
//! writes the old `fs.nr_open` back after the case. fail-nth is not reproduced.

use std::fmt::Write;

use crate::case::Setup;

/// The C primitives of a guest-only reproducer (pasted only when the case needs them).
const GUEST_C: &str = include_str!("guest.c");

/// [`GUEST_C`] after the guest marks of `env::guest`, as C constants.
pub(super) fn guest_c() -> String {
    use crate::env::guest::{CMDLINE_MARK, GUEST_TOKEN, GUEST_VAR};
    format!(
        "\n#define GUEST_VAR {}\n#define GUEST_TOKEN {}\n#define GUEST_CMDLINE_MARK {}\n{GUEST_C}",
        super::c_str(GUEST_VAR),
        super::c_str(GUEST_TOKEN),
        super::c_str(CMDLINE_MARK)
    )
}

/// The case has a setup field the guest primitives build.
pub(super) fn uses_guest_c(s: &Setup) -> bool {
    s.fd_at.is_some() || s.nr_open.is_some()
}

/// The setup lines of `s`'s guest fields, in the executor's order (after chroot, before the
/// fds: `exec/child/setup.rs`).
pub(super) fn guest_setup_c(out: &mut String, s: &Setup) {
    if let Some(fd) = s.fd_at {
        let _ = writeln!(out, "\tguest_fd_at(x, {fd});");
    }
    if let Some(nr) = s.nr_open {
        let _ = writeln!(out, "\tguest_nr_open(x, {nr});");
    }
}
