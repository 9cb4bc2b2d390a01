//! What the measured environment means for a prediction, where it is not the
//! plain kernel of the spec: a count limit within reach, an unknown
//! pid-namespace level or user-namespace depth, a seccomp filter or LSM rule
//! that refuses some unshare bits, a missing clone3. Pure.
//!
//! Two kinds of answer. A restriction that answers the same way every time (a
//! filter returning EPERM for NEWUSER, clone3 returning ENOSYS) is predicted:
//! the model says that errno, with a rule id of its own (`seccomp-filter`,
//! `clone3-missing`). A fact that cannot be known (a count limit within reach,
//! whose namespaces the kernel frees asynchronously; a level no probe could
//! measure) makes the result unknowable, and the case is skipped with the
//! reason, never judged against a guess.

#![deny(missing_docs)]

use crate::abi::errno::{CallResult, Errno};
use crate::abi::flags::RawFlags;
#[cfg(test)]
use crate::abi::flags::bits;
use crate::case::{NsType, Privilege, Setup};
use crate::env::Environment;

use super::checks::{Check, Ctx};
use super::profile::KernelProfile;
use super::state::CallerState;

/// Rule id of a result decided by a seccomp filter or LSM rule found by the probes.
pub const FILTER_RULE: &str = "seccomp-filter";
/// Rule id of a clone3 step where clone3 answers ENOSYS.
pub const CLONE3_MISSING_RULE: &str = "clone3-missing";

/// The rules of results decided by a restriction rather than by the kernel's own checks.
pub const RESTRICTION_RULES: &[&str] = &[FILTER_RULE, CLONE3_MISSING_RULE];

/// The invariants still judged for a step a restriction decided: the model's errno, and that
/// the refused call changed nothing. The others assert the kernel's own checks, which did
/// not run.
pub const JUDGED_UNDER_RESTRICTION: &[&str] =
    &["errno-matches-model", "failure-changes-nothing", "kcmp-matches-model", "success-changes-exactly-predicted"];

/// Which limit a check row reads: its namespace type, and depth (true) or count (false).
fn row_limit(id: &str) -> Option<(NsType, bool)> {
    let (kind, rest) = id.split_once('-')?;
    let depth = match rest {
        "depth" | "depth-eusers" | "depth-einval" => true,
        "ucount" => false,
        _ => return None,
    };
    NsType::ALL.into_iter().find(|t| t.name() == kind).map(|t| (t, depth))
}

/// Why the number of `t` namespaces makes a result unknowable here, if it does. A limit of
/// exactly 0 in the executor's own user namespace stays modelled (it cannot move).
pub fn count_reason(env: &Environment, t: NsType) -> Option<String> {
    if env.max_namespaces(t.name()) == Some(0) {
        return None;
    }
    let room = env.headroom.count_in_reach(t.name())?;
    let stop = room.stopped_by.map_or_else(|| "its cap".to_string(), |e| Errno(e).to_string());
    Some(format!(
        "a limit on the number of {} namespaces is within reach here (the probe made {} before {stop}); the kernel \
         frees namespaces asynchronously, so whether this {} gets ENOSPC cannot be predicted",
        t.name(),
        room.made,
        RawFlags(t.flag())
    ))
}

/// Why the row's outcome cannot be known in this state, if it cannot: a depth row whose
/// level is unknown, or only bounded and firing (the room may be larger than the probe could
/// show), or a count row of a type whose count limit is within reach.
fn row_unknowable(row: &Check, ctx: &Ctx) -> Option<String> {
    let (t, depth) = row_limit(row.id)?;
    if !ctx.has(t.flag()) {
        return None;
    }
    if !depth {
        return count_reason(ctx.env, t);
    }
    let (level, exact, room, what) = match t {
        NsType::Pid => (ctx.state.pid_level, ctx.env.headroom.pid_exact(), ctx.env.headroom.pid_nested, "pid"),
        NsType::User => (ctx.state.userns_depth, ctx.env.headroom.user_exact(), ctx.env.headroom.user_nested, "user"),
        _ => return None,
    };
    let room = room.map_or_else(
        || "not measured".to_string(),
        |r| {
            format!(
                "at least {} ({} after that)",
                r.made,
                r.stopped_by.map_or("no refusal".into(), |e| Errno(e).to_string())
            )
        },
    );
    if level.is_none() || (!exact && (row.cond)(ctx)) {
        return Some(format!(
            "the room for nested {what} namespaces here is {room}, not the kernel's own limit, so whether {} \
             reaches the depth limit cannot be predicted",
            RawFlags(t.flag())
        ));
    }
    // A count limit within reach also bounds how deep the probe could nest.
    count_reason(ctx.env, t)
}

