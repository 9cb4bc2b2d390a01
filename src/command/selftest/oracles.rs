//! Model mutants: other kernel profiles as the oracle over observations of this
//! kernel. Nothing runs again: the honest run's outcomes are judged against each
//! profile's predictions. A case where the profile's verdict fails (and 6.18's
//! held) is a disagreement; its first differing step is compared with 6.18's
//! prediction to name the rules behind it (a row only one profile has, an
//! implication, a mask bit, an effect flag).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::abi::flags::{Implication, RawFlags, bits};
use crate::case::{Case, NsType, Step};
use crate::check::judge;
use crate::env::Environment;
use crate::exec::observe::Outcome;
use crate::model::checks::{Check, Ctx, first_failing};
use crate::model::profile::{HISTORICAL, LINUX_6_18, UnknownBits};
use crate::model::{CallerState, Expected, KernelProfile, predict, predict_step};

/// One case of the honest run that 6.18 judged clean, kept for re-judging.
#[derive(Debug, Clone)]
pub struct Judged {
    /// 1-based position in the case stream.
    pub number: u64,
    /// The case.
    pub case: Case,
    /// What the kernel did.
    pub outcome: Outcome,
}

/// One structural way a profile differs from linux-6.18.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Difference {
    /// A check row only the profile has.
    Row(&'static str),
    /// A check row of 6.18 the profile lacks.
    NoRow(&'static str),
    /// An implication only the profile has.
    Implication(u64, u64),
    /// An implication of 6.18 the profile lacks.
    NoImplication(u64, u64),
    /// A bit 6.18 accepts and the profile does not.
    MaskWithout(u64),
    /// Unknown bits are dropped instead of checked.
    UnknownBitsIgnored,
    /// NEWNS does not force a new fs_struct.
    NewnsKeepsFs,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::Row(id) => write!(f, "row {id}"),
            Difference::NoRow(id) => write!(f, "no row {id}"),
            Difference::Implication(w, a) => write!(f, "{} => {}", RawFlags(*w), RawFlags(*a)),
            Difference::NoImplication(w, a) => write!(f, "no {} => {}", RawFlags(*w), RawFlags(*a)),
            Difference::MaskWithout(b) => write!(f, "mask without {}", RawFlags(*b)),
            Difference::UnknownBitsIgnored => f.write_str("unknown bits ignored"),
            Difference::NewnsKeepsFs => f.write_str("NEWNS keeps an unshared fs_struct"),
        }
    }
}

fn same_implication(a: &Implication, b: &Implication) -> bool {
    (a.when, a.adds) == (b.when, b.adds)
}

fn has_row(table: &[Check], id: &str) -> bool {
    table.iter().any(|r| r.id == id)
}

/// True for a row about a namespace type (`<type>-...`) whose flag `p` does not accept: its
/// absence is the mask difference, not a difference of its own.
fn about_unknown_namespace(p: &KernelProfile, id: &str) -> bool {
    let prefix = id.split('-').next().unwrap_or_default();
    NsType::ALL.iter().any(|t| t.name() == prefix && t.flag() & p.valid_mask == 0)
}

/// Every structural difference of `p` from `base`.
pub fn differences(p: &KernelProfile, base: &KernelProfile) -> Vec<Difference> {
    let mut out = Vec::new();
    for r in p.checks.iter().filter(|r| !has_row(base.checks, r.id)) {
        out.push(Difference::Row(r.id));
    }
    for r in base.checks.iter().filter(|r| !has_row(p.checks, r.id)) {
        let ignored_anyway = r.id == "unknown-bit" && p.unknown_bits == UnknownBits::Ignored;
        if !ignored_anyway && !about_unknown_namespace(p, r.id) {
            out.push(Difference::NoRow(r.id));
        }
    }
    for i in p.implications.iter().filter(|i| !base.implications.iter().any(|b| same_implication(i, b))) {
        out.push(Difference::Implication(i.when, i.adds));
    }
    for i in base.implications.iter().filter(|i| !p.implications.iter().any(|b| same_implication(i, b))) {
        out.push(Difference::NoImplication(i.when, i.adds));
    }
    let lost = base.valid_mask & !p.valid_mask;
    out.extend((0..64).map(|b| 1u64 << b).filter(|b| lost & b != 0).map(Difference::MaskWithout));
    if p.unknown_bits == UnknownBits::Ignored && base.unknown_bits != UnknownBits::Ignored {
        out.push(Difference::UnknownBitsIgnored);
    }
    if base.newns_always_new_fs && !p.newns_always_new_fs {
        out.push(Difference::NewnsKeepsFs);
    }
    out
}

