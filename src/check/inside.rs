//! `life-inside-namespaces`: after the last step the caller lives in the namespaces the model
//! predicts, as seen from inside them (issue 16, class 3; readings of `exec::child::inside`):
//! the executor's POSIX message queue is visible exactly while the caller keeps the IPC
//! namespace that holds it; a new network namespace holds as many devices as the sandbox's
//! (a loopback and the fallback tunnels of the loaded modules), all down, the loopback among
//! them, and a kept one the same devices with as many up; after NEWCGROUP every line of
//! `/proc/thread-self/cgroup` names the root "/", and without it the file reads as before.

use crate::exec::observe::{InsideObservation, IntOrErrno, ProbeObservation};
use crate::model::{DevicesExpect, FinalExpect};

/// The invariant's id.
pub const LIFE_INSIDE_NAMESPACES: &str = "life-inside-namespaces";

/// What it asserts (for `invariants` and the docs).
pub const DOC: &str = "after the last step the caller lives in the predicted IPC, network and cgroup namespaces as seen from inside: the executor's POSIX message queue is visible exactly while it keeps that IPC namespace; a new network namespace holds as many devices as the sandbox's, none up, with a loopback that is down, and a kept one the same devices with as many up; after NEWCGROUP its cgroup is the root \"/\", without it /proc/thread-self/cgroup reads as before";

