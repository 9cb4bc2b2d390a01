//! Guest-only cases (issue 16, docs/guest-only.md): setup fields that change the
//! whole kernel (`fs.nr_open`) or need a kernel built with fault injection
//! (`fail-nth`). A case declares it by using such a field; what it needs and
//! the global change it makes are derived here, so that the declaration and
//! the setup can never disagree. Pure: no I/O.

use std::fmt;

use super::{Case, CaseError, Step};

/// Highest fd a setup may move its fd to (a 32 KiB table: small enough for any guest).
pub const MAX_FD_AT: u32 = 4095;
/// `sysctl_nr_open_min` (fs/file.c): BITS_PER_LONG on 64-bit.
pub const NR_OPEN_MIN: u32 = 64;
/// Largest fail-nth a setup may ask for (a sweep stops far below: the longest unshare path
/// of the 6.12 KCOV kernel reaches fewer than 200 fault-injection sites).
pub const MAX_FAIL_NTH: u32 = 4096;

/// What a guest-only case needs from the machine it runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestNeed {
    /// A throwaway kernel whose global `fs.nr_open` the case may lower to this value.
    NrOpen(u32),
    /// A throwaway kernel with fault injection (FAULT_INJECTION, FAILSLAB, fail-nth) set up by
    /// the guest init; the case writes this to `/proc/thread-self/fail-nth`.
    FailNth(u32),
}

impl fmt::Display for GuestNeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuestNeed::NrOpen(n) => write!(f, "sets the global fs.nr_open = {n}"),
            GuestNeed::FailNth(n) => {
                write!(f, "fails the {n}th allocation of its last unshare by fault injection (fail-nth)")
            }
        }
    }
}

/// Everything `case` needs from a throwaway guest, in setup order; empty for an ordinary case.
pub fn needs(case: &Case) -> Vec<GuestNeed> {
    let s = &case.setup;
    s.nr_open.map(GuestNeed::NrOpen).into_iter().chain(s.fail_nth.map(GuestNeed::FailNth)).collect()
}

/// The number of fd slots `dup_fd` copies for a table whose highest open fd is `fd_at`:
/// `count_open_files` rounded up to BITS_PER_LONG (fs/file.c `sane_fdtable_size`).
pub fn table_slots(fd_at: u32) -> u32 {
    (fd_at / 64 + 1) * 64
}

/// `dup_fd` fails with EMFILE: the table it must copy is larger than the 64 embedded slots and
/// than `nr_open` (spec §3 step 6; both are multiples of 64 here, see [`validate`]).
pub fn table_exceeds_nr_open(fd_at: Option<u32>, nr_open: Option<u32>) -> bool {
    match (fd_at, nr_open) {
        (Some(fd), Some(nr)) => table_slots(fd) > 64 && table_slots(fd) > nr,
        _ => false,
    }
}

fn bad(field: &'static str, value: impl ToString, expected: &'static str) -> Result<(), CaseError> {
    Err(CaseError::Setup { field, value: value.to_string(), expected })
}

/// The limits of the guest-only fields.
///
/// `nr_open` must be a multiple of 64: 5.10 and 6.1 round a lowered nr_open up to 64 when they
/// size the copy (`alloc_fdtable`), 6.12.118 rounds it down (docs/kernel-vs-spec.md), so only
/// multiples of 64 mean the same on every kernel. A lowered nr_open makes every copy of the fd
/// table fail, so the setups that copy it (pid or user nesting, the foreign pid namespace,
/// siblings other than `files`, vfork) and clone3 steps are refused with it.
///
/// # Errors
/// [`CaseError::Setup`] naming the field.
pub fn validate(case: &Case) -> Result<(), CaseError> {
    let s = &case.setup;
    if let Some(fd) = s.fd_at
        && !(3..=MAX_FD_AT).contains(&fd)
    {
        return bad("fd_at", fd, "3 to 4095");
    }
    if let Some(nr) = s.nr_open {
        if nr < NR_OPEN_MIN || !nr.is_multiple_of(64) {
            return bad("nr_open", nr, "a multiple of 64, at least 64 (kernels round other values differently)");
        }
        let copies = s.userns_depth.is_some()
            || s.limit_zero.is_some()
            || s.foreign_pidns
            || s.vfork
            || s.chroot.is_some()
            || s.siblings.iter().any(|k| *k != super::Sibling::Files)
            || case.steps.iter().any(|st| st.clone3_flags().is_some());
        if copies {
            return bad(
                "nr_open",
                nr,
                "no user nesting, limit_zero, foreign_pidns, chroot, vfork, siblings other than files or clone3 steps with it",
            );
        }
    }
    if let Some(n) = s.fail_nth {
        if n == 0 || n > MAX_FAIL_NTH {
            return bad("fail_nth", n, "1 to 4096");
        }
        if !matches!(case.steps.last(), Some(Step::Unshare(_))) {
            return bad("fail_nth", n, "a case whose last step is an unshare (the step it applies to)");
        }
    }
    Ok(())
}

/// The setup's guest-only fields, for `Setup`'s one-line form.
pub(super) fn fmt_guest_fields(s: &super::Setup, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if let Some(fd) = s.fd_at {
        write!(f, ", fd {fd} open")?;
    }
    if let Some(nr) = s.nr_open {
        write!(f, ", fs.nr_open={nr} (guest-only)")?;
    }
    if let Some(n) = s.fail_nth {
        write!(f, ", fail-nth {n} (guest-only)")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::Setup;

    fn emfile_case(fd_at: u32, nr_open: u32) -> Case {
        let mut c = Case::unshare(&[crate::abi::flags::bits::FILES]);
        c.setup = Setup {
            siblings: vec![crate::case::Sibling::Files],
            fd_at: Some(fd_at),
            nr_open: Some(nr_open),
            ..Setup::default()
        };
        c
    }

    #[test]
    fn table_rounding_follows_dup_fd() {
        assert_eq!(table_slots(63), 64);
        assert_eq!(table_slots(64), 128);
        assert_eq!(table_slots(200), 256);
        // Fits the 64 embedded slots: never copied into a new table, whatever nr_open says.
        assert!(!table_exceeds_nr_open(Some(63), Some(64)));
        assert!(table_exceeds_nr_open(Some(64), Some(64)));
        assert!(!table_exceeds_nr_open(Some(127), Some(128)));
        assert!(table_exceeds_nr_open(Some(128), Some(128)));
        assert!(!table_exceeds_nr_open(Some(200), None));
    }

    #[test]
    fn guest_fields_are_declared_and_checked() {
        let c = emfile_case(200, 64);
        assert_eq!(needs(&c), vec![GuestNeed::NrOpen(64)]);
        assert!(c.validate().is_ok());
        assert!(needs(&Case::unshare(&[0])).is_empty());
        let e = emfile_case(200, 100).validate().unwrap_err().to_string();
        assert!(e.contains("multiple of 64"), "{e}");
        let mut fs = emfile_case(200, 64);
        fs.setup.siblings = vec![crate::case::Sibling::Fs];
        assert!(fs.validate().is_err());
        let mut nth = Case::unshare(&[crate::abi::flags::bits::NEWUTS]);
        nth.setup.fail_nth = Some(3);
        assert!(nth.validate().is_ok());
        assert_eq!(nth.setup.to_string(), "root, fail-nth 3 (guest-only)");
        nth.steps.push(Step::Fork);
        assert!(nth.validate().is_err());
    }
}
