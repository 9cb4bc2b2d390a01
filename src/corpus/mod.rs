//! The regression corpus: one readable, versioned case per JSON file under
//! `corpus/<area>/<slug>.json`, replayed by `unshare-fuzz replay`, by `cargo
//! test` and in CI, and written already shrunk by `run --save-failures` and
//! `minimize`.
//!
//! # Why JSON
//! * `serde_json` is already a dependency and the [`Case`] type already has a
//!   strict serde form (`deny_unknown_fields`, flags printed symbolically as
//!   `NEWNS|NEWUSER|0x100000000`), so the file format is that form plus a few
//!   fields, with no second parser to keep in step.
//! * Pretty-printed with a fixed field order, one value per line, it diffs
//!   and reviews well.
//! * serde_json reports errors with line and column.
//! * Fuzzing tooling (cargo-fuzz dictionaries, ClusterFuzz(Lite) seed corpora,
//!   `jq` in CI scripts) reads JSON without extra dependencies.
//!
//! TOML was considered: it reads nicely for flat tables, but a case is a
//! nested list of tagged steps (`[[case.steps]]` with inline tables), which
//! TOML renders less clearly than JSON, and it would add a crate.
//!
//! # Shape (format 1)
//! ```json
//! {
//!   "format": 1,
//!   "title": "bit 32 (CLEAR_SIGHAND) is clone3-only: EINVAL",
//!   "comments": ["spec §5.1: bits 32..63 are outside the mask -> EINVAL"],
//!   "origin": "manual",
//!   "case": { "setup": { "privilege": "root", "threads": 0 },
//!             "steps": [ { "unshare": "0x100000000" } ] },
//!   "expected": [ { "result": "EINVAL", "rule": "unknown-bit" } ]
//! }
//! ```
//! `origin`, `seed` and `expected` are optional. When `expected` is present,
//! replay checks it against both the model and the kernel
//! (`expected-matches-corpus`, see [`crate::check::expected`]).

pub mod error;
pub mod shrink;
pub mod store;

use serde::{Deserialize, Serialize};

pub use error::{Invalid, LoadError, Position, Problem, StoreError};
pub use store::{DirStore, Loaded, MemStore, Store};

use crate::abi::errno::CallResult;
use crate::case::Case;
use crate::model::profile::PROFILES;

/// The format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// The rule id of a successful call (as in [`crate::model::Expected::rule`]).
pub const SUCCESS_RULE: &str = "success";

/// Where a corpus file came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// Written by hand.
    #[serde(rename = "manual")]
    Manual,
    /// Written by `unshare-fuzz run --save-failures`.
    #[serde(rename = "run --save-failures")]
    SaveFailures,
    /// Written by `unshare-fuzz minimize`.
    #[serde(rename = "minimize")]
    Minimize,
    /// Converted from a fuzzer finding.
    #[serde(rename = "fuzz")]
    Fuzz,
}

/// What one step must do, per the file (defined by the judgement that compares it).
pub use crate::check::expected::Expectation;

/// One corpus file. Fields are serialised in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorpusFile {
    /// Schema version: [`FORMAT_VERSION`].
    pub format: u32,
    /// One line: what the case shows.
    pub title: String,
    /// Free text, one entry per line: why the case exists, which spec rule it pins.
    #[serde(default)]
    pub comments: Vec<String>,
    /// Who wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// The generator seed of the run that found it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The kernel profile whose behaviour `expected` pins (default: `linux-6.18`, the spec's
    /// machine), e.g. `linux-5.10-without-unshare-fs-fix` for a behaviour of kernels without
    /// a fix. On a kernel the running model describes otherwise, the expectations are skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The case itself, in [`Case`]'s serde form.
    pub case: Case,
    /// What each step must do (one entry per step), if pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<Vec<Expectation>>,
}

impl CorpusFile {
    /// The canonical text: pretty JSON in field order, with a final newline.
    ///
    /// # Errors
    /// Only if serialisation fails (it should not).
    pub fn to_text(&self) -> Result<String, serde_json::Error> {
        let mut s = serde_json::to_string_pretty(self)?;
        s.push('\n');
        Ok(s)
    }
}

