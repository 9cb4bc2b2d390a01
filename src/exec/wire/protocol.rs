//! The binary protocol between the harness and its executor: length-prefixed
//! frames on the executor's stdin and stdout.
//!
//! A frame is a little-endian `u32` body length, then the body, whose first
//! byte is a tag. Requests carry a case in [`super::case_codec`] form;
//! a case's report carries the child's raw fixed-size messages
//! ([`crate::exec::child::record`]) untouched, so the executor neither decodes nor formats
//! anything per case, and the harness turns them into an `Outcome`
//! ([`super::collect`]). Rare frames (hello, fatal, errors) hold JSON or text.

use serde::{Deserialize, Serialize};

/// Largest body accepted in either direction (a bare loop of 100,000 words is 800 KB).
pub const MAX_FRAME: usize = 16 << 20;

/// Request: run one case. Body: tag, id `u64`, timeout in ms `u64`, the encoded case.
pub const REQ_CASE: u8 = 1;
/// Request: the bare reference loop. Body: tag, id `u64`, then one `u64` flags word per
/// iteration (none: only report the executor's resources).
pub const REQ_BARE: u8 = 2;

/// Response: the sandbox is up. Body: tag, JSON `Environment`.
pub const RESP_HELLO: u8 = 1;
/// Response instead of hello: the sandbox could not be built. Body: tag, UTF-8 text.
pub const RESP_FATAL: u8 = 2;
/// Response: a case ran. Body: tag, id `u64`, wait status `i32`, timed out `u8`, the
/// executor's three timestamps (`watch::exec_clock`) as `u64`, the child's raw messages.
pub const RESP_REPORT: u8 = 3;
/// Response: a bare loop ran. Body: tag, id `u64`, nanoseconds `u64`, then the five
/// [`ExecutorStats`] fields as `u64`.
pub const RESP_BARE: u8 = 4;
/// Response: a request could not be served. Body: tag, id `u64` (0 if unreadable), text.
pub const RESP_ERROR: u8 = 5;

/// Response instead of hello: unshare reported success for the outer sandbox but a namespace
/// is not new (a violation, `sandbox-namespaces-are-new`); nothing was written and the executor
/// exits 1. Body: tag, UTF-8 text.
pub const RESP_INEFFECTIVE: u8 = 6;

/// Bytes before a report's raw messages.
pub const REPORT_HEADER: usize = 1 + 8 + 4 + 1 + 3 * 8;

/// What the executor holds, to show that cases leak nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExecutorStats {
    /// Resident set size in KiB.
    pub rss_kib: u64,
    /// Open file descriptors (not counting the CPU lease's lock and the held namespaces).
    pub fds: u64,
    /// Lines of its mountinfo.
    pub mounts: u64,
    /// Processes in its pid namespace other than itself (leftover children, zombies).
    pub other_processes: u64,
    /// SysV semaphore sets in its IPC namespace (a setup's semaphore is removed after its case).
    pub semaphores: u64,
}

impl ExecutorStats {
    /// The wire form (five `u64`).
    pub fn encode(&self, out: &mut Vec<u8>) {
        for v in [self.rss_kib, self.fds, self.mounts, self.other_processes, self.semaphores] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Parses the wire form.
    pub fn decode(bytes: &[u8]) -> Option<ExecutorStats> {
        let v = |i: usize| read_u64(bytes, i * 8);
        Some(ExecutorStats { rss_kib: v(0)?, fds: v(1)?, mounts: v(2)?, other_processes: v(3)?, semaphores: v(4)? })
    }
}

/// The `u64` at `at`, if the buffer holds it.
pub fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let b = bytes.get(at..at + 8)?;
    let mut le = [0u8; 8];
    le.copy_from_slice(b);
    Some(u64::from_le_bytes(le))
}

/// The `i32` at `at`, if the buffer holds it.
pub fn read_i32(bytes: &[u8], at: usize) -> Option<i32> {
    let b = bytes.get(at..at + 4)?;
    let mut le = [0u8; 4];
    le.copy_from_slice(b);
    Some(i32::from_le_bytes(le))
}

/// Starts a frame in `out` (cleared): a length placeholder and the tag. Finish with
/// [`finish_frame`].
pub fn begin_frame(out: &mut Vec<u8>, tag: u8) {
    out.clear();
    out.extend_from_slice(&[0, 0, 0, 0, tag]);
}

/// Writes the body length into a frame begun with [`begin_frame`].
pub fn finish_frame(out: &mut [u8]) {
    let len = (out.len() - 4) as u32;
    out[..4].copy_from_slice(&len.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_stats_round_trip() {
        let mut out = Vec::new();
        begin_frame(&mut out, RESP_BARE);
        out.extend_from_slice(&7u64.to_le_bytes());
        let stats = ExecutorStats { rss_kib: 2600, fds: 5, mounts: 29, other_processes: 0, semaphores: 1 };
        stats.encode(&mut out);
        finish_frame(&mut out);
        assert_eq!(u32::from_le_bytes([out[0], out[1], out[2], out[3]]) as usize, out.len() - 4);
        assert_eq!(out[4], RESP_BARE);
        assert_eq!(read_u64(&out, 5), Some(7));
        assert_eq!(ExecutorStats::decode(&out[13..]), Some(stats));
        assert_eq!(ExecutorStats::decode(&out[14..]), None);
        assert_eq!(out.len(), 5 + 8 + 5 * 8);
        assert_eq!(read_i32(&out, out.len() - 3), None);
    }
}
