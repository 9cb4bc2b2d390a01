//! clone3(2) at the lowest level: the `clone_args` structure, a raw x86_64 system call that
//! starts the child on its own stack, and the few helpers the clone3 step needs around it
//! (a stack mapping, the TLS base, the SIGCHLD mask, ending one thread, `tgkill`).
//!
//! glibc's `syscall()` cannot be used for clone3 with a stack: the child would return from the
//! wrapper into the caller's frames while running on a different stack. The assembly below
//! does what glibc's own `__clone3` does: in the child it calls the entry function directly.
//!
//! # Safety
//! [`clone3`] is an `unsafe fn`: the child runs `entry` on the given stack in whatever sharing
//! the flags ask for (with CLONE_VM in this very address space, with CLONE_THREAD as a thread
//! of this process). The caller must uphold the contract in its `# Safety` section. Everything
//! else here passes plain integers or pointers to memory it owns for the call, and allocates
//! nothing, so it may run after `fork`.

#![allow(unsafe_code)]

use crate::abi::errno::Errno;

/// `struct clone_args` of include/uapi/linux/sched.h, version 2 (88 bytes, Linux 5.7+).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CloneArgs {
    /// Flag word (64 bits, CSIGNAL excluded).
    pub flags: u64,
    /// Where the kernel stores the pidfd (CLONE_PIDFD).
    pub pidfd: u64,
    /// Where the child's TID is stored or cleared in the child (CHILD_SETTID, CHILD_CLEARTID).
    pub child_tid: u64,
    /// Where the child's TID is stored in the caller (PARENT_SETTID).
    pub parent_tid: u64,
    /// Signal sent to the parent when the child exits.
    pub exit_signal: u64,
    /// Lowest address of the child's stack.
    pub stack: u64,
    /// Size of the child's stack.
    pub stack_size: u64,
    /// TLS base for CLONE_SETTLS.
    pub tls: u64,
    /// Array of wanted pids (not used: 0).
    pub set_tid: u64,
    /// Length of `set_tid` (0).
    pub set_tid_size: u64,
    /// cgroup v2 directory fd for CLONE_INTO_CGROUP.
    pub cgroup: u64,
}

/// `CLONE_ARGS_SIZE_VER2`.
pub const CLONE_ARGS_SIZE_VER2: usize = 88;

const _: () = assert!(std::mem::size_of::<CloneArgs>() == CLONE_ARGS_SIZE_VER2);

/// What the child runs; it must never return (it ends with `_exit` or [`exit_thread_now`]).
pub type ChildEntry = extern "C" fn(*mut libc::c_void) -> !;

/// Decodes a raw system call return value (`-errno` on failure), for the one call made
/// without glibc (glibc's wrappers go through `sys::ret`, which reads `errno`).
fn ret_raw(rc: i64) -> Result<i64, Errno> {
    if (-4095..0).contains(&rc) { Err(Errno(-rc as i32)) } else { Ok(rc) }
}

/// `clone3(args, 88)`; in the child, `entry(arg)` runs on the stack of `args` (or, with no
/// stack given, on this thread's stack, which only a non-VM child may do).
///
/// Returns the child's pid (its TID with CLONE_THREAD) in the caller.
///
/// # Errors
/// The kernel's errno (EINVAL for rejected flag words, EPERM, ENOSPC, EBADF, ...).
///
/// # Safety
/// * `args.stack`/`args.stack_size` must describe a mapping nobody else uses, 16-byte aligned
///   at its top, whenever the flags contain CLONE_VM.
/// * Every pointer in `args` (pidfd, child_tid, parent_tid) must point to writable memory
///   that stays valid until the child has exited.
/// * `entry` must not allocate, unwind, or touch memory the caller is using, and must end
///   the child (or thread) itself; `arg` must stay valid as long as the child reads it.
/// * The caller must be the case child (or a process the harness treats as disposable).
///
/// # References
/// clone3(2), <https://man7.org/linux/man-pages/man2/clone3.2.html>; kernel/fork.c
/// `SYSCALL_DEFINE2(clone3)`.
#[cfg(target_arch = "x86_64")]
pub unsafe fn clone3(args: &mut CloneArgs, entry: ChildEntry, arg: *mut libc::c_void) -> Result<libc::pid_t, Errno> {
    let rc: i64;
    // SAFETY: the syscall reads `args` (valid for the call) and creates the child; in the
    // child (rax == 0) the kernel has switched to the new stack, so we call `entry` there and
    // never come back (it does not return, `ud2` traps if it did). r12/r13 are preserved by
    // the syscall in both processes. In the caller only rax, rcx and r11 change.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 => rc,
            in("rdi") args as *mut CloneArgs,
            in("rsi") CLONE_ARGS_SIZE_VER2,
            in("r12") arg,
            in("r13") entry,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    ret_raw(rc).map(|pid| pid as libc::pid_t)
}

/// Other architectures: not implemented (ENOSYS), so every clone3 step reports ENOSYS.
///
/// # Errors
/// Always ENOSYS.
///
/// # Safety
/// None needed; kept `unsafe` for the same signature as on x86_64.
#[cfg(not(target_arch = "x86_64"))]
pub unsafe fn clone3(_: &mut CloneArgs, _: ChildEntry, _: *mut libc::c_void) -> Result<libc::pid_t, Errno> {
    Err(Errno::ENOSYS)
}

