//! Turns the model's expectations for one case into `case_judge()`: one C check per
//! expectation, the expected value inline, in the order of the harness's invariants
//! (`check/invariants.rs`, `check/clone3.rs`). The checks themselves are the primitives of
//! `checks.c`.

use std::fmt::Write;

use super::c_str;
use crate::abi::errno::{CallResult, Errno};
use crate::abi::flags::bits;
use crate::abi::ns::NsLink;
use crate::case::{Case, Step};
use crate::model::clone3::{ChildLink, ChildTid, Clone3Expect};
use crate::model::{Expected, FinalExpect, KcmpExpect, LinkExpect, PidExpect, SemExpect};

/// An errno as C source: its `<errno.h>` name (the value may differ between architectures),
/// or the number when it has none.
fn errno_c(e: Errno) -> String {
    e.name().map_or_else(|| e.0.to_string(), str::to_string)
}

/// A result as C source: 0 (success) or the errno.
fn result_c(r: CallResult) -> String {
    match r {
        CallResult::Success => "0".into(),
        CallResult::Failure(e) => errno_c(e),
    }
}

fn link_expect(e: LinkExpect) -> String {
    match e {
        LinkExpect::Unchanged => "LINK_UNCHANGED".into(),
        LinkExpect::Fresh => "LINK_FRESH".into(),
        LinkExpect::Unreadable(e) => format!("-{}", errno_c(e)),
        LinkExpect::BeforeOf(l) => format!("LINK_BEFORE_OF({}) /* {l} */", l.index()),
        LinkExpect::AfterOf(l) => format!("LINK_AFTER_OF({}) /* {l} */", l.index()),
        LinkExpect::AtCaseStart(l) => format!("LINK_AT_START({}) /* {l} */", l.index()),
    }
}

/// The C value of a kcmp expectation; `None` when the model does not predict it.
fn kcmp_expect(e: KcmpExpect) -> Option<String> {
    match e {
        KcmpExpect::Unmodelled => None,
        KcmpExpect::Same => Some("KC_SAME".into()),
        KcmpExpect::Different => Some("KC_DIFFERENT".into()),
        KcmpExpect::Error(e) => Some(format!("-{}", errno_c(e))),
    }
}

fn child_link(l: ChildLink) -> String {
    match l {
        ChildLink::Fresh => "CL_FRESH".into(),
        ChildLink::ParentBefore(p) => format!("CL_PARENT_BEFORE({}) /* {p} */", p.index()),
        ChildLink::ParentAfter(p) => format!("CL_PARENT_AFTER({}) /* {p} */", p.index()),
        ChildLink::Child(c) => format!("CL_CHILD({}) /* {c} */", c.index()),
    }
}

/// The checks of a successful step (success-changes-exactly-predicted).
fn success_checks(out: &mut String, k: usize, exp: &Expected) {
    for link in NsLink::ALL {
        let want = link_expect(exp.links[link.index()]);
        let _ = writeln!(out, "\t\t\tlink_is({k}, &f, b, a, {} /* {link} */, {want});", link.index());
    }
    let c = exp.creds;
    let _ = writeln!(out, "\t\t\tcreds_are({k}, a, {}, {}, {:#x}ULL);", c.uid, c.gid, c.cap_eff);
    let pid = match exp.pid {
        PidExpect::Unchanged => "PID_UNCHANGED",
        PidExpect::Changed => "PID_CHANGED",
        PidExpect::One => "PID_ONE",
    };
    let _ = writeln!(out, "\t\t\tpid_is({k}, b, a, {pid});");
    let _ = writeln!(out, "\t\t\tthreads_are({k}, b, a, {});", exp.threads);
    let _ = writeln!(out, "\t\t\tkept({k}, b, a, {});", i32::from(exp.cwd_changes));
}

/// kcmp-matches-model against each sibling (only what the model predicts).
fn kcmp_checks(out: &mut String, k: usize, exp: &Expected) {
    for (s, sib) in exp.siblings.iter().enumerate() {
        let name = c_str(sib.kind.name());
        for (t, e) in sib.kcmp.iter().enumerate() {
            if let Some(want) = kcmp_expect(*e) {
                let _ = writeln!(out, "\t\tkcmp_is({k}, a, {s}, {name}, {t}, {want});");
            }
        }
        if let Some(want) = kcmp_expect(sib.fds) {
            let _ = writeln!(out, "\t\tkcmp_is({k}, a, {s}, {name}, -1, {want});");
        }
    }
}

