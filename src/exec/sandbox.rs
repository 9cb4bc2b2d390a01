//! The outer sandbox: before serving any case, the executor moves into fresh
//! namespaces (a user namespace too when it lacks CAP_SYS_ADMIN; mount with
//! `/` made private, UTS, IPC, net, PID) and becomes pid 1 there, so that no
//! case can touch the host's hostname, mounts, network or processes, even on
//! a kernel that reports success without unsharing. The process that entered
//! stays outside as a relay that only waits for pid 1 and exits with its status.

use crate::flags::{RawFlags, bits};
use crate::sys;

/// Facts gathered before and while entering the sandbox.
#[derive(Debug, Clone)]
pub struct SandboxInfo {
    /// One line: which namespaces, and notes.
    pub description: String,
    /// The sandbox has its own user namespace.
    pub user_ns: bool,
    /// Real uid before entering.
    pub host_uid: u32,
    /// User-namespace depth before entering, if known (0 in the initial namespace).
    pub host_userns_depth: Option<u32>,
    /// Pid-namespace level before entering (entries of NSpid minus one), if readable.
    pub host_pidns_level: Option<u32>,
    /// `/` differs from `/proc/1/root` before entering (None if that could not be read).
    pub host_chrooted: Option<bool>,
    /// `Seccomp:` and `Seccomp_filters:` of /proc/self/status before entering.
    pub seccomp: (u32, u32),
}

fn host_userns_depth() -> Option<u32> {
    let mut buf = [0u8; 256];
    let n = sys::read_file_into(c"/proc/self/uid_map", &mut buf).ok()?;
    let text = std::str::from_utf8(&buf[..n]).ok()?;
    let fields: Vec<&str> = text.split_whitespace().collect();
    (fields == ["0", "0", "4294967295"]).then_some(0)
}

fn host_chrooted() -> Option<bool> {
    let root = sys::stat_dev_ino(c"/").ok()?;
    if let Ok(init_root) = sys::stat_dev_ino(c"/proc/1/root") {
        return Some(root != init_root);
    }
    // /proc/1 is not ours to read: a mount whose mount point is outside our root is not
    // listed in mountinfo, so with no mount at "/" the root is a subdirectory (chrooted).
    // A chroot into a mount point is not detected this way.
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    Some(!info.lines().any(|l| l.split_whitespace().nth(4) == Some("/")))
}

fn host_pidns_level() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("NSpid:"))?;
    let n = line.split_whitespace().count().checked_sub(1)?;
    u32::try_from(n).ok()?.checked_sub(1)
}

fn seccomp() -> (u32, u32) {
    let mut buf = [0u8; 8192];
    let n = sys::read_file_into(c"/proc/self/status", &mut buf).unwrap_or(0);
    let text = &buf[..n];
    let get = |k: &[u8]| sys::proc::field_u64(text, k).unwrap_or(0) as u32;
    (get(b"Seccomp:"), get(b"Seccomp_filters:"))
}

