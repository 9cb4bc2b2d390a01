//! Where executors run. By default each executor is pinned to a CPU of its
//! own, and its case children inherit the pin. A fork then starts the child on
//! the CPU of the executor that waits for it, instead of on another CPU woken
//! by an interprocessor interrupt (expensive in a virtual machine); both the
//! harness and the bare loop of `bench` run about twice as many forks per
//! second that way. The harness process itself stays free, so its judging
//! still overlaps the executors.
//!
//! CPUs are leased: an executor takes an exclusive `flock` on
//! `$TMPDIR/unshare-fuzz-cpu<N>.lock` before pinning itself to CPU N, and
//! holds it while it lives. Several harnesses (or parallel tests) on one
//! machine therefore get distinct CPUs while there are free ones, and run
//! unpinned after that. Pinning is skipped when a run has more executors than
//! the harness may use CPUs, and is turned off with `--pin off`.

use std::os::fd::OwnedFd;

use crate::sys;

/// Whether executors are pinned to CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pinning {
    /// One free CPU per executor while there are enough CPUs; none otherwise.
    #[default]
    Auto,
    /// Never pin.
    Off,
}

impl std::str::FromStr for Pinning {
    type Err = String;

    fn from_str(s: &str) -> Result<Pinning, String> {
        match s {
            "auto" => Ok(Pinning::Auto),
            "off" => Ok(Pinning::Off),
            other => Err(format!("unknown pinning {other:?}: use auto (one CPU per executor) or off")),
        }
    }
}

/// The executor argument that asks for a CPU lease, starting the search at a slot.
pub const SLOT_ARG: &str = "--pin-slot";

/// Whether executor `slot` of `jobs` should ask for a CPU, given the harness's CPU count.
pub fn wants_cpu(pinning: Pinning, cpus: usize, jobs: usize, slot: usize) -> Option<usize> {
    (pinning == Pinning::Auto && jobs <= cpus && cpus > 0).then_some(slot)
}

/// `base` plus the lease request for executor `slot` of `jobs` (unchanged when not pinning,
/// or when the allowed CPUs cannot be read).
pub fn executor_args(base: &[String], pinning: Pinning, jobs: usize, slot: usize) -> Vec<String> {
    let mut args = base.to_vec();
    let cpus = if pinning == Pinning::Off { 0 } else { sys::allowed_cpus().map_or(0, |c| c.len()) };
    if let Some(slot) = wants_cpu(pinning, cpus, jobs, slot) {
        args.push(SLOT_ARG.to_string());
        args.push(slot.to_string());
    }
    args
}

/// The order in which executor `slot` tries the allowed CPUs: its own first, then the rest.
pub fn lease_order(allowed: &[usize], slot: usize) -> Vec<usize> {
    (0..allowed.len()).map(|k| allowed[(slot + k) % allowed.len()]).collect()
}

/// A held CPU: the pin stays while the lock descriptor is open.
#[derive(Debug)]
pub struct Lease {
    /// The CPU.
    pub cpu: usize,
    _lock: OwnedFd,
}

/// Takes the lock of the first free CPU of `allowed` in [`lease_order`] for `slot`, with the
/// lock files in `dir`; returns the CPU and the held lock.
pub fn take_lock(dir: &std::path::Path, allowed: &[usize], slot: usize) -> Option<(usize, OwnedFd)> {
    for cpu in lease_order(allowed, slot) {
        let path = dir.join(format!("unshare-fuzz-cpu{cpu}.lock"));
        let path = std::ffi::CString::new(path.into_os_string().into_encoded_bytes()).ok()?;
        if let Ok(Some(lock)) = sys::try_lock_file(&path) {
            return Some((cpu, lock));
        }
    }
    None
}

/// Executor side: takes the first free CPU (lock files in the temporary directory) and pins
/// the calling process to it. `None` when every allowed CPU is taken (or cannot be locked or
/// pinned): the executor then runs unpinned.
pub fn lease(slot: usize) -> Option<Lease> {
    let allowed = sys::allowed_cpus().ok()?;
    let (cpu, lock) = take_lock(&std::env::temp_dir(), &allowed, slot)?;
    sys::pin_to_cpu(cpu).ok().map(|()| Lease { cpu, _lock: lock })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cpu_per_executor_only_while_there_are_enough() {
        assert_eq!(wants_cpu(Pinning::Auto, 2, 2, 1), Some(1));
        assert_eq!(wants_cpu(Pinning::Auto, 2, 1, 0), Some(0));
        assert_eq!(wants_cpu(Pinning::Auto, 2, 3, 0), None);
        assert_eq!(wants_cpu(Pinning::Off, 2, 1, 0), None);
        assert_eq!(wants_cpu(Pinning::Auto, 0, 1, 0), None);
    }

    #[test]
    fn each_slot_tries_its_own_cpu_first() {
        assert_eq!(lease_order(&[2, 5, 7], 0), [2, 5, 7]);
        assert_eq!(lease_order(&[2, 5, 7], 1), [5, 7, 2]);
        assert_eq!(lease_order(&[2, 5, 7], 4), [5, 7, 2]);
        assert!(lease_order(&[], 0).is_empty());
    }

    #[test]
    fn a_held_cpu_is_skipped_and_freed_when_its_lock_closes() {
        let dir = std::env::temp_dir().join(format!("unshare-fuzz-placement-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let (a, lock_a) = take_lock(&dir, &[3, 4], 0).expect("first lease");
        assert_eq!(a, 3);
        // Slot 0 again: CPU 3 is held (flock conflicts between two opens, even in one
        // process), so the search moves on.
        let (b, lock_b) = take_lock(&dir, &[3, 4], 0).expect("second lease");
        assert_eq!(b, 4);
        assert!(take_lock(&dir, &[3, 4], 1).is_none(), "both CPUs are held");
        drop(lock_a);
        assert_eq!(take_lock(&dir, &[3, 4], 1).map(|(c, _)| c), Some(3));
        drop(lock_b);
        assert!(dir.join("unshare-fuzz-cpu4.lock").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn pinning_parses_and_rejects_unknown_words() {
        assert_eq!("auto".parse::<Pinning>(), Ok(Pinning::Auto));
        assert_eq!("off".parse::<Pinning>(), Ok(Pinning::Off));
        assert!("on".parse::<Pinning>().unwrap_err().contains("auto"));
    }

    #[test]
    fn the_argument_asks_for_the_slot() {
        let base = vec!["--mutant".to_string(), "x".to_string()];
        assert_eq!(executor_args(&base, Pinning::Off, 1, 0), base);
        let args = executor_args(&base, Pinning::Auto, 1, 0);
        assert_eq!(args[..2], base[..]);
        assert_eq!(args[2..], [SLOT_ARG.to_string(), "0".to_string()]);
    }
}