/// The first reason, among the rows the kernel passes up to the deciding one (at index
/// `decided_at`, or the table's length), why the result cannot be known.
pub fn unknowable(table: &[Check], ctx: &Ctx, decided_at: usize) -> Option<String> {
    let upto = decided_at.saturating_add(1).min(table.len());
    table[..upto].iter().find_map(|row| row_unknowable(row, ctx))
}

/// Whether the probes can say anything about a restriction: a seccomp filter or an LSM rule
/// on user namespaces was found, and the single-bit probes ran.
fn restricted(env: &Environment) -> bool {
    !env.call_probes.unshare_bits.is_empty()
}

/// The bits a filter or LSM rule refuses, with the errno: every single-bit probe that failed
/// with an errno the kernel's own rules do not give from the executor's state. ENOSPC is left
/// out (a count limit, not a filter). A probe that succeeded where the kernel refuses is not a
/// restriction but a lie, and stays a violation.
pub fn filter_rules(profile: &KernelProfile, env: &Environment) -> Vec<(u64, Errno)> {
    if !restricted(env) {
        return Vec::new();
    }
    let Ok(base) = CallerState::after_setup(env, &Setup::default()) else { return Vec::new() };
    env.call_probes
        .unshare_bits
        .iter()
        .filter(|(_, r)| *r != 0 && *r != libc::ENOSPC)
        .filter_map(|&(bit, r)| {
            let flags = RawFlags(1u64 << bit);
            let mut state = base.clone();
            let kernel = super::decide_kernel(profile, env, &mut state, flags).result;
            (kernel != CallResult::Failure(Errno(r))).then_some((flags.0, Errno(r)))
        })
        .collect()
}

/// What a filter found by the probes does with `unshare(flags)` (it sees the raw word, before
/// any implication): `None` if no refused bit is in it, the errno if every refused bit in it
/// gives the same one, an unknowable reason if they differ (the filter's order decides).
pub fn filtered(profile: &KernelProfile, env: &Environment, flags: RawFlags) -> Option<Result<Errno, String>> {
    let hits: Vec<(u64, Errno)> =
        filter_rules(profile, env).into_iter().filter(|(bit, _)| flags.intersects(*bit)).collect();
    let (_, first) = *hits.first()?;
    if hits.iter().all(|(_, e)| *e == first) {
        Some(Ok(first))
    } else {
        Some(Err(format!(
            "the filter found here refuses several bits of {flags} with different errnos ({}); which one it returns \
             depends on its order",
            hits.iter().map(|(b, e)| format!("{}: {e}", RawFlags(*b))).collect::<Vec<_>>().join(", ")
        )))
    }
}

/// Why the setup cannot be built predictably here (a filter refuses a namespace it makes, or a
/// count limit it needs is within reach), if so.
pub fn setup_reason(profile: &KernelProfile, env: &Environment, setup: &Setup) -> Option<String> {
    let nests_pid = setup.pidns_level.is_some_and(|t| env.pidns_level.is_some_and(|l| u32::from(t) > l));
    let nests_user = setup.userns_depth.is_some_and(|t| env.userns_depth.is_some_and(|d| u32::from(t) > d));
    let needs_user =
        nests_user || setup.limit_zero.is_some() || setup.foreign_pidns || setup.privilege == Privilege::UserNs;
    let needs_pid = nests_pid || setup.foreign_pidns;
    let mut needs = Vec::new();
    if needs_user {
        needs.push(NsType::User);
    }
    if needs_pid {
        needs.push(NsType::Pid);
    }
    for t in needs {
        if let Some(Ok(e) | Err(e)) = filtered(profile, env, RawFlags(t.flag())).map(|r| r.map(|e| e.to_string())) {
            return Some(format!("this setup needs {}, which the filter found here refuses ({e})", RawFlags(t.flag())));
        }
        if let Some(reason) = count_reason(env, t) {
            return Some(format!("this setup needs {}: {reason}", RawFlags(t.flag())));
        }
    }
    None
}

