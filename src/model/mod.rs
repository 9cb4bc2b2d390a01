//! The oracle: a pure model of unshare(2) that predicts, for every step of a
//! case, the result (success or which errno), which check decided it, and
//! every change to the caller's observable state. No I/O, no `unsafe`.
//!
//! `predict(profile, env, case)` starts from the environment and the setup
//! ([`state::CallerState::after_setup`]), then for each step applies the
//! implications, walks the ordered check table ([`checks`]) and, on success,
//! the effects ([`effects`]), carrying the state to the next step.

#![deny(missing_docs)]

pub mod checks;
pub mod effects;
pub mod profile;
pub mod state;

use serde::Serialize;

use crate::case::{Case, Step};
use crate::env::Environment;
use crate::errno::CallResult;
use crate::flags::{RawFlags, apply_implications};

pub use effects::{CredExpect, LinkExpect};
pub use profile::KernelProfile;
pub use state::CallerState;

/// What the model expects of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expected {
    /// The flags after implications.
    pub effective_flags: RawFlags,
    /// Success or the errno.
    pub result: CallResult,
    /// Id of the check row that decided a failure, or `"success"`.
    pub rule: &'static str,
    /// What happens to each `/proc/self/ns` link (all `Unchanged` on failure).
    pub links: [LinkExpect; crate::ns::NsLink::COUNT],
    /// What happens to uid, gid and CapEff.
    pub creds: CredExpect,
}

/// The model's answer for a whole case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Prediction {
    /// The setup cannot be built here; the case is skipped with this reason.
    Skip {
        /// Why.
        reason: String,
    },
    /// One expectation per step.
    Steps {
        /// In order.
        steps: Vec<Expected>,
    },
}

/// Predicts one unshare call from `state`, and updates `state` as the kernel would.
pub fn predict_unshare(
    profile: &KernelProfile,
    env: &Environment,
    state: &mut CallerState,
    flags: RawFlags,
) -> Expected {
    let effective = apply_implications(flags, profile.implications);
    let ctx = checks::Ctx {
        f: effective.0,
        valid_mask: profile.valid_mask,
        state,
        env,
    };
    if let Some(row) = checks::first_failing(profile.checks, &ctx) {
        return Expected {
            effective_flags: effective,
            result: CallResult::Failure(row.errno),
            rule: row.id,
            links: [LinkExpect::Unchanged; crate::ns::NsLink::COUNT],
            creds: CredExpect::Unchanged,
        };
    }
    let (links, creds) = effects::apply_success(env, state, effective);
    Expected {
        effective_flags: effective,
        result: CallResult::Success,
        rule: "success",
        links,
        creds,
    }
}

/// Predicts every step of `case` on the kernel described by `profile`.
pub fn predict(profile: &KernelProfile, env: &Environment, case: &Case) -> Prediction {
    let mut state = match CallerState::after_setup(env, &case.setup) {
        Ok(s) => s,
        Err(reason) => return Prediction::Skip { reason },
    };
    let steps = case
        .steps
        .iter()
        .map(|step| match step {
            Step::Unshare(flags) => predict_unshare(profile, env, &mut state, *flags),
        })
        .collect();
    Prediction::Steps { steps }
}

#[cfg(test)]
mod tests;
