//! The commands the binary offers, as library functions: [`run`] (generate, execute, judge),
//! [`replay`] (corpus files through the same pipeline), [`bench`](mod@bench), [`flags`] (every bit alone),
//! [`selftest`] (lying kernels and old models), the in-process [`fuzzing`] targets, and what
//! they share: stopping between cases ([`interrupt`]) and test-only fault injection
//! ([`fault`]). The layer above all library layers but the binary's CLI (docs/design.md).

pub mod bench;
pub mod beside;
pub mod fault;
pub mod flags;
pub mod fuzzing;
pub mod interrupt;
pub mod pipeline;
pub mod pool;
pub mod replay;
pub mod run;
pub mod save;
pub mod selftest;
