//! Installs a classic-BPF seccomp filter that may change what unshare(2)
//! returns and lets every other system call run: the selftest's "lying
//! kernels" (`selftest::mutants`). The rules themselves are compiled elsewhere
//! (`selftest::bpf`) as plain data; this module prepends the fixed prelude that
//! confines them to unshare, and talks to the kernel.
//!
//! # Safety
//! A seccomp filter can make any system call fail or report success without
//! running it, which could break the Rust runtime (a faked `munmap` or
//! `close`). [`install_unshare_filter`] is safe because it always prepends
//! [`prelude`]: every call of another architecture or another number is
//! allowed before any caller-supplied instruction runs (classic BPF jumps only
//! forward), so only unshare's result can change, and unshare touches no
//! memory: every result, including a faked 0, is just data to the harness. The
//! one `unsafe` block passes the kernel a pointer to a live `sock_fprog`; the
//! kernel copies the program before the call returns.

#![allow(unsafe_code)]

use std::mem::offset_of;

use libc::sock_filter;

use crate::abi::errno::Errno;

/// `BPF_LD | BPF_W | BPF_ABS`: load 32 bits of `seccomp_data` at offset `k`.
pub const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
/// `BPF_ALU | BPF_AND | BPF_K`.
pub const ALU_AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
/// `BPF_JMP | BPF_JEQ | BPF_K`.
pub const JMP_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
/// `BPF_JMP | BPF_JSET | BPF_K`.
pub const JMP_JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
/// `BPF_RET | BPF_K`.
pub const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// Offset of `seccomp_data.nr`.
pub const OFF_NR: u32 = offset_of!(libc::seccomp_data, nr) as u32;
/// Offset of `seccomp_data.arch`.
pub const OFF_ARCH: u32 = offset_of!(libc::seccomp_data, arch) as u32;
/// Offset of the low 32 bits of `args[0]` (little-endian builds only; see [`AUDIT_ARCH`]).
pub const OFF_ARG0_LO: u32 = offset_of!(libc::seccomp_data, args) as u32;
/// Offset of the high 32 bits of `args[0]`.
pub const OFF_ARG0_HI: u32 = OFF_ARG0_LO + 4;

/// `AUDIT_ARCH_X86_64` (`EM_X86_64` | 64-bit | little-endian) on x86_64 builds.
#[cfg(all(target_arch = "x86_64", target_endian = "little"))]
pub const AUDIT_ARCH: Option<u32> = Some(0xC000_003E);
/// `AUDIT_ARCH_AARCH64` (`EM_AARCH64` | 64-bit | little-endian) on aarch64 builds.
#[cfg(all(target_arch = "aarch64", target_endian = "little"))]
pub const AUDIT_ARCH: Option<u32> = Some(0xC000_00B7);
/// No `AUDIT_ARCH` is known for this build: filters cannot be built.
#[cfg(not(any(
    all(target_arch = "x86_64", target_endian = "little"),
    all(target_arch = "aarch64", target_endian = "little")
)))]
pub const AUDIT_ARCH: Option<u32> = None;

/// The number of unshare on this architecture.
pub const NR_UNSHARE: u32 = libc::SYS_unshare as u32;

/// The i386 entry of x86-64 builds (`int $0x80`): `AUDIT_ARCH_I386` and the i386 number of
/// unshare, which a filter sees for such calls. `None` elsewhere.
#[cfg(all(target_arch = "x86_64", target_endian = "little"))]
pub const I386_ENTRY: Option<(u32, u32)> = Some((0x4000_0003, 310));
/// No i386 entry on this build.
#[cfg(not(all(target_arch = "x86_64", target_endian = "little")))]
pub const I386_ENTRY: Option<(u32, u32)> = None;

/// One instruction.
pub const fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// The fixed start of every filter: allow any call that is not unshare (number `nr`) of the
/// architecture `arch` (this build's, or the i386 entry's: [`I386_ENTRY`]).
pub const fn prelude(arch: u32, nr: u32) -> [sock_filter; 6] {
    let allow = libc::SECCOMP_RET_ALLOW;
    [
        insn(LD_W_ABS, 0, 0, OFF_ARCH),
        insn(JMP_JEQ_K, 1, 0, arch),
        insn(RET_K, 0, 0, allow),
        insn(LD_W_ABS, 0, 0, OFF_NR),
        insn(JMP_JEQ_K, 1, 0, nr),
        insn(RET_K, 0, 0, allow),
    ]
}

/// How the filter was installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Installed {
    /// `PR_SET_NO_NEW_PRIVS` had to be set first (the caller lacked CAP_SYS_ADMIN).
    pub no_new_privs: bool,
}

fn set_mode_filter(prog: &libc::sock_fprog) -> Result<(), Errno> {
    // SAFETY: `prog` is a live sock_fprog whose `filter` points at `len` live instructions;
    // the kernel copies the program during the call and keeps no pointer to our memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            0 as libc::c_ulong,
            prog as *const libc::sock_fprog,
        )
    };
    super::ret(rc).map(|_| ())
}

/// Installs `prelude(arch, nr) ++ body` as a seccomp filter of the calling thread and of
/// every process it creates later: `body` decides unshare's result, every other call runs.
/// Without CAP_SYS_ADMIN the kernel requires `PR_SET_NO_NEW_PRIVS`; it is set only then, so
/// a privileged executor keeps exactly the state of an unfiltered one. Filters cannot be
/// removed.
///
/// # Safety
/// Filters every later unshare of the calling process and its children, for good. Call it
/// only in a process the harness treats as disposable: an executor, in its sandbox, before
/// it probes or serves a case.
///
/// # Errors
/// EINVAL if `body` is empty or too long, or the
/// kernel rejects the program (e.g. it does not end with a return); otherwise the errno of
/// `seccomp` or `prctl`.
///
/// # References
/// seccomp(2), <https://man7.org/linux/man-pages/man2/seccomp.2.html>
pub unsafe fn install_unshare_filter(arch: u32, nr: u32, body: &[sock_filter]) -> Result<Installed, Errno> {
    if body.is_empty() {
        return Err(Errno::EINVAL);
    }
    let program: Vec<sock_filter> = prelude(arch, nr).into_iter().chain(body.iter().copied()).collect();
    let len = u16::try_from(program.len()).map_err(|_| Errno::EINVAL)?;
    let prog = libc::sock_fprog { len, filter: program.as_ptr().cast_mut() };
    match set_mode_filter(&prog) {
        Ok(()) => Ok(Installed { no_new_privs: false }),
        Err(Errno::EACCES) => {
            // SAFETY: the caller upholds this function's contract (the executor, in its sandbox).
            unsafe { super::prctl(libc::PR_SET_NO_NEW_PRIVS, 1) }?;
            set_mode_filter(&prog)?;
            Ok(Installed { no_new_privs: true })
        }
        Err(e) => Err(e),
    }
}
