//! Measures the [`Resources`] the executor works under, inside its sandbox, right before it
//! serves the first case (after every descriptor it holds for the whole run is open):
//! RLIMIT_NOFILE and the descriptors a case child inherits, RLIMIT_NPROC, a pids cgroup's
//! `pids.max`, how many more tasks can really be created now (forked until EAGAIN, capped),
//! and whether the root is the mount namespace's root (a chroot into a mount point included).

use crate::abi::errno::Errno;
use crate::env::resources::{PROBE_TASKS_CAP, Resources};
use crate::sys;

use crate::exec::child::limits_child::{self, root_probe};

fn read_text(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// Where the pids controller of this process's cgroup lives: (mount point of its hierarchy,
/// the cgroup's path in it, as written in /proc/self/cgroup). A v1 `pids` hierarchy
/// (`N:pids:/path`, mounted at /sys/fs/cgroup/pids) wins over the v2 one (`0::/path`, at
/// /sys/fs/cgroup, or /sys/fs/cgroup/unified in the hybrid layout), where the controller is
/// then not available.
fn own_cgroup() -> Option<(String, String)> {
    let text = read_text("/proc/self/cgroup")?;
    let v1 = text.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
        controllers.split(',').any(|c| c == "pids").then(|| ("/sys/fs/cgroup/pids".to_string(), path.to_string()))
    });
    if v1.is_some() {
        return v1;
    }
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?.to_string();
    let mount = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "/sys/fs/cgroup"
    } else {
        "/sys/fs/cgroup/unified"
    };
    Some((mount.to_string(), path))
}

/// The tightest `pids.max` on the way from `cgroup` up to the root of the hierarchy mounted at
/// `mount`: (cgroup, max, current) of the level that leaves the fewest.
fn pids_limit(mount: &str, cgroup: &str) -> Option<(String, u64, u64)> {
    let mut best: Option<(String, u64, u64)> = None;
    let mut path = cgroup.trim_end_matches('/').to_string();
    loop {
        let dir = format!("{mount}{path}");
        let max = read_text(&format!("{dir}/pids.max")).and_then(|m| m.parse::<u64>().ok());
        let current = read_text(&format!("{dir}/pids.current")).and_then(|c| c.parse::<u64>().ok());
        if let (Some(max), Some(current)) = (max, current) {
            let left = max.saturating_sub(current);
            if best.as_ref().is_none_or(|(_, m, c)| left < m.saturating_sub(*c)) {
                best = Some((if path.is_empty() { "/".into() } else { path.clone() }, max, current));
            }
        }
        match path.rfind('/') {
            Some(i) if !path.is_empty() => path.truncate(i),
            _ => break,
        }
    }
    best
}

/// Forks pausing children until fork fails or [`PROBE_TASKS_CAP`] exist, then kills and reaps
/// them: (how many could be made, the errno that stopped it).
fn spare_tasks() -> (u32, Option<Errno>) {
    let mut pids = [0 as libc::pid_t; PROBE_TASKS_CAP as usize];
    let mut made = 0usize;
    let mut stop = None;
    while made < pids.len() {
        match limits_child::spawn_pauser() {
            Ok(pid) => {
                pids[made] = pid;
                made += 1;
            }
            Err(e) => {
                stop = Some(e);
                break;
            }
        }
    }
    for pid in &pids[..made] {
        let _ = sys::kill(*pid, libc::SIGKILL);
    }
    for pid in &pids[..made] {
        let _ = sys::waitpid(*pid, 0);
    }
    (made as u32, stop)
}

/// Runs the root-comparison child: `Some(chrooted)` or a note on why it cannot tell.
fn chrooted() -> Result<bool, String> {
    let pid = limits_child::spawn_root_probe().map_err(|e| format!("fork failed with {e}"))?;
    let status = match sys::waitpid(pid, 0) {
        Ok(Some((_, st))) if libc::WIFEXITED(st) => libc::WEXITSTATUS(st),
        other => return Err(format!("the probe child ended oddly ({other:?})")),
    };
    match status {
        root_probe::SAME => Ok(false),
        root_probe::DIFFERENT => Ok(true),
        root_probe::NO_STATX => Err("statx of / with STATX_MNT_ID failed".into()),
        root_probe::NO_NS_FILE => Err("/proc/self/ns/mnt cannot be opened".into()),
        root_probe::NO_SETNS => Err("setns into its own mount namespace was refused".into()),
        other => Err(format!("the probe child exited with {other}")),
    }
}

/// Measures everything. Call in the executor, inside the sandbox, single-threaded, with every
/// descriptor it keeps for the run already open and no case child alive.
pub fn measure() -> Resources {
    let mut r = Resources { measured: true, ..Resources::default() };
    match sys::getrlimit(libc::RLIMIT_NOFILE) {
        Ok((soft, hard)) => (r.nofile_soft, r.nofile_hard) = (soft, hard),
        Err(e) => r.notes.push(format!("getrlimit(RLIMIT_NOFILE) failed with {e}")),
    }
    match sys::getrlimit(libc::RLIMIT_NPROC) {
        Ok((soft, hard)) => (r.nproc_soft, r.nproc_hard) = (soft, hard),
        Err(e) => r.notes.push(format!("getrlimit(RLIMIT_NPROC) failed with {e}")),
    }
    // The directory's own descriptor is one of the entries.
    match sys::count_dir_entries(c"/proc/self/fd") {
        Ok(n) => r.fds_open = Some(n.saturating_sub(1)),
        Err(e) => {
            r.notes.push(format!("/proc/self/fd could not be read ({e}): the fds a case inherits are unknown"));
        }
    }
    // What a case child keeps: the standard descriptors that are open, and its report pipe.
    let std_open = [0, 1, 2].iter().filter(|fd| sys::fd_flags(**fd).is_ok()).count() as u32;
    r.fds_inherited = Some(std_open + 1);
    let cgroup = own_cgroup();
    r.cgroup = cgroup.as_ref().map(|(mount, path)| format!("{path} (in {mount})"));
    if let Some((cg, max, current)) = cgroup.as_ref().and_then(|(mount, path)| pids_limit(mount, path)) {
        r.pids_max = Some(max);
        r.pids_current = Some(current);
        if cgroup.as_ref().is_some_and(|(_, path)| *path != cg) {
            r.notes.push(format!("the tightest pids.max is that of the ancestor cgroup {cg}"));
        }
    }
    let (spare, stop) = spare_tasks();
    r.spare_tasks = Some(spare);
    r.spare_tasks_stop = stop.map(|e| e.to_string());
    if spare == 0 {
        r.notes.push("the executor cannot fork at all: every case is skipped".into());
    }
    match chrooted() {
        Ok(c) => r.chrooted = Some(c),
        Err(why) => r.notes.push(format!("whether the root is the mount namespace's root is unknown: {why}")),
    }
    r
}
