//! unshare-fuzz: a property-based fuzzing and conformance harness for Linux unshare(2).
//!
//! The pipeline: [`generate`] produces a [`case::Case`] (a setup and a few steps);
//! [`model::predict`] says what the kernel should do; [`exec`] runs the case in a
//! fresh forked child inside an outer sandbox of namespaces and returns an
//! [`observe::Outcome`]; [`check`] compares the two through named invariants;
//! [`report`] prints the tally. [`corpus`] keeps failing and interesting cases
//! as readable files, replays them through the same pipeline and shrinks new
//! failures into it. Description ([`flags`], [`model`]) knows nothing
//! of forking; the executor knows nothing of predictions or proptest.

pub mod baseline;
pub mod bench;
pub mod case;
pub mod check;
pub mod corpus;
pub mod coverage;
pub mod env;
pub mod errno;
pub mod exec;
pub mod facts;
pub mod fault;
pub mod flag_table;
pub mod flags;
pub mod fuzzing;
pub mod generate;
pub mod interrupt;
pub mod model;
pub mod ns;
pub mod observe;
pub mod report;
pub mod report_diff;
pub mod repro;
pub mod resources;
pub mod runner;
pub mod selftest;
pub mod sys;
