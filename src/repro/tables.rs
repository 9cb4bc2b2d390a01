//! The constants and tables the C primitives read, generated from the harness's own: the
//! namespace links, the record sizes, the `CLONE_*` bits of [`crate::abi::flags::FLAGS`], the errno
//! names, the setup-operation names, the chroot tree and the depth limits.

use std::fmt::Write;

use super::c_str;
use crate::abi::errno::Errno;
use crate::abi::flags::FLAGS;
use crate::abi::ns::NsLink;
use crate::case::CLONE3_CGROUP_FD;
use crate::env::{PIDNS_MAX_LEVEL, USERNS_MAX_DEPTH};
use crate::exec::child::record::SetupOp;
use crate::exec::child::{CHROOT_DIR, CHROOT_LEVELS};

/// Writes the `#define`s and tables.
pub(super) fn tables(out: &mut String) {
    let _ = writeln!(out, "#define NLINKS {}", NsLink::COUNT);
    let _ = writeln!(out, "#define MAX_STEPS {}", crate::case::MAX_STEPS);
    let _ = writeln!(out, "#define SIBS {}", crate::exec::child::record::SIBS);
    let _ = writeln!(out, "#define FDS {}", crate::exec::child::record::FDS);
    let links: Vec<String> = NsLink::ALL.iter().map(|l| c_str(l.file_name())).collect();
    let _ = writeln!(out, "static const char *const LINK_NAMES[NLINKS] = {{ {} }};", links.join(", "));
    let _ = writeln!(out, "#define LINK_PID {}", NsLink::Pid.index());
    let _ = writeln!(out, "#define LINK_USER {}", NsLink::User.index());
    for f in FLAGS {
        let _ = writeln!(out, "#define U_CLONE_{} {:#x}ULL", f.name, f.bit);
    }
    let errnos: Vec<(i32, &str)> = (1..200).filter_map(|e| Errno(e).name().map(|n| (e, n))).collect();
    let _ = writeln!(out, "#define NERRNOS {}", errnos.len());
    let values: Vec<String> = errnos.iter().map(|(e, _)| e.to_string()).collect();
    let strs: Vec<String> = errnos.iter().map(|(_, n)| c_str(n)).collect();
    let _ = writeln!(out, "static const int ERRNO_VALUES[NERRNOS] = {{ {} }};", values.join(", "));
    let _ = writeln!(out, "static const char *const ERRNO_STRS[NERRNOS] = {{ {} }};", strs.join(", "));
    for (name, op) in super::lower::SETUP_OPS {
        let _ = writeln!(out, "#define {name} {}", c_str(SetupOp::describe(op as u32)));
    }
    let _ = writeln!(out, "#define CHROOT_DIR {}", c_str(&CHROOT_DIR.to_string_lossy()));
    let _ = writeln!(out, "#define CHROOT_LEVELS {CHROOT_LEVELS}");
    let _ = writeln!(out, "#define CLONE3_CGROUP_FD {CLONE3_CGROUP_FD}ULL");
    let _ = writeln!(out, "#define PIDNS_MAX_LEVEL {PIDNS_MAX_LEVEL}");
    let _ = writeln!(out, "#define USERNS_MAX_DEPTH {USERNS_MAX_DEPTH}");
    // Any cap above both limits, so that the room probes end in the kernel's refusal.
    let _ = writeln!(out, "#define NESTED_MAX {}", USERNS_MAX_DEPTH.max(PIDNS_MAX_LEVEL) + 7);
}
