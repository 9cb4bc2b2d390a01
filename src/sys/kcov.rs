//! KCOV, the kernel's per-task coverage (`/sys/kernel/debug/kcov`), for the
//! coverage mode (`unshare-fuzz kcov`, docs/coverage.md). Off unless the
//! executor calls [`open_slots`]; every other function is then a no-op.
//!
//! KCOV traces one task per descriptor and is not inherited by fork or
//! clone. The executor opens [`SLOTS`] descriptors before its first case and
//! maps each one's buffer shared; the forked case child enables slot
//! [`generation`] on itself around each step ([`step_on`], [`step_off`]); a
//! `Fork` step's child moves to the next slot ([`forked`]), so the process
//! that carries on with the case is traced again (up to `SLOTS - 1` forks
//! deep). After the case the executor reads every slot's buffer through its
//! own mapping ([`collect`]): the child is gone by then, and its exit
//! released the descriptor for the next case.
//!
//! State lives in atomics: after `fork` each process has its own copy, and a
//! `CLONE_VM` child (vfork setup) shares the parent's, which is blocked.
//!
//! # Safety
//! `ioctl` on descriptors this module opened, `mmap` of their buffers (kept
//! for the process's life, never unmapped), and volatile reads and writes
//! inside those mappings, whose length is fixed at [`WORDS`] words.

#![allow(unsafe_code)]

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicUsize, Ordering};

use crate::abi::errno::Errno;

/// Descriptors (traced tasks) per case: the case child and up to `SLOTS - 1` fork generations.
pub const SLOTS: usize = 4;
/// Words of each buffer: word 0 counts the PCs that follow (1 << 20 words: 8 MiB; one
/// a step of 5 of the 182 corpus cases filled a buffer of 1 << 18 words).
pub const WORDS: usize = 1 << 20;

/// `KCOV_INIT_TRACE`: `_IOR('c', 1, unsigned long)`.
const KCOV_INIT_TRACE: libc::c_ulong = 0x8008_6301;
/// `KCOV_ENABLE`: `_IO('c', 100)`.
const KCOV_ENABLE: libc::c_ulong = 0x6364;
/// `KCOV_DISABLE`: `_IO('c', 101)`.
const KCOV_DISABLE: libc::c_ulong = 0x6365;
/// `KCOV_TRACE_PC`: one PC per basic block.
const KCOV_TRACE_PC: libc::c_ulong = 0;

static ACTIVE: AtomicBool = AtomicBool::new(false);
static FDS: [AtomicI32; SLOTS] = [const { AtomicI32::new(-1) }; SLOTS];
static AREAS: [AtomicPtr<u64>; SLOTS] = [const { AtomicPtr::new(std::ptr::null_mut()) }; SLOTS];
static GENERATION: AtomicUsize = AtomicUsize::new(0);
/// The buffers are kept from the executor's children (set at the first [`reset`]).
static DONTFORK: AtomicBool = AtomicBool::new(false);

/// Whether [`open_slots`] succeeded in this process (or the process it was forked from).
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Opens `path` (normally `/sys/kernel/debug/kcov`) [`SLOTS`] times, sets each up for PC
/// tracing of [`WORDS`] words and maps its buffer. Call once, in the executor, before any case.
///
/// # Errors
/// The step that failed and its errno (ENOENT: no debugfs mounted or a kernel without KCOV).
pub fn open_slots(path: &std::ffi::CStr) -> Result<(), (&'static str, Errno)> {
    for slot in 0..SLOTS {
        let fd = super::open_raw(path, libc::O_RDWR | libc::O_CLOEXEC).map_err(|e| ("open", e))?;
        // SAFETY: KCOV_INIT_TRACE takes the buffer size in words as a plain integer.
        super::ret_int(unsafe { libc::ioctl(fd, KCOV_INIT_TRACE, WORDS as libc::c_ulong) })
            .map_err(|e| ("ioctl(KCOV_INIT_TRACE)", e))?;
        // SAFETY: a fresh shared mapping of the descriptor's buffer; no existing memory is
        // touched, and the mapping stays for the process's life.
        let p = unsafe {
            libc::mmap(std::ptr::null_mut(), WORDS * 8, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0)
        };
        if p == libc::MAP_FAILED {
            return Err(("mmap", super::last_errno()));
        }
        FDS[slot].store(fd, Ordering::Relaxed);
        AREAS[slot].store(p.cast(), Ordering::Relaxed);
    }
    ACTIVE.store(true, Ordering::Relaxed);
    Ok(())
}

/// The descriptors to keep open in the case child (none when inactive).
pub fn descriptors() -> [i32; SLOTS] {
    std::array::from_fn(|i| FDS[i].load(Ordering::Relaxed))
}

