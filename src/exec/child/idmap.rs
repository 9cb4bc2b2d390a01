//! The `idmap` and `witness_idmap` steps in the case child (issue 16 class 3, `case::idmap`):
//! one write, in a single `write(2)` as `map_write` requires, of a uid_map, gid_map or
//! setgroups. The caller writes its own (`/proc/self`), with lines relative to the ids it had
//! before its last NEWUSER; the inside witness writes the caller's, through a directory
//! descriptor of the caller's `/proc/self`, with lines relative to its own effective ids.
//! Post-fork code: no allocation (`tests/style.rs`).

use std::os::fd::RawFd;

use crate::abi::errno::Errno;
use crate::case::idmap::{IdmapFile, IdmapOp};
use crate::sys;

/// Runs `op` as the caller; `outer` is (euid, egid) before the caller's last NEWUSER.
pub fn run(op: IdmapOp, outer: (u32, u32)) -> Result<(), Errno> {
    write_at(libc::AT_FDCWD, c"/proc/self/uid_map", c"/proc/self/gid_map", c"/proc/self/setgroups", op, outer)
}

/// Runs `op` on the files of the `/proc/<pid>` directory `dir`, with lines relative to `own`
/// (the writer's effective uid and gid): the inside witness's write.
pub fn run_in(dir: RawFd, op: IdmapOp, own: (u32, u32)) -> Result<(), Errno> {
    write_at(dir, c"uid_map", c"gid_map", c"setgroups", op, own)
}

fn write_at(
    dir: RawFd,
    uid_map: &std::ffi::CStr,
    gid_map: &std::ffi::CStr,
    setgroups: &std::ffi::CStr,
    op: IdmapOp,
    own: (u32, u32),
) -> Result<(), Errno> {
    let (file, lines) = op.target();
    let (path, own) = match (file, lines) {
        (IdmapFile::Uid, Some(_)) => (uid_map, own.0),
        (IdmapFile::Gid, Some(_)) => (gid_map, own.1),
        _ => return sys::write_file_at(dir, setgroups, b"deny"),
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
    sys::write_file_at(dir, path, &text[..len])
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

    #[test]
    fn a_directory_descriptor_reaches_the_same_files() {
        let dir = sys::open_raw(c"/proc/self", libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC).unwrap();
        let (_, _, euid, egid) = sys::ids();
        assert_eq!(run_in(dir, IdmapOp::GidOwn, (euid, egid)), Err(Errno::EPERM));
        assert_eq!(run_in(-1, IdmapOp::GidOwn, (euid, egid)), Err(Errno(libc::EBADF)));
        sys::close_raw(dir).unwrap();
    }
}