/// clone3-matches-model: the caller's undo list, then the child, when clone3 exists here.
fn clone3_checks(out: &mut String, k: usize, c3: &Clone3Expect) {
    let _ = writeln!(out, "\t\tsysvsem_column({k}, b, a, K.clone3 && {});", i32::from(c3.undo_list_made));
    let Some(ch) = &c3.child else {
        let _ = writeln!(out, "\t\t(void)child_there({k}, o, 0);");
        return;
    };
    let _ = writeln!(out, "\t\tif (child_there({k}, o, K.clone3)) {{");
    {
        out.push_str("\t\t\tstruct fresh cf = { { sandbox, &r->before, b, a }, { 0 }, 0 };\n");
        for link in NsLink::ALL {
            let _ = writeln!(
                out,
                "\t\t\tchild_link_is({k}, &cf, b, a, &o->state, {} /* {link} */, {});",
                link.index(),
                child_link(ch.links[link.index()])
            );
        }
        let _ = writeln!(
            out,
            "\t\t\tchild_ids_are({k}, o, {}, {}, {}, {:#x}ULL);",
            i32::from(ch.tid == ChildTid::One),
            ch.creds.uid,
            ch.creds.gid,
            ch.creds.cap_eff
        );
        if let Some(t) = ch.set_tid {
            let _ = writeln!(
                out,
                "\t\t\tchild_set_tid_is({k}, o, {}, {}, {});",
                t.own,
                i32::from(t.returned.is_some()),
                t.returned.unwrap_or(0)
            );
        }
        match &ch.kcmp {
            None => {
                let _ = writeln!(out, "\t\t\tchild_kcmp_is({k}, &o->state, 0, 0, 0);");
            }
            Some(kc) => {
                for (t, e) in kc.iter().enumerate() {
                    let want = kcmp_expect(*e).unwrap_or_else(|| "KC_ANY".into());
                    let _ = writeln!(out, "\t\t\tchild_kcmp_is({k}, &o->state, 1, {t}, {want});");
                }
            }
        }
        let _ = writeln!(
            out,
            "\t\t\tchild_seen({k}, o, {}, {}, {}, {});",
            i32::from(ch.reaped_by_caller),
            ch.sigchld.map_or(-1, i32::from),
            i32::from(ch.pidfd),
            i32::from(ch.parent_tid)
        );
    }
    out.push_str("\t\t}\n");
}

/// The checks of step `k`.
fn step_checks(out: &mut String, k: usize, step: &Step, exp: &Expected, kcmp: bool) {
    let want = result_c(exp.result);
    let mut rule = exp.rule.to_string();
    if step.is_unshare() {
        let _ = write!(rule, ", effective flags {:#x}", exp.effective_flags.0);
    }
    let _ = writeln!(out, "\tif (r->steps_done > {k}) {{ /* {} */", super::lower::c_comment(&step.to_string()));
    let _ = writeln!(out, "\t\tconst struct snap *b = before_step(r, {k}), *a = &r->step[{k}].after;");
    out.push_str("\t\tstruct fresh f = { { sandbox, &r->before, b, NULL }, { 0 }, 0 };\n");
    let what = c_str(&step.to_string());
    let (want_c, rule_c, skip_sysvsem) = match &exp.clone3 {
        Some(c3) => (
            format!("K.clone3 ? {want} : ENOSYS"),
            format!("K.clone3 ? {} : \"clone3-missing\"", c_str(&rule)),
            format!("K.clone3 && {}", i32::from(c3.undo_list_made)),
        ),
        None => (want.to_string(), c_str(&rule), "0".to_string()),
    };
    if exp.clone3.is_some() {
        let _ = writeln!(out, "\t\tconst struct child_obs *o = &r->step[{k}].child;");
    }
    let _ = writeln!(out, "\t\tint got = step_result(r, {k}, {what}, {want_c}, {rule_c});");
    if exp.thread_call.is_some() {
        // The thread stays (one thread more) and gave the caller an undo list (CLONE_SYSVSEM).
        let _ = writeln!(
            out,
            "\t\tif (got != 0) {{\n\t\t\tstruct snap a1 = *a;\n\t\t\tif (a1.threads == b->threads + 1)\n\t\t\t\ta1.threads = b->threads;\n\t\t\tunchanged({k}, b, &a1, \"the thread's call failed\", 1);\n\t\t}}"
        );
    } else {
        let _ = writeln!(out, "\t\tif (got != 0)\n\t\t\tunchanged({k}, b, a, \"the call failed\", {skip_sysvsem});");
    }
    if exp.result == CallResult::Success {
        out.push_str("\t\telse {\n");
        success_checks(out, k, exp);
        out.push_str("\t\t}\n");
    }
    if kcmp {
        kcmp_checks(out, k, exp);
    }
    let before = exp.before;
    let check_sem = step.is_unshare()
        && exp.effective_flags.intersects(bits::SYSVSEM | bits::NEWIPC)
        && (before.undo_private || before.undo_shared);
    if check_sem {
        let (value, errno) = match exp.semval {
            SemExpect::NoSemaphore => ("NONE".to_string(), "0".to_string()),
            SemExpect::Value(v) => (v.to_string(), "0".to_string()),
            SemExpect::Error(e) => ("0".to_string(), errno_c(e)),
        };
        let _ = writeln!(out, "\t\tif (got == 0)\n\t\t\tsem_is({k}, a, {value}, {errno});");
    }
    if let Some(c3) = &exp.clone3 {
        clone3_checks(out, k, c3);
    }
    out.push_str("\t\t(void)f;\n\t}\n");
}

