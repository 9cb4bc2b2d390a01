//! The invariants about what unshare shares and unshares (the table of `invariants.rs` lists
//! them): FILES, FS, VM, SIGHAND, THREAD and SYSVSEM, what kcmp shows of them, and the flags
//! that change nothing.

use crate::abi::errno::{CallResult, Errno};
use crate::abi::flags::bits;
use crate::exec::observe::IntOrErrno;
use crate::model::SemExpect;

use super::step::{StepCtx, identity_diff, kcmp_problems, verdict};

/// Flags that never create a namespace or change credentials.
const NOOP_FLAGS: u64 = bits::THREAD | bits::SIGHAND | bits::VM | bits::FS | bits::FILES | bits::SYSVSEM;

pub(super) fn noop_flags_change_nothing(ctx: &StepCtx) -> Option<Result<(), String>> {
    if !ctx.is_unshare || ctx.flags.0 & !NOOP_FLAGS != 0 || !ctx.observed.result.is_success() {
        return None;
    }
    let diff = identity_diff(ctx.before, &ctx.observed.after);
    Some(if diff.is_empty() { Ok(()) } else { Err(format!("changed: {}", diff.join(", "))) })
}

pub(super) fn kcmp_matches_model(ctx: &StepCtx) -> Option<Result<(), String>> {
    if ctx.expected.siblings.is_empty() {
        return None;
    }
    verdict(kcmp_problems(ctx, &[0, 1, 2, 3, 4], true))
}

pub(super) fn effective(ctx: &StepCtx, bit: u64) -> bool {
    ctx.is_unshare && ctx.expected.effective_flags.intersects(bit)
}

pub(super) fn files_private_after_unshare(ctx: &StepCtx) -> Option<Result<(), String>> {
    if !(effective(ctx, bits::FILES) && ctx.observed.result.is_success() && ctx.expected.before.files) {
        return None;
    }
    let mut problems = kcmp_problems(ctx, &[0], true);
    if ctx.observed.after.fd_flags != ctx.before.fd_flags {
        problems.push(format!("FD_CLOEXEC not kept: {:?} -> {:?}", ctx.before.fd_flags, ctx.observed.after.fd_flags));
    }
    verdict(problems)
}

pub(super) fn fs_private_after_unshare(ctx: &StepCtx) -> Option<Result<(), String>> {
    if !(effective(ctx, bits::FS) && ctx.observed.result.is_success() && ctx.expected.before.fs) {
        return None;
    }
    let mut problems = kcmp_problems(ctx, &[1], false);
    if ctx.observed.after.cwd != ctx.before.cwd || ctx.observed.after.umask != ctx.before.umask {
        problems.push("the private copy does not keep cwd and umask".to_string());
    }
    verdict(problems)
}

pub(super) fn newns_and_newuser_imply_fs(ctx: &StepCtx) -> Option<Result<(), String>> {
    let implied = ctx.flags.intersects(bits::NEWNS | bits::NEWUSER) && !ctx.flags.intersects(bits::FS);
    if !(ctx.is_unshare && implied && ctx.observed.result.is_success() && ctx.expected.before.fs) {
        return None;
    }
    verdict(kcmp_problems(ctx, &[1], false))
}

pub(super) fn vm_unshare_einval_when_shared(ctx: &StepCtx) -> Option<Result<(), String>> {
    if !effective(ctx, bits::VM) {
        return None;
    }
    let (want, got) = (ctx.expected.result, ctx.observed.result);
    let mut problems = Vec::new();
    if want != got {
        problems.push(format!(
            "VM with mm shared={} threads={}: expected {want}, got {got}",
            ctx.expected.before.mm, ctx.expected.before.threads
        ));
    }
    if got.is_success() {
        problems.extend(kcmp_problems(ctx, &[2], false));
    }
    verdict(problems)
}

pub(super) fn sighand_einval_when_shared(ctx: &StepCtx) -> Option<Result<(), String>> {
    let b = ctx.expected.before;
    if !(effective(ctx, bits::SIGHAND | bits::VM) && (b.sighand || b.threads > 1)) {
        return None;
    }
    Some(match ctx.observed.result {
        CallResult::Failure(Errno::EINVAL) => Ok(()),
        other => Err(format!("SIGHAND with the sighand struct shared: expected EINVAL, got {other}")),
    })
}

pub(super) fn thread_einval_when_multithreaded(ctx: &StepCtx) -> Option<Result<(), String>> {
    if !(effective(ctx, bits::THREAD | bits::SIGHAND | bits::VM) && ctx.expected.before.threads > 1) {
        return None;
    }
    Some(match ctx.observed.result {
        CallResult::Failure(Errno::EINVAL) => Ok(()),
        other => Err(format!("{} threads: expected EINVAL, got {other}", ctx.expected.before.threads)),
    })
}

pub(super) fn sysvsem_undo_detached(ctx: &StepCtx) -> Option<Result<(), String>> {
    let b = ctx.expected.before;
    if !(effective(ctx, bits::SYSVSEM | bits::NEWIPC)
        && ctx.observed.result.is_success()
        && (b.undo_private || b.undo_shared))
    {
        return None;
    }
    // Without kcmp (probed at start) only the semaphore's value is judged.
    let mut problems = if ctx.env.kcmp { kcmp_problems(ctx, &[4], false) } else { Vec::new() };
    let got = ctx.observed.after.semval;
    let ok = match ctx.expected.semval {
        SemExpect::NoSemaphore => got.is_none(),
        SemExpect::Value(v) => got == Some(IntOrErrno::Value(v)),
        SemExpect::Error(e) => got == Some(IntOrErrno::Error(e)),
    };
    if !ok {
        problems.push(format!("semaphore after the call: expected {:?}, got {got:?}", ctx.expected.semval));
    }
    verdict(problems)
}

pub(super) fn fs_struct_kept_unless_copied(ctx: &StepCtx) -> Option<Result<(), String>> {
    let e = ctx.expected;
    if !(ctx.is_unshare && ctx.observed.result.is_success() && e.result.is_success() && e.fs_struct_kept) {
        return None;
    }
    // kcmp orders two objects by their (obfuscated) addresses: the value against a sibling
    // whose fs_struct stays put changes only if ours was replaced. Errors (a new user ns) say nothing.
    let pairs =
        ctx.before.siblings.iter().zip(&ctx.observed.after.siblings).enumerate().filter_map(|(k, (b, a))| {
            match (b.kcmp[1], a.kcmp[1]) {
                (IntOrErrno::Value(x), IntOrErrno::Value(y)) => Some((k, x, y)),
                _ => None,
            }
        });
    let mut compared = false;
    let mut problems = Vec::new();
    for (k, x, y) in pairs {
        compared = true;
        if x != y {
            let kind = e.siblings.get(k).map_or("?", |s| s.kind.name());
            problems.push(format!(
                "kcmp FS with the {kind} sibling changed {x} -> {y}: the fs_struct was replaced, but the model keeps it \
                 (effective flags {})",
                e.effective_flags
            ));
        }
    }
    if compared { verdict(problems) } else { None }
}