/// Parses and validates one corpus file's text.
///
/// The `format` field is read first, so a file of a newer format is reported
/// as such rather than as a list of unknown fields.
///
/// # Errors
/// [`Invalid`] with the position (or field) and what was expected.
pub fn parse(text: &str) -> Result<CorpusFile, Invalid> {
    let value: serde_json::Value = serde_json::from_str(text)?;
    let found = match &value {
        serde_json::Value::Object(_) => None,
        serde_json::Value::Array(_) => Some("an array"),
        serde_json::Value::String(_) => Some("a string"),
        serde_json::Value::Number(_) => Some("a number"),
        serde_json::Value::Bool(_) => Some("a boolean"),
        serde_json::Value::Null => Some("null"),
    };
    if let Some(found) = found {
        return Err(Invalid {
            position: Some(Position { line: 1, column: 1 }),
            field: None,
            problem: Problem::NotObject { found },
        });
    }
    if let Some(obj) = value.as_object() {
        match obj.get("format") {
            None => {
                return Err(Invalid {
                    position: Some(Position { line: 1, column: 1 }),
                    field: Some("format".into()),
                    problem: Problem::MissingFormat { expected: FORMAT_VERSION },
                });
            }
            Some(v) if v.as_u64() != Some(u64::from(FORMAT_VERSION)) => {
                return Err(at_key(text, "format", Problem::Format { found: v.to_string(), expected: FORMAT_VERSION }));
            }
            Some(_) => {}
        }
    }
    let file: CorpusFile = serde_json::from_str(text)?;
    validate(text, &file)?;
    Ok(file)
}

fn validate(text: &str, file: &CorpusFile) -> Result<(), Invalid> {
    if file.title.trim().is_empty() || file.title.contains('\n') {
        return Err(at_key(text, "title", Problem::Title));
    }
    if let Err(e) = file.case.validate() {
        let key = match &e {
            crate::case::CaseError::Threads(_) => "threads",
            crate::case::CaseError::StepCount(_) | crate::case::CaseError::StepOrder { .. } => "steps",
            crate::case::CaseError::Setup { field, .. } => field,
        };
        return Err(at_key(text, key, Problem::Case(e)));
    }
    if let Some(name) = &file.profile
        && (name.starts_with("auto") || crate::model::profile::resolve(name, "").is_err())
    {
        return Err(at_key(text, "profile", Problem::UnknownProfile { name: name.clone() }));
    }
    let Some(expected) = &file.expected else {
        return Ok(());
    };
    if expected.len() != file.case.steps.len() {
        return Err(at_key(
            text,
            "expected",
            Problem::ExpectedCount { entries: expected.len(), steps: file.case.steps.len() },
        ));
    }
    for (step, e) in expected.iter().enumerate() {
        let Some(rule) = &e.rule else { continue };
        let is_unshare = file.case.steps.get(step).is_some_and(crate::case::Step::is_unshare);
        let gives = match rule_result(rule) {
            Some(g) => g,
            // Other step kinds (fork, write-maps, ...) have their own rule ids, which are not
            // in a table; a wrong one shows up as model drift when the file is checked.
            None if !is_unshare => continue,
            None => {
                return Err(at_key(
                    text,
                    "expected",
                    Problem::UnknownRule { step, rule: rule.clone(), known: known_rules().join(", ") },
                ));
            }
        };
        if gives != e.result {
            return Err(at_key(
                text,
                "expected",
                Problem::RuleResult { step, rule: rule.clone(), gives, result: e.result },
            ));
        }
    }
    Ok(())
}

/// What a rule id of an unshare step produces: success for [`SUCCESS_RULE`], else
/// the errno of the check row with that id in any known profile.
pub fn rule_result(rule: &str) -> Option<CallResult> {
    if rule == SUCCESS_RULE {
        return Some(CallResult::Success);
    }
    PROFILES.iter().flat_map(|p| p.checks.iter()).find(|c| c.id == rule).map(|c| CallResult::Failure(c.errno))
}

/// Every rule id an unshare step's expectation may name.
pub fn known_rules() -> Vec<&'static str> {
    let mut ids = vec![SUCCESS_RULE];
    for id in PROFILES.iter().flat_map(|p| p.checks.iter()).map(|c| c.id) {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// An [`Invalid`] placed at the first `"key":` of `text` (best effort: the
/// first occurrence of the key is taken).
fn at_key(text: &str, key: &str, problem: Problem) -> Invalid {
    let field = match key {
        "steps" => "case.steps".to_string(),
        "threads" | "siblings" | "fds" | "userns_depth" | "pidns_level" => format!("case.setup.{key}"),
        other => other.to_string(),
    };
    Invalid { position: locate_key(text, key), field: Some(field), problem }
}

/// Line and column of the first `"key"` followed by a colon.
pub fn locate_key(text: &str, key: &str) -> Option<Position> {
    let needle = format!("\"{key}\"");
    let mut from = 0;
    while let Some(i) = text[from..].find(&needle) {
        let at = from + i;
        let rest = text[at + needle.len()..].trim_start();
        if rest.starts_with(':') {
            let before = &text[..at];
            let line = before.matches('\n').count() + 1;
            let column = before.rfind('\n').map_or(at, |nl| at - nl - 1) + 1;
            return Some(Position { line, column });
        }
        from = at + needle.len();
    }
    None
}

#[cfg(test)]
mod tests;
