//! `namespaces-by-behaviour`: the caller's mount, IPC and network namespaces
//! after the last step are the predicted ones as seen by behaviour, not only by
//! `/proc/self/ns` link (which a kernel such as gVisor may leave out or fill
//! with values that name nothing). The readings come from `exec::child::markers`: the
//! executor's abstract unix socket is reachable only from its network
//! namespace, its SysV segment exists only in its IPC namespace, the mount
//! id of `/` is new in a copied mount namespace, and a hostname the caller sets
//! after its last step reaches the executor only through a shared UTS namespace.

use crate::exec::observe::{IntOrErrno, ProbeObservation};
use crate::model::{FinalExpect, KeptNamespaces};

/// The invariant's id.
pub const NAMESPACES_BY_BEHAVIOUR: &str = "namespaces-by-behaviour";

/// What it asserts (for `invariants` and the docs).
pub const DOC: &str = "after the last step the caller is in the predicted mount, IPC, network and UTS namespaces by behaviour: the executor's abstract unix socket and SysV segment stay reachable exactly while it keeps the namespace that holds them, the mount id of / changes exactly with a new mount namespace, and a hostname it sets reaches the executor exactly while it keeps the executor's UTS namespace";

/// One judged namespace type: what was read, and whether it held.
pub type Finding = (&'static str, Result<(), String>);

/// The judgement of the readings: one (what, result) per namespace type that was both
/// predicted and read, or the reason nothing could be judged when something was predicted.
pub fn judge(want: &FinalExpect, got: &ProbeObservation) -> Result<Vec<Finding>, String> {
    let KeptNamespaces { mnt, ipc, net, uts } = want.kept;
    let mut out = Vec::new();
    let mut unread = Vec::new();
    let markers = [
        ("network namespace", "the executor's abstract unix socket", net, got.net_marker),
        ("IPC namespace", "the executor's SysV shared memory segment", ipc, got.ipc_marker),
    ];
    for (what, marker, kept, reading) in markers {
        let Some(kept) = kept else { continue };
        match reading.map(|[before, after]| (seen(before), seen(after))) {
            Some((Some(before), Some(after))) => out.push((what, marker_result(what, marker, kept, before, after))),
            _ => unread.push(format!("{what}: {}", describe(reading))),
        }
    }
    if let Some(kept) = mnt {
        match got.mnt_root_kept.and_then(seen) {
            Some(same) if same == kept => out.push(("mount namespace", Ok(()))),
            Some(same) => out.push(("mount namespace", Err(mount_message(kept, same)))),
            None => unread.push(format!("mount namespace: mount id of / {:?}", got.mnt_root_kept)),
        }
    }
    if let Some(kept) = uts {
        match got.uts_marker {
            Some([IntOrErrno::Value(1), reading]) if seen(reading).is_some() => {
                let shared = seen(reading) == Some(true);
                out.push(("UTS namespace", if shared == kept { Ok(()) } else { Err(uts_message(kept)) }));
            }
            other => unread.push(format!("UTS namespace: hostname marker {}", describe(other))),
        }
    }
    if out.is_empty() && !unread.is_empty() {
        return Err(format!("no marker could be read ({})", unread.join("; ")));
    }
    Ok(out)
}

/// A reading: 1 yes, 0 no; an errno says nothing.
fn seen(x: IntOrErrno) -> Option<bool> {
    match x {
        IntOrErrno::Value(1) => Some(true),
        IntOrErrno::Value(0) => Some(false),
        _ => None,
    }
}

fn describe(reading: Option<[IntOrErrno; 2]>) -> String {
    match reading {
        None => "no marker here".into(),
        Some([b, a]) => format!("before {b}, after {a}"),
    }
}

fn marker_result(what: &str, marker: &str, kept: bool, before: bool, after: bool) -> Result<(), String> {
    // Out of reach before the steps (the setup already left that namespace), it stays out of
    // reach: a new namespace holds no marker either.
    let want = before && kept;
    if after == want {
        return Ok(());
    }
    Err(if want {
        format!(
            "{marker} was reachable before the steps and no longer is: the caller left its {what}, which the model keeps"
        )
    } else {
        format!(
            "{marker} is still reachable after the steps: the caller is still in its old {what}, where the model has a new one"
        )
    })
}

fn uts_message(kept: bool) -> String {
    if kept {
        "the hostname the caller set after the steps did not reach the executor: the caller left the executor's UTS namespace, which the model keeps".into()
    } else {
        "the hostname the caller set after the steps became the executor's too: the caller is still in the executor's UTS namespace, where the model has a new one".into()
    }
}

fn mount_message(kept: bool, same: bool) -> String {
    match (kept, same) {
        (false, true) => {
            "the mount id of / is the one it had before the steps: the mount tree was not copied, though the model has a new mount namespace".into()
        }
        _ => "the mount id of / changed, though the model keeps the mount namespace".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(mnt: Option<bool>, ipc: Option<bool>, net: Option<bool>) -> FinalExpect {
        FinalExpect { kept: KeptNamespaces { mnt, ipc, net, uts: None }, ..FinalExpect::default() }
    }

    #[test]
    fn a_hostname_reaches_the_executor_only_through_a_kept_uts_namespace() {
        let uts = |kept| FinalExpect {
            kept: KeptNamespaces { uts: Some(kept), ..KeptNamespaces::default() },
            ..FinalExpect::default()
        };
        let reading = |seen| ProbeObservation { uts_marker: Some([v(1), v(seen)]), ..ProbeObservation::default() };
        assert!(judge(&uts(true), &reading(1)).unwrap()[0].1.is_ok());
        assert!(judge(&uts(false), &reading(0)).unwrap()[0].1.is_ok());
        assert!(
            judge(&uts(false), &reading(1)).unwrap()[0].1.as_ref().unwrap_err().contains("still in the executor's")
        );
        assert!(judge(&uts(true), &reading(0)).unwrap()[0].1.as_ref().unwrap_err().contains("left the executor's"));
        // Not allowed to set the hostname (a user namespace that does not own it): not judged.
        let eperm = IntOrErrno::Error(crate::abi::errno::Errno(libc::EPERM));
        let got = ProbeObservation { uts_marker: Some([eperm, v(0)]), ..ProbeObservation::default() };
        assert!(judge(&uts(true), &got).is_err());
    }

    fn v(x: i32) -> IntOrErrno {
        IntOrErrno::Value(x)
    }

    #[test]
    fn a_new_namespace_must_lose_the_marker() {
        let got = ProbeObservation { net_marker: Some([v(1), v(1)]), ..ProbeObservation::default() };
        let r = judge(&want(None, None, Some(false)), &got).unwrap();
        assert_eq!(r.len(), 1);
        assert!(r[0].1.as_ref().unwrap_err().contains("still reachable"), "{r:?}");
        let got = ProbeObservation { net_marker: Some([v(1), v(0)]), ..ProbeObservation::default() };
        assert_eq!(judge(&want(None, None, Some(false)), &got).unwrap(), vec![("network namespace", Ok(()))]);
    }

    #[test]
    fn a_kept_namespace_must_keep_the_marker() {
        let got = ProbeObservation { ipc_marker: Some([v(1), v(0)]), ..ProbeObservation::default() };
        let r = judge(&want(None, Some(true), None), &got).unwrap();
        assert!(r[0].1.as_ref().unwrap_err().contains("no longer is"), "{r:?}");
    }

    #[test]
    fn a_marker_out_of_reach_before_stays_out_of_reach() {
        let got = ProbeObservation { ipc_marker: Some([v(0), v(0)]), ..ProbeObservation::default() };
        assert_eq!(judge(&want(None, Some(true), None), &got).unwrap(), vec![("IPC namespace", Ok(()))]);
        let got = ProbeObservation { ipc_marker: Some([v(0), v(1)]), ..ProbeObservation::default() };
        assert!(judge(&want(None, Some(false), None), &got).unwrap()[0].1.is_err());
    }

    #[test]
    fn the_mount_id_follows_the_mount_namespace() {
        let got = ProbeObservation { mnt_root_kept: Some(v(1)), ..ProbeObservation::default() };
        assert!(judge(&want(Some(false), None, None), &got).unwrap()[0].1.is_err());
        assert!(judge(&want(Some(true), None, None), &got).unwrap()[0].1.is_ok());
    }

    #[test]
    fn unreadable_markers_are_a_reason_not_a_verdict() {
        let errno = IntOrErrno::Error(crate::abi::errno::Errno(libc::EMFILE));
        let got = ProbeObservation { net_marker: Some([v(1), errno]), ..ProbeObservation::default() };
        assert!(judge(&want(None, None, Some(true)), &got).unwrap_err().contains("no marker could be read"));
        // Nothing predicted: nothing judged and nothing to say.
        assert_eq!(judge(&want(None, None, None), &got).unwrap(), vec![]);
    }
}
