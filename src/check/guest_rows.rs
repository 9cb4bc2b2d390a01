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

/// The guest-only rows of spec §3's table (`invariants::PROVOKABLE`) and the `*-missing` rows:
/// why `rule` cannot be provoked in `env`, if it cannot. A run on a host neither generates nor
/// runs guest-only cases; a guest without fault injection generates no fail-nth case; a kernel
/// with every namespace type has no `*-missing` condition.
pub fn guest_row_not_here(rule: &str, env: &crate::env::Environment) -> Option<&'static str> {
    match rule {
        "files-over-nr-open" | "fault-injected-enomem" if env.guest.is_none() => {
            Some("guest-only, and this is not a throwaway qemu guest")
        }
        "fault-injected-enomem" if env.guest.as_ref().is_some_and(|g| !g.fault_injection) => {
            Some("this guest's kernel has no fault injection set up")
        }
        r if MISSING_RULES.contains(&r) && !guest_type_missing(r, env) => Some("this kernel has that namespace type"),
        _ => None,
    }
}

/// The kernel lacks the namespace type of a `*-missing` rule (its `/proc/self/ns` link is absent).
fn guest_type_missing(rule: &str, env: &crate::env::Environment) -> bool {
    let kind = rule.trim_end_matches("-missing");
    !env.ns_links.iter().any(|l| l.file_name() == kind)
}

/// The report's `guest:` line: whether guest-only cases are generated and run here.
pub fn guest_line(guest: Option<&crate::env::guest::GuestKernel>) -> String {
    match guest {
        None => "no (not a throwaway qemu guest: guest-only cases are skipped, never generated)".to_string(),
        Some(g) => format!(
            "throwaway qemu guest (fs.nr_open {} at start; fault injection {}): guest-only cases generated and run",
            g.nr_open,
            if g.fault_injection { "ready" } else { "not set up, fail-nth cases skipped" }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::Environment;
    use crate::env::guest::GuestKernel;

    #[test]
    fn guest_rows_say_why_they_cannot_be_provoked() {
        let mut env = Environment::reference();
        env.guest = None;
        assert!(guest_row_not_here("files-over-nr-open", &env).is_some());
        assert!(guest_row_not_here("user-depth", &env).is_none());
        assert_eq!(guest_row_not_here("uts-missing", &env), Some("this kernel has that namespace type"));
        env.guest = Some(GuestKernel { nr_open: 1_048_576, fault_injection: false });
        assert!(guest_row_not_here("files-over-nr-open", &env).is_none());
        assert_eq!(
            guest_row_not_here("fault-injected-enomem", &env),
            Some("this guest's kernel has no fault injection set up")
        );
        env.guest = Some(GuestKernel { nr_open: 1_048_576, fault_injection: true });
        assert!(guest_row_not_here("fault-injected-enomem", &env).is_none());
        env.ns_links.retain(|l| l.file_name() != "uts");
        assert!(guest_row_not_here("uts-missing", &env).is_none());
        assert!(guest_line(None).starts_with("no "));
        assert!(guest_line(env.guest.as_ref()).contains("fault injection ready"));
    }
}
