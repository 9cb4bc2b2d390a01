//! The executor process (`unshare-fuzz __executor`): it enters and verifies the outer sandbox,
//! probes the environment once, then serves cases ([`server`]), forking one child per case and
//! watching it ([`watch`]). Everything here runs in the executor, never in the harness; the
//! code that runs after a case's fork lives in [`super::child`].

pub mod bpf;
pub mod call_probe;
pub mod guest_cases;
pub mod headroom;
pub mod kcov;
pub mod limits;
pub mod mutants;
pub mod phases;
pub mod placement;
pub mod probe;
pub mod sandbox;
pub mod sandbox_absent;
pub mod server;
pub mod watch;
