//! The outer sandbox: before serving any case, the executor moves into fresh
//! namespaces (a user namespace too when it lacks CAP_SYS_ADMIN; mount with
//! `/` made private, UTS, IPC, net, PID) and becomes pid 1 there, so that no
//! case can touch the host's hostname, mounts, network or processes, even on
//! a kernel that reports success without unsharing. The process that entered
//! stays outside as a relay that only waits for pid 1 and exits with its status.
//!
//! A kernel that reports success without unsharing would make that sandbox a
//! lie, so every namespace asked for is checked to be new (ids, and behaviour
//! where ids are missing or unchanged; see [`verify`]) and `/` to be private
//! before the first write.
//!
//! # Safety
//! Everything here runs in the executor while it builds its sandbox (single-threaded, before
//! it probes or serves a case), or in the sandbox's pid 1 that it becomes: the only process
//! whose namespaces, mounts, root, hostname and seccomp filters the harness lets change.

#![allow(unsafe_code)]

use crate::abi::errno::Errno;
use crate::abi::flags::{RawFlags, bits};
use crate::sys;

pub mod verify;
pub use verify::Kind;

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
    /// Why the chroot tree could not be prepared, if it could not.
    pub no_chroot_tree: Option<String>,
    /// Namespaces that unshare reported as made but that are not new (only on a kernel declared
    /// a throwaway; otherwise [`enter`] refuses): one line each, naming [`SANDBOX_INVARIANT`].
    pub violations: Vec<String>,
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

/// Why [`enter`] did not return a sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnterError {
    /// A step failed (the harness cannot run here): the executor exits 2.
    Failed(String),
    /// unshare reported success but a namespace is not new (or `/` stayed shared): a
    /// violation of unshare's contract, found before anything was written. The executor
    /// exits 1.
    Ineffective(String),
}

