//! The `flags` table: for every bit 0..63, its name, whether unshare(2) and clone3(2) accept
//! it, what it means to each, the kernel that introduced it, and what the running kernel does
//! with it alone. Everything but the last column comes from [`crate::abi::flags::FLAGS`]; the last
//! column runs `unshare(bit)` and `clone3(bit)` through the executor and judges them against
//! the model like any other case.

use std::fmt::Write;
use std::time::Duration;

use crate::abi::errno::CallResult;
use crate::abi::flags::{CLONE3_VALID_MASK, CSIGNAL, FLAGS, FlagSpec, KernelVersion, RawFlags, UNSHARE_VALID_MASK};
use crate::case::{Case, Setup, Step};
use crate::command::pipeline::{Executed, RunConfig, execute_case};
use crate::exec::observe::Outcome;
use crate::exec::{ExecError, Executor};
use crate::model::{KernelProfile, Prediction};

/// One bit of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Bit number.
    pub bit: u32,
    /// `CLONE_` name, or a description of an unnamed bit.
    pub name: &'static str,
    /// unshare's mask lets it through.
    pub unshare: bool,
    /// clone3's mask lets it through.
    pub clone3: bool,
    /// What unshare does with it.
    pub unshare_meaning: &'static str,
    /// What clone3 (and legacy clone, where it differs) does with it.
    pub clone3_meaning: &'static str,
    /// The releases that introduced it: unshare, legacy clone, clone3.
    pub since: [Option<KernelVersion>; 3],
}

impl Row {
    /// True if unshare and clone3 treat the bit differently (acceptance or meaning).
    pub fn differs(&self) -> bool {
        let kind = FLAGS.iter().find(|f| f.bit == 1u64 << self.bit).map(|f| f.kind);
        self.unshare != self.clone3
            || (self.unshare && !matches!(kind, Some(crate::abi::flags::FlagKind::Namespace)))
            || matches!(self.name, "NEWNS" | "NEWUSER" | "NEWPID" | "NEWTIME" | "NEWIPC")
    }
}

const REJECTED: &str = "rejected: EINVAL";

fn named(f: &FlagSpec, bit: u32) -> Row {
    Row {
        bit,
        name: f.name,
        unshare: f.bit & UNSHARE_VALID_MASK != 0,
        clone3: f.bit & CLONE3_VALID_MASK != 0,
        unshare_meaning: if f.unshare_since.is_some() { f.doc } else { REJECTED },
        clone3_meaning: f.clone.doc,
        since: [f.unshare_since, f.clone.clone_since, f.clone.clone3_since],
    }
}

/// The 64 rows, derived from the flag table.
pub fn rows() -> Vec<Row> {
    (0..64u32)
        .map(|bit| {
            let value = 1u64 << bit;
            if let Some(f) = FLAGS.iter().find(|f| f.bit == value) {
                return named(f, bit);
            }
            let (name, clone3_meaning) = if value & CSIGNAL != 0 {
                (
                    "(CSIGNAL)",
                    "rejected: EINVAL (clone3 takes the exit signal in clone_args.exit_signal); legacy clone reads \
                     the low byte as the child's exit signal",
                )
            } else {
                ("(unassigned)", REJECTED)
            };
            Row {
                bit,
                name,
                unshare: false,
                clone3: false,
                unshare_meaning: REJECTED,
                clone3_meaning,
                since: [None, None, None],
            }
        })
        .collect()
}

/// What this kernel did with one bit alone, next to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// unshare(bit): the result, or what went wrong running it.
    pub unshare: Result<CallResult, String>,
    /// clone3(bit).
    pub clone3: Result<CallResult, String>,
    /// unshare as predicted and no invariant violated.
    pub unshare_ok: bool,
    /// clone3 as predicted and no invariant violated.
    pub clone3_ok: bool,
}

fn run_one(
    ex: &mut Executor,
    profile: &'static KernelProfile,
    step: Step,
) -> Result<(Result<CallResult, String>, bool), ExecError> {
    let case = Case { setup: Setup::default(), steps: vec![step] };
    let config = RunConfig::one_at_a_time(profile, Duration::from_secs(10), Vec::new());
    let Executed { prediction, outcome, verdict, .. } = execute_case(ex, &config, &case)?;
    let Prediction::Steps { steps, .. } = &prediction else {
        return Ok((Err("skipped by the model".into()), false));
    };
    let Some(outcome) = outcome else {
        return Ok((Err(verdict.broken.unwrap_or_else(|| "not run".into())), false));
    };
    let ok = verdict.violations.is_empty() && verdict.broken.is_none();
    Ok(match &outcome {
        Outcome::Completed { trace } => match trace.steps.first() {
            Some(s) => (Ok(s.result), ok && steps.first().is_some_and(|e| e.result == s.result)),
            None => (Err("no step reported".into()), false),
        },
        other => (Err(other.kind().to_string()), false),
    })
}

