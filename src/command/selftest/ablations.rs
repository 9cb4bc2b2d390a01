//! Ablations: linux-6.18 with one check row or one implication removed, and the
//! `caps-all-needed` row added, each judged as an oracle over the honest run
//! ([`super::oracles::evaluate`]): which of the model's rules the generated cases exercise.

use crate::abi::flags::{Implication, bits};
use crate::env::Environment;
use crate::model::KernelProfile;
use crate::model::checks::{Check, Ctx};
use crate::model::profile::LINUX_6_18;

use super::oracles::{Difference, Judged, OracleResult, evaluate};

fn leak<T>(v: Vec<T>) -> &'static [T] {
    // Profiles hold 'static tables; the selftest builds about thirty ablated ones per run,
    // once, so leaking them costs a few kilobytes for the life of the process.
    Box::leak(v.into_boxed_slice())
}

/// linux-6.18 with one check row or one implication removed, each as an oracle: which of
/// the model's rules the generated cases actually exercise on this machine.
pub fn ablations(env: &Environment, judged: &[Judged]) -> Vec<OracleResult> {
    let base = LINUX_6_18;
    let mut out = Vec::new();
    for (k, row) in base.checks.iter().enumerate() {
        let checks: Vec<Check> = base
            .checks
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != k)
            .map(|(_, r)| Check { id: r.id, step: r.step, errno: r.errno, cond: r.cond, doc: r.doc })
            .collect();
        let p = KernelProfile { checks: leak(checks), describes: row.doc, ..base };
        let label = format!("no row {}", row.id);
        out.push(evaluate(label, &p, env, judged, &[Difference::NoRow(row.id)]));
    }
    for (k, imp) in base.implications.iter().enumerate() {
        let implications: Vec<Implication> =
            base.implications.iter().enumerate().filter(|(i, _)| *i != k).map(|(_, x)| *x).collect();
        let p = KernelProfile { implications: leak(implications), describes: "implication removed", ..base };
        let d = Difference::NoImplication(imp.when, imp.adds);
        out.push(evaluate(d.to_string(), &p, env, judged, &[d]));
    }
    out.push(caps_all_needed(env, judged));
    out.push(set_tid_ignored(env, judged));
    out
}

/// Id of the row the `caps-all-needed` model mutant adds (issue 16 class 5).
pub const CAPS_ALL_NEEDED: &str = "caps-all-needed";

/// Issue 16 class 5, a state-dependent lie no seccomp filter can tell (it depends on the
/// caller's capability sets): linux-6.18 with one row more before 8a, a kernel that refuses
/// non-user namespaces with EPERM when any capability the executor has, other than
/// CAP_SYS_ADMIN, is missing from the effective set.
fn caps_all_needed(env: &Environment, judged: &[Judged]) -> OracleResult {
    let base = LINUX_6_18;
    let mut checks: Vec<Check> = base
        .checks
        .iter()
        .map(|r| Check { id: r.id, step: r.step, errno: r.errno, cond: r.cond, doc: r.doc })
        .collect();
    let at = checks.iter().position(|r| r.id == "ns-needs-cap-sys-admin").unwrap_or(checks.len());
    let doc = "EPERM for a non-user namespace when any other capability the executor has is missing";
    let cond = |c: &Ctx| {
        let others = c.env.baseline.cap_eff & !(1u64 << crate::case::caps::CAP_SYS_ADMIN);
        c.has(crate::abi::flags::NON_USER_NAMESPACES) && !c.has(bits::NEWUSER) && others & !c.state.cap_eff != 0
    };
    checks.insert(at, Check { id: CAPS_ALL_NEEDED, step: "8a", errno: crate::abi::errno::Errno::EPERM, cond, doc });
    let p = KernelProfile { checks: leak(checks), describes: doc, ..base };
    evaluate(format!("row {CAPS_ALL_NEEDED}"), &p, env, judged, &[Difference::Row(CAPS_ALL_NEEDED)])
}

/// Id of the row the `set-tid-ignored` model mutant stands for (issue 16 class 4).
pub const SET_TID_IGNORED: &str = "set-tid-ignored";

/// Issue 16 class 4, a lie no seccomp filter can tell: a kernel that ignores `set_tid` and
/// `set_tid_size` (a filter can refuse or fake a whole clone3 call, but cannot make the
/// kernel create the child with another pid than it asked for, nor see the array behind the
/// pointer). Measured as a model mutant: each case is predicted with its clone3_set_tid steps
/// as plain clone3 steps and judged against what this kernel did.
fn set_tid_ignored(env: &Environment, judged: &[Judged]) -> OracleResult {
    use crate::case::Step;
    let mut invariants = std::collections::BTreeMap::new();
    let (mut disagreeing, mut differing, mut example) = (0, 0, None);
    for j in judged.iter().filter(|j| j.case.steps.iter().any(|s| matches!(s, Step::Clone3SetTid(_)))) {
        let mut plain = j.case.clone();
        for step in &mut plain.steps {
            if let Step::Clone3SetTid(st) = *step {
                *step = Step::Clone3(st.flags);
            }
        }
        let told = crate::model::predict(&LINUX_6_18, env, &plain);
        differing += u64::from(told != crate::model::predict(&LINUX_6_18, env, &j.case));
        let verdict = crate::check::judge(env, &j.case, &told, &j.outcome);
        if verdict.failed() {
            disagreeing += 1;
            for v in &verdict.violations {
                *invariants.entry(v.invariant).or_default() += 1;
            }
            if example.is_none() {
                example = Some(set_tid_example(env, j, &told, &verdict));
            }
        }
    }
    let label = format!("row {SET_TID_IGNORED}");
    OracleResult {
        describes: "clone3 ignores set_tid and set_tid_size".into(),
        sources: "",
        disagrees: disagreeing > 0,
        cases_judged: judged.len() as u64,
        disagreeing_cases: disagreeing,
        differing_predictions: differing,
        rules: vec![(label.clone(), disagreeing)],
        invariants,
        unexercised: if disagreeing == 0 { vec![label.clone()] } else { Vec::new() },
        example,
        label,
    }
}

/// The first case the `set-tid-ignored` model gets wrong, as the ablation table shows it.
fn set_tid_example(
    env: &Environment,
    j: &Judged,
    told: &crate::model::Prediction,
    verdict: &crate::check::CaseVerdict,
) -> super::oracles::Example {
    let step = verdict.violations.iter().filter_map(|v| v.step).min().unwrap_or(0);
    let at = |p: &crate::model::Prediction| match p {
        crate::model::Prediction::Steps { steps, .. } => {
            steps.get(step).map_or("-".to_string(), |e| format!("{} (rule {})", e.result, e.rule))
        }
        crate::model::Prediction::Skip { reason } => format!("skipped: {reason}"),
    };
    let mut invariants: Vec<&'static str> = verdict.violations.iter().map(|v| v.invariant).collect();
    invariants.dedup();
    super::oracles::Example {
        number: j.number,
        case: j.case.to_string(),
        step,
        profile_says: at(told),
        kernel_did: at(&crate::model::predict(&LINUX_6_18, env, &j.case)),
        rules: vec![format!("row {SET_TID_IGNORED}")],
        invariants,
    }
}
