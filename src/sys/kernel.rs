//! What the running kernel says of itself: its release and version (`uname`), the head of its
//! log, and whether it is a foreign kernel (gVisor). Read once at start by the harness and the
//! executor, never after fork: these return `String`s and do allocate.

#![allow(unsafe_code)]

use std::ffi::CStr;

/// The running kernel's release string (`uname -r`).
pub fn kernel_release() -> String {
    let mut uts = std::mem::MaybeUninit::<libc::utsname>::uninit();
    // SAFETY: uts points to writable memory of the right size.
    if unsafe { libc::uname(uts.as_mut_ptr()) } != 0 {
        return "unknown".into();
    }
    // SAFETY: uname succeeded and filled uts; release is NUL-terminated.
    let uts = unsafe { uts.assume_init() };
    // SAFETY: the kernel NUL-terminates the release field.
    unsafe { CStr::from_ptr(uts.release.as_ptr()) }.to_string_lossy().into_owned()
}

/// `uname -v`: the kernel's version string (`#1 SMP ...`).
pub fn kernel_version() -> String {
    let mut uts = std::mem::MaybeUninit::<libc::utsname>::uninit();
    // SAFETY: uts points to writable memory of the right size.
    if unsafe { libc::uname(uts.as_mut_ptr()) } != 0 {
        return "unknown".into();
    }
    // SAFETY: uname succeeded and filled uts.
    let uts = unsafe { uts.assume_init() };
    // SAFETY: the kernel NUL-terminates the version field.
    unsafe { CStr::from_ptr(uts.version.as_ptr()) }.to_string_lossy().into_owned()
}

/// The first bytes of the kernel log (`syslog(SYSLOG_ACTION_READ_ALL)`), if readable.
pub fn kernel_log_head() -> Option<String> {
    let mut buf = [0u8; 4096];
    // SAFETY: buf is writable for its length; READ_ALL (3) copies at most that many bytes.
    let n = unsafe { libc::klogctl(3, buf.as_mut_ptr().cast(), buf.len() as libc::c_int) };
    let n = usize::try_from(n).ok()?.min(buf.len());
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// The uname version gVisor reports on every release (pkg/sentry/kernel/version.go).
pub const GVISOR_UNAME_VERSION: &str = "#1 SMP Sun Jan 10 15:06:54 PST 2016";

/// When the running kernel is not Linux but a Linux-compatible one that says so: its name and
/// the tell. gVisor is recognised by its kernel log, whose first line is "Starting gVisor...",
/// or by the fixed uname version it has always reported.
pub fn foreign_kernel() -> Option<(&'static str, String)> {
    let log = kernel_log_head().unwrap_or_default();
    if log.contains("Starting gVisor") {
        return Some(("gVisor", "the kernel log (syslog(2)) starts with \"Starting gVisor...\"".into()));
    }
    let version = kernel_version();
    if version == GVISOR_UNAME_VERSION {
        return Some(("gVisor", format!("uname -v is gVisor's fixed {version:?}")));
    }
    None
}