/// One judged reading: what was read, and whether it held.
pub type Finding = (&'static str, Result<(), String>);

/// The judgement: one finding per prediction that could be checked, or the reason none could
/// when something was predicted.
pub fn judge(want: &FinalExpect, got: &ProbeObservation) -> Result<Vec<Finding>, String> {
    let w = want.inside;
    if w.is_empty() {
        return Ok(Vec::new());
    }
    let Some(inside) = got.inside else {
        return Err("the case child reported nothing of life inside its namespaces".into());
    };
    let mut out = Vec::new();
    let mut unread = Vec::new();
    if let Some(kept) = w.mq_kept {
        match inside.mq_marker.map(|[b, a]| (int(b), int(a))) {
            Some((Some(before @ 0..=1), Some(after @ 0..=1))) => {
                out.push(("POSIX message queue", mq(kept, before == 1, after == 1)))
            }
            other => unread.push(format!("POSIX message queue: {}", pair(inside.mq_marker, other.is_none()))),
        }
    }
    if let Some(devices) = w.devices {
        match devices_finding(devices, &inside) {
            Ok(r) => out.push(("network devices", r)),
            Err(why) => unread.push(format!("network devices: {why}")),
        }
    }
    if want.proc_visible
        && let Some(kept) = w.cgroup_kept
    {
        let (what, reading) = if kept {
            ("/proc/thread-self/cgroup reads as before the steps", inside.cgroup_same)
        } else {
            ("/proc/thread-self/cgroup names the root \"/\"", inside.cgroup_at_root)
        };
        match reading.and_then(int) {
            Some(1) => out.push(("cgroup", Ok(()))),
            Some(0) => out.push(("cgroup", Err(cgroup_message(kept)))),
            _ => unread.push(format!("cgroup: {what}: {reading:?}")),
        }
    }
    if out.is_empty() && !unread.is_empty() {
        return Err(format!("nothing inside the namespaces could be read ({})", unread.join("; ")));
    }
    Ok(out)
}

fn int(x: IntOrErrno) -> Option<i32> {
    match x {
        IntOrErrno::Value(v) => Some(v),
        IntOrErrno::Error(_) => None,
    }
}

fn pair(reading: Option<[IntOrErrno; 2]>, absent: bool) -> String {
    match reading {
        Some([b, a]) if !absent => format!("before {b}, after {a}"),
        Some([b, a]) => format!("before {b}, after {a} (unread)"),
        None => "no marker here".into(),
    }
}

fn mq(kept: bool, before: bool, after: bool) -> Result<(), String> {
    // Out of reach before the steps stays out of reach: a new IPC namespace holds no queue either.
    if after == (before && kept) {
        return Ok(());
    }
    Err(if after {
        "the executor's POSIX message queue is still visible after the steps: the caller still sees the old IPC namespace's queues, where the model has a new IPC namespace".into()
    } else {
        "the executor's POSIX message queue was visible before the steps and no longer is: the caller left its IPC namespace, which the model keeps".into()
    })
}

fn devices_finding(want: DevicesExpect, got: &InsideObservation) -> Result<Result<(), String>, String> {
    let read = |r: Option<[IntOrErrno; 2]>| match r {
        Some([IntOrErrno::Value(b), IntOrErrno::Value(a)]) => Ok((b, a)),
        other => Err(format!("device counts {other:?}")),
    };
    let (before, after) = read(got.devices)?;
    let (up_before, up_after) = read(got.devices_up)?;
    Ok(match want {
        DevicesExpect::Kept if (before, up_before) == (after, up_after) => Ok(()),
        DevicesExpect::Kept => Err(format!(
            "the caller keeps its network namespace, but it saw {before} devices ({up_before} up) before the steps and {after} ({up_after} up) after"
        )),
        DevicesExpect::Fresh => {
            let lo = got.loopback_down.and_then(int);
            if after == before && up_after == 0 && lo == Some(1) {
                Ok(())
            } else {
                Err(format!(
                    "a new network namespace should hold as many devices as the sandbox's ({before}), none up, and a loopback that is down; it holds {after} ({up_after} up), loopback {}",
                    match lo {
                        Some(1) => "down".to_string(),
                        Some(0) => "up".to_string(),
                        Some(2) => "missing".to_string(),
                        _ => format!("unread ({:?})", got.loopback_down),
                    }
                ))
            }
        }
    })
}

fn cgroup_message(kept: bool) -> String {
    if kept {
        "/proc/thread-self/cgroup changed across the steps, though the model keeps the caller's cgroup namespace".into()
    } else {
        "/proc/thread-self/cgroup does not name the root \"/\" after the steps: the caller is not at the root of a new cgroup namespace, which the model has".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::errno::Errno;
    use crate::model::InsideExpect;

    fn v(x: i32) -> IntOrErrno {
        IntOrErrno::Value(x)
    }

    fn want(inside: InsideExpect) -> FinalExpect {
        FinalExpect { inside, proc_visible: true, ..FinalExpect::default() }
    }

    fn got(inside: InsideObservation) -> ProbeObservation {
        ProbeObservation { inside: Some(inside), ..ProbeObservation::default() }
    }

    #[test]
    fn a_queue_is_visible_exactly_in_its_own_ipc_namespace() {
        let kept = |k| want(InsideExpect { mq_kept: Some(k), ..InsideExpect::default() });
        let seen = |b, a| got(InsideObservation { mq_marker: Some([v(b), v(a)]), ..InsideObservation::default() });
        assert_eq!(judge(&kept(true), &seen(1, 1)).unwrap(), vec![("POSIX message queue", Ok(()))]);
        assert_eq!(judge(&kept(false), &seen(1, 0)).unwrap(), vec![("POSIX message queue", Ok(()))]);
        assert!(judge(&kept(false), &seen(1, 1)).unwrap()[0].1.as_ref().unwrap_err().contains("still visible"));
        assert!(judge(&kept(true), &seen(1, 0)).unwrap()[0].1.as_ref().unwrap_err().contains("left its IPC"));
        let eperm = got(InsideObservation {
            mq_marker: Some([v(1), IntOrErrno::Error(Errno::EPERM)]),
            ..InsideObservation::default()
        });
        assert!(judge(&kept(true), &eperm).unwrap_err().contains("nothing inside"));
    }

    #[test]
    fn a_new_network_namespace_holds_the_sandboxes_devices_all_down() {
        let fresh = want(InsideExpect { devices: Some(DevicesExpect::Fresh), ..InsideExpect::default() });
        let seen = |devs: [i32; 2], up: [i32; 2], lo| {
            got(InsideObservation {
                devices: Some(devs.map(v)),
                devices_up: Some(up.map(v)),
                loopback_down: Some(v(lo)),
                ..InsideObservation::default()
            })
        };
        assert!(judge(&fresh, &seen([3, 3], [0, 0], 1)).unwrap()[0].1.is_ok());
        assert!(judge(&fresh, &seen([3, 3], [1, 1], 0)).unwrap()[0].1.is_err(), "a loopback that is up");
        assert!(judge(&fresh, &seen([3, 1], [0, 0], 1)).unwrap()[0].1.is_err(), "devices missing");
        assert!(judge(&fresh, &seen([3, 3], [0, 0], 2)).unwrap()[0].1.is_err(), "no loopback");
        let kept = want(InsideExpect { devices: Some(DevicesExpect::Kept), ..InsideExpect::default() });
        assert!(judge(&kept, &seen([3, 3], [1, 1], 0)).unwrap()[0].1.is_ok());
        assert!(judge(&kept, &seen([3, 3], [1, 0], 1)).unwrap()[0].1.is_err());
    }

    #[test]
    fn a_new_cgroup_namespace_is_rooted_at_the_callers_cgroup() {
        let cg = |k| want(InsideExpect { cgroup_kept: Some(k), ..InsideExpect::default() });
        let seen = |root, same| {
            got(InsideObservation {
                cgroup_at_root: Some(v(root)),
                cgroup_same: Some(v(same)),
                ..InsideObservation::default()
            })
        };
        assert!(judge(&cg(false), &seen(1, 0)).unwrap()[0].1.is_ok());
        assert!(judge(&cg(false), &seen(0, 1)).unwrap()[0].1.is_err());
        assert!(judge(&cg(true), &seen(0, 1)).unwrap()[0].1.is_ok());
        assert!(judge(&cg(true), &seen(1, 0)).unwrap()[0].1.is_err());
        // No /proc to read: nothing predicted is judged.
        let hidden = FinalExpect { proc_visible: false, ..cg(false) };
        assert!(judge(&hidden, &seen(0, 0)).unwrap().is_empty());
    }

    #[test]
    fn nothing_predicted_judges_nothing_and_a_missing_report_is_a_reason() {
        assert_eq!(judge(&FinalExpect::default(), &ProbeObservation::default()).unwrap(), vec![]);
        let w = want(InsideExpect { mq_kept: Some(true), ..InsideExpect::default() });
        assert!(judge(&w, &ProbeObservation::default()).is_err());
    }
}