/// The implications of `table` that add something to `flags`, applied in order.
fn fired(table: &[Implication], flags: u64) -> Vec<Implication> {
    let mut f = flags;
    let mut out = Vec::new();
    for i in table {
        if f & i.when != 0 && i.adds & !f != 0 {
            out.push(*i);
            f |= i.adds;
        }
    }
    out
}

/// Observable expectations differ (the deciding rule and the effective flags are not
/// observable by themselves: two rules giving the same errno look the same).
fn expectations_differ(a: &Expected, b: &Expected) -> bool {
    (a.result, a.links, a.creds, a.pid, a.fs_struct_kept, a.semval)
        != (b.result, b.links, b.creds, b.pid, b.fs_struct_kept, b.semval)
        || a.siblings != b.siblings
}

/// The rule of `profile`'s unshare table that decides `f` in `state` ("success" if none fires).
fn decide(profile: &KernelProfile, f: RawFlags, state: &CallerState, env: &Environment) -> &'static str {
    let ctx = Ctx { f: f.0, valid_mask: profile.valid_mask, state, env, profile };
    first_failing(profile.checks, &ctx).map_or("success", |row| row.id)
}

/// The differences of `p` from `base` that cause the two to expect different things of the
/// unshare `flags` in `state` (the state before the first step they disagree on).
///
/// Counterfactual where it is cheap: an implication or ignored-bit difference counts only if
/// the profile's own table, given 6.18's effective flags, would decide differently (or the
/// call succeeds either way, so the flags decide the effects); an implication whose trigger
/// the profile does not know at all is left to the mask difference.
fn attribute(
    p: &KernelProfile,
    base: &KernelProfile,
    env: &Environment,
    state: &CallerState,
    flags: RawFlags,
    pe: &Expected,
    re: &Expected,
) -> Vec<Difference> {
    let mut out = Vec::new();
    let changed = pe.effective_flags.0 ^ re.effective_flags.0;
    let flags_matter = if pe.rule == "success" && re.rule == "success" {
        // Both succeed: only bits with effects matter (THREAD, SIGHAND and VM have none).
        changed & !(bits::THREAD | bits::SIGHAND | bits::VM) != 0
    } else {
        changed != 0 && decide(p, re.effective_flags, state, env) != pe.rule
    };
    if flags_matter {
        for i in fired(p.implications, flags.0) {
            if i.adds & changed != 0 && !base.implications.iter().any(|b| same_implication(&i, b)) {
                out.push(Difference::Implication(i.when, i.adds));
            }
        }
        for i in fired(base.implications, flags.0) {
            let known = i.when & p.valid_mask != 0;
            if known && i.adds & changed != 0 && !p.implications.iter().any(|b| same_implication(&i, b)) {
                out.push(Difference::NoImplication(i.when, i.adds));
            }
        }
    }
    // Bits 6.18 accepts and the profile does not: ignored (they vanish from the word) or
    // rejected by its mask check.
    let lost = re.effective_flags.0 & base.valid_mask & !p.valid_mask;
    let mask_decides = about_unknown_namespace(p, re.rule)
        || match p.unknown_bits {
            UnknownBits::Ignored => flags_matter,
            UnknownBits::Checked => pe.rule == "unknown-bit",
        };
    if mask_decides {
        out.extend((0..64).map(|b| 1u64 << b).filter(|b| lost & b != 0).map(Difference::MaskWithout));
    }
    if pe.rule != re.rule {
        if has_row(p.checks, pe.rule) && !has_row(base.checks, pe.rule) {
            out.push(Difference::Row(pe.rule));
        }
        if has_row(base.checks, re.rule) && !has_row(p.checks, re.rule) && !about_unknown_namespace(p, re.rule) {
            out.push(if re.rule == "unknown-bit" && p.unknown_bits == UnknownBits::Ignored {
                Difference::UnknownBitsIgnored
            } else {
                Difference::NoRow(re.rule)
            });
        }
    }
    // Only when both succeed: a failure keeps the fs_struct as a consequence, not a cause.
    let both_succeed = pe.result.is_success() && re.result.is_success();
    if both_succeed && pe.fs_struct_kept != re.fs_struct_kept && base.newns_always_new_fs && !p.newns_always_new_fs {
        out.push(Difference::NewnsKeepsFs);
    }
    // Causal order (implications, mask, rows, effects); each difference once.
    let mut unique = Vec::new();
    for d in out {
        if !unique.contains(&d) {
            unique.push(d);
        }
    }
    unique
}

/// A concrete disagreement, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct Example {
    /// 1-based position in the case stream.
    pub number: u64,
    /// The case, one line.
    pub case: String,
    /// Index of the first step the profiles disagree on.
    pub step: usize,
    /// What the profile expected there (result and rule).
    pub profile_says: String,
    /// What linux-6.18 expected (and the kernel did).
    pub kernel_did: String,
    /// The differences named for it.
    pub rules: Vec<String>,
    /// The invariants that fired.
    pub invariants: Vec<&'static str>,
}

