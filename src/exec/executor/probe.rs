//! Probes the [`Environment`] once, inside the sandbox, before the first case.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::abi::ns::{NsLink, NsObserver};
use crate::case::Case;
use crate::env::Environment;
use crate::exec::observe::{Outcome, Snapshot};
use crate::sys;

use super::sandbox::SandboxInfo;
use super::watch;
use crate::exec::child;
use crate::exec::child::record::RawSnapshot;

fn read_text(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

fn read_u64(path: &str) -> Option<u64> {
    read_text(path)?.parse().ok()
}

/// True if `id` is inside one of the ranges of an id-map file.
fn id_mapped(map: &str, id: u64) -> bool {
    map.lines().any(|line| {
        let f: Vec<u64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        f.len() == 3 && id >= f[0] && id < f[0] + f[2]
    })
}

fn own_snapshot(ns_observer: NsObserver) -> Snapshot {
    let case = Case::unshare(&[0]);
    let ctx = child::Ctx {
        out: -1,
        case: &case,
        plan: crate::exec::child::plan::Plan { ns_observer, ..Default::default() },
        sibs: Default::default(),
        nsibs: 0,
        fds: [-1; crate::exec::child::record::FDS],
        nfds: 0,
        sem_id: -1,
        outer_ids: (0, 0),
        clock: [0; crate::exec::child::record::CLOCKS],
        marks: crate::exec::child::markers::Reading::default(),
        inside: crate::exec::child::inside::Before::default(),
        setns_fds: crate::exec::child::setns::NONE,
        inside_witness: crate::exec::child::inside_witness::Witness::default(),
    };
    let mut raw = RawSnapshot::default();
    child::snapshot(&ctx, &mut raw);
    raw.to_snapshot()
}

/// Environment variable choosing how case children read namespace ids: `auto` (the
/// default) or `proc-links`, which keeps the `/proc/self/ns` links even where pidfd ioctls work.
pub const NS_OBSERVER_VAR: &str = "UNSHARE_FUZZ_NS_OBSERVER";

/// How case children will read their namespace ids: pidfd ioctls where they work and name
/// every namespace of this process exactly as its `/proc/self/ns` links do, else the links.
pub fn ns_observer() -> NsObserver {
    match std::env::var(NS_OBSERVER_VAR).as_deref() {
        Ok("proc-links") => return NsObserver::ProcLinks,
        Ok("auto") | Err(_) => {}
        Ok(other) => {
            eprintln!("unshare-fuzz executor: {NS_OBSERVER_VAR}={other:?} is not auto or proc-links; using auto")
        }
    }
    let links = own_snapshot(NsObserver::ProcLinks);
    let ioctls = own_snapshot(NsObserver::PidfdIoctl);
    if links.ns == ioctls.ns && links.ns.iter().all(|v| v.inode().is_some()) {
        NsObserver::PidfdIoctl
    } else {
        NsObserver::ProcLinks
    }
}

/// Builds the environment description.
pub fn environment(info: &SandboxInfo) -> Environment {
    let ns_observer = ns_observer();
    let present: Vec<NsLink> = NsLink::ALL
        .into_iter()
        .filter(|l| std::path::Path::new(&format!("/proc/self/ns/{}", l.file_name())).exists())
        .collect();
    let untrusted = untrusted_links(ns_observer, &present);
    let ns_links: Vec<NsLink> = present.iter().copied().filter(|l| !untrusted.contains(l)).collect();
    let max_namespaces: BTreeMap<String, u64> = ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"]
        .iter()
        .filter_map(|k| read_u64(&format!("/proc/sys/user/max_{k}_namespaces")).map(|v| (k.to_string(), v)))
        .collect();
    if !std::path::Path::new("/sys/kernel/security/lsm").exists() {
        // Our own mount namespace: mounting securityfs here does not reach the host.
        let _ = super::sandbox::mount_securityfs();
    }
    let lsms: Vec<String> = read_text("/sys/kernel/security/lsm")
        .map(|s| s.split(',').filter(|x| !x.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    let nobody_mapped = read_text("/proc/self/uid_map").is_some_and(|m| id_mapped(&m, 65534))
        && read_text("/proc/self/gid_map").is_some_and(|m| id_mapped(&m, 65534));
    let mut env = Environment {
        kernel_release: sys::kernel_release(),
        host_uid: info.host_uid,
        sandbox: info.description.clone(),
        sandbox_user_ns: info.user_ns,
        baseline: own_snapshot(ns_observer),
        cap_last_cap: read_u64("/proc/sys/kernel/cap_last_cap").map_or_else(cap_last_from_bounding_set, |v| v as u32),
        overflow_uid: read_u64("/proc/sys/kernel/overflowuid").unwrap_or(65534) as u32,
        overflow_gid: read_u64("/proc/sys/kernel/overflowgid").unwrap_or(65534) as u32,
        userns_depth: None,
        pidns_level: None,
        chrooted: info.host_chrooted.unwrap_or(false),
        nobody_mapped,
        kcmp: sys::kcmp(sys::getpid(), sys::getpid(), 2, 0, 0).is_ok(),
        ns_links,
        max_namespaces,
        seccomp_mode: info.seccomp.0,
        lsms,
        restrictions: Vec::new(),
        ns_observer,
        pinned_cpu: None,
        headroom: super::headroom::measure(),
        call_probes: Default::default(),
        sandbox_violations: Vec::new(),
        resources: Default::default(),
        no_chroot_tree: info.no_chroot_tree.clone(),
        guest: super::guest_cases::detect(),
    };
    (env.pidns_level, env.userns_depth) = env.headroom.levels();
    let restricted = info.seccomp.0 != 0 || userns_lsm_rule().is_some();
    env.call_probes = super::call_probe::probe(restricted);
    env.restrictions = restrictions(&env, info);
    if !untrusted.is_empty() {
        let names: Vec<String> = untrusted.iter().map(|l| l.to_string()).collect();
        env.restrictions.push(format!(
            "the namespace links {} do not name namespaces reliably here (a child in the same namespaces read other \
             ids than the executor): the checks of those links' ids are off; the kernel's results are still judged",
            names.join(", ")
        ));
    }
    env
}

/// The links of `present` that do not name namespaces reliably: a case child that changed
/// nothing (`unshare(0)`) must read every link exactly as the executor does, twice. On Linux
/// they always agree; gVisor 2022 gives a child in the same network namespace another `net:[N]`.
fn untrusted_links(ns_observer: NsObserver, present: &[NsLink]) -> Vec<NsLink> {
    let own = own_snapshot(ns_observer);
    let probe = Case::unshare(&[0]);
    let timeout = Duration::from_secs(5);
    let mut untrusted = Vec::new();
    for _ in 0..2 {
        let plan = crate::exec::child::plan::Plan { ns_observer, ..Default::default() };
        let ran = crate::sys::ParentOnlyBuf::new(watch::MAX_REPORT).and_then(|mut raw| {
            watch::run_one(&probe, plan, timeout, &mut raw)
                .map(|run| crate::exec::wire::collect::outcome(raw.as_slice(), run.status, run.timed_out, timeout))
        });
        let Ok(Outcome::Completed { trace }) = ran else { continue };
        for link in present.iter().copied() {
            if trace.before.link(link) != own.link(link) && !untrusted.contains(&link) {
                untrusted.push(link);
            }
        }
    }
    untrusted
}

/// Without /proc/sys/kernel/cap_last_cap (gVisor 2022): the highest bit of the bounding set
/// (`CapBnd:` of /proc/self/status), else 40.
fn cap_last_from_bounding_set() -> u32 {
    read_text("/proc/self/status")
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("CapBnd:"))?;
            u64::from_str_radix(line.trim_start_matches("CapBnd:").trim(), 16).ok()
        })
        .filter(|b| *b != 0)
        .map_or(40, |b| 63 - b.leading_zeros())
}

