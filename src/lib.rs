//! unshare-fuzz: a property-based fuzzing and conformance harness for Linux unshare(2).
//!
//! The pipeline: [`generate`] produces a [`case::Case`] (a setup and a few steps);
//! [`model::predict`] says what the kernel should do; [`exec`] runs the case in a
//! fresh forked child inside an outer sandbox of namespaces and returns an
//! [`exec::observe::Outcome`]; [`check`] compares the two through named invariants;
//! [`report`] prints the tally. [`corpus`] keeps failing and interesting cases
//! as readable files; [`command`] holds the commands (run, replay, bench, flags,
//! selftest, the fuzz targets) that drive the pipeline. Description ([`abi`], [`env`](mod@env),
//! [`model`]) knows nothing of forking; the executor knows nothing of predictions or proptest.
//!
//! The modules are layers, listed here from the bottom up (docs/design.md, "Layers"); a module
//! imports only from its own layer and the layers below it (`tests/layers.rs` checks every
//! `crate::` path): [`abi`], [`sys`], [`env`](mod@env), [`case`], [`model`], [`generate`], [`exec`],
//! [`check`], then [`report`], [`corpus`] and [`repro`], then [`command`]. The binary's CLI
//! (`src/cli/`) sits on top.

pub mod abi;
pub mod case;
pub mod check;
pub mod command;
pub mod corpus;
pub mod coverage;
pub mod env;
pub mod exec;
pub mod generate;
pub mod model;
pub mod report;
pub mod repro;
pub mod sys;