/// Why unshare through the i386 entry (`int $0x80`) cannot be predicted here, if so: the
/// entry is missing, or a seccomp filter is in force. A filter sees such a call with the i386
/// audit architecture and the i386 call number (310, not 272), so what the 64-bit probes found
/// about the filter says nothing about this entry.
pub fn int80_reason(env: &Environment) -> Option<String> {
    if let Some(missing) = env.call_probes.int80_missing() {
        return Some(missing);
    }
    (env.seccomp_mode == 2).then(|| {
        "a seccomp filter is in force here; it sees unshare through int $0x80 as another architecture's call, \
         which the 64-bit probes say nothing about"
            .to_string()
    })
}

/// clone3 answers ENOSYS here: every clone3 step fails with it, before the kernel reads its
/// arguments.
pub fn clone3_missing(env: &Environment) -> bool {
    env.call_probes.clone3_missing()
}

/// The bits of the spec's namespace flags, for tests.
#[cfg(test)]
const NS_BITS: u64 = bits::NEWUSER | bits::NEWPID;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::Room;

    const P: &KernelProfile = &super::super::profile::LINUX_6_18;

    #[test]
    fn every_depth_and_count_row_is_recognised() {
        for table in
            [super::super::checks::CHECKS_6_18, super::super::checks::CHECKS_3_11, super::super::clone3::CLONE3_CHECKS]
        {
            for row in table {
                let named = row.id.ends_with("-ucount") || row.id.contains("-depth");
                assert_eq!(row_limit(row.id).is_some(), named, "{}", row.id);
            }
        }
    }

    #[test]
    fn a_count_within_reach_makes_creation_unknowable() {
        let mut env = Environment::reference();
        env.headroom.flat.insert("net".into(), Room { made: 1, stopped_by: Some(libc::ENOSPC) });
        let case = crate::case::Case::unshare(&[bits::NEWNET]);
        assert!(matches!(super::super::predict(P, &env, &case), super::super::Prediction::Skip { .. }));
        // A call refused before the count is read stays predictable.
        let case = crate::case::Case::unshare(&[bits::NEWNET | 1]);
        assert!(matches!(super::super::predict(P, &env, &case), super::super::Prediction::Steps { .. }));
        let _ = NS_BITS;
    }

    #[test]
    fn a_filter_is_read_from_the_probes() {
        let mut env = Environment::reference();
        env.call_probes.unshare_bits = (0..64u8)
            .map(|b| {
                let f = 1u64 << b;
                let r = if f == bits::NEWUSER {
                    libc::EPERM
                } else if f & P.valid_mask == 0 {
                    libc::EINVAL
                } else {
                    0
                };
                (b, r)
            })
            .collect();
        assert_eq!(filter_rules(P, &env), vec![(bits::NEWUSER, Errno::EPERM)]);
        assert_eq!(filtered(P, &env, RawFlags(bits::NEWUSER | bits::NEWNET)), Some(Ok(Errno::EPERM)));
        assert_eq!(filtered(P, &env, RawFlags(bits::NEWNET)), None);
        let setup = Setup { privilege: Privilege::UserNs, ..Setup::default() };
        assert!(setup_reason(P, &env, &setup).is_some_and(|r| r.contains("refuses")));
    }

    #[test]
    fn an_unknown_pid_level_makes_newpid_unknowable() {
        let env = Environment { pidns_level: None, ..Environment::reference() };
        let case = crate::case::Case::unshare(&[bits::NEWPID]);
        assert!(matches!(super::super::predict(P, &env, &case), super::super::Prediction::Skip { .. }));
        let case = crate::case::Case::unshare(&[bits::NEWUTS]);
        assert!(matches!(super::super::predict(P, &env, &case), super::super::Prediction::Steps { .. }));
    }
}
