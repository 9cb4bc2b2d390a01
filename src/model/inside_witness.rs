//! What the inside witness exchange should show (the setup field `inside_witness`, issue 16
//! class 3; `exec::child::inside_witness` reads it, `check::inside_witness` judges it). Pure.
//!
//! The rules, each read off the kernel and checked on 6.18:
//!
//! * **Hostname.** The witness stays in the UTS namespace the setup left; the caller shares it
//!   exactly while no successful unshare gave it a new one, and then each sees the other's
//!   hostname, else neither does. `sethostname` needs CAP_SYS_ADMIN over the user namespace
//!   that owns the UTS namespace (`ns_capable(uts_ns->user_ns)`): the caller has it while its
//!   UTS namespace is owned by its own user namespace, which NEWUTS makes so and a later NEWUSER
//!   alone undoes (full capabilities in the new user namespace, none over the parent's).
//! * **Mount.** A tmpfs mounted after NEWNS is in the caller's copy only. The sandbox made
//!   every mount private, and a copy keeps that propagation, so nothing propagates either way:
//!   the witness sees the mount exactly while the caller kept its mount namespace. Mounting
//!   needs CAP_SYS_ADMIN over the owner of the caller's mount namespace (`may_mount`).
//! * **Propagation** (`shared_mount`). The setup's tmpfs is shared, in a mount namespace owned
//!   by the executor's user namespace. A NEWNS copy made by a caller whose user namespace owns
//!   the namespace it copies (and without NEWUSER in the same call) puts its copy of the tmpfs
//!   in the same peer group: mounts propagate both ways. A copy owned by another user namespace
//!   turns shared mounts into slaves (`copy_mnt_ns`: CL_SHARED_TO_SLAVE), and a slave's copy is
//!   a slave of the same master: the witness's mounts reach the caller, the caller's never
//!   reach the witness. Each side's mount needs CAP_SYS_ADMIN over the owner of its own mount
//!   namespace, as above.
//! * **Time.** Offsets written to `/proc/self/timens_offsets` go to `time_for_children`
//!   (`proc_timens_set_offset`): EPERM without CAP_SYS_TIME over its owner, then EACCES when a
//!   process has already entered it (the initial time namespace always counts as entered),
//!   else written. A child forked afterwards enters it and reads the offsets; the caller's own
//!   clocks never move.
//! * **setgroups.** A user namespace made by unshare copies its parent's setgroups state
//!   (`create_user_ns`), so the caller reads what the witness reads, until a successful
//!   `write_maps` step writes "deny".

use serde::Serialize;

use crate::abi::flags::bits;
use crate::case::{Case, SetTidStep, Step};
use crate::env::Environment;

use super::Expected;
use super::state::{CAP_SYS_ADMIN, CallerState, PidChildren};

/// `CAP_SYS_TIME`.
pub const CAP_SYS_TIME: u32 = 25;

/// The predictions of one exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WitnessExpect {
    /// The caller is still in the witness's UTS namespace.
    pub uts_kept: bool,
    /// The caller's sethostname succeeds (else EPERM).
    pub caller_sets_hostname: bool,
    /// The witness's sethostname succeeds (else EPERM).
    pub witness_sets_hostname: bool,
    /// The tmpfs, where the directory is reachable (no chroot, `/` in place).
    pub mount: Option<MountExpect>,
    /// The shared tmpfs (`shared_mount` setups), where its directories are reachable.
    pub shared: Option<SharedExpect>,
    /// The caller's setgroups state, unless a failed `write_maps` step left it unknown.
    pub setgroups: Option<SetgroupsExpect>,
    /// The time namespace offsets, where the owner of `time_for_children` is known.
    pub time: Option<TimeExpect>,
}

/// The caller's tmpfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MountExpect {
    /// The mount succeeds (else EPERM).
    pub allowed: bool,
    /// The caller kept the witness's mount namespace (the witness then sees the mount).
    pub kept: bool,
}

