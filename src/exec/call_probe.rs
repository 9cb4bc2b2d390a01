//! Single calls made once from the executor's own state, in throwaway
//! children: `unshare(1 << bit)` for every bit (only where a seccomp filter or
//! an LSM rule may restrict unshare), and whether clone3 exists. The model
//! compares them with its own prediction to read what a restriction refuses
//! (`model::limits`); this module only records what the kernel answered.
//!
//! # Safety
//! Each child is forked from the single-threaded executor, makes one unshare
//! call and leaves with `_exit`, its exit code carrying the errno.

#![allow(unsafe_code)]

use crate::env::CallProbes;
use crate::flags::RawFlags;
use crate::sys;

/// `unshare(1 << bit)` in a child: 0 or the errno; `None` if the child could not be made or
/// did not end normally.
fn unshare_in_child(bit: u8) -> Option<i32> {
    // SAFETY: the executor is single-threaded while it probes; the child makes one call and
    // ends with _exit.
    match unsafe { sys::fork() } {
        Ok(0) => {
            // SAFETY: a disposable child.
            let code = match unsafe { sys::unshare(RawFlags(1u64 << bit)) } {
                Ok(()) => 0,
                Err(e) => e.0.clamp(1, 255),
            };
            sys::exit_now(code)
        }
        Ok(pid) => match sys::waitpid(pid, 0) {
            Ok(Some((_, status))) if libc::WIFEXITED(status) => Some(libc::WEXITSTATUS(status)),
            _ => None,
        },
        Err(_) => None,
    }
}

/// Probes clone3 always, and every unshare bit when `restricted` (a seccomp filter or an LSM
/// rule on user namespaces was found).
pub fn probe(restricted: bool) -> CallProbes {
    let unshare_bits = if restricted {
        (0..64u8).filter_map(|bit| unshare_in_child(bit).map(|r| (bit, r))).collect()
    } else {
        Vec::new()
    };
    CallProbes { unshare_bits, clone3: sys::clone3::clone3_probe().map(|e| e.0) }
}
