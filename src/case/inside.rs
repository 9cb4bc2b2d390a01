//! What the setup field `inside_witness` makes the case do (issue 16, class 3): the fixed
//! names, path and offsets that the case child uses and the model predicts with. A witness
//! process is forked before the first step (it stays in the namespaces the setup left) and,
//! after the last step, the caller and the witness each change something the other may or may
//! not see: a hostname each, a tmpfs mount by the caller, time namespace offsets by the caller
//! (read by a child it forks), and both read their user namespace's setgroups state. With
//! `shared_mount` the setup also makes a shared tmpfs, and the caller and the witness each
//! mount on a directory of it and look for the other's mount (mount propagation).

use std::ffi::CStr;

/// The hostname the caller sets after its last step.
pub const INSIDE_CALLER_HOSTNAME: &[u8] = b"unshare-fuzz-inside-caller";
/// The hostname the witness then sets.
pub const INSIDE_WITNESS_HOSTNAME: &[u8] = b"unshare-fuzz-inside-witness";
/// The directory the caller mounts a tmpfs on: made by the executor in its sandbox's private
/// /tmp, so that a mount that reaches the executor's mount namespace stays in the sandbox.
pub const INSIDE_MOUNT_DIR: &CStr = c"/tmp/uf-inside-mnt";
/// Its parent, whose device the directory shows while nothing is mounted on it.
pub const INSIDE_MOUNT_PARENT: &CStr = c"/tmp";
/// With `shared_mount` (propagation): the directory of the sandbox's /tmp the setup mounts a
/// shared tmpfs on, in a private mount namespace of the case's own.
pub const SHARED_MOUNT_DIR: &CStr = c"/tmp/uf-inside-shared";
/// The directory of that tmpfs the caller mounts a tmpfs on after its last step.
pub const SHARED_MOUNT_CALLER: &CStr = c"/tmp/uf-inside-shared/caller";
/// The directory of that tmpfs the witness then mounts a tmpfs on.
pub const SHARED_MOUNT_WITNESS: &CStr = c"/tmp/uf-inside-shared/witness";
/// The CLOCK_MONOTONIC offset, in seconds, written to `/proc/self/timens_offsets`.
pub const INSIDE_MONOTONIC_OFFSET_S: i32 = 86_400;
/// The CLOCK_BOOTTIME offset, in seconds.
pub const INSIDE_BOOTTIME_OFFSET_S: i32 = 172_800;
/// The text written (one write, both lines: `<clock id> <seconds> <nanoseconds>`, CLOCK_MONOTONIC
/// is 1 and CLOCK_BOOTTIME 7; the kernel also takes their names).
pub const INSIDE_TIMENS_OFFSETS: &[u8] = b"1 86400 0\n7 172800 0\n";
/// How many seconds a clock reading may lag behind its prediction (the child is scheduled
/// between the caller's reading and its own).
pub const INSIDE_CLOCK_SLACK_S: i32 = 5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offsets_text_says_the_offsets() {
        let text = std::str::from_utf8(INSIDE_TIMENS_OFFSETS).unwrap();
        assert_eq!(text, format!("1 {INSIDE_MONOTONIC_OFFSET_S} 0\n7 {INSIDE_BOOTTIME_OFFSET_S} 0\n"));
        assert_ne!(INSIDE_CALLER_HOSTNAME, INSIDE_WITNESS_HOSTNAME);
    }
}