/// How the caller's view of the shared tmpfs relates to the witness's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SharedRelation {
    /// The caller kept the witness's mount namespace: one and the same mount.
    Same,
    /// A copy in the witness's peer group: mounts propagate both ways.
    Peer,
    /// A slave of the witness's peer group: mounts propagate from the witness only.
    Slave,
}

impl SharedRelation {
    /// A mount by the caller reaches the witness.
    pub fn caller_to_witness(self) -> bool {
        self != SharedRelation::Slave
    }

    /// A mount by the witness reaches the caller (a slave receives, too).
    pub fn witness_to_caller(self) -> bool {
        true
    }
}

/// The shared tmpfs's exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SharedExpect {
    /// The caller's mount on its directory succeeds (else EPERM).
    pub caller_allowed: bool,
    /// The witness's mount on its directory succeeds (else EPERM).
    pub witness_allowed: bool,
    /// The caller's copy of the tmpfs, seen from the witness's.
    pub relation: SharedRelation,
}

/// The caller's user namespace's setgroups state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SetgroupsExpect {
    /// As the witness's (inherited, or the same user namespace).
    AsWitness,
    /// "deny" (a successful write_maps step wrote it, here or in an ancestor made by the steps).
    Deny,
}

/// What writing the offsets does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeWrite {
    /// Written: `time_for_children` is new, unentered, and the caller has CAP_SYS_TIME over it.
    Written,
    /// EPERM: no CAP_SYS_TIME over the owner of `time_for_children`.
    Eperm,
    /// EACCES: a process already entered it.
    Eacces,
}

/// The time namespace readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TimeExpect {
    /// The write's result.
    pub write: TimeWrite,
    /// A child can be forked (not into a pid namespace whose init has exited).
    pub child_forks: bool,
}

/// Tracks, step by step, who owns what the exchange touches.
struct Owners {
    /// The caller's UTS namespace is owned by its current user namespace.
    uts: bool,
    /// `time_for_children` is owned by the current user namespace (`None`: unknown).
    time: Option<bool>,
    /// `time_for_children` was made by a NEWTIME step and nobody has entered it.
    time_fresh: bool,
    /// A step made the time readings unpredictable (clone3 with NEWTIME).
    time_unknown: bool,
    setgroups: Option<SetgroupsExpect>,
    /// The caller's mount namespace is owned by its current user namespace.
    mnt_owned: bool,
    /// A NEWNS step made the caller's copy of the shared tmpfs a slave.
    slave: bool,
}

impl Owners {
    fn step(&mut self, step: &Step, e: &Expected) {
        let ok = e.result.is_success();
        match step {
            s if s.is_unshare() && ok => {
                let f = e.effective_flags;
                if f.intersects(bits::NEWNS) {
                    // copy_mnt_ns: CL_SHARED_TO_SLAVE when the copy's owner (the new user
                    // namespace, else the caller's) is not the copied namespace's.
                    self.slave |= f.intersects(bits::NEWUSER) || !self.mnt_owned;
                }
                if f.intersects(bits::NEWUSER | bits::NEWNS) {
                    self.mnt_owned = f.intersects(bits::NEWNS);
                }
                if f.intersects(bits::NEWUSER) {
                    // The user namespace is made first: namespaces made by the same call are
                    // its own, those kept are owned by an ancestor.
                    self.uts = f.intersects(bits::NEWUTS);
                    self.time = Some(f.intersects(bits::NEWTIME));
                } else {
                    self.uts |= f.intersects(bits::NEWUTS);
                    if f.intersects(bits::NEWTIME) {
                        self.time = Some(true);
                    }
                }
                self.time_fresh |= f.intersects(bits::NEWTIME);
            }
            Step::Fork | Step::ForkExit if ok => self.time_fresh = false,
            // A fork or clone3 that fails after copy_namespaces (ENOMEM from alloc_pid, EBADF
            // from CLONE_INTO_CGROUP's cgroup_can_fork) has already run timens_on_fork, which
            // freezes the offsets (measured: unprivileged run, seed 21, case 328): which
            // failures come that late is not modelled here.
            Step::Fork | Step::ForkExit => self.time_unknown |= self.time_fresh,
            Step::Clone3(f) | Step::Clone3SetTid(SetTidStep { flags: f, .. }) if !ok && !f.intersects(bits::VM) => {
                self.time_unknown |= self.time_fresh
            }
            // A CLONE_VM child shares the caller's vDSO page and so stays in its active time
            // namespace: copy_namespaces skips timens_on_fork, and time_for_children stays
            // unentered (measured: the write after such a clone3 step succeeds).
            Step::Clone3(f) | Step::Clone3SetTid(SetTidStep { flags: f, .. }) if ok && f.intersects(bits::VM) => {}
            // Any other clone3 child enters time_for_children, or with NEWTIME a copy of it.
            Step::Clone3(f) | Step::Clone3SetTid(SetTidStep { flags: f, .. }) if ok && f.intersects(bits::NEWTIME) => {
                self.time_unknown = true
            }
            Step::Clone3(_) | Step::Clone3SetTid(_) if ok => self.time_fresh = false,
            Step::WriteMaps => self.setgroups = ok.then_some(SetgroupsExpect::Deny),
            Step::Idmap(crate::case::idmap::IdmapOp::SetgroupsDeny)
            | Step::WitnessIdmap(crate::case::idmap::IdmapOp::SetgroupsDeny)
                if ok =>
            {
                self.setgroups = Some(SetgroupsExpect::Deny);
            }
            _ => {}
        }
    }
}

