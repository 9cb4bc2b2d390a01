//! Named invariants of issue 16's kernel-wide classes (docs/guest-only.md):
//! EMFILE under a lowered `fs.nr_open`, and EINVAL for a namespace type the
//! kernel was built without. Both apply where the model's deciding rule says
//! so, and ask for the errno and an unchanged state.

use crate::abi::errno::{CallResult, Errno};

use super::step::StepCtx;

/// The rules of `checks` for namespace types a kernel may lack.
const MISSING_RULES: &[&str] =
    &["user-missing", "mnt-missing", "uts-missing", "ipc-missing", "pid-missing", "net-missing", "time-missing"];

fn errno_and_unchanged(ctx: &StepCtx, want: Errno, what: &str) -> Result<(), String> {
    match ctx.observed.result {
        CallResult::Failure(e) if e == want => super::step::unchanged_state(ctx),
        other => Err(format!("{what}: expected {want}, got {other}")),
    }
}

/// `files-emfile-over-nr-open`.
pub fn files_emfile_over_nr_open(ctx: &StepCtx) -> Option<Result<(), String>> {
    (ctx.is_unshare && ctx.expected.rule == "files-over-nr-open").then(|| {
        errno_and_unchanged(ctx, Errno::EMFILE, "the shared fd table is larger than fs.nr_open allows to copy")
    })
}

/// `missing-namespace-type-einval`.
pub fn missing_namespace_type_einval(ctx: &StepCtx) -> Option<Result<(), String>> {
    (ctx.is_unshare && MISSING_RULES.contains(&ctx.expected.rule)).then(|| {
        errno_and_unchanged(
            ctx,
            Errno::EINVAL,
            &format!("rule {}: this kernel has no such namespace type", ctx.expected.rule),
        )
    })
}