/// Whether clone3 exists here: `clone3(NULL, 0)` is refused by the kernel's size check
/// (EINVAL) before any memory is read, or answered ENOSYS where the kernel lacks clone3 or a
/// seccomp filter refuses it (container runtimes do, since a filter cannot read its struct).
/// Returns the errno (or `None` if, against the ABI, it succeeded).
pub fn clone3_probe() -> Option<Errno> {
    // SAFETY: with size 0 the kernel returns EINVAL from copy_clone_args_from_user before it
    // reads the (null) pointer; no process is created and no memory is touched.
    let rc = unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null_mut::<libc::c_void>(), 0usize) };
    super::ret(rc).err()
}

/// An anonymous private mapping of `len` bytes for a child stack; returns its lowest address
/// (what `clone_args.stack` wants). Never unmapped: the case process ends soon.
pub fn map_stack(len: usize) -> Result<u64, Errno> {
    // SAFETY: an anonymous mapping at a kernel-chosen address; no existing memory is touched.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED { Err(super::last_errno()) } else { Ok(p as u64) }
}

/// The calling thread's TLS base (`arch_prctl(ARCH_GET_FS)`): what CLONE_SETTLS gets, so the
/// child keeps a working TLS (errno, the stack protector's canary).
pub fn tls_base() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        const ARCH_GET_FS: libc::c_int = 0x1003;
        let mut base: u64 = 0;
        // SAFETY: ARCH_GET_FS writes one u64 to the pointer, which is valid for the call.
        let rc = unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_GET_FS, &mut base as *mut u64) };
        if rc == 0 { base } else { 0 }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        0
    }
}

/// `gettid()`.
pub fn gettid() -> libc::pid_t {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as libc::pid_t }
}

/// `tgkill(tgid, tid, sig)`; with sig 0 only checks that the thread exists.
pub fn tgkill(tgid: libc::pid_t, tid: libc::pid_t, sig: libc::c_int) -> Result<(), Errno> {
    // SAFETY: integer arguments.
    super::ret(unsafe { libc::syscall(libc::SYS_tgkill, tgid, tid, sig) }).map(|_| ())
}

/// Ends the calling thread only (`SYS_exit`, not `exit_group`): a CLONE_THREAD child must not
/// take the whole case process with it.
pub fn exit_thread_now(code: i32) -> ! {
    loop {
        // SAFETY: SYS_exit ends the calling thread and never returns; no memory is touched.
        unsafe { libc::syscall(libc::SYS_exit, code) };
    }
}

/// A signal set holding only SIGCHLD.
fn sigchld_set() -> libc::sigset_t {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set; sigaddset adds a valid signal to it.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), libc::SIGCHLD);
        set.assume_init()
    }
}

/// Blocks SIGCHLD in the calling thread; returns the previous mask for [`restore_mask`].
pub fn block_sigchld() -> Result<libc::sigset_t, Errno> {
    let set = sigchld_set();
    let mut old = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: both sets are valid for the call; `old` is written by the kernel.
    let rc = unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, old.as_mut_ptr()) };
    if rc != 0 {
        return Err(super::last_errno());
    }
    // SAFETY: sigprocmask succeeded and filled `old`.
    Ok(unsafe { old.assume_init() })
}

/// Restores a mask saved by [`block_sigchld`].
pub fn restore_mask(old: &libc::sigset_t) {
    // SAFETY: `old` is a valid set; the old-set pointer may be null.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, old, std::ptr::null_mut()) };
}

/// Takes one pending SIGCHLD without waiting (the signal must be blocked): true if there was one.
pub fn take_sigchld() -> bool {
    let set = sigchld_set();
    let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: the set and the timeout are valid; a null siginfo pointer is allowed.
    let rc = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) };
    rc == libc::SIGCHLD
}

/// Sleeps `ms` milliseconds (nanosleep; EINTR ends it early).
pub fn sleep_ms(ms: u64) {
    let t = libc::timespec { tv_sec: (ms / 1000) as libc::time_t, tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long };
    // SAFETY: the request is valid; the remainder pointer may be null.
    unsafe { libc::nanosleep(&t, std::ptr::null_mut()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_results_decode_like_the_kernel_returns_them() {
        assert_eq!(ret_raw(42), Ok(42));
        assert_eq!(ret_raw(0), Ok(0));
        assert_eq!(ret_raw(-22), Err(Errno::EINVAL));
        assert_eq!(ret_raw(-4095), Err(Errno(4095)));
    }

    #[test]
    fn layout_is_clone_args_ver2() {
        let a = CloneArgs { cgroup: 7, ..CloneArgs::default() };
        assert_eq!(std::mem::offset_of!(CloneArgs, exit_signal), 32);
        assert_eq!(std::mem::offset_of!(CloneArgs, stack), 40);
        assert_eq!(std::mem::offset_of!(CloneArgs, tls), 56);
        assert_eq!(std::mem::offset_of!(CloneArgs, cgroup), 80);
        assert_eq!(a.cgroup, 7);
    }
}