fn unique(ids: impl Iterator<Item = &'static str>) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// One profile judged over the honest observations.
#[derive(Debug, Clone, Serialize)]
pub struct OracleResult {
    /// What was judged: a profile name, or 6.18 with one rule removed.
    pub label: String,
    /// The profile's description.
    pub describes: String,
    /// Spec sections.
    pub sources: &'static str,
    /// Some case disagreed.
    pub disagrees: bool,
    /// Cases judged (the honest run's clean, non-skipped cases).
    pub cases_judged: u64,
    /// Cases whose verdict under this profile failed.
    pub disagreeing_cases: u64,
    /// Cases on which the profile expects something observable that 6.18 does not (a
    /// disagreement needs one; 0 means the profile is equivalent to 6.18 on these cases).
    pub differing_predictions: u64,
    /// The rules behind the disagreements (first differing step of each case), each with the
    /// number of disagreeing cases it was named for (a case may name several), most frequent first.
    pub rules: Vec<(String, u64)>,
    /// Invariants that fired, with counts.
    pub invariants: BTreeMap<&'static str, u64>,
    /// Structural differences from linux-6.18 that no disagreement was attributed to.
    pub unexercised: Vec<String>,
    /// The first disagreement.
    pub example: Option<Example>,
}

/// Both profiles' expectations of every step, with the caller's state before each step
/// as `base` evolves it (None if the setup cannot be built).
fn both_along(
    p: &KernelProfile,
    base: &KernelProfile,
    env: &Environment,
    case: &Case,
) -> Option<Vec<(Expected, Expected, CallerState)>> {
    let mut sp = CallerState::after_setup(env, &case.setup).ok()?;
    let mut sb = sp.clone();
    let mut out = Vec::new();
    for step in &case.steps {
        let before = sb.clone();
        let pe = predict_step(p, env, &mut sp, step);
        let re = predict_step(base, env, &mut sb, step);
        out.push((pe, re, before));
    }
    Some(out)
}

/// The step to explain: the first violated step if the two profiles expect different things
/// of it, else the first step they differ on at all (an earlier difference that changed the
/// state); with its index.
fn step_to_explain(
    along: Vec<(Expected, Expected, CallerState)>,
    violated: Option<usize>,
) -> Option<(usize, Expected, Expected, CallerState)> {
    let differs = |(_, (pe, re, _)): &(usize, &(Expected, Expected, CallerState))| expectations_differ(pe, re);
    let pick = violated
        .filter(|v| along.get(*v).is_some_and(|(pe, re, _)| expectations_differ(pe, re)))
        .or_else(|| along.iter().enumerate().find(differs).map(|(i, _)| i))?;
    along.into_iter().nth(pick).map(|(pe, re, state)| (pick, pe, re, state))
}

/// The first step on which `p` and `base` expect different observable things (for tests).
#[cfg(test)]
fn first_difference(
    p: &KernelProfile,
    base: &KernelProfile,
    env: &Environment,
    case: &Case,
) -> Option<(usize, Expected, Expected, CallerState)> {
    step_to_explain(both_along(p, base, env, case)?, None)
}

/// The first disagreement of a selftest, shown in full: the profile's and the kernel's
/// expectations (`pe`, `re`) at `step`, the rules that differ, the invariants violated.
fn example_of(
    j: &Judged,
    step: usize,
    (pe, re): (&Expected, &Expected),
    why: &[Difference],
    verdict: &crate::check::CaseVerdict,
) -> Example {
    Example {
        number: j.number,
        case: j.case.to_string(),
        step,
        profile_says: format!("{} (rule {})", pe.result, pe.rule),
        kernel_did: format!("{} (rule {})", re.result, re.rule),
        rules: why.iter().map(ToString::to_string).collect(),
        invariants: unique(verdict.violations.iter().map(|v| v.invariant)),
    }
}

/// Judges every case of `judged` with `p` and explains the disagreements against 6.18.
pub fn evaluate(
    label: String,
    p: &KernelProfile,
    env: &Environment,
    judged: &[Judged],
    differences: &[Difference],
) -> OracleResult {
    let base = &LINUX_6_18;
    let mut rules: BTreeMap<String, u64> = BTreeMap::new();
    let mut invariants: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut exercised: Vec<Difference> = Vec::new();
    let mut example = None;
    let mut disagreeing = 0;
    let mut differing = 0;
    for j in judged {
        let along = both_along(p, base, env, &j.case);
        if along.as_ref().is_some_and(|a| a.iter().any(|(pe, re, _)| expectations_differ(pe, re))) {
            differing += 1;
        }
        let verdict = judge(env, &j.case, &predict(p, env, &j.case), &j.outcome);
        if !verdict.failed() {
            continue;
        }
        disagreeing += 1;
        for v in &verdict.violations {
            *invariants.entry(v.invariant).or_default() += 1;
        }
        let violated = verdict.violations.iter().filter_map(|v| v.step).min();
        let explained = along.and_then(|along| step_to_explain(along, violated));
        let labels = match explained {
            Some((step, pe, re, state)) => {
                let flags = if let Some(Step::Unshare(f)) = j.case.steps.get(step) { *f } else { RawFlags(0) };
                let why = attribute(p, base, env, &state, flags, &pe, &re);
                if example.is_none() {
                    example = Some(example_of(j, step, (&pe, &re), &why, &verdict));
                }
                let labels: Vec<String> = if why.is_empty() {
                    vec![format!("(a consequence of earlier state: rule {} vs {})", pe.rule, re.rule)]
                } else {
                    why.iter().map(ToString::to_string).collect()
                };
                exercised.extend(why);
                labels
            }
            None => vec!["(identical predictions: the kernel disagrees with 6.18 too)".to_string()],
        };
        for label in labels {
            *rules.entry(label).or_default() += 1;
        }
    }
    let mut rules: Vec<(String, u64)> = rules.into_iter().collect();
    rules.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    OracleResult {
        label,
        describes: p.describes.to_string(),
        sources: p.sources,
        disagrees: disagreeing > 0,
        cases_judged: judged.len() as u64,
        disagreeing_cases: disagreeing,
        differing_predictions: differing,
        rules,
        invariants,
        unexercised: differences.iter().filter(|d| !exercised.contains(d)).map(ToString::to_string).collect(),
        example,
    }
}

/// The historical profiles (spec §6) as oracles.
pub fn historical(env: &Environment, judged: &[Judged]) -> Vec<OracleResult> {
    HISTORICAL.iter().map(|p| evaluate(p.name.to_string(), p, env, judged, &differences(p, &LINUX_6_18))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::profile::{LINUX_2_6_16, LINUX_3_11, LINUX_6_18_WITHOUT_UNSHARE_FS_FIX};

    #[test]
    fn the_differences_of_each_historical_profile_are_named() {
        let d = |p| differences(p, &LINUX_6_18).iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(d(&LINUX_6_18), Vec::<String>::new());
        assert_eq!(d(&LINUX_6_18_WITHOUT_UNSHARE_FS_FIX), vec!["NEWNS keeps an unshared fs_struct"]);
        let old = d(&LINUX_3_11);
        for want in
            ["row mm-users", "NEWPID => THREAD", "mask without NEWTIME", "no row mnt-ucount", "row pid-depth-einval"]
        {
            assert!(old.iter().any(|x| x == want), "{want} not in {old:?}");
        }
        let oldest = d(&LINUX_2_6_16);
        for want in ["row thread-always-einval", "unknown bits ignored", "THREAD => VM", "mask without NEWUSER"] {
            assert!(oldest.iter().any(|x| x == want), "{want} not in {oldest:?}");
        }
        assert!(!oldest.iter().any(|x| x == "no row unknown-bit"), "{oldest:?}");
    }

    #[test]
    fn attribution_names_the_rule() {
        let env = Environment::reference();
        let one = |p: &KernelProfile, flags: u64, threads: u8| {
            let mut case = Case::unshare(&[flags]);
            case.setup.threads = threads;
            let (step, pe, re, state) = first_difference(p, &LINUX_6_18, &env, &case).expect("the profiles differ");
            let why: Vec<String> = attribute(p, &LINUX_6_18, &env, &state, RawFlags(flags), &pe, &re)
                .iter()
                .map(ToString::to_string)
                .collect();
            format!("{} @{step}", why.join(" + "))
        };
        use crate::abi::flags::bits::*;
        assert_eq!(one(&LINUX_2_6_16, THREAD, 0), "row thread-always-einval @0");
        assert_eq!(one(&LINUX_2_6_16, 1 << 40, 0), "unknown bits ignored @0");
        assert_eq!(one(&LINUX_2_6_16, NEWUTS, 0), "mask without NEWUTS @0");
        assert_eq!(one(&LINUX_3_11, NEWPID, 1), "NEWPID => THREAD + THREAD => VM + row mm-users @0");
        assert_eq!(one(&LINUX_3_11, NEWTIME, 0), "mask without NEWTIME @0");
        assert_eq!(one(&LINUX_6_18_WITHOUT_UNSHARE_FS_FIX, NEWNS, 0), "NEWNS keeps an unshared fs_struct @0");
        assert!(first_difference(&LINUX_6_18, &LINUX_6_18, &env, &Case::unshare(&[NEWNS])).is_none());
    }
}
