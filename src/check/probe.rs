//! The behavioural probes after the last step, judged against the model's final state:
//! the sharing probes (the FILES and FS siblings, the semaphore seen from outside) and the
//! namespace markers (`namespaces-by-behaviour`, in [`super::behaviour`]).

use crate::exec::observe::{IntOrErrno, ProbeObservation, Trace};
use crate::model::FinalExpect;

use super::{CaseVerdict, behaviour, inside, inside_witness, probe_is, record};

/// One sharing probe: the invariant it belongs to, what it asks, what was seen, the verdict.
type Finding = (&'static str, &'static str, Option<IntOrErrno>, Result<(), String>);

/// Judges the final probes of `trace` against `want`.
pub(super) fn judge_probe(want: &FinalExpect, trace: &Trace, v: &mut CaseVerdict) {
    let Some(got) = trace.probe else { return };
    judge_markers(want, &got, v);
    judge_inside(want, &got, v);
    judge_inside_witness(want, &got, v);
    if !want.proc_visible {
        return;
    }
    // A probe that could not run because a descriptor could not be opened observed nothing.
    let exhausted =
        |o: Option<IntOrErrno>| matches!(o, Some(IntOrErrno::Error(e)) if matches!(e.0, libc::EMFILE | libc::ENFILE));
    for (id, what, seen, r) in sharing_findings(want, &got) {
        if exhausted(seen) {
            let reason = format!("final probe not run: {what} needs a new descriptor ({seen:?})");
            v.skipped.insert(id, reason);
            continue;
        }
        record(v, id, None, r.map_err(|e| format!("final probe, {what}: {e}")), None, None);
    }
}

/// `namespaces-by-behaviour`: one record per namespace type read, or the reason none was.
fn judge_markers(want: &FinalExpect, got: &ProbeObservation, v: &mut CaseVerdict) {
    record_case_level(behaviour::NAMESPACES_BY_BEHAVIOUR, behaviour::judge(want, got), v);
}

/// `life-inside-namespaces`: one record per reading judged, or the reason none was.
fn judge_inside(want: &FinalExpect, got: &ProbeObservation, v: &mut CaseVerdict) {
    record_case_level(inside::LIFE_INSIDE_NAMESPACES, inside::judge(want, got), v);
}

/// A case-level invariant's findings (what was read, and whether it held), or the reason
/// nothing could be judged.
fn record_case_level(id: &'static str, judged: Result<Vec<behaviour::Finding>, String>, v: &mut CaseVerdict) {
    match judged {
        Ok(findings) => {
            for (what, r) in findings {
                record(v, id, None, r.map_err(|e| format!("final probe, {what}: {e}")), None, None);
            }
        }
        Err(reason) => {
            v.skipped.insert(id, reason);
        }
    }
}

/// `inside-changes-stay-inside`: one record per reading judged, or the reason none was.
fn judge_inside_witness(want: &FinalExpect, got: &ProbeObservation, v: &mut CaseVerdict) {
    match inside_witness::judge(want, got) {
        Ok(findings) => {
            for (what, r) in findings {
                let r = r.map_err(|e| format!("inside witness, {what}: {e}"));
                record(v, inside_witness::INSIDE_CHANGES_STAY_INSIDE, None, r, None, None);
            }
        }
        Err(reason) => {
            v.skipped.insert(inside_witness::INSIDE_CHANGES_STAY_INSIDE, reason);
        }
    }
}

/// The sharing probes the model has an expectation for.
fn sharing_findings(want: &FinalExpect, got: &ProbeObservation) -> Vec<Finding> {
    const FILES: &str = "files-private-after-unshare";
    const FS: &str = "fs-private-after-unshare";
    let mut out: Vec<Finding> = Vec::new();
    if let Some(shared) = want.files_shared {
        let sibling = got.sibling_fd_visible;
        out.push((FILES, "the sibling's new fd is visible to us", sibling, probe_is(sibling, shared)));
        let ours = got.caller_fd_visible;
        out.push((FILES, "our new fd is visible to the sibling", ours, probe_is(ours, shared)));
    }
    if let Some(shared) = want.close_is_shared {
        let open = got.closed_fd_open_in_sibling;
        out.push((FILES, "the sibling's fd 0 stays open after we close ours", open, probe_is(open, !shared)));
    }
    if let Some(shared) = want.fs_shared {
        let cwd = got.fs_cwd_followed;
        out.push((FS, "the sibling's chdir moves our cwd", cwd, probe_is(cwd, shared)));
        let umask = got.fs_umask_followed;
        out.push((FS, "the sibling's umask changes ours", umask, probe_is(umask, shared)));
    }
    if let Some(value) = want.sem_value_outside {
        let r = match got.sem_value_outside {
            Some(IntOrErrno::Value(x)) if x == value => Ok(()),
            other => Err(format!("expected {value}, observed {other:?}")),
        };
        let what = "the semaphore's value seen from the setup's IPC namespace";
        out.push(("sysvsem-undo-detached", what, got.sem_value_outside, r));
    }
    out
}
