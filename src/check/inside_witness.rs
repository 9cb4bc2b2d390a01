//! `inside-changes-stay-inside`: what the caller changes after its steps stays in the
//! namespaces it lives in, and what the witness outside changes stays outside (the setup field
//! `inside_witness`; readings of `exec::child::inside_witness`, predictions of
//! `model::inside_witness`): hostnames both ways, a tmpfs mount, mount propagation on a shared
//! tmpfs, time namespace offsets (to the
//! children, never the caller), the setgroups state a new user namespace inherits, and which of
//! these writes the caller's capabilities allow.

use crate::abi::errno::Errno;
use crate::case::inside::{INSIDE_BOOTTIME_OFFSET_S, INSIDE_CLOCK_SLACK_S, INSIDE_MONOTONIC_OFFSET_S};
use crate::exec::observe::{IntOrErrno, ProbeObservation, WitnessObservation};
use crate::model::FinalExpect;
use crate::model::inside_witness::{SetgroupsExpect, SharedRelation, TimeWrite, WitnessExpect};

/// The invariant's id.
pub const INSIDE_CHANGES_STAY_INSIDE: &str = "inside-changes-stay-inside";

/// What it asserts (for `invariants` and the docs).
pub const DOC: &str = "with an inside witness forked before the steps: after the last step a hostname set by the caller is seen by the witness, and the witness's by the caller, exactly while they share a UTS namespace; a tmpfs the caller mounts is seen by the witness exactly while they share a mount namespace (the sandbox's mounts are private); with a shared tmpfs made by the setup, mounts on it propagate both ways between peer copies and only from the witness to a slave copy (NEWNS under another user namespace); offsets written to timens_offsets apply to a child forked afterwards and never to the caller; the caller's setgroups state is the witness's (inherited by new user namespaces) until write_maps denies it; sethostname (its new name read back by its writer), mount and the offsets write succeed or fail (EPERM, EACCES) as the caller's capabilities over each namespace's owner say";