/// An LSM or distribution rule that may refuse user namespaces, as a note.
fn userns_lsm_rule() -> Option<&'static str> {
    if read_u64("/proc/sys/kernel/unprivileged_userns_clone") == Some(0) {
        return Some("kernel.unprivileged_userns_clone=0: NEWUSER without privilege is refused (a distribution patch)");
    }
    if read_u64("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == Some(1) {
        return Some("kernel.apparmor_restrict_unprivileged_userns=1: AppArmor may refuse user namespaces");
    }
    None
}

fn room_text(r: Option<crate::env::Room>) -> String {
    match r {
        None => "not measured".into(),
        Some(r) => match r.stopped_by {
            None => format!("at least {}", r.made),
            Some(e) => format!("{} ({} after that)", r.made, crate::abi::errno::Errno(e)),
        },
    }
}

/// Plain-language notes on the measured room.
fn headroom_notes(env: &Environment) -> Vec<String> {
    let h = &env.headroom;
    let mut notes = Vec::new();
    if env.pidns_level.is_none() {
        notes.push(format!(
            "the pid-namespace level is unknown (room for nested pid namespaces: {}); cases whose result depends on \
             the pid-ns depth limit are skipped",
            room_text(h.pid_nested)
        ));
    }
    if env.userns_depth.is_none() {
        notes.push(format!(
            "the user-namespace depth is unknown (room for nested user namespaces: {}); cases whose result depends on \
             the user-ns depth limit are skipped",
            room_text(h.user_nested)
        ));
    }
    for kind in ["user", "mnt", "uts", "ipc", "net", "cgroup", "time"] {
        if let Some(r) = h.count_in_reach(kind).filter(|_| env.max_namespaces(kind) != Some(0)) {
            notes.push(format!(
                "a limit on the number of {kind} namespaces is within reach (room for {}): the cases whose result \
                 depends on it are skipped, since the kernel frees namespaces asynchronously",
                room_text(Some(r))
            ));
        }
    }
    if env.call_probes.clone3_missing() {
        notes.push("clone3 answers ENOSYS here (missing, or refused by a seccomp filter): clone3 steps are predicted to fail with ENOSYS".into());
    }
    notes
}

