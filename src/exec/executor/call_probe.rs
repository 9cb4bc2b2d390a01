//! Single calls made once from the executor's own state, in throwaway
//! children: `unshare(1 << bit)` for every bit (only where a seccomp filter or
//! an LSM rule may restrict unshare), whether clone3 exists, whether the i386 entry
//! (`int $0x80`) answers unshare(0), and the contract
//! facts that changed between Linux versions ([`facts`], `crate::env::facts`). The model
//! compares them with its own prediction to read what a restriction refuses
//! (`model::limits`); this module only records what the kernel answered.
//!
//! # Safety
//! Each child is forked from the single-threaded executor, makes one unshare
//! call and leaves with `_exit`, its exit code carrying the errno.

#![allow(unsafe_code)]

use crate::abi::flags::RawFlags;
use crate::env::CallProbes;
use crate::env::facts::{Probed, ProbedFacts};
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
    let clone3 = sys::clone3::clone3_probe().map(|e| e.0);
    let facts = facts(clone3 == Some(libc::EINVAL));
    let int80 = in_child(int80_child);
    CallProbes { unshare_bits, clone3, facts, int80 }
}

/// Exit codes of the fact probes' children (0 is never used: a child that returns early
/// without a verdict says nothing).
mod code {
    pub const NO: i32 = 10;
    pub const YES: i32 = 11;
    /// An answer no Linux gives (a lying filter, another kernel).
    pub const ODD: i32 = 12;
    /// The probe's own precondition failed (no time namespaces, NEWPID refused, ...).
    pub const CANNOT: i32 = 13;
}

/// Runs `body` in a forked child and returns its exit code.
fn in_child(body: fn() -> i32) -> Option<i32> {
    // SAFETY: the executor is single-threaded while it probes; the child runs `body`, which
    // makes raw calls on fixed buffers only, and ends with _exit.
    match unsafe { sys::fork() } {
        Ok(0) => sys::exit_now(body()),
        Ok(pid) => match sys::waitpid(pid, 0) {
            Ok(Some((_, status))) if libc::WIFEXITED(status) => Some(libc::WEXITSTATUS(status)),
            Ok(Some((_, status))) if libc::WIFSIGNALED(status) => Some(-libc::WTERMSIG(status)),
            _ => None,
        },
        Err(_) => None,
    }
}

/// `unshare(0)` through `int $0x80`: 0, or the errno. Where the i386 entry is missing the
/// child dies of SIGSEGV, which `in_child` reports as the negated signal.
fn int80_child() -> i32 {
    // SAFETY: a disposable child; unshare(0) changes nothing.
    match unsafe { sys::unshare_int80(0) } {
        Ok(()) => 0,
        Err(e) => e.0.clamp(1, 255),
    }
}

/// The target of a /proc/self/ns link, or its errno.
fn link(name: &std::ffi::CStr, buf: &mut [u8; 64]) -> Result<usize, i32> {
    sys::readlinkat(libc::AT_FDCWD, name, buf).map_err(|e| e.0)
}

/// unshare(NEWPID), then read pid_for_children before any child exists.
fn pid_for_children_child() -> i32 {
    let (mut pid, mut pfc) = ([0u8; 64], [0u8; 64]);
    let Ok(n) = link(c"/proc/self/ns/pid", &mut pid) else { return code::CANNOT };
    // SAFETY: a disposable child.
    if unsafe { sys::unshare(RawFlags(crate::abi::flags::bits::NEWPID)) }.is_err() {
        return code::CANNOT;
    }
    match link(c"/proc/self/ns/pid_for_children", &mut pfc) {
        Err(libc::ENOENT) => code::NO,
        Ok(m) if pfc[..m] != pid[..n] => code::YES,
        _ => code::ODD,
    }
}

/// unshare(1 << 20) alone; if it succeeds, /proc must be gone (an empty mount namespace).
fn empty_mntns_child() -> i32 {
    let mut buf = [0u8; 64];
    // SAFETY: a disposable child.
    match unsafe { sys::unshare(RawFlags(crate::model::profile::EMPTY_MNTNS)) } {
        Err(e) if e.0 == libc::EINVAL => code::NO,
        Err(_) => code::ODD,
        Ok(()) => match link(c"/proc/self/ns/mnt", &mut buf) {
            Err(libc::ENOENT) => code::YES,
            _ => code::ODD,
        },
    }
}

