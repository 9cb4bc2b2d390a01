//! Processes: fork and raw clone (with their stacks), exit, wait, signals to others, pidfds,
//! process groups, kcmp, parked threads, CPU affinity, rlimits and the monotonic clock.
//!
//! # Safety
//! `fork` and `clone` are `unsafe fn` (the caller must be single-threaded and the child must
//! end with [`exit_now`]); `prctl` is `unsafe fn` because its options change the calling
//! process (death signal, dumpability, no-new-privs). The rest pass integers or memory they
//! own. Nothing here allocates but [`allowed_cpus`] (the executor's placement, before any
//! fork).

#![allow(unsafe_code)]

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use crate::abi::errno::Errno;

use super::{ret, ret_int};

/// `fork()`: `Ok(0)` in the child, `Ok(pid)` in the parent.
///
/// # Safety
/// The caller must be single-threaded (so the child inherits no lock held by
/// another thread), and the child must end with [`exit_now`], never by
/// returning into the caller's stack frames.
pub unsafe fn fork() -> Result<libc::pid_t, Errno> {
    // SAFETY: the caller guarantees the process is single-threaded.
    let pid = unsafe { libc::fork() };
    ret_int(pid)
}

/// `_exit(code)`: ends the process without running destructors or atexit handlers.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and is async-signal-safe.
    unsafe { libc::_exit(code) }
}

/// `setpgid(pid, pgid)`.
pub fn setpgid(pid: libc::pid_t, pgid: libc::pid_t) -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    ret_int(unsafe { libc::setpgid(pid, pgid) }).map(|_| ())
}

/// `clock_gettime(CLOCK_MONOTONIC)` in nanoseconds (a vDSO call: no system call, no
/// allocation; the same clock in every process of the machine).
pub fn monotonic_ns() -> u64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: t is a valid out-pointer; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    (t.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(t.tv_nsec as u64)
}

/// `getpid()`.
pub fn getpid() -> libc::pid_t {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::getpid() }
}

/// `prctl(option, arg2)` with integer arguments.
///
/// # Safety
/// Changes process attributes (death signal, dumpability, no-new-privs, capability bounding
/// set) that the Rust runtime and the harness assume fixed. Call it only in a disposable child
/// or in the executor while it builds its sandbox, with an option whose arguments are
/// integers.
pub unsafe fn prctl(option: libc::c_int, arg2: libc::c_ulong) -> Result<(), Errno> {
    // SAFETY: the options used by the harness take integer arguments only.
    ret_int(unsafe { libc::prctl(option, arg2, 0 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong) })
        .map(|_| ())
}

/// `pidfd_open(pid, 0)`.
pub fn pidfd_open(pid: libc::pid_t) -> Result<OwnedFd, Errno> {
    // SAFETY: integer arguments; the result is a new descriptor owned here.
    let fd = ret(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: the kernel returned a new descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `kill(pid, sig)`; a negative pid names a process group.
pub fn kill(pid: libc::pid_t, sig: libc::c_int) -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    ret_int(unsafe { libc::kill(pid, sig) }).map(|_| ())
}

/// `waitpid(pid, options)`: `Ok(None)` with WNOHANG when nothing changed, else (pid, status).
pub fn waitpid(pid: libc::pid_t, options: libc::c_int) -> Result<Option<(libc::pid_t, libc::c_int)>, Errno> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, options) };
        match ret_int(rc) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(0) => return Ok(None),
            Ok(p) => return Ok(Some((p, status))),
        }
    }
}

extern "C" fn parked_thread(_arg: *mut libc::c_void) -> *mut libc::c_void {
    loop {
        // SAFETY: pause has no arguments; the thread sleeps until the process exits.
        unsafe { libc::pause() };
    }
}

/// Sleeps until the process exits (the end of a thread_call step's thread).
pub fn park_forever() -> ! {
    loop {
        // SAFETY: pause has no arguments; the thread sleeps until the process exits.
        unsafe { libc::pause() };
    }
}

/// `sched_yield()`.
pub fn yield_cpu() {
    // SAFETY: no arguments; it cannot fail on Linux.
    unsafe { libc::sched_yield() };
}

/// Starts a detached thread running `entry(arg)` (a thread_call step's thread).
///
/// # Safety
/// `entry` runs concurrently with the caller, with `arg`: `arg` must stay valid as long as the
/// thread uses it, and `entry` must neither return nor unwind into a runtime that was never
/// set up for it (end with [`park_forever`]); in a case child it must not allocate.
pub unsafe fn spawn_thread_with(
    entry: extern "C" fn(*mut libc::c_void) -> *mut libc::c_void,
    arg: *mut libc::c_void,
) -> Result<(), Errno> {
    let mut tid = std::mem::MaybeUninit::<libc::pthread_t>::uninit();
    // SAFETY: tid is a valid out-pointer and attributes are default (null); the caller
    // upholds the contract on entry and arg.
    let rc = unsafe { libc::pthread_create(tid.as_mut_ptr(), std::ptr::null(), entry, arg) };
    if rc != 0 {
        return Err(Errno(rc));
    }
    // SAFETY: pthread_create succeeded and set tid.
    let rc = unsafe { libc::pthread_detach(tid.assume_init()) };
    if rc != 0 { Err(Errno(rc)) } else { Ok(()) }
}

