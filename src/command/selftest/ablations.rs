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
