//! The coverage mode's part of the executor protocol: the harness asks for it
//! through [`KCOV_VAR`]; the executor then opens KCOV ([`crate::sys::kcov`]) and
//! appends each case's PCs to its report frame as a trailer, which the harness
//! takes off again before decoding the child's messages. Without the variable
//! nothing changes: no descriptor, no trailer, no extra work per case.
//!
//! Trailer (little-endian `u64`s, after the child's raw messages): the distinct
//! PCs in ascending order, then their count, then slots that overflowed, then
//! [`TRAILER_MAGIC`].

use crate::sys;

/// Environment variable of the executor: the KCOV device to open (normally
/// `/sys/kernel/debug/kcov`).
pub const KCOV_VAR: &str = "UNSHARE_FUZZ_KCOV";

/// Last word of a report frame that carries PCs ("UFKCOV01").
pub const TRAILER_MAGIC: u64 = u64::from_le_bytes(*b"UFKCOV01");

/// Most distinct PCs one trailer carries (a whole minimal kernel has about 120,000 coverage
/// points); more are cut, which the harness sees as a buffer that filled up.
pub const MAX_PCS: usize = 1 << 19;

/// Room a report buffer needs for the largest trailer.
pub const MAX_TRAILER: usize = (MAX_PCS + 3) * 8;

/// The PCs of one case, as the harness receives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CasePcs {
    /// Distinct PCs, ascending.
    pub pcs: Vec<u64>,
    /// Buffers that filled up (the trace of that task was cut).
    pub overflowed: u64,
}

/// Executor: if KCOV was asked for, opens it (before the sandbox, while debugfs is in sight).
///
/// # Errors
/// What failed, for the fatal frame.
pub fn open_if_asked() -> Result<bool, String> {
    let Some(path) = std::env::var_os(KCOV_VAR) else { return Ok(false) };
    let c = std::ffi::CString::new(path.as_encoded_bytes())
        .map_err(|_| format!("{KCOV_VAR} holds a NUL byte: {path:?}"))?;
    sys::kcov::open_slots(&c).map_err(|(what, e)| {
        format!(
            "coverage mode: {what} of {} failed: {e}; the kernel needs CONFIG_KCOV and debugfs mounted on \
             /sys/kernel/debug (the kernel of scripts/kcov-kernel.sh, booted by scripts/kcov.sh)",
            c.to_string_lossy()
        )
    })?;
    Ok(true)
}

/// Executor, after a case: appends the trailer to the finished report frame in `out` and
/// updates the frame's length (`scratch` is reused between cases).
pub fn append_trailer(out: &mut sys::ParentOnlyBuf, scratch: &mut Vec<u64>) {
    scratch.clear();
    let mut full = sys::kcov::collect(scratch) as u64;
    scratch.sort_unstable();
    scratch.dedup();
    if scratch.len() > MAX_PCS {
        scratch.truncate(MAX_PCS);
        full += 1;
    }
    for pc in scratch.iter() {
        out.extend_from_slice(&pc.to_le_bytes());
    }
    for w in [scratch.len() as u64, full, TRAILER_MAGIC] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    let len = (out.len() - 4) as u32;
    out.as_mut_slice()[..4].copy_from_slice(&len.to_le_bytes());
}

/// Harness: splits a report's raw part into the child's messages and the PCs (`None` if the
/// frame has no well-formed trailer).
pub fn split_trailer(raw: &[u8]) -> (&[u8], Option<CasePcs>) {
    let word = |from_end: usize| -> Option<u64> {
        let end = raw.len().checked_sub(8 * from_end)?;
        let b: [u8; 8] = raw.get(end..end + 8)?.try_into().ok()?;
        Some(u64::from_le_bytes(b))
    };
    let (Some(TRAILER_MAGIC), Some(full), Some(n)) = (word(1), word(2), word(3)) else { return (raw, None) };
    let Some(start) = usize::try_from(n).ok().and_then(|n| raw.len().checked_sub(8 * (n + 3))) else {
        return (raw, None);
    };
    let pcs = raw[start..raw.len() - 24]
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    (&raw[..start], Some(CasePcs { pcs, overflowed: full }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trailer_splits_off_and_a_plain_report_stays_whole() {
        let mut raw = vec![7u8; 48];
        for w in [0xffff_ffff_8100_0010u64, 0xffff_ffff_8100_0020, 2, 0, TRAILER_MAGIC] {
            raw.extend_from_slice(&w.to_le_bytes());
        }
        let (msgs, pcs) = split_trailer(&raw);
        assert_eq!(msgs, &[7u8; 48][..]);
        assert_eq!(pcs.unwrap().pcs, vec![0xffff_ffff_8100_0010, 0xffff_ffff_8100_0020]);
        let plain = vec![7u8; 48];
        assert_eq!(split_trailer(&plain), (&plain[..], None));
        // A count larger than the frame is not a trailer.
        let mut bad = vec![];
        for w in [99u64, 0, TRAILER_MAGIC] {
            bad.extend_from_slice(&w.to_le_bytes());
        }
        assert_eq!(split_trailer(&bad).1, None);
    }
}