/// The inode numbers the kernel gives the initial user and time namespaces
/// (`PROC_USER_INIT_INO`, `PROC_TIME_INIT_INO` of include/linux/proc_ns.h).
const PROC_USER_INIT_INO: u64 = 0xEFFF_FFFD;
const PROC_TIME_INIT_INO: u64 = 0xEFFF_FFFA;

/// Whether the setup's caller owns (through its user namespace) the time namespace its
/// children get: the executor's `time_for_children` is the initial one, owned by the initial
/// user namespace, so the caller owns it exactly when it is in the initial user namespace.
/// `None` where the executor's links do not say so (another time namespace, gVisor).
fn initial_time_owner(env: &Environment, start: &CallerState) -> Option<bool> {
    use crate::abi::ns::NsLink;
    let ino = |link: NsLink| env.baseline.ns[link.index()].inode();
    if ino(NsLink::TimeForChildren)? != PROC_TIME_INIT_INO {
        return None;
    }
    Some(ino(NsLink::User)? == PROC_USER_INIT_INO && start.mnt_owned_by_userns)
}

/// The expectation for `case` (whose steps the model predicted as `steps`, ending in `state`),
/// or `None` when its setup asks for no witness or cannot be built.
pub(super) fn expect(env: &Environment, state: &CallerState, case: &Case, steps: &[Expected]) -> Option<WitnessExpect> {
    // A setns step moves the caller between namespaces whose owners this file does not track
    // (joining a time namespace also sets time_for_children: measured EACCES after
    // setns(start_time) following NEWTIME): such cases are not predicted here.
    if !case.setup.inside_witness || case.steps.iter().any(|s| matches!(s, Step::Setns(_))) {
        return None;
    }
    let start = CallerState::after_setup(env, &case.setup).ok()?;
    // The setup's user namespaces (nesting, a zero limit, the privilege) are made alone: the
    // sandbox's UTS namespace, like its mount namespace, stays owned by the executor's.
    let mut o = Owners {
        uts: start.mnt_owned_by_userns,
        time: initial_time_owner(env, &start),
        time_fresh: false,
        time_unknown: false,
        setgroups: Some(SetgroupsExpect::AsWitness),
        mnt_owned: start.mnt_owned_by_userns,
        slave: false,
    };
    for (step, e) in case.steps.iter().zip(steps) {
        o.step(step, e);
    }
    let chroot = case.setup.chroot.is_some() || case.steps.iter().any(|s| matches!(s, Step::Chroot(_)));
    let root_moved = steps.iter().any(|e| e.root_detached);
    let mnt_kept = super::kept_namespace(case, steps, bits::NEWNS);
    let caller_mounts = state.has_cap(CAP_SYS_ADMIN) && state.mnt_owned_by_userns;
    // The witness stays where the setup left it: over the executor's user namespace, which owns
    // the sandbox's UTS namespace and the setup's mount namespaces, exactly while the setup made
    // no user namespace and kept CAP_SYS_ADMIN.
    let witness_over_sandbox = start.has_cap(CAP_SYS_ADMIN) && start.mnt_owned_by_userns;
    let reachable = !chroot && !root_moved && state.proc_visible;
    let mount = reachable.then_some(MountExpect { allowed: caller_mounts, kept: mnt_kept });
    let shared = (reachable && case.setup.shared_mount).then_some(SharedExpect {
        caller_allowed: caller_mounts,
        witness_allowed: witness_over_sandbox,
        relation: match (mnt_kept, o.slave) {
            (true, _) => SharedRelation::Same,
            (false, false) => SharedRelation::Peer,
            (false, true) => SharedRelation::Slave,
        },
    });
    let time = match o.time {
        Some(owned) if !o.time_unknown => Some(TimeExpect {
            write: if !(owned && state.has_cap(CAP_SYS_TIME)) {
                TimeWrite::Eperm
            } else if o.time_fresh {
                TimeWrite::Written
            } else {
                TimeWrite::Eacces
            },
            child_forks: state.pid_children != PidChildren::Dead,
        }),
        _ => None,
    };
    Some(WitnessExpect {
        uts_kept: super::kept_namespace(case, steps, bits::NEWUTS),
        caller_sets_hostname: state.has_cap(CAP_SYS_ADMIN) && o.uts,
        witness_sets_hostname: witness_over_sandbox,
        mount,
        shared,
        setgroups: o.setgroups,
        time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::flags::RawFlags;
    use crate::abi::flags::bits::{NEWNS, NEWTIME, NEWUSER, NEWUTS};
    use crate::case::{Privilege, Setup};
    use crate::model::{Prediction, predict};

    fn witness(privilege: Privilege, steps: Vec<Step>) -> WitnessExpect {
        witness_with(Setup { privilege, inside_witness: true, shared_mount: true, ..Setup::default() }, steps)
    }

    fn witness_with(setup: Setup, steps: Vec<Step>) -> WitnessExpect {
        let env = Environment::reference();
        let case = Case { setup, steps };
        match predict(&crate::model::profile::LINUX_6_18, &env, &case) {
            Prediction::Steps { final_probe, .. } => final_probe.inside.witness.expect("a witness is predicted"),
            Prediction::Skip { reason } => panic!("skipped: {reason}"),
        }
    }

    fn unshare(word: u64) -> Step {
        Step::Unshare(RawFlags(word))
    }

    #[test]
    fn a_new_uts_namespace_hides_both_hostnames_and_a_later_newuser_takes_the_right_to_set_one() {
        let w = witness(Privilege::Root, vec![unshare(NEWUTS)]);
        assert_eq!((w.uts_kept, w.caller_sets_hostname, w.witness_sets_hostname), (false, true, true));
        let kept = witness(Privilege::Root, vec![unshare(0)]);
        assert!(kept.uts_kept && kept.caller_sets_hostname);
        let over_parent = witness(Privilege::Root, vec![unshare(NEWUTS), unshare(NEWUSER)]);
        assert_eq!((over_parent.uts_kept, over_parent.caller_sets_hostname), (false, false));
        let together = witness(Privilege::Root, vec![unshare(NEWUSER | NEWUTS)]);
        assert!(together.caller_sets_hostname);
        let nobody = witness(Privilege::Nobody, vec![unshare(0)]);
        assert_eq!((nobody.caller_sets_hostname, nobody.witness_sets_hostname), (false, false));
    }

    #[test]
    fn a_mount_stays_in_its_mount_namespace() {
        let m = witness(Privilege::Root, vec![unshare(NEWNS)]).mount.unwrap();
        assert_eq!((m.allowed, m.kept), (true, false));
        let kept = witness(Privilege::Root, vec![unshare(0)]).mount.unwrap();
        assert_eq!((kept.allowed, kept.kept), (true, true));
        let parent_owned = witness(Privilege::Root, vec![unshare(NEWNS), unshare(NEWUSER)]).mount.unwrap();
        assert!(!parent_owned.allowed);
        assert_eq!(witness(Privilege::Root, vec![Step::Chroot(crate::case::Chroot::Subdir)]).mount, None);
    }

    #[test]
    fn a_copy_under_another_user_namespace_is_a_slave_of_the_shared_tmpfs() {
        use SharedRelation::{Peer, Same, Slave};
        let rel = |privilege, steps| {
            witness(privilege, steps).shared.map(|m| (m.relation, m.caller_allowed, m.witness_allowed))
        };
        assert_eq!(rel(Privilege::Root, vec![unshare(0)]), Some((Same, true, true)));
        assert_eq!(rel(Privilege::Root, vec![unshare(NEWNS)]), Some((Peer, true, true)));
        assert_eq!(rel(Privilege::Root, vec![unshare(NEWNS), unshare(NEWNS)]), Some((Peer, true, true)));
        assert_eq!(rel(Privilege::Root, vec![unshare(NEWUSER | NEWNS)]), Some((Slave, true, true)));
        assert_eq!(rel(Privilege::Root, vec![unshare(NEWUSER), unshare(NEWNS)]), Some((Slave, true, true)));
        // A slave's copy stays a slave, even under the user namespace that owns it.
        assert_eq!(rel(Privilege::Root, vec![unshare(NEWUSER | NEWNS), unshare(NEWNS)]), Some((Slave, true, true)));
        // A NEWUSER after the copy leaves the copy a peer, but takes the right to mount on it.
        assert_eq!(rel(Privilege::Root, vec![unshare(NEWNS), unshare(NEWUSER)]), Some((Peer, false, true)));
        // The setup's own user namespace: the witness cannot mount, and every copy is a slave.
        assert_eq!(rel(Privilege::UserNs, vec![unshare(NEWNS)]), Some((Slave, true, false)));
        let plain = Setup { inside_witness: true, ..Setup::default() };
        assert_eq!(witness_with(plain, vec![unshare(NEWNS)]).shared, None);
    }

    #[test]
    fn offsets_go_to_an_unentered_time_namespace_only() {
        let t = |steps| witness(Privilege::Root, steps).time.map(|t| t.write);
        assert_eq!(t(vec![unshare(NEWTIME)]), Some(TimeWrite::Written));
        assert_eq!(t(vec![unshare(NEWTIME), Step::Fork]), Some(TimeWrite::Eacces));
        assert_eq!(t(vec![unshare(NEWTIME), Step::ForkExit]), Some(TimeWrite::Eacces));
        assert_eq!(t(vec![unshare(NEWTIME), unshare(NEWUSER)]), Some(TimeWrite::Eperm));
        assert_eq!(t(vec![unshare(NEWUSER | NEWTIME)]), Some(TimeWrite::Written));
        assert_eq!(t(vec![unshare(NEWUSER)]), Some(TimeWrite::Eperm));
        // A clone3 child enters it, unless it shares the caller's mm (CLONE_VM).
        assert_eq!(t(vec![unshare(NEWTIME), Step::Clone3(RawFlags(0))]), Some(TimeWrite::Eacces));
        assert_eq!(t(vec![unshare(NEWTIME), Step::Clone3(RawFlags(bits::VM))]), Some(TimeWrite::Written));
    }

    #[test]
    fn setgroups_is_inherited_until_write_maps_denies() {
        let s = |steps| witness(Privilege::Root, steps).setgroups;
        assert_eq!(s(vec![unshare(NEWUSER)]), Some(SetgroupsExpect::AsWitness));
        assert_eq!(s(vec![unshare(NEWUSER), Step::WriteMaps, unshare(NEWUSER)]), Some(SetgroupsExpect::Deny));
    }
}