/// Starts a detached thread that sleeps until the process exits.
pub fn spawn_parked_thread() -> Result<(), Errno> {
    let mut tid = std::mem::MaybeUninit::<libc::pthread_t>::uninit();
    // SAFETY: tid is a valid out-pointer, attributes are default (null), and the start routine
    // never touches its argument.
    let rc = unsafe { libc::pthread_create(tid.as_mut_ptr(), std::ptr::null(), parked_thread, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(Errno(rc));
    }
    // SAFETY: pthread_create succeeded and set tid.
    let rc = unsafe { libc::pthread_detach(tid.assume_init()) };
    if rc != 0 { Err(Errno(rc)) } else { Ok(()) }
}

/// `kcmp(pid1, pid2, type, idx1, idx2)`: 0 same, 1/2 ordered different, or the errno.
pub fn kcmp(pid1: libc::pid_t, pid2: libc::pid_t, kind: i32, idx1: u64, idx2: u64) -> Result<i32, Errno> {
    // SAFETY: integer arguments only; no memory is passed for the types used here.
    let rc = unsafe { libc::syscall(libc::SYS_kcmp, pid1, pid2, kind, idx1 as libc::c_ulong, idx2 as libc::c_ulong) };
    ret(rc).map(|v| v as i32)
}

/// A private anonymous mapping of `len` bytes for a clone stack; returns its top
/// (the mapping is made by [`super::clone3::map_stack`], which returns its bottom).
pub fn stack(len: usize) -> Result<*mut libc::c_void, Errno> {
    let bottom = super::clone3::map_stack(len)?;
    Ok((bottom + len as u64) as *mut libc::c_void)
}

/// `clone(entry, stack_top, flags | SIGCHLD, arg)` through glibc's wrapper.
///
/// # Safety
/// `entry` runs in the new process on `stack_top`, with `arg`. With CLONE_VM it shares this
/// address space: it must not allocate, unwind or touch state this process is using, and must
/// end with `_exit`. `arg` must stay valid as long as the child uses it.
pub unsafe fn clone(
    entry: extern "C" fn(*mut libc::c_void) -> libc::c_int,
    stack_top: *mut libc::c_void,
    flags: u64,
    arg: *mut libc::c_void,
) -> Result<libc::pid_t, Errno> {
    // SAFETY: the caller upholds the contract above; flags fit in an int (clone's legacy ABI).
    ret_int(unsafe { libc::clone(entry, stack_top, (flags as libc::c_int) | libc::SIGCHLD, arg) })
}

/// The CPUs the calling thread may run on (`sched_getaffinity`), in ascending order.
pub fn allowed_cpus() -> Result<Vec<usize>, Errno> {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is a writable cpu_set_t of the size passed.
    ret_int(unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) })?;
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: CPU_ISSET reads the set within its bounds (cpu < max).
    Ok((0..max).filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) }).collect())
}

/// Restricts the calling thread (and every process it forks later) to one CPU.
pub fn pin_to_cpu(cpu: usize) -> Result<(), Errno> {
    if cpu >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
        return Err(Errno(libc::EINVAL));
    }
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: cpu is below the set's capacity (checked above).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: set is a valid cpu_set_t of the size passed.
    ret_int(unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) }).map(|_| ())
}

/// Pins the calling thread (and what it forks later) to the CPU it runs on now.
pub fn pin_to_current_cpu() -> Result<(), Errno> {
    // SAFETY: no arguments; returns the CPU number or -1 with errno.
    let cpu = ret_int(unsafe { libc::sched_getcpu() })?;
    pin_to_cpu(cpu as usize)
}

/// Lets the calling thread run on exactly `cpus` again (as [`allowed_cpus`] read them).
pub fn set_allowed_cpus(cpus: &[usize]) -> Result<(), Errno> {
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        if cpu >= max {
            return Err(Errno(libc::EINVAL));
        }
        // SAFETY: cpu is below the set's capacity (checked above).
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: set is a valid cpu_set_t of the size passed.
    ret_int(unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) }).map(|_| ())
}

/// `getrlimit(resource)`: (soft, hard), `None` for RLIM_INFINITY.
pub fn getrlimit(resource: libc::__rlimit_resource_t) -> Result<(Option<u64>, Option<u64>), Errno> {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: r is a valid, writable rlimit.
    let rc = unsafe { libc::getrlimit(resource, &mut r) };
    ret(rc.into())?;
    let finite = |v: libc::rlim_t| (v != libc::RLIM_INFINITY).then_some(v);
    Ok((finite(r.rlim_cur), finite(r.rlim_max)))
}

/// Sleeps until a signal ends the process (`pause` in a loop). For throwaway children.
pub fn pause_forever() -> ! {
    loop {
        // SAFETY: pause has no arguments.
        unsafe { libc::pause() };
    }
}

/// A pidfd of a process that no longer exists (setns on it gives ESRCH; issue 16 class 4):
/// forks a child that waits in `pause`, opens a pidfd on it while it is surely alive, kills it
/// with SIGKILL and reaps it. The descriptor stays open (close-on-exec, as pidfds are).
pub fn exited_child_pidfd() -> Result<RawFd, Errno> {
    // SAFETY: the child only pauses until SIGKILL ends it: it takes no lock and touches no
    // memory, so another thread of the caller (a setup's parked thread) cannot matter.
    let pid = ret_int(unsafe { libc::fork() })?;
    if pid == 0 {
        pause_forever();
    }
    // SAFETY: integer arguments; the result is a new descriptor, owned by the caller.
    let fd = ret(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) });
    let killed = kill(pid, libc::SIGKILL);
    let reaped = waitpid(pid, 0);
    let fd = fd? as RawFd;
    killed?;
    reaped?;
    Ok(fd)
}

/// Gives the heap's free memory back to the kernel (`malloc_trim(0)`), so that every later
/// fork copies, and every child's exit frees, fewer page-table entries. For the executor, once,
/// after its start (the environment probe leaves freed heap pages resident) and before its
/// first case.
pub fn release_free_heap() {
    // SAFETY: malloc_trim only returns free memory of the allocator's own arenas; it takes the
    // arena locks like malloc does, and touches no memory the program owns.
    let _ = unsafe { libc::malloc_trim(0) };
}
