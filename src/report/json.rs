//! The JSON report: the same figures as the human one, machine-readable.

use serde::Serialize;

use crate::report::run_report::RunReport;

/// The JSON document's schema version.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Serialize)]
struct Document<'a> {
    format: u32,
    tool: &'static str,
    version: &'static str,
    /// The process's exit status for this report ([`RunReport::exit_code`]).
    exit_status: i32,
    /// The one-line verdict the human report ends with.
    verdict: String,
    /// Each contract fact probed at start, its value, and the rule it switched in the profile.
    probed_facts: Vec<crate::env::facts::FactLine>,
    #[serde(flatten)]
    report: &'a RunReport,
}

/// Renders `report` as pretty JSON.
///
/// # Errors
/// Only if serialization fails (it should not).
pub fn render(report: &RunReport) -> serde_json::Result<String> {
    serde_json::to_string_pretty(&Document {
        format: FORMAT_VERSION,
        tool: "unshare-fuzz",
        version: env!("CARGO_PKG_VERSION"),
        exit_status: report.exit_code(),
        verdict: super::human::verdict(report),
        probed_facts: crate::model::profile::resolve(report.profile, &report.environment.kernel_release)
            .map(|(p, _)| report.environment.call_probes.facts.lines(p))
            .unwrap_or_default(),
        report,
    })
}