/// Enters the sandbox. Returns only in the sandbox's pid 1; the calling process
/// stays outside, waits for it, and exits with its status.
///
/// Every namespace asked for is checked to be new ([`verify`]), and `/` to be private, before
/// anything is written (hostname, mounts) and before any case is served. When one is not
/// new, nothing is written and [`EnterError::Ineffective`] is returned, unless the kernel
/// is declared a throwaway ([`THROWAWAY_VAR`]): then the finding is kept in
/// [`SandboxInfo::violations`] and the sandbox is built anyway.
///
/// # Errors
/// A message saying which step failed and what to do about it.
pub fn enter() -> Result<SandboxInfo, EnterError> {
    let (host_uid, host_gid, _, _) = sys::ids();
    let cap_sys_admin = sys::capget().is_ok_and(|c| c.effective & (1 << 21) != 0);
    // A user namespace of its own also for a non-root user holding CAP_SYS_ADMIN (a file
    // capability, an ambient set): the cases start from root, which the sandbox's id map gives.
    let user_ns = !cap_sys_admin || host_uid != 0;
    let throwaway = throwaway_kernel();
    let mut info = SandboxInfo::of_host(user_ns, host_uid);
    let mut flags = bits::NEWNS | bits::NEWUTS | bits::NEWIPC | bits::NEWNET | bits::NEWPID;
    if user_ns {
        flags |= bits::NEWUSER;
    }
    // A kernel built without a namespace type (issue 16 class 6) refuses its flag with EINVAL:
    // on a throwaway kernel only, the sandbox goes without it (there is nothing to isolate).
    let absent = if throwaway { super::sandbox_absent::absent_types(flags) } else { 0 };
    flags &= !absent;
    let kinds: Vec<Kind> = Kind::ALL.into_iter().filter(|k| flags & k.flag() != 0).collect();
    let mut before = verify::Before::capture(&kinds);
    unshare_sandbox(flags, user_ns)?;
    // Nothing is written before this check: not even the id maps.
    let mut notes = vec![format!("namespaces {}", RawFlags(flags))];
    if absent != 0 {
        notes.push(format!(
            "without {}: this throwaway kernel has no such namespace type (no /proc/self/ns link)",
            RawFlags(absent)
        ));
    }
    let mut not_new = Vec::new();
    for kind in kinds.iter().copied() {
        match before.check(kind) {
            Ok(note) => notes.extend(note),
            Err(finding) => not_new.push((kind, finding)),
        }
    }
    before.close_net_probe();
    refuse_or_keep(&mut info, RawFlags(flags), &not_new, throwaway)?;
    let uts_new = !not_new.iter().any(|(k, _)| *k == Kind::Uts);
    if user_ns {
        sys::proc::write_id_maps(0, host_uid, host_gid).map_err(|(path, e)| {
            EnterError::Failed(format!(
                "cannot build the outer sandbox: writing {} failed with {e}",
                path.to_string_lossy()
            ))
        })?;
    }
    let mount_ns_new = !not_new.iter().any(|(k, _)| *k == Kind::Mnt);
    if mount_ns_new || throwaway {
        make_private(&mut info, flags, throwaway, &mut notes)?;
    }
    // SAFETY: still single-threaded; the parent branch below only waits and exits.
    let pid =
        unsafe { sys::fork() }.map_err(|e| EnterError::Failed(format!("cannot fork the sandbox's pid 1: {e}")))?;
    if pid != 0 {
        relay(pid);
    }
    // SAFETY: the sandbox's pid 1 (the executor), single-threaded: a death signal for itself.
    let _ = unsafe { sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
    let pid_flagged = not_new.iter().any(|(k, _)| *k == Kind::Pid);
    if kinds.contains(&Kind::Pid)
        && !pid_flagged
        && let Err(finding) = before.check_pid_after_fork()
    {
        refuse_or_keep(&mut info, RawFlags(flags), &[(Kind::Pid, finding)], throwaway)?;
    }
    write_sandbox(&mut info, uts_new, mount_ns_new, &mut notes);
    notes.push("every namespace checked to be new before anything was written".into());
    info.description = notes.join(", ");
    Ok(info)
}

impl SandboxInfo {
    /// What is known of the host before entering: its place in the namespace tree, chroot and
    /// seccomp mode.
    fn of_host(user_ns: bool, host_uid: u32) -> SandboxInfo {
        SandboxInfo {
            description: String::new(),
            user_ns,
            host_uid,
            host_userns_depth: host_userns_depth(),
            host_pidns_level: host_pidns_level(),
            host_chrooted: host_chrooted(),
            seccomp: seccomp(),
            violations: Vec::new(),
            no_chroot_tree: None,
        }
    }
}

/// unshare of the sandbox's namespaces, with what to check when it fails.
fn unshare_sandbox(flags: u64, user_ns: bool) -> Result<(), EnterError> {
    // SAFETY: called by the executor (enter) before it serves cases, while single-threaded.
    let r = unsafe { sys::unshare(RawFlags(flags)) };
    r.map_err(|e| {
        EnterError::Failed(format!(
            "cannot build the outer sandbox: unshare({}) failed with {e}{}",
            RawFlags(flags),
            if user_ns {
                "; the harness needs unprivileged user namespaces when not run as root \
                 (check kernel.unprivileged_userns_clone, kernel.apparmor_restrict_unprivileged_userns, \
                 user.max_user_namespaces, or run as root)"
            } else {
                "; is a seccomp filter or a container runtime blocking unshare?"
            }
        ))
    })
}

/// Makes `/` private (or says why not, on a throwaway kernel) and checks that no mount is
/// still shared.
fn make_private(
    info: &mut SandboxInfo,
    flags: u64,
    throwaway: bool,
    notes: &mut Vec<String>,
) -> Result<(), EnterError> {
    match make_root_private() {
        Ok(note) => notes.extend(note),
        // A throwaway kernel (gVisor) may have no mount propagation at all: its whole mount
        // table is disposable, so the sandbox goes on without making / private.
        Err(e) if throwaway => notes.push(format!(
            "no mount propagation control ({}): / left as it is, on a throwaway kernel",
            e.trim_start_matches("cannot build the outer sandbox: ")
        )),
        Err(e) => return Err(EnterError::Failed(e)),
    }
    if let Some(shared) = verify::shared_mounts() {
        let finding = format!(
            "/ is not private: after mount(\"/\", MS_REC|MS_PRIVATE) {shared} is still shared, so a mount made \
             in the sandbox would propagate out of it"
        );
        refuse_or_keep(info, RawFlags(flags), &[(Kind::Mnt, finding)], throwaway)?;
    }

    Ok(())
}

/// The sandbox's first writes, in its pid 1 after every namespace was checked: hostname,
/// /proc, and the chroot tree on a private tmpfs.
fn write_sandbox(info: &mut SandboxInfo, uts_new: bool, mount_ns_new: bool, notes: &mut Vec<String>) {
    // Every namespace was checked: from here on, writing touches only the sandbox (or a
    // throwaway kernel's namespaces, when they are not new and it was said so).
    if uts_new {
        // SAFETY: the UTS namespace was verified new just above; only the sandbox sees it.
        let _ = unsafe { sys::sethostname(b"unshare-fuzz-sandbox") };
    } else {
        notes.push("hostname left alone (the UTS namespace is not new)".into());
    }
    if !mount_ns_new {
        // Only on a throwaway kernel: a new /proc would land in the harness's own mount
        // namespace, where /proc/self then names no process of a later harness command.
        notes.push("host /proc kept (the mount namespace is not new: a new /proc would replace everyone's)".into());
    } else {
        // SAFETY: the mount namespace was verified new and private just above.
        match unsafe {
            sys::mount(c"proc", c"/proc", Some(c"proc"), libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC)
        } {
            Ok(()) => notes.push("own /proc".into()),
            Err(e) => notes.push(format!("host /proc kept (mounting a new one failed with {e})")),
        }
    }
    notes.push(format!("executor is pid {} of the sandbox", sys::getpid()));
    let _ = sys::chdir(c"/");
    let tree = if mount_ns_new {
        prepare_chroot_tree()
    } else {
        // Only on a throwaway kernel: a tmpfs on /tmp would land in the harness's own mount
        // namespace and hide whatever lies under /tmp (the harness binary, its scripts) from
        // every later command.
        Err("the mount namespace is not new, so no tmpfs is mounted on /tmp".to_string())
    };
    match tree {
        Ok(()) => notes.push("chroot tree on a private tmpfs at /tmp".into()),
        Err(e) => {
            notes.push(format!("no chroot tree ({e}): cases that chroot into it are skipped"));
            info.no_chroot_tree = Some(e);
        }
    }
}

/// Environment variable that declares the whole kernel a throwaway (a qemu guest, a gVisor
/// sandbox): with `1`, an ineffective outer sandbox is reported as a violation and the run
/// goes on; without it the executor writes nothing and exits 1.
pub const THROWAWAY_VAR: &str = "UNSHARE_FUZZ_THROWAWAY_KERNEL";

/// The invariant an ineffective outer sandbox violates.
pub const SANDBOX_INVARIANT: &str = "sandbox-namespaces-are-new";

/// True when [`THROWAWAY_VAR`] is `1` (or `yes`, `true`).
pub fn throwaway_kernel() -> bool {
    matches!(std::env::var(THROWAWAY_VAR).as_deref(), Ok("1" | "yes" | "true"))
}

/// With findings: refuses (nothing was written), or on a throwaway kernel records them and
/// lets the caller go on.
fn refuse_or_keep(
    info: &mut SandboxInfo,
    flags: RawFlags,
    findings: &[(Kind, String)],
    throwaway: bool,
) -> Result<(), EnterError> {
    if findings.is_empty() {
        return Ok(());
    }
    let what: Vec<&str> = findings.iter().map(|(_, f)| f.as_str()).collect();
    let head = format!("{SANDBOX_INVARIANT}: unshare({flags}) reported success but {}", what.join("; "));
    if throwaway {
        info.violations.push(format!(
            "{head}: the outer sandbox is ineffective; the run goes on because {THROWAWAY_VAR}=1 \
             (--throwaway-kernel) declares this kernel a throwaway"
        ));
        Ok(())
    } else {
        Err(EnterError::Ineffective(format!(
            "{head}: the outer sandbox is ineffective, so nothing was written (no hostname, no mount, no case run); \
             this kernel breaks unshare's contract. On a throwaway kernel (a VM guest, gVisor) rerun with \
             --throwaway-kernel or {THROWAWAY_VAR}=1 to run the cases anyway"
        )))
    }
}

/// Makes every mount of the (new, checked) mount namespace under `/` private, so nothing
/// mounted in the sandbox propagates out. When `/` is not a mount point (a chroot into a plain
/// directory, as build systems make), `mount("/", MS_REC|MS_PRIVATE)` fails with EINVAL and the
/// mount that holds `/` cannot be named by a path: the process then climbs to the real root
/// of its own mount namespace (a chroot into a subdirectory leaves the working directory
/// outside the root, so `..` is no longer stopped), makes the whole tree private from there,
/// and returns into its chroot. Only this process's root moves, and only inside the sandbox's
/// fresh mount namespace.
fn make_root_private() -> Result<Option<String>, String> {
    let private = libc::MS_REC | libc::MS_PRIVATE;
    // SAFETY: the executor's own new mount namespace: making it private is what keeps later
    // mounts from propagating out.
    match unsafe { sys::mount(c"none", c"/", None, private) } {
        Ok(()) => return Ok(None),
        Err(Errno::EINVAL) if verify::root_is_mount_point() == Some(false) => {}
        Err(e) => {
            return Err(format!(
                "cannot build the outer sandbox: making / private (mount MS_REC|MS_PRIVATE) failed with {e}"
            ));
        }
    }
    let fail = |step: &str, e: Errno| {
        format!(
            "cannot build the outer sandbox: / is not a mount point (a chroot into a plain directory), and \
             making the mount namespace private from its real root failed at {step} with {e}; make the chroot \
             directory a mount point (`mount --bind DIR DIR`) before entering it"
        )
    };
    let root =
        sys::open_raw(c"/", libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC).map_err(|e| fail("open /", e))?;
    let result = (|| {
        sys::chdir(c"/").map_err(|e| fail("chdir /", e))?;
        let sub = std::fs::read_dir("/")
            .map_err(|e| fail("reading /", Errno(e.raw_os_error().unwrap_or(libc::EIO))))?
            .filter_map(Result::ok)
            .find(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .ok_or_else(|| fail("finding a subdirectory of /", Errno::ENOENT))?;
        let sub =
            std::ffi::CString::new(sub.file_name().as_encoded_bytes()).map_err(|_| fail("a name", Errno::EINVAL))?;
        // The executor, building its sandbox; it returns into its chroot (below) before
        // anything else runs.
        // SAFETY: as said above.
        unsafe { sys::chroot(&sub) }.map_err(|e| fail("chroot into a subdirectory", e))?;
        for _ in 0..4096 {
            if sys::stat_dev_ino(c".") == sys::stat_dev_ino(c"..") {
                break;
            }
            sys::chdir(c"..").map_err(|e| fail("chdir ..", e))?;
        }
        // SAFETY: the executor's own new mount namespace, at its real root.
        unsafe { sys::mount(c"none", c".", None, private) }
            .map_err(|e| fail("mount MS_REC|MS_PRIVATE on the real root", e))
    })();
    // SAFETY: back into the chroot the executor started in.
    let back = sys::fchdir(root).and_then(|()| unsafe { sys::chroot(c".") }).and_then(|()| sys::chdir(c"/"));
    let _ = sys::close_raw(root);
    back.map_err(|e| fail("returning into the chroot", e))?;
    result?;
    Ok(Some("/ is not a mount point (chrooted): the mount namespace was made private from its real root".into()))
}

/// Mounts securityfs on `/sys/kernel/security` (for the probe to read the LSM list), in the
/// executor's own mount namespace.
///
/// # Errors
/// The errno of mount(2).
pub fn mount_securityfs() -> Result<(), Errno> {
    // SAFETY: called by the executor's probe, in its verified sandbox (a private mount namespace
    // of its own), before any case.
    unsafe { sys::mount(c"securityfs", c"/sys/kernel/security", Some(c"securityfs"), 0) }
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
    use crate::exec::child::{CHROOT_DIR, CHROOT_LEVELS};
    // SAFETY: the sandbox's pid 1, in its verified private mount namespace.
    unsafe { sys::mount(c"tmpfs", c"/tmp", Some(c"tmpfs"), libc::MS_NOSUID | libc::MS_NODEV) }
        .map_err(|e| format!("mount tmpfs on /tmp: {e}"))?;
    let mut dir = String::new();
    for _ in 0..CHROOT_LEVELS {
        dir.push_str(&CHROOT_DIR.to_string_lossy());
        let mk = |p: &str| -> Result<(), String> {
            let c = std::ffi::CString::new(p).map_err(|e| e.to_string())?;
            sys::mkdir(&c, 0o755).map_err(|e| format!("mkdir {p}: {e}"))
        };
        let parent_tmp = dir.trim_end_matches("/uf-chroot").to_string();
        mk(&parent_tmp)?;
        mk(&dir)?;
        mk(&format!("{dir}/proc"))?;
        let target = std::ffi::CString::new(format!("{dir}/proc")).map_err(|e| e.to_string())?;
        // SAFETY: as for the tmpfs above.
        unsafe { sys::mount(c"/proc", &target, None, libc::MS_BIND | libc::MS_REC) }
            .map_err(|e| format!("bind /proc: {e}"))?;
    }
    Ok(())
}

/// Compiles and installs the mutant `name` in the calling process (the executor, inside
/// its sandbox, before the probe). Returns the restriction note.
///
/// # Errors
/// A message naming the mutant and what failed (unknown name, compilation, `seccomp`).
pub fn install_mutant(name: &str) -> Result<String, String> {
    let mutant = super::mutants::by_name(name)
        .ok_or_else(|| format!("unknown selftest mutant {name:?}; known: {}", super::mutants::names()))?;
    let compile_error = |e: super::bpf::CompileError| format!("cannot compile mutant {name}: {e}");
    // program() also checks that this architecture is supported; the sys layer adds the prelude itself.
    super::bpf::program(mutant).map_err(compile_error)?;
    let body = super::bpf::body(mutant).map_err(compile_error)?;
    let (arch, nr) = super::bpf::target(mutant).map_err(compile_error)?;
    // SAFETY: the executor's server calls this once, in its verified sandbox, before the
    // probe and any case; the executor is disposable.
    let installed = unsafe { sys::seccomp::install_unshare_filter(arch, nr, &body) }
        .map_err(|e| format!("cannot install the seccomp filter of mutant {name}: seccomp failed with {e}"))?;
    Ok(super::mutants::restriction_note(mutant, installed.no_new_privs))
}