/// The slot the calling process traces itself with.
pub fn generation() -> usize {
    GENERATION.load(Ordering::Relaxed)
}

/// Before a case (executor): every buffer empty, generation 0.
pub fn reset() {
    if !active() {
        return;
    }
    GENERATION.store(0, Ordering::Relaxed);
    let first = !DONTFORK.swap(true, Ordering::Relaxed);
    for area in &AREAS {
        let p = area.load(Ordering::Relaxed);
        // SAFETY: p is the start of a live WORDS-word mapping (open_slots).
        unsafe { std::ptr::write_volatile(p, 0) };
        if first {
            // Only the executor reads the buffers (the kernel writes them through its own
            // mapping): without this the case child, and every task a traced step forks, would
            // copy the page table entries of the four buffers (a VM_MIXEDMAP mapping is copied
            // at fork, copy_page_range), all traced. Done here, by the process that runs the
            // cases, and not at open_slots: the executor opens KCOV before its sandbox, whose
            // pid 1 is a fork that must keep the mappings.
            // SAFETY: advice on a live mapping of ours; its contents do not change.
            let _ = unsafe { libc::madvise(p.cast(), WORDS * 8, libc::MADV_DONTFORK) };
        }
    }
}

fn ioctl_current(request: libc::c_ulong, arg: libc::c_ulong) {
    let g = generation();
    if !active() || g >= SLOTS {
        return;
    }
    let fd = FDS[g].load(Ordering::Relaxed);
    // SAFETY: integer arguments on a KCOV descriptor this module opened. A failure (the
    // slot traced by another task, or not enabled here) only means no trace: ignored.
    let _ = unsafe { libc::ioctl(fd, request, arg) };
}

/// Case child, before a step: trace the calling task into its generation's slot.
pub fn step_on() {
    ioctl_current(KCOV_ENABLE, KCOV_TRACE_PC);
}

/// Case child, after a step: stop tracing (EINVAL, ignored, if this task is not the tracer).
pub fn step_off() {
    ioctl_current(KCOV_DISABLE, 0);
}

/// The child of a `Fork` step, which carries on with the case: its next steps use the next slot
/// (none once [`SLOTS`] generations are used up).
pub fn forked() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// After a case (executor): appends every PC of every slot to `pcs` (in trace order, with
/// repeats); returns how many slots were full (their trace was cut).
pub fn collect(pcs: &mut Vec<u64>) -> usize {
    let mut full = 0;
    if !active() {
        return 0;
    }
    for area in &AREAS {
        let p = area.load(Ordering::Relaxed);
        // SAFETY: p is the start of a live WORDS-word mapping; every index read is below WORDS.
        let n = unsafe { std::ptr::read_volatile(p) } as usize;
        if n >= WORDS - 1 {
            full += 1;
        }
        for i in 1..=n.min(WORDS - 1) {
            // SAFETY: as above, i < WORDS.
            pcs.push(unsafe { std::ptr::read_volatile(p.add(i)) });
        }
    }
    full
}

/// [`super::close_inherited_except`] that also keeps the KCOV descriptors (case child).
pub fn close_inherited_except(keep: i32) {
    if !active() {
        return super::close_inherited_except(keep);
    }
    let mut keep_all = [keep; SLOTS + 1];
    keep_all[1..].copy_from_slice(&descriptors());
    keep_all.sort_unstable();
    let mut next: u32 = 3;
    for &k in &keep_all {
        if k < 0 || (k as u32) < next {
            continue;
        }
        if k as u32 > next {
            // SAFETY: integer arguments; closing descriptors this process owns.
            let _ = unsafe { libc::syscall(libc::SYS_close_range, next, k as u32 - 1, 0u32) };
        }
        next = k as u32 + 1;
    }
    // SAFETY: as above.
    let _ = unsafe { libc::syscall(libc::SYS_close_range, next, u32::MAX, 0u32) };
}

/// Mounts debugfs on `/sys/kernel/debug`, where the KCOV device lives. Only for a kernel
/// declared a throwaway (a qemu guest of scripts/kcov.sh): the caller checks that.
///
/// # Errors
/// mount's errno.
pub fn mount_debugfs_on_throwaway_kernel() -> Result<(), Errno> {
    // SAFETY: the caller runs on a kernel declared a throwaway (`--throwaway-kernel`, a VM
    // guest), where the mount namespace is the guest's own; debugfs adds a mount and changes
    // nothing else.
    unsafe { super::mount(c"debugfs", c"/sys/kernel/debug", Some(c"debugfs"), 0) }
}
