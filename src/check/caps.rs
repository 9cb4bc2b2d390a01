//! The invariants of issue 16 class 5: capabilities other than CAP_SYS_ADMIN never decide
//! unshare, and an unshare made by a thread other than the main one changes that thread only.

#![deny(missing_docs)]

use crate::exec::observe::StepObservation;

use super::step::{StepCtx, state_diff, verdict};

/// Bits of CAP_SYS_ADMIN.
const SYS_ADMIN_BIT: u64 = 1 << crate::case::caps::CAP_SYS_ADMIN;

/// `caps-only-sys-admin-decides`: an unshare made while capabilities other than CAP_SYS_ADMIN
/// (of those the executor has) are missing from the effective set gets the result the model
/// computes from CAP_SYS_ADMIN alone.
pub fn only_sys_admin_decides(ctx: &StepCtx) -> Option<Result<(), String>> {
    let missing = ctx.env.baseline.cap_eff & !ctx.before.cap_eff & !SYS_ADMIN_BIT;
    if !ctx.is_unshare || missing == 0 {
        return None;
    }
    let (want, got) = (ctx.expected.result, ctx.observed.result);
    let sys_admin = if ctx.before.cap_eff & SYS_ADMIN_BIT != 0 { "with" } else { "without" };
    Some(if want == got {
        Ok(())
    } else {
        Err(format!(
            "capabilities {missing:#x} other than CAP_SYS_ADMIN were missing ({sys_admin} CAP_SYS_ADMIN, CapEff {:#x}); \
             the model, which reads CAP_SYS_ADMIN only, expected {want} (rule {}), got {got}",
            ctx.before.cap_eff, ctx.expected.rule
        ))
    })
}

/// `thread-call-changes-only-the-thread`: the thread of a thread_call step reports the step's
/// result, its own namespaces change as the model says for that call, its credentials are the
/// main thread's, and the main thread changes in nothing but its thread count (one more).
pub fn changes_only_the_thread(ctx: &StepCtx) -> Option<Result<(), String>> {
    let want = ctx.expected.thread_call.as_ref()?;
    let Some(child) = &ctx.observed.child else {
        return Some(Err("the thread of the thread_call step did not report".into()));
    };
    let mut problems = Vec::new();
    let got = ctx.observed.result;
    if got != want.result || (child.returned == 0) != got.is_success() {
        problems.push(format!(
            "the thread's unshare({}) should give {} (rule {}); the step gave {got}, the thread returned {}",
            want.effective_flags, want.result, want.rule, child.returned
        ));
    }
    let mut thread_view = ctx.expected.clone();
    thread_view.links = want.links;
    let observed = StepObservation { result: got, after: child.state.clone(), child: None };
    let thread_ctx = StepCtx { expected: &thread_view, observed: &observed, ..*ctx };
    problems.extend(super::step::link_problems(&thread_ctx).into_iter().map(|p| format!("thread: {p}")));
    let (b, t) = (ctx.before, &child.state);
    if (t.uid, t.euid, t.gid, t.egid, t.cap_eff) != (b.uid, b.euid, b.gid, b.egid, b.cap_eff) {
        problems.push(format!(
            "the thread's credentials should be the main thread's (uid {} gid {} CapEff {:#x}), got uid {} gid {} CapEff {:#x}",
            b.uid, b.gid, b.cap_eff, t.uid, t.gid, t.cap_eff
        ));
    }
    let mut main_after = ctx.observed.after.clone();
    if main_after.threads == b.threads + 1 {
        main_after.threads = b.threads;
    } else {
        problems.push(format!("the main thread should see one thread more: {} -> {}", b.threads, main_after.threads));
    }
    // The new thread gives the caller an undo list (pthread_create passes CLONE_SYSVSEM), which
    // kcmp(KCMP_SYSVSEM) against a sibling shows: kcmp-matches-model judges those readings.
    main_after.siblings.clone_from(&b.siblings);
    problems.extend(state_diff(b, &main_after).into_iter().map(|d| format!("main thread: {d}")));
    verdict(problems)
}

/// The caps rows of spec §3's table (`invariants::PROVOKABLE`) that cannot come up in `env`,
/// with the reason the report gives. Where uid 65534 has no mapping in the executor's user
/// namespace (a run as uid 65534 or any other single mapped uid), every `keepcaps-nobody`
/// fails with EINVAL at `make_kuid`, before the CAP_SETUID check could refuse it.
pub fn caps_row_not_here(rule: &str, env: &crate::env::Environment) -> Option<&'static str> {
    (rule == crate::model::caps::SETUID_NEEDS_CAP && !env.nobody_mapped).then_some(
        "uid 65534 has no mapping in the executor's user namespace, so setresuid(65534) fails with EINVAL first",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setresuid_row_is_not_here_where_nobody_is_unmapped() {
        let mut env = crate::env::Environment::reference();
        let rule = crate::model::caps::SETUID_NEEDS_CAP;
        assert_eq!(caps_row_not_here(rule, &env), None);
        env.nobody_mapped = false;
        assert!(caps_row_not_here(rule, &env).is_some_and(|why| why.contains("EINVAL")));
        assert_eq!(caps_row_not_here(crate::model::caps::NOBODY_UNMAPPED, &env), None);
        assert_eq!(caps_row_not_here(crate::model::caps::BOUND_NEEDS_SETPCAP, &env), None);
    }
}
