//! The line-oriented JSON protocol between the harness and its executor.

use serde::{Deserialize, Serialize};

use crate::case::Case;
use crate::env::Environment;
use crate::observe::Outcome;

/// One case to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// Echoed in the response.
    pub id: u64,
    /// The case.
    pub case: Case,
    /// Watchdog timeout.
    pub timeout_ms: u64,
    /// Benchmark instead of running the case: one bare fork + unshare(flags) + wait per entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bare_loop: Option<Vec<u64>>,
}

/// What the executor holds, to show that cases leak nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExecutorStats {
    /// Resident set size in KiB.
    pub rss_kib: u64,
    /// Open file descriptors.
    pub fds: u64,
    /// Lines of its mountinfo.
    pub mounts: u64,
    /// Processes in its pid namespace other than itself (leftover children, zombies).
    pub other_processes: u64,
}

/// One line from the executor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// First line: the sandbox is up and this is the environment.
    Hello {
        /// What was probed.
        environment: Box<Environment>,
    },
    /// First line instead of `Hello`: the sandbox could not be built.
    Fatal {
        /// What failed and what to do.
        message: String,
    },
    /// The outcome of one case.
    Outcome {
        /// Request id.
        id: u64,
        /// What happened.
        outcome: Box<Outcome>,
    },
    /// The time a bare loop took.
    Bare {
        /// Request id.
        id: u64,
        /// Nanoseconds for the whole loop.
        nanos: u64,
        /// The executor's resources afterwards.
        stats: ExecutorStats,
    },
    /// A request could not be served.
    Error {
        /// Request id, if it could be read.
        id: Option<u64>,
        /// Why.
        message: String,
    },
}
