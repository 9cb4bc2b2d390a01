//! The `idmap` step in the case child (issue 16 class 3, `case::idmap`): one write, in a single
//! `write(2)` as `map_write` requires, of the caller's own uid_map, gid_map or setgroups. The
//! lines are relative to the ids the caller had before its last NEWUSER. Post-fork code: no
//! allocation (`tests/style.rs`).

use crate::abi::errno::Errno;
use crate::case::idmap::{IdmapFile, IdmapOp};
use crate::sys;

/// Runs `op`; `outer` is (euid, egid) before the caller's last NEWUSER.
pub fn run(op: IdmapOp, outer: (u32, u32)) -> Result<(), Errno> {
    let (file, lines) = op.target();
    let (path, own) = match (file, lines) {
        (IdmapFile::Uid, Some(_)) => (c"/proc/self/uid_map", outer.0),
        (IdmapFile::Gid, Some(_)) => (c"/proc/self/gid_map", outer.1),
        _ => return sys::write_file(c"/proc/self/setgroups", b"deny"),
    };
    let Some(lines) = lines else { return Err(Errno(libc::EINVAL)) };
    let (extents, n) = lines.extents(own);
    let mut text = [0u8; 80];
    let mut len = 0;
    for &(inner, outer_id, count) in &extents[..n] {
        let mut line = [0u8; 40];
        let l = sys::proc::map_line(&mut line, inner, outer_id, count);
        text[len..len + l.len()].copy_from_slice(l);
        len += l.len();
    }
    sys::write_file(path, &text[..len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writing_outside_a_new_user_namespace_is_refused() {
        // The test process's own user namespace has its maps written (or none to write).
        let (_, _, euid, egid) = sys::ids();
        assert_eq!(run(IdmapOp::UidOwn, (euid, egid)), Err(Errno::EPERM));
    }
}
