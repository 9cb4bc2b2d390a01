//! Reports: the human summary and the JSON document of a run. Every format
//! starts with the environment, including any restriction on unshare.
//! [`render()`] is the one entry point for `run`, `replay` and anything else
//! that prints a [`crate::report::run_report::RunReport`].

pub mod baseline;
pub mod diff;
pub mod format;
pub mod human;
pub mod json;
pub mod junit;
pub mod ktap;
pub mod render;
pub mod run_report;

pub use format::{Format, RenderError, UnknownFormat, render};