/// Runs `unshare(1 << bit)` and `clone3(1 << bit)` for every row.
///
/// # Errors
/// When the executor cannot run a case.
pub fn observe(ex: &mut Executor, profile: &'static KernelProfile, rows: &[Row]) -> Result<Vec<Observed>, ExecError> {
    rows.iter()
        .map(|r| {
            let f = RawFlags(1u64 << r.bit);
            let (unshare, unshare_ok) = run_one(ex, profile, Step::Unshare(f))?;
            let (clone3, clone3_ok) = run_one(ex, profile, Step::Clone3(f))?;
            Ok(Observed { unshare, clone3, unshare_ok, clone3_ok })
        })
        .collect()
}

fn version(v: Option<KernelVersion>) -> String {
    match v {
        None => "-".into(),
        Some((a, b, 0)) => format!("{a}.{b}"),
        Some((a, b, c)) => format!("{a}.{b}.{c}"),
    }
}

fn since(r: &Row) -> String {
    format!("{} / {} / {}", version(r.since[0]), version(r.since[1]), version(r.since[2]))
}

fn result(r: &Result<CallResult, String>, ok: bool) -> String {
    let text = match r {
        Ok(CallResult::Success) => "ok".to_string(),
        Ok(CallResult::Failure(e)) => e.to_string(),
        Err(why) => why.clone(),
    };
    if ok { text } else { format!("{text} (!)") }
}

/// What the "observed here" column shows for one row.
pub fn observed_cell(o: &Observed) -> String {
    format!("{} / {}", result(&o.unshare, o.unshare_ok), result(&o.clone3, o.clone3_ok))
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// The table as plain text (one block per bit).
pub fn render_text(rows: &[Row], observed: &[Observed], kernel: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "bit  name             unshare clone3  since (unshare / clone / clone3)  observed on {kernel} (unshare / clone3)"
    );
    for (r, o) in rows.iter().zip(observed) {
        let _ = writeln!(
            s,
            "{:<4} {:<16} {:<7} {:<7} {:<33} {}",
            r.bit,
            r.name,
            yes(r.unshare),
            yes(r.clone3),
            since(r),
            observed_cell(o)
        );
        let _ = writeln!(s, "       unshare: {}", r.unshare_meaning);
        let _ = writeln!(s, "       clone3:  {}", r.clone3_meaning);
    }
    s
}

/// The header of the markdown table; the tests compare everything but the last column.
pub const MARKDOWN_HEADER: &str = "| bit | name | unshare | clone3 | meaning in unshare | meaning in clone3 | since (unshare / clone / clone3) | observed here (unshare / clone3) |";

/// The table as markdown (docs/flags.md).
pub fn render_markdown(rows: &[Row], observed: &[Observed], kernel: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# CLONE_* bits: unshare(2) and clone3(2)\n");
    let _ = writeln!(
        s,
        "Generated by `unshare-fuzz flags --markdown` from the flag table in `src/abi/flags.rs`. \
         \"observed here\" is what `unshare(bit)` and `clone3(bit)` returned, alone, as root in the \
         harness's sandbox, on Linux {kernel}; `(!)` marks a result the model did not predict or a \
         case that violated an invariant. clone3 runs with exit_signal SIGCHLD (0 with THREAD or \
         PARENT), valid pointers, its own stack and `cgroup` set to a closed fd (see docs/clone3.md).\n"
    );
    let _ = writeln!(s, "{MARKDOWN_HEADER}");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for (r, o) in rows.iter().zip(observed) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.bit,
            r.name,
            yes(r.unshare),
            yes(r.clone3),
            r.unshare_meaning,
            r.clone3_meaning,
            since(r),
            observed_cell(o)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixty_four_rows_from_the_table() {
        let rows = rows();
        assert_eq!(rows.len(), 64);
        let mask = |f: fn(&Row) -> bool| rows.iter().filter(|r| f(r)).fold(0u64, |a, r| a | (1 << r.bit));
        assert_eq!(mask(|r| r.unshare), UNSHARE_VALID_MASK);
        assert_eq!(mask(|r| r.clone3), CLONE3_VALID_MASK);
        assert_eq!(rows[7].name, "NEWTIME");
        assert_eq!(rows[3].name, "(CSIGNAL)");
        assert_eq!(rows[40].name, "(unassigned)");
        assert!(rows[12].differs() && rows[9].differs() && !rows[26].differs() && !rows[40].differs());
    }
}
