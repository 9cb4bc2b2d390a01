//! One entry point for every report format: `render(format, &report)`, shared by `run` and
//! `replay`. The top of the report layer: it calls each format.

use std::fmt;
use std::str::FromStr;

use crate::report::run_report::RunReport;

/// An output format of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Plain text for a terminal: environment, violations, per-invariant table.
    #[default]
    Human,
    /// The JSON document of [`super::json`].
    Json,
    /// KTAP version 1, the kernel selftest format ([`super::ktap`]).
    Ktap,
    /// JUnit XML for CI dashboards ([`super::junit`]).
    Junit,
}

impl Format {
    /// Every format, in the order of `--help`.
    pub const ALL: [Format; 4] = [Format::Human, Format::Json, Format::Ktap, Format::Junit];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Human => "human",
            Format::Json => "json",
            Format::Ktap => "ktap",
            Format::Junit => "junit",
        }
    }

    /// The usual file extension of a saved report.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Human => "txt",
            Format::Json => "json",
            Format::Ktap => "ktap",
            Format::Junit => "xml",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that is not one of [`Format::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown report format {0:?}; known: human, json, ktap, junit")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Format, UnknownFormat> {
        Format::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownFormat(s.to_string()))
    }
}

/// A report that could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// JSON serialisation failed (it should not).
    #[error("cannot render the JSON report")]
    Json(#[from] serde_json::Error),
}

/// Renders `report` in `format`. Human output is the environment block followed
/// by the summary, exactly as `run` prints it after the run.
///
/// # Errors
/// [`RenderError`] only if JSON serialisation fails.
pub fn render(format: Format, report: &RunReport) -> Result<String, RenderError> {
    Ok(match format {
        Format::Human => {
            let mut s = super::human::environment(&report.environment);
            s.push_str(&super::human::summary(report));
            s
        }
        Format::Json => super::json::render(report)?,
        Format::Ktap => super::ktap::render(report),
        Format::Junit => super::junit::render(report),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip_and_unknown_is_clear() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>(), Ok(f));
        }
        assert_eq!("KTAP".parse::<Format>(), Ok(Format::Ktap));
        let e = "tap13".parse::<Format>().unwrap_err().to_string();
        assert!(e.contains("tap13") && e.contains("junit"), "{e}");
    }
}
