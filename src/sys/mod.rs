//! The thin system-call layer: raw system calls, one file per family, each wrapper a few
//! lines that decode their result through [`ret`] into an [`Errno`]. Every wrapper is also
//! reachable as `sys::name` (re-exported below), so callers need not know the family.
//!
//! | file | family |
//! |---|---|
//! | `ns.rs` | unshare, setns, hostname, a namespace's inode through a pidfd |
//! | `process.rs` | fork, clone, exit, wait, kill, pidfds, kcmp, threads, CPUs, rlimits, clock |
//! | `cap.rs` | capabilities and ids |
//! | `fs.rs` | files, stat, directories, mount, chroot, cwd, umask, locks |
//! | `io.rs` | read, write, pipes, poll, sockets, `ParentOnlyBuf` |
//! | `ipc.rs` | SysV semaphores |
//! | `signal.rs` | signal dispositions and the stop signals |
//! | `kernel.rs` | uname, the kernel log, gVisor detection |
//! | `proc.rs` | non-allocating readers of `/proc` files |
//! | `clone3.rs` | clone3 with the full flag word |
//! | `seccomp.rs` | classic BPF and installing a seccomp filter |
//! | `inside.rs` | life inside namespaces: a POSIX message queue, network devices, own cgroups |
//!
//! # Safety
//! `unsafe` of the crate lives in this folder and in the process-changing callers CONVENTIONS.md
//! lists (`exec/child*`, parts of `exec/executor/`, `cli/guest.rs`). Wrappers that only read or
//! write memory they own, or pass plain integers, are safe functions; their `unsafe` blocks are
//! justified one by one. A call that changes the calling process in a way the Rust runtime and
//! the harness do not expect (its namespaces, root, mounts, hostname, credentials,
//! capabilities or prctl state; a new process) is an `unsafe fn` with a `# Safety` section: it
//! may only run in a single-threaded process that the harness treats as disposable (a forked
//! case child, a probe's throwaway child) or in the executor while it builds its sandbox.
//!
//! Nothing here allocates except the `kernel.rs` readers, [`process::allowed_cpus`] and the
//! seccomp compiler's input (`seccomp.rs`); `tests/style.rs` checks every function reached from
//! post-fork or per-case code.

#![allow(unsafe_code)]

pub mod cap;
pub mod clone3;
pub mod fs;
pub mod inside;
pub mod io;
pub mod ipc;
pub mod kcov;
pub mod kernel;
pub mod marker;
pub mod ns;
pub mod proc;
pub mod process;
pub mod seccomp;
pub mod signal;

pub use cap::*;
pub use fs::*;
pub use io::*;
pub use ipc::*;
pub use kernel::*;
pub use ns::*;
pub use process::*;
pub use signal::*;

use crate::abi::errno::Errno;

/// The calling thread's errno.
pub fn last_errno() -> Errno {
    Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// Decodes a raw syscall return value: negative means failure with `errno`.
pub fn ret(rc: libc::c_long) -> Result<libc::c_long, Errno> {
    if rc < 0 { Err(last_errno()) } else { Ok(rc) }
}

pub(crate) fn ret_int(rc: libc::c_int) -> Result<libc::c_int, Errno> {
    if rc < 0 { Err(last_errno()) } else { Ok(rc) }
}
