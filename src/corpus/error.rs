//! Errors of the corpus layer: a file that cannot be read or is not a valid
//! corpus file. Every error names the file, the position (line and column,
//! 1-based, as serde_json counts them) or the field, and what was expected.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::abi::errno::CallResult;
use crate::case::CaseError;

/// A place in a file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// What is wrong with a corpus file's text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Io(std::io::Error),
    /// A directory given to replay could not be listed.
    #[error("{0}")]
    List(StoreError),
    /// JSON syntax error, or a value of the wrong shape (unknown field, unknown flag
    /// name, unknown errno, ...); serde's message says what was expected.
    #[error("{}", json_message(.0))]
    Json(serde_json::Error),
    /// The top level is not a JSON object.
    #[error(
        "expected a JSON object with the fields format, title, comments, origin, seed, case, expected; found {found}"
    )]
    NotObject {
        /// What was found (`an array`, `a number`, ...).
        found: &'static str,
    },
    /// No `format` field.
    #[error("missing field `format` (expected \"format\": {expected} at the top of the file)")]
    MissingFormat {
        /// The version this build reads.
        expected: u32,
    },
    /// A `format` this build does not read.
    #[error(
        "unsupported corpus format {found} (expected \"format\": {expected}; this build reads only format {expected})"
    )]
    Format {
        /// What the file says, as written.
        found: String,
        /// The version this build reads.
        expected: u32,
    },
    /// `title` is empty or spans several lines.
    #[error("`title` must be one non-empty line (put details in `comments`)")]
    Title,
    /// The case cannot be run as written (`Case::validate`).
    #[error("impossible case: {0}")]
    Case(CaseError),
    /// `expected` does not have one entry per step.
    #[error("`expected` has {entries} entries but the case has {steps} steps (expected one entry per step)")]
    ExpectedCount {
        /// Entries in `expected`.
        entries: usize,
        /// Steps in the case.
        steps: usize,
    },
    /// An `expected` rule id that no kernel profile knows.
    #[error("step {step}: unknown rule {rule:?} (expected \"success\" or one of: {known})")]
    UnknownRule {
        /// Step index.
        step: usize,
        /// The id as written.
        rule: String,
        /// Every known id, comma separated.
        known: String,
    },
    /// A `profile` that names no kernel profile (or `auto`, which names none in particular).
    #[error(
        "unknown kernel profile {name:?} (expected a profile name such as linux-6.18, or one followed by -without-unshare-fs-fix)"
    )]
    UnknownProfile {
        /// The name as written.
        name: String,
    },
    /// An `expected` rule whose errno contradicts the `result` next to it.
    #[error("step {step}: rule {rule:?} gives {gives}, but `result` says {result} (expected them to agree)")]
    RuleResult {
        /// Step index.
        step: usize,
        /// The rule id.
        rule: String,
        /// What that rule produces.
        gives: CallResult,
        /// What the file says.
        result: CallResult,
    },
}

/// serde_json's message without its trailing " at line L column C" (the position is
/// printed in front instead), with syntax errors marked as such.
fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let bare = match text.rfind(" at line ") {
        Some(i) if e.line() > 0 => text[..i].to_string(),
        _ => text,
    };
    match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            format!("JSON syntax error: {bare}")
        }
        _ => bare,
    }
}

/// A corpus file that could not be loaded: which file, where, what.
#[derive(Debug)]
pub struct LoadError {
    /// The file, as given or as found under a directory.
    pub path: PathBuf,
    /// Where in the file, if known.
    pub position: Option<Position>,
    /// The field concerned, if known (`case.steps`, `expected`, ...).
    pub field: Option<String>,
    /// What is wrong (boxed: keeps `Result<_, LoadError>` small).
    pub problem: Box<Problem>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(p) = self.position {
            write!(f, ":{p}")?;
        }
        f.write_str(": ")?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        write!(f, "{}", self.problem)
    }
}

impl std::error::Error for LoadError {}

/// A [`Problem`] found in a text, before it is tied to a file name.
#[derive(Debug)]
pub struct Invalid {
    /// Where, if known.
    pub position: Option<Position>,
    /// The field, if known.
    pub field: Option<String>,
    /// What.
    pub problem: Problem,
}

impl Invalid {
    /// Ties the problem to `path`.
    pub fn in_file(self, path: impl Into<PathBuf>) -> LoadError {
        LoadError { path: path.into(), position: self.position, field: self.field, problem: Box::new(self.problem) }
    }
}

impl From<serde_json::Error> for Invalid {
    fn from(e: serde_json::Error) -> Invalid {
        // serde_json gives column 0 at the very start of a line (e.g. an empty file).
        let position = (e.line() > 0).then(|| Position { line: e.line(), column: e.column().max(1) });
        Invalid { position, field: None, problem: Problem::Json(e) }
    }
}

/// Writing a corpus file, or listing a corpus directory, failed. The I/O error is
/// kept as a field and shown in the message (not chained as a `source`, so it is
/// printed once whichever way the error is shown).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file or its directory could not be written.
    #[error("cannot write {path}: {cause}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Cause.
        cause: std::io::Error,
    },
    /// A directory could not be listed.
    #[error("cannot list {path}: {cause}")]
    List {
        /// The directory.
        path: PathBuf,
        /// Cause.
        cause: std::io::Error,
    },
    /// Serialisation failed (it should not).
    #[error("cannot serialise the corpus file: {0}")]
    Serialise(serde_json::Error),
    /// A key that is not a relative path of `*.json` file names.
    #[error("bad corpus key {0:?} (expected a relative path such as regressions/x.json)")]
    Key(String),
}