fn restrictions(env: &Environment, info: &SandboxInfo) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some((kernel, tell)) = sys::foreign_kernel() {
        notes.push(format!(
            "the kernel is not Linux but {kernel} ({tell}): it is judged against Linux (the newest Linux model \
             unless --kernel-profile says otherwise), so every violation is a way it differs from Linux"
        ));
    }
    if info.seccomp.0 == 2 {
        notes.push(format!(
            "a seccomp filter is installed ({} filter(s)): unshare may be filtered, and results describe the kernel as filtered",
            info.seccomp.1
        ));
    } else if info.seccomp.0 == 1 {
        notes.push("strict seccomp mode is active".into());
    }
    if let Some(rule) = userns_lsm_rule() {
        notes.push(rule.into());
    }
    if env.max_namespaces("user") == Some(0) {
        notes.push("user.max_user_namespaces=0: every NEWUSER fails with ENOSPC".into());
    }
    if info.host_chrooted.is_none() {
        notes.push("could not tell whether the harness runs chrooted; assumed not".into());
    }
    notes.extend(headroom_notes(env));
    let probe = Case::unshare(&[0]);
    let timeout = Duration::from_secs(5);
    let ran = crate::sys::ParentOnlyBuf::new(watch::MAX_REPORT).and_then(|mut raw| {
        watch::run_one(&probe, crate::exec::child::plan::Plan::default(), timeout, &mut raw)
            .map(|run| crate::exec::wire::collect::outcome(raw.as_slice(), run.status, run.timed_out, timeout))
    });
    match ran {
        Ok(Outcome::Completed { trace }) => {
            if let Some(step) = trace.steps.first().filter(|s| !s.result.is_success()) {
                notes.push(format!("unshare(0) fails with {}: unshare itself is filtered here", step.result));
            }
        }
        Ok(other) => notes.push(format!("the unshare(0) probe ended as {}", other.kind())),
        Err(e) => notes.push(format!("the unshare(0) probe could not run: {e}")),
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_id_maps() {
        assert!(id_mapped("0 0 4294967295\n", 65534));
        assert!(!id_mapped("0 1000 1\n", 65534));
        assert!(id_mapped("0 1000 1\n65534 100000 1\n", 65534));
    }
}