/// The final behavioural probes.
fn final_checks(out: &mut String, nsteps: usize, fin: &FinalExpect) {
    if *fin
        == (FinalExpect {
            proc_visible: fin.proc_visible,
            kept: fin.kept,
            inside: fin.inside,
            ..FinalExpect::default()
        })
    {
        let _ = writeln!(out, "\t(void)finished(r, {nsteps});");
        return;
    }
    let _ = writeln!(out, "\tif (finished(r, {nsteps}) && r->probed) {{");
    if let Some(v) = fin.files_shared {
        let v = i32::from(v);
        let _ = writeln!(out, "\t\tprobe_is(\"the sibling's new fd is visible to us\", r->probe[0], {v});");
        let _ = writeln!(out, "\t\tprobe_is(\"our new fd is visible to the sibling\", r->probe[1], {v});");
    }
    if let Some(v) = fin.close_is_shared {
        let _ = writeln!(
            out,
            "\t\tprobe_is(\"the sibling's fd 0 stays open after we close ours\", r->probe[2], {});",
            i32::from(!v)
        );
    }
    if let Some(v) = fin.fs_shared {
        let v = i32::from(v);
        let _ = writeln!(out, "\t\tprobe_is(\"the sibling's chdir moves our cwd\", r->probe[3], {v});");
        let _ = writeln!(out, "\t\tprobe_is(\"the sibling's umask changes ours\", r->probe[4], {v});");
    }
    if let Some(v) = fin.sem_value_outside {
        let _ = writeln!(out, "\t\tsem_outside_is(r->probe[5], {v});");
    }
    out.push_str("\t}\n");
}

/// namespaces-by-behaviour: the namespaces the model keeps (1) or replaces (0) after the last step.
fn behaviour_checks(out: &mut String, fin: &FinalExpect) {
    let k = fin.kept;
    let kept = [("mnt_kept", k.mnt), ("ipc_kept", k.ipc), ("net_kept", k.net), ("uts_kept", k.uts)];
    if kept.iter().all(|(_, v)| v.is_none()) {
        return;
    }
    out.push_str("\tif (r->done) {\n");
    for (check, v) in kept {
        if let Some(v) = v {
            let _ = writeln!(out, "\t\t{check}(r, {});", i32::from(v));
        }
    }
    out.push_str("\t}\n");
}

/// life-inside-namespaces: the message queue, the network devices and the cgroup after the
/// last step (kept 1: the namespace the caller started in).
fn inside_checks(out: &mut String, fin: &FinalExpect) {
    let w = fin.inside;
    if w.is_empty() {
        return;
    }
    out.push_str("\tif (r->done) {\n");
    if let Some(k) = w.mq_kept {
        let _ = writeln!(out, "\t\tmq_kept(r, {});", i32::from(k));
    }
    if let Some(d) = w.devices {
        let _ = writeln!(out, "\t\tdevices_are(r, {});", i32::from(d == crate::model::DevicesExpect::Fresh));
    }
    if let Some(k) = w.cgroup_kept.filter(|_| fin.proc_visible) {
        let _ = writeln!(out, "\t\tcgroup_kept(r, {});", i32::from(k));
    }
    out.push_str("\t}\n");
}

/// `case_judge()`: every expectation of `steps` and `fin` as one check each. `kcmp`: kcmp
/// worked where the expectations were computed (else the model predicts no kcmp values).
pub(super) fn judge_c(case: &Case, steps: &[Expected], fin: &FinalExpect, kcmp: bool) -> String {
    let mut out = String::from("/* The model's expectations, one check each (check/invariants.rs). */\n");
    out.push_str("static void case_judge(const struct record *r, const struct snap *sandbox)\n{\n");
    for (k, (step, exp)) in case.steps.iter().zip(steps).enumerate() {
        step_checks(&mut out, k, step, exp, kcmp);
    }
    final_checks(&mut out, case.steps.len(), fin);
    behaviour_checks(&mut out, fin);
    inside_checks(&mut out, fin);
    super::witness::judge(&mut out, fin);
    out.push_str("}\n\n");
    out
}
