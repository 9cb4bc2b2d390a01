//! Kernel coverage of unshare's path (issue 18, docs/coverage.md): the guest
//! runs cases with KCOV on ([`run`], through [`crate::exec::executor::kcov`]) and prints
//! PC records ([`data`]); the host maps PCs to source lines ([`sites`]) and
//! reports the line coverage of the target functions ([`targets`],
//! [`report`], [`html`]) with a reason for every line not reached
//! ([`reasons`]), distills the corpus ([`distill`]). [`mutate`] drives the
//! coverage-guided search.

pub mod data;
pub mod distill;
pub mod html;
pub mod mutate;
pub mod reasons;
pub mod report;
pub mod run;
pub mod sites;
pub mod targets;
