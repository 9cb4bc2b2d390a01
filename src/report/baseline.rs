//! Known violations (`--baseline FILE`): a run whose every violation a baseline lists does
//! not fail (the violation bit of the exit status stays clear), while any violation it does
//! not list still does. The baseline is either an earlier JSON report (`run --json`), whose
//! failed cases become the known ones, or a small file of known violations:
//!
//! ```json
//! {"known": [
//!   {"invariant": "failure-changes-nothing", "known_bug": "unshare-fs-fix-missing",
//!    "why": "bullseye's 5.10.223 lacks the backport; remove when the CI kernel is updated"}
//! ]}
//! ```
//!
//! An entry matches a violation when every key it gives agrees: `invariant` (the id),
//! `known_bug` (the label `check::known` gave the case), `case` (the case itself, as the
//! report prints it). An entry must give `known_bug` or `case`: a bare invariant would hide
//! every future violation of it. A failed case is known when all its violations match.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::report::run_report::{BaselineSummary, RunReport};

/// One known violation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnownViolation {
    /// The invariant id, if the entry is limited to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invariant: Option<String>,
    /// The known bug the case must be labelled with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_bug: Option<String>,
    /// The case itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<serde_json::Value>,
    /// Why it is accepted (free text, for the reader).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// A loaded baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its entries.
    pub known: Vec<KnownViolation>,
}

#[derive(Deserialize)]
struct KnownFile {
    known: Vec<KnownViolation>,
}

#[derive(Deserialize)]
struct ReportFailures {
    failures: Vec<ReportFailure>,
}

#[derive(Deserialize)]
struct ReportFailure {
    case: serde_json::Value,
    violations: Vec<ReportViolation>,
    #[serde(default)]
    known_bug: Option<String>,
}

#[derive(Deserialize)]
struct ReportViolation {
    invariant: String,
}

impl Baseline {
    /// Parses a baseline from `text` (a known-violations file or a JSON report).
    ///
    /// # Errors
    /// Neither format, or an entry that gives neither `known_bug` nor `case`.
    pub fn parse(path: &Path, text: &str) -> anyhow::Result<Baseline> {
        let value: serde_json::Value =
            serde_json::from_str(text).with_context(|| format!("{}: not JSON", path.display()))?;
        let known = if value.get("known").is_some() {
            let file: KnownFile = serde_json::from_value(value)
                .with_context(|| format!("{}: not a known-violations file ({{\"known\": [...]}})", path.display()))?;
            file.known
        } else if value.get("failures").is_some() {
            let report: ReportFailures = serde_json::from_value(value)
                .with_context(|| format!("{}: a JSON report whose failures cannot be read", path.display()))?;
            report
                .failures
                .into_iter()
                .flat_map(|f| {
                    let (case, bug) = (f.case, f.known_bug);
                    f.violations.into_iter().map(move |v| KnownViolation {
                        invariant: Some(v.invariant),
                        known_bug: bug.clone(),
                        case: Some(case.clone()),
                        why: None,
                    })
                })
                .collect()
        } else {
            bail!(
                "{}: neither a JSON report of unshare-fuzz (no \"failures\") nor a known-violations file (no \"known\")",
                path.display()
            );
        };
        if let Some((i, _)) = known.iter().enumerate().find(|(_, k)| k.known_bug.is_none() && k.case.is_none()) {
            bail!(
                "{}: entry {} gives neither \"known_bug\" nor \"case\"; an entry that matches every violation of an \
                 invariant would hide new ones",
                path.display(),
                i + 1
            );
        }
        Ok(Baseline { path: path.to_path_buf(), known })
    }

    /// Reads a baseline file.
    ///
    /// # Errors
    /// As [`Baseline::parse`], or the file cannot be read.
    pub fn load(path: &Path) -> anyhow::Result<Baseline> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read baseline {}", path.display()))?;
        Baseline::parse(path, &text)
    }

    fn matches(&self, invariant: &str, known_bug: Option<&str>, case: &serde_json::Value) -> bool {
        self.known.iter().any(|k| {
            k.invariant.as_deref().is_none_or(|i| i == invariant)
                && k.known_bug.as_deref().is_none_or(|b| Some(b) == known_bug)
                && k.case.as_ref().is_none_or(|c| c == case)
        })
    }

    /// Marks every failed case of `report` whose violations the baseline all lists as
    /// `baselined`, and records the summary that [`RunReport::exit_code`] reads.
    pub fn apply(&self, report: &mut RunReport) {
        let mut known = 0;
        for f in &mut report.failures {
            let case = serde_json::to_value(&f.case).unwrap_or(serde_json::Value::Null);
            f.baselined =
                !f.violations.is_empty() && f.violations.iter().all(|v| self.matches(v.invariant, f.known_bug, &case));
            if f.baselined {
                known += f.violations.len() as u64;
            }
        }
        report.baseline = Some(BaselineSummary {
            path: self.path.display().to_string(),
            entries: self.known.len(),
            known_violations: known,
            new_violations: report.tally.violations().saturating_sub(known),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Baseline> {
        Baseline::parse(Path::new("b.json"), text)
    }

    #[test]
    fn a_known_file_matches_by_every_key_it_gives() {
        let b = parse(
            r#"{"known": [{"invariant": "failure-changes-nothing", "known_bug": "unshare-fs-fix-missing"},
                          {"case": {"steps": [1]}}]}"#,
        )
        .unwrap();
        let case = serde_json::json!({"steps": [2]});
        assert!(b.matches("failure-changes-nothing", Some("unshare-fs-fix-missing"), &case));
        assert!(!b.matches("errno-matches-model", Some("unshare-fs-fix-missing"), &case));
        assert!(!b.matches("failure-changes-nothing", None, &case));
        assert!(b.matches("errno-matches-model", None, &serde_json::json!({"steps": [1]})));
    }

    #[test]
    fn a_report_lists_its_failed_cases() {
        let b = parse(
            r#"{"failures": [{"index": 4, "case": {"steps": [7]}, "known_bug": "unshare-fs-fix-missing",
                "violations": [{"invariant": "errno-matches-model", "detail": "x"}]}]}"#,
        )
        .unwrap();
        assert_eq!(b.known.len(), 1);
        let case = serde_json::json!({"steps": [7]});
        assert!(b.matches("errno-matches-model", Some("unshare-fs-fix-missing"), &case));
        assert!(!b.matches("errno-matches-model", None, &case), "the label is part of what is known");
        assert!(!b.matches("failure-changes-nothing", Some("unshare-fs-fix-missing"), &case));
        assert!(!b.matches("errno-matches-model", Some("unshare-fs-fix-missing"), &serde_json::json!({})));
    }

    #[test]
    fn entries_that_would_hide_everything_are_refused() {
        let e = parse(r#"{"known": [{"invariant": "failure-changes-nothing"}]}"#).unwrap_err();
        assert!(format!("{e:#}").contains("neither \"known_bug\" nor \"case\""), "{e:#}");
        let e = parse(r#"{"cases": 3}"#).unwrap_err();
        assert!(format!("{e:#}").contains("neither a JSON report"), "{e:#}");
        assert!(parse("not json").is_err());
    }
}
