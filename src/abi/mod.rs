//! The kernel's interface, described: the CLONE_* flag table ([`flags`]), errno values
//! ([`errno`]) and the namespace types with their `/proc/self/ns` links ([`ns`]). Pure data at
//! the bottom of the layers (docs/design.md, "Layers"): it imports nothing else of the crate.

pub mod errno;
pub mod flags;
pub mod ns;