extern "C" fn exit_at_once(_: *mut libc::c_void) -> ! {
    sys::exit_now(0)
}

/// unshare(NEWTIME) (time_for_children must then differ from time), then clone3(VM|VFORK).
fn newtime_child() -> i32 {
    let (mut before, mut after) = ([0u8; 64], [0u8; 64]);
    let Ok(n) = link(c"/proc/self/ns/time", &mut before) else { return code::CANNOT };
    // SAFETY: a disposable child.
    if unsafe { sys::unshare(RawFlags(crate::abi::flags::bits::NEWTIME)) }.is_err() {
        return code::CANNOT;
    }
    match link(c"/proc/self/ns/time_for_children", &mut after) {
        Ok(m) if after[..m] != before[..n] => {}
        _ => return code::ODD,
    }
    let Ok(stack) = sys::clone3::map_stack(64 * 1024) else { return code::CANNOT };
    let mut args = sys::clone3::CloneArgs {
        flags: (libc::CLONE_VM | libc::CLONE_VFORK) as u64,
        exit_signal: libc::SIGCHLD as u64,
        stack,
        stack_size: 64 * 1024,
        ..Default::default()
    };
    // SAFETY: the stack is a fresh mapping only the child uses; the child touches nothing of
    // ours and ends at once; with CLONE_VFORK we wait until it has.
    match unsafe { sys::clone3::clone3(&mut args, exit_at_once, std::ptr::null_mut()) } {
        Ok(pid) => {
            let _ = sys::waitpid(pid, 0);
            code::NO
        }
        Err(e) if e.0 == libc::EINVAL => code::YES,
        Err(_) => code::ODD,
    }
}

/// clone3(1 << BIT) alone, without a stack (no CLONE_VM): 0 or the errno.
fn clone3_bit_child<const BIT: u32>() -> i32 {
    let mut args =
        sys::clone3::CloneArgs { flags: 1u64 << BIT, exit_signal: libc::SIGCHLD as u64, ..Default::default() };
    // SAFETY: no CLONE_VM: the child has its own copy of this stack and ends at once.
    match unsafe { sys::clone3::clone3(&mut args, exit_at_once, std::ptr::null_mut()) } {
        Ok(pid) => {
            let _ = sys::waitpid(pid, 0);
            0
        }
        Err(e) => e.0.clamp(1, 255),
    }
}

fn probed(code: Option<i32>, what: &str) -> Probed {
    match code {
        Some(code::YES) => Probed::Fact(true),
        Some(code::NO) => Probed::Fact(false),
        Some(code::CANNOT) => Probed::NotProbed,
        Some(code::ODD) => Probed::Unknown(what.to_string()),
        Some(other) => Probed::Unknown(format!("the probe child ended with {other}")),
        None => Probed::Unknown("the probe child could not run".into()),
    }
}

macro_rules! bit_probes {
    ($($b:literal),*) => { [$((($b as u32), clone3_bit_child::<$b> as fn() -> i32)),*] };
}

/// Tests the contract facts of [`crate::env::facts`] once, each in a throwaway child.
pub fn facts(clone3_exists: bool) -> ProbedFacts {
    let clone3_extra_bits = clone3_exists
        .then(|| {
            let bits = bit_probes!(
                34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59,
                60, 61, 62, 63
            );
            // A probe child that could not run (a process limit) leaves the mask unknown, not empty.
            bits.iter().try_fold(0u64, |m, (b, f)| in_child(*f).map(|r| if r == 0 { m | (1u64 << b) } else { m }))
        })
        .flatten();
    ProbedFacts {
        pid_for_children_at_once: probed(
            in_child(pid_for_children_child),
            "after NEWPID, pid_for_children names the caller's own pid namespace",
        ),
        empty_mntns_bit: probed(
            in_child(empty_mntns_child),
            "unshare(bit 20) gave an answer other than EINVAL, or succeeded with /proc still reachable",
        ),
        newtime_blocks_vm_children: if clone3_exists {
            probed(
                in_child(newtime_child),
                "NEWTIME left time_for_children unchanged, or clone3(VM|VFORK) after it failed with another errno",
            )
        } else {
            Probed::NotProbed
        },
        clone3_extra_bits,
    }
}