/// One judged reading: what was read, and whether it held.
pub type Finding = (&'static str, Result<(), String>);

/// Findings for every reading that could be judged, or the reason none could.
pub fn judge(want: &FinalExpect, got: &ProbeObservation) -> Result<Vec<Finding>, String> {
    let Some(w) = want.inside.witness else {
        return Ok(Vec::new());
    };
    let Some(o) = got.inside_witness else {
        return Err("the case child reported nothing of its inside witness".into());
    };
    match o.forked {
        Some(IntOrErrno::Value(1)) => {}
        other => return Err(format!("the inside witness was not forked ({other:?})")),
    }
    let mut out = Vec::new();
    hostname(&w, &o, &mut out);
    mount(&w, &o, &mut out);
    shared(&w, &o, &mut out);
    setgroups(&w, &o, &mut out);
    time(&w, &o, &mut out);
    if out.is_empty() {
        return Err(format!("no reading of the inside witness's exchange could be judged: {o:?}"));
    }
    Ok(out)
}

/// A write predicted to succeed (`allowed`) or to fail with `refused`: the finding, or `None`
/// when the reading was some other errno (unread).
fn write_result(what: &str, allowed: bool, refused: Errno, got: Option<IntOrErrno>) -> Option<Result<(), String>> {
    match (allowed, got?) {
        (true, IntOrErrno::Value(1)) => Some(Ok(())),
        (false, IntOrErrno::Error(e)) if e == refused => Some(Ok(())),
        (true, IntOrErrno::Error(e)) if e == Errno::EPERM || e == Errno::EACCES => {
            Some(Err(format!("{what} failed with {e}, where the model has it allowed")))
        }
        (false, IntOrErrno::Value(1)) => {
            Some(Err(format!("{what} succeeded, where the model has it fail with {refused}")))
        }
        (false, IntOrErrno::Error(e)) if e == Errno::EPERM || e == Errno::EACCES => {
            Some(Err(format!("{what} failed with {e}, where the model has {refused}")))
        }
        _ => None,
    }
}

fn seen(what: &str, kept: bool, got: Option<IntOrErrno>) -> Option<Result<(), String>> {
    let IntOrErrno::Value(v @ 0..=1) = got? else { return None };
    Some(match (kept, v == 1) {
        (true, true) | (false, false) => Ok(()),
        (true, false) => Err(format!("{what} is not seen, though the model keeps the namespace both are in")),
        (false, true) => Err(format!("{what} is seen across namespaces the model has apart")),
    })
}

/// A write that returned 0 but whose effect the writer itself does not see.
fn reported_but_absent(what: &str, got: Option<IntOrErrno>) -> Option<Result<(), String>> {
    (got == Some(IntOrErrno::Value(0)))
        .then(|| Err(format!("{what} returned 0, but the writer then read back something else")))
}

fn hostname(w: &WitnessExpect, o: &WitnessObservation, out: &mut Vec<Finding>) {
    let absent = reported_but_absent("the caller's sethostname", o.uts_caller_set);
    out.extend(absent.map(|r| ("caller sets its hostname", r)));
    let absent = reported_but_absent("the witness's sethostname", o.uts_witness_set);
    out.extend(absent.map(|r| ("witness sets its hostname", r)));
    let c = write_result("the caller's sethostname", w.caller_sets_hostname, Errno::EPERM, o.uts_caller_set);
    out.extend(c.map(|r| ("caller sets its hostname", r)));
    let ws = write_result("the witness's sethostname", w.witness_sets_hostname, Errno::EPERM, o.uts_witness_set);
    out.extend(ws.map(|r| ("witness sets its hostname", r)));
    if o.uts_caller_set == Some(IntOrErrno::Value(1)) {
        let r = seen("the caller's hostname, read by the witness,", w.uts_kept, o.uts_witness_sees);
        out.extend(r.map(|r| ("hostname inside to outside", r)));
    }
    if o.uts_witness_set == Some(IntOrErrno::Value(1)) {
        let r = seen("the witness's hostname, read by the caller,", w.uts_kept, o.uts_caller_sees);
        out.extend(r.map(|r| ("hostname outside to inside", r)));
    }
}

fn mount(w: &WitnessExpect, o: &WitnessObservation, out: &mut Vec<Finding>) {
    let Some(m) = w.mount else { return };
    if o.mnt_caller == Some(IntOrErrno::Value(0)) {
        out.push(("caller mounts a tmpfs", Err("mount returned 0, but the caller sees nothing mounted".into())));
        return;
    }
    let r = write_result("the caller's tmpfs mount", m.allowed, Errno::EPERM, o.mnt_caller);
    out.extend(r.map(|r| ("caller mounts a tmpfs", r)));
    if o.mnt_caller == Some(IntOrErrno::Value(1)) {
        let r = seen("the caller's tmpfs, looked for by the witness,", m.kept, o.mnt_witness_sees);
        out.extend(r.map(|r| ("mount inside to outside", r)));
    }
}

/// A mount on the shared tmpfs, looked for from the other side: whether it `reaches` there.
fn propagated(
    what: &str,
    reaches: bool,
    relation: SharedRelation,
    got: Option<IntOrErrno>,
) -> Option<Result<(), String>> {
    let IntOrErrno::Value(v @ 0..=1) = got? else { return None };
    let name = match relation {
        SharedRelation::Same => "one mount namespace",
        SharedRelation::Peer => "peer copies of a shared mount",
        SharedRelation::Slave => "a shared mount and its slave copy",
    };
    Some(match (reaches, v == 1) {
        (true, true) | (false, false) => Ok(()),
        (true, false) => Err(format!("{what} is not seen, though the model has {name}, where it propagates")),
        (false, true) => Err(format!("{what} is seen, though the model has {name}, where it does not propagate")),
    })
}

fn shared(w: &WitnessExpect, o: &WitnessObservation, out: &mut Vec<Finding>) {
    let Some(m) = w.shared else { return };
    for (what, got) in [
        ("the caller's mount on the shared tmpfs", o.shared_caller),
        ("the witness's mount on the shared tmpfs", o.shared_witness),
    ] {
        let r = reported_but_absent(what, got);
        out.extend(r.map(|r| ("mount on the shared tmpfs", r)));
    }
    let r = write_result("the caller's mount on the shared tmpfs", m.caller_allowed, Errno::EPERM, o.shared_caller);
    out.extend(r.map(|r| ("caller mounts on the shared tmpfs", r)));
    let r = write_result("the witness's mount on the shared tmpfs", m.witness_allowed, Errno::EPERM, o.shared_witness);
    out.extend(r.map(|r| ("witness mounts on the shared tmpfs", r)));
    if o.shared_caller == Some(IntOrErrno::Value(1)) {
        let what = "the caller's mount on the shared tmpfs, looked for by the witness,";
        let r = propagated(what, m.relation.caller_to_witness(), m.relation, o.shared_witness_sees);
        out.extend(r.map(|r| ("propagation inside to outside", r)));
    }
    if o.shared_witness == Some(IntOrErrno::Value(1)) {
        let what = "the witness's mount on the shared tmpfs, looked for by the caller,";
        let r = propagated(what, m.relation.witness_to_caller(), m.relation, o.shared_caller_sees);
        out.extend(r.map(|r| ("propagation outside to inside", r)));
    }
}

fn setgroups(w: &WitnessExpect, o: &WitnessObservation, out: &mut Vec<Finding>) {
    let (Some(want), Some(IntOrErrno::Value(mine @ 0..=1)), Some(IntOrErrno::Value(theirs @ 0..=1))) =
        (w.setgroups, o.setgroups_caller, o.setgroups_witness)
    else {
        return;
    };
    let word = |v| if v == 1 { "deny" } else { "allow" };
    let r = match want {
        SetgroupsExpect::AsWitness if mine == theirs => Ok(()),
        SetgroupsExpect::AsWitness => Err(format!(
            "the caller's setgroups reads {}, the witness's {}: a user namespace made by unshare inherits its parent's",
            word(mine),
            word(theirs)
        )),
        SetgroupsExpect::Deny if mine == 1 => Ok(()),
        SetgroupsExpect::Deny => Err("the caller's setgroups reads allow after write_maps wrote deny".into()),
    };
    out.push(("setgroups", r));
}

fn time(w: &WitnessExpect, o: &WitnessObservation, out: &mut Vec<Finding>) {
    let Some(t) = w.time else { return };
    // The file could not be opened (no time namespaces, or /proc/self owned by root after a
    // change of credentials): nothing was written.
    if o.time_open != Some(IntOrErrno::Value(1)) {
        return;
    }
    let (allowed, refused) = match t.write {
        TimeWrite::Written => (true, Errno::EPERM),
        TimeWrite::Eperm => (false, Errno::EPERM),
        TimeWrite::Eacces => (false, Errno::EACCES),
    };
    let r = write_result("writing timens_offsets", allowed, refused, o.time_write);
    out.extend(r.map(|r| ("timens_offsets write", r)));
    match o.time_caller_same {
        Some(IntOrErrno::Value(1)) => out.push(("caller's clock", Ok(()))),
        Some(IntOrErrno::Value(0)) => out.push((
            "caller's clock",
            Err("the caller's CLOCK_MONOTONIC differs from the witness's: offsets reached the caller".into()),
        )),
        _ => {}
    }
    if !t.child_forks {
        return;
    }
    let written = o.time_write == Some(IntOrErrno::Value(1));
    let clocks = [
        ("child's CLOCK_MONOTONIC", INSIDE_MONOTONIC_OFFSET_S, o.time_child_monotonic),
        ("child's CLOCK_BOOTTIME", INSIDE_BOOTTIME_OFFSET_S, o.time_child_boottime),
    ];
    for (what, offset, got) in clocks {
        let Some(IntOrErrno::Value(ahead)) = got else { continue };
        let want = if written { offset } else { 0 };
        let r = if (want..=want + INSIDE_CLOCK_SLACK_S).contains(&ahead) {
            Ok(())
        } else {
            Err(format!(
                "a child forked after the write reads {ahead} s ahead of the caller, where {want} s (+{INSIDE_CLOCK_SLACK_S}) was due"
            ))
        };
        out.push((what, r));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::InsideExpect;
    use crate::model::inside_witness::{MountExpect, TimeExpect};

    fn v(x: i32) -> Option<IntOrErrno> {
        Some(IntOrErrno::Value(x))
    }

    fn e(x: Errno) -> Option<IntOrErrno> {
        Some(IntOrErrno::Error(x))
    }

    fn want(w: WitnessExpect) -> FinalExpect {
        FinalExpect { inside: InsideExpect { witness: Some(w), ..InsideExpect::default() }, ..FinalExpect::default() }
    }

    fn got(o: WitnessObservation) -> ProbeObservation {
        ProbeObservation {
            inside_witness: Some(WitnessObservation { forked: v(1), ..o }),
            ..ProbeObservation::default()
        }
    }

    const NEW_ALL: WitnessExpect = WitnessExpect {
        uts_kept: false,
        caller_sets_hostname: true,
        witness_sets_hostname: true,
        mount: Some(MountExpect { allowed: true, kept: false }),
        shared: None,
        setgroups: Some(SetgroupsExpect::AsWitness),
        time: Some(TimeExpect { write: TimeWrite::Written, child_forks: true }),
    };

    fn honest() -> WitnessObservation {
        WitnessObservation {
            uts_caller_set: v(1),
            uts_witness_sees: v(0),
            uts_witness_set: v(1),
            uts_caller_sees: v(0),
            mnt_caller: v(1),
            mnt_witness_sees: v(0),
            setgroups_witness: v(0),
            setgroups_caller: v(0),
            time_open: v(1),
            time_write: v(1),
            time_caller_same: v(1),
            time_child_monotonic: v(INSIDE_MONOTONIC_OFFSET_S),
            time_child_boottime: v(INSIDE_BOOTTIME_OFFSET_S + 1),
            ..WitnessObservation::default()
        }
    }

    fn failures(o: WitnessObservation) -> Vec<&'static str> {
        judge(&want(NEW_ALL), &got(o)).unwrap().into_iter().filter(|(_, r)| r.is_err()).map(|(w, _)| w).collect()
    }

    #[test]
    fn the_honest_kernel_holds_every_reading() {
        let all = judge(&want(NEW_ALL), &got(honest())).unwrap();
        assert_eq!(all.len(), 11, "{all:?}");
        assert!(all.iter().all(|(_, r)| r.is_ok()), "{all:?}");
    }

    #[test]
    fn each_lie_is_named() {
        assert_eq!(failures(WitnessObservation { uts_witness_sees: v(1), ..honest() }), ["hostname inside to outside"]);
        assert_eq!(failures(WitnessObservation { uts_caller_sees: v(1), ..honest() }), ["hostname outside to inside"]);
        assert_eq!(failures(WitnessObservation { mnt_caller: v(0), ..honest() }), ["caller mounts a tmpfs"]);
        // A sethostname that reports success and changes nothing (`inside-sethostname-noop`).
        let noop = WitnessObservation { uts_caller_set: v(0), uts_witness_set: v(0), ..honest() };
        assert_eq!(failures(noop), ["caller sets its hostname", "witness sets its hostname"]);
        assert_eq!(failures(WitnessObservation { mnt_witness_sees: v(1), ..honest() }), ["mount inside to outside"]);
        assert_eq!(failures(WitnessObservation { setgroups_caller: v(1), ..honest() }), ["setgroups"]);
        assert_eq!(
            failures(WitnessObservation { time_write: e(Errno::EACCES), ..honest() }),
            ["timens_offsets write", "child's CLOCK_MONOTONIC", "child's CLOCK_BOOTTIME"]
        );
        assert_eq!(failures(WitnessObservation { time_caller_same: v(0), ..honest() }), ["caller's clock"]);
        assert_eq!(
            failures(WitnessObservation { uts_caller_set: e(Errno::EPERM), ..honest() }),
            ["caller sets its hostname"]
        );
    }

    #[test]
    fn propagation_is_judged_by_the_relation_of_the_two_copies() {
        use crate::model::inside_witness::SharedExpect;
        let relation = |relation| WitnessExpect {
            shared: Some(SharedExpect { caller_allowed: true, witness_allowed: true, relation }),
            ..NEW_ALL
        };
        let seen = |out: i32, into: i32| WitnessObservation {
            shared_caller: v(1),
            shared_witness_sees: v(out),
            shared_witness: v(1),
            shared_caller_sees: v(into),
            ..honest()
        };
        let broken = |w: WitnessExpect, o| -> Vec<&'static str> {
            let all = judge(&want(w), &got(o)).unwrap();
            assert_eq!(all.len(), 15, "{all:?}");
            all.into_iter().filter(|(_, r)| r.is_err()).map(|(w, _)| w).collect()
        };
        assert!(broken(relation(SharedRelation::Peer), seen(1, 1)).is_empty());
        assert!(broken(relation(SharedRelation::Slave), seen(0, 1)).is_empty());
        // A copy that stayed a peer where the model has a slave, and a private copy (a
        // propagation flag that reported success and did nothing).
        assert_eq!(broken(relation(SharedRelation::Slave), seen(1, 1)), ["propagation inside to outside"]);
        assert_eq!(
            broken(relation(SharedRelation::Peer), seen(0, 0)),
            ["propagation inside to outside", "propagation outside to inside"]
        );
        let refused = WitnessObservation { shared_caller: e(Errno::EPERM), shared_caller_sees: v(1), ..seen(0, 1) };
        let w = WitnessExpect {
            shared: Some(SharedExpect { caller_allowed: false, witness_allowed: true, relation: SharedRelation::Peer }),
            ..NEW_ALL
        };
        let all = judge(&want(w), &got(refused)).unwrap();
        assert!(all.iter().all(|(_, r)| r.is_ok()) && all.len() == 14, "{all:?}");
    }

    #[test]
    fn refusals_the_model_predicts_hold_and_unread_readings_are_left_out() {
        let w = WitnessExpect {
            caller_sets_hostname: false,
            time: Some(TimeExpect { write: TimeWrite::Eacces, child_forks: true }),
            ..NEW_ALL
        };
        let o = WitnessObservation {
            uts_caller_set: e(Errno::EPERM),
            time_write: e(Errno::EACCES),
            time_child_monotonic: v(0),
            time_child_boottime: v(0),
            mnt_witness_sees: e(Errno(libc::EBUSY)),
            ..honest()
        };
        let all = judge(&want(w), &got(o)).unwrap();
        assert!(all.iter().all(|(_, r)| r.is_ok()), "{all:?}");
        assert!(!all.iter().any(|(w, _)| *w == "mount inside to outside"));
        assert!(judge(&want(NEW_ALL), &ProbeObservation::default()).is_err());
        assert_eq!(judge(&FinalExpect::default(), &ProbeObservation::default()).unwrap(), vec![]);
    }
}
