//! What the harness and the executor say to each other, and how the child's records are read:
//! the frames on the executor's stdin and stdout ([`protocol`]), a case in a few bytes
//! ([`case_codec`]), and the decoding of the child's raw records into an outcome ([`collect`],
//! used by the harness for cases and by the executor for its own probes). Shared by both
//! processes, so it sits below both (docs/design.md, "Layers").

pub mod case_codec;
pub mod collect;
pub mod protocol;