/// Enters the sandbox. Returns only in the sandbox's pid 1; the calling process
/// stays outside, waits for it, and exits with its status.
///
/// # Errors
/// A message saying which step failed and what to do about it.
pub fn enter() -> Result<SandboxInfo, String> {
    let (host_uid, host_gid, _, _) = sys::ids();
    let cap_sys_admin = sys::capget().is_ok_and(|c| c.effective & (1 << 21) != 0);
    let user_ns = !cap_sys_admin;
    let mut info = SandboxInfo {
        description: String::new(),
        user_ns,
        host_uid,
        host_userns_depth: host_userns_depth(),
        host_pidns_level: host_pidns_level(),
        host_chrooted: host_chrooted(),
        seccomp: seccomp(),
    };
    let mut flags = bits::NEWNS | bits::NEWUTS | bits::NEWIPC | bits::NEWNET | bits::NEWPID;
    if user_ns {
        flags |= bits::NEWUSER;
    }
    // SAFETY: called by the executor before it serves cases, while single-threaded.
    #[allow(unsafe_code)]
    let r = unsafe { sys::unshare(RawFlags(flags)) };
    r.map_err(|e| {
        format!(
            "cannot build the outer sandbox: unshare({}) failed with {e}{}",
            RawFlags(flags),
            if user_ns {
                "; the harness needs unprivileged user namespaces when not run as root \
                 (check kernel.unprivileged_userns_clone, kernel.apparmor_restrict_unprivileged_userns, \
                 user.max_user_namespaces, or run as root)"
            } else {
                "; is a seccomp filter or a container runtime blocking unshare?"
            }
        )
    })?;
    if user_ns {
        sys::proc::write_id_maps(0, host_uid, host_gid).map_err(|(path, e)| {
            format!("cannot build the outer sandbox: writing {} failed with {e}", path.to_string_lossy())
        })?;
    }
    sys::mount(c"none", c"/", None, libc::MS_REC | libc::MS_PRIVATE).map_err(|e| {
        format!("cannot build the outer sandbox: making / private (mount MS_REC|MS_PRIVATE) failed with {e}")
    })?;
    let _ = sys::sethostname(b"unshare-fuzz-sandbox");
    // SAFETY: still single-threaded; the parent branch below only waits and exits.
    #[allow(unsafe_code)]
    let pid = unsafe { sys::fork() }.map_err(|e| format!("cannot fork the sandbox's pid 1: {e}"))?;
    if pid != 0 {
        relay(pid);
    }
    let _ = sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    let mut notes = vec![format!("namespaces {}", RawFlags(flags))];
    match sys::mount(c"proc", c"/proc", Some(c"proc"), libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) {
        Ok(()) => notes.push("own /proc".into()),
        Err(e) => notes.push(format!("host /proc kept (mounting a new one failed with {e})")),
    }
    notes.push(format!("executor is pid {} of the sandbox", sys::getpid()));
    let _ = sys::chdir(c"/");
    match prepare_chroot_tree() {
        Ok(()) => notes.push("chroot tree on a private tmpfs at /tmp".into()),
        Err(e) => notes.push(format!("no chroot tree ({e}): chroot setups will fail as broken")),
    }
    info.description = notes.join(", ");
    Ok(info)
}

/// The outside half: wait for the sandbox's pid 1 and mirror its exit status.
fn relay(pid: libc::pid_t) -> ! {
    let code = match sys::waitpid(pid, 0) {
        Ok(Some((_, status))) if libc::WIFEXITED(status) => libc::WEXITSTATUS(status),
        Ok(Some((_, status))) if libc::WIFSIGNALED(status) => 128 + libc::WTERMSIG(status),
        _ => 2,
    };
    sys::exit_now(code)
}

/// Mounts a private tmpfs on /tmp (inside the sandbox's mount namespace only) holding
/// `uf-chroot/`, which contains `proc/` (a bind of /proc) and `tmp/uf-chroot/` again, several
/// levels deep, so a chroot into it works from inside a chroot too.
fn prepare_chroot_tree() -> Result<(), String> {
    use super::child::{CHROOT_DIR, CHROOT_LEVELS};
    sys::mount(c"tmpfs", c"/tmp", Some(c"tmpfs"), libc::MS_NOSUID | libc::MS_NODEV)
        .map_err(|e| format!("mount tmpfs on /tmp: {e}"))?;
    let mut dir = String::new();
    for _ in 0..CHROOT_LEVELS {
        dir.push_str(&CHROOT_DIR.to_string_lossy());
        for sub in ["tmp", "tmp/uf-chroot", "proc"] {
            let _ = sub;
        }
        let mk = |p: &str| -> Result<(), String> {
            let c = std::ffi::CString::new(p).map_err(|e| e.to_string())?;
            sys::mkdir(&c, 0o755).map_err(|e| format!("mkdir {p}: {e}"))
        };
        let parent_tmp = dir.trim_end_matches("/uf-chroot").to_string();
        mk(&parent_tmp)?;
        mk(&dir)?;
        mk(&format!("{dir}/proc"))?;
        let target = std::ffi::CString::new(format!("{dir}/proc")).map_err(|e| e.to_string())?;
        sys::mount(c"/proc", &target, None, libc::MS_BIND | libc::MS_REC).map_err(|e| format!("bind /proc: {e}"))?;
    }
    Ok(())
}
