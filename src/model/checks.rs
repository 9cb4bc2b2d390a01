//! unshare's check sequence as an ordered table (unshare-semantics.md §2.2):
//! the first row whose condition holds decides the errno. Reading this table
//! next to `ksys_unshare()` should be a line-by-line comparison.

#![deny(missing_docs)]

use crate::abi::errno::Errno;
use crate::abi::flags::{NON_USER_NAMESPACES, bits};
use crate::abi::ns::NsLink;
use crate::case::NsType;

pub use super::rules::{Check, Ctx};
pub use super::state::ns_type_present;
use super::state::{PIDNS_MAX_LEVEL, PidChildren, USERNS_MAX_DEPTH};

macro_rules! row {
    ($id:literal, $step:literal, $errno:ident, $doc:literal, $cond:expr) => {
        Check { id: $id, step: $step, errno: Errno::$errno, cond: $cond, doc: $doc }
    };
}

/// Linux 6.18's sequence, in order.
#[rustfmt::skip]
pub const CHECKS_6_18: &[Check] = &[
    row!("unknown-bit", "1", EINVAL, "a bit outside the valid mask (after implications)",
        |c| c.f & !c.valid_mask != 0),
    row!("thread-multithreaded", "2", EINVAL, "THREAD|SIGHAND|VM while the thread group has more than one thread",
        |c| c.has(bits::THREAD | bits::SIGHAND | bits::VM) && c.state.threads > 1),
    row!("sighand-shared", "3", EINVAL, "SIGHAND|VM while the sighand struct is shared (a CLONE_SIGHAND sibling, threads, or an unreaped CLONE_SIGHAND zombie)",
        |c| c.has(bits::SIGHAND | bits::VM) && (c.state.sighand_shared_with_process() || c.state.threads > 1)),
    row!("vm-shared", "4", EINVAL, "VM while another process uses the mm",
        |c| c.has(bits::VM) && c.state.mm_shared()),
    row!("files-over-nr-open", "6", EMFILE, "FILES while the fd table is shared (a CLONE_FILES sibling, or threads) and the table for its highest open fd (rounded up to 64) exceeds fs.nr_open (guest-only: case::guest)",
        |c| c.has(bits::FILES) && (c.state.files_shared() || c.state.threads > 1) && c.state.fd_table_over_nr_open),
    row!("user-missing", "7", EINVAL, "NEWUSER on a kernel without user namespaces",
        |c| c.missing(bits::NEWUSER, NsLink::User)),
    row!("user-depth", "7b", ENOSPC, "NEWUSER when the caller is already 33 levels deep",
        |c| c.has(bits::NEWUSER) && c.state.userns_depth.is_some_and(|d| d >= USERNS_MAX_DEPTH)),
    row!("user-ucount", "7c", ENOSPC, "NEWUSER with max_user_namespaces exhausted",
        |c| c.has(bits::NEWUSER) && c.ucount_full(NsType::User)),
    row!("user-chrooted", "7d", EPERM, "NEWUSER while chrooted",
        |c| c.has(bits::NEWUSER) && c.state.chrooted),
    row!("user-unmapped", "7e", EPERM, "NEWUSER with euid or egid unmapped in the current user ns",
        |c| c.has(bits::NEWUSER) && !c.state.ids_mapped),
    row!("ns-needs-cap-sys-admin", "8a", EPERM, "a non-user namespace without CAP_SYS_ADMIN in the target user ns",
        |c| c.has(NON_USER_NAMESPACES) && !c.target_has_sys_admin()),
    row!("mnt-missing", "8c", EINVAL, "NEWNS on a kernel without mount namespaces",
        |c| c.missing(bits::NEWNS, NsLink::Mnt)),
    row!("mnt-ucount", "8c", ENOSPC, "NEWNS with max_mnt_namespaces exhausted",
        |c| c.has(bits::NEWNS) && c.ucount_full(NsType::Mnt)),
    row!("uts-missing", "8d", EINVAL, "NEWUTS without CONFIG_UTS_NS",
        |c| c.missing(bits::NEWUTS, NsLink::Uts)),
    row!("uts-ucount", "8d", ENOSPC, "NEWUTS with max_uts_namespaces exhausted",
        |c| c.has(bits::NEWUTS) && c.ucount_full(NsType::Uts)),
    row!("ipc-missing", "8e", EINVAL, "NEWIPC without CONFIG_IPC_NS",
        |c| c.missing(bits::NEWIPC, NsLink::Ipc)),
    row!("ipc-ucount", "8e", ENOSPC, "NEWIPC with max_ipc_namespaces exhausted",
        |c| c.has(bits::NEWIPC) && c.ucount_full(NsType::Ipc)),
    row!("pid-missing", "8f", EINVAL, "NEWPID without CONFIG_PID_NS",
        |c| c.missing(bits::NEWPID, NsLink::PidForChildren)),
    row!("pid-already-unshared", "8f", EINVAL, "NEWPID when pid_for_children is not the active pid ns",
        |c| c.has(bits::NEWPID) && c.state.pid_children != PidChildren::Active),
    row!("pid-owner-not-ancestor", "8f", EINVAL, "NEWPID where the target user ns does not descend from the owner of the pid ns being extended",
        |c| c.has(bits::NEWPID) && c.state.pid_owner_foreign),
    row!("pid-depth", "8f", ENOSPC, "NEWPID when the new pid namespace would be deeper than level 32",
        |c| c.has(bits::NEWPID) && c.state.pid_level.is_some_and(|l| l >= PIDNS_MAX_LEVEL)),
    row!("pid-ucount", "8f", ENOSPC, "NEWPID with max_pid_namespaces exhausted",
        |c| c.has(bits::NEWPID) && c.ucount_full(NsType::Pid)),
    row!("cgroup-ucount", "8g", ENOSPC, "NEWCGROUP with max_cgroup_namespaces exhausted",
        |c| c.has(bits::NEWCGROUP) && c.ucount_full(NsType::Cgroup)),
    row!("net-missing", "8h", EINVAL, "NEWNET without CONFIG_NET_NS",
        |c| c.missing(bits::NEWNET, NsLink::Net)),
    row!("net-ucount", "8h", ENOSPC, "NEWNET with max_net_namespaces exhausted",
        |c| c.has(bits::NEWNET) && c.ucount_full(NsType::Net)),
    row!("time-missing", "8i", EINVAL, "NEWTIME without CONFIG_TIME_NS",
        |c| c.missing(bits::NEWTIME, NsLink::TimeForChildren)),
    row!("time-ucount", "8i", ENOSPC, "NEWTIME with max_time_namespaces exhausted",
        |c| c.has(bits::NEWTIME) && c.ucount_full(NsType::Time)),
];

/// Linux 3.9 to 3.11 (spec §6): rows that differ from 6.18 have their own ids; the rest
/// are 6.18's rows (§6 names no change to them). No ucount rows (M6: none before 4.9), no
/// cgroup or time rows (not in the mask).
#[rustfmt::skip]
pub const CHECKS_3_11: &[Check] = &[
    row!("unknown-bit", "1", EINVAL, "a bit outside the valid mask (after implications)",
        |c| c.f & !c.valid_mask != 0),
    row!("mm-users", "M3", EINVAL, "THREAD|SIGHAND|VM while the mm has other users (threads, a CLONE_VM sibling, a vfork parent)",
        |c| c.has(bits::THREAD | bits::SIGHAND | bits::VM) && (c.state.threads > 1 || c.state.mm_shared())),
    row!("user-missing", "7", EINVAL, "NEWUSER on a kernel without user namespaces",
        |c| c.missing(bits::NEWUSER, NsLink::User)),
    row!("user-depth-eusers", "M6", EUSERS, "NEWUSER when the caller is already 33 levels deep (EUSERS in 3.11-4.8)",
        |c| c.has(bits::NEWUSER) && c.state.userns_depth.is_some_and(|d| d >= USERNS_MAX_DEPTH)),
    row!("user-chrooted", "7d", EPERM, "NEWUSER while chrooted",
        |c| c.has(bits::NEWUSER) && c.state.chrooted),
    row!("user-unmapped", "7e", EPERM, "NEWUSER with euid or egid unmapped in the current user ns",
        |c| c.has(bits::NEWUSER) && !c.state.ids_mapped),
    row!("ns-needs-cap-sys-admin", "8a", EPERM, "a non-user namespace without CAP_SYS_ADMIN in the target user ns",
        |c| c.has(NON_USER_NAMESPACES) && !c.target_has_sys_admin()),
    row!("mnt-missing", "8c", EINVAL, "NEWNS on a kernel without mount namespaces",
        |c| c.missing(bits::NEWNS, NsLink::Mnt)),
    row!("uts-missing", "8d", EINVAL, "NEWUTS without CONFIG_UTS_NS",
        |c| c.missing(bits::NEWUTS, NsLink::Uts)),
    row!("ipc-missing", "8e", EINVAL, "NEWIPC without CONFIG_IPC_NS",
        |c| c.missing(bits::NEWIPC, NsLink::Ipc)),
    row!("pid-missing", "8f", EINVAL, "NEWPID without CONFIG_PID_NS",
        |c| c.missing(bits::NEWPID, NsLink::PidForChildren)),
    row!("pid-already-unshared", "8f", EINVAL, "NEWPID when pid_for_children is not the active pid ns",
        |c| c.has(bits::NEWPID) && c.state.pid_children != PidChildren::Active),
    row!("pid-owner-not-ancestor", "8f", EINVAL, "NEWPID where the target user ns does not descend from the owner of the pid ns being extended",
        |c| c.has(bits::NEWPID) && c.state.pid_owner_foreign),
    row!("pid-depth-einval", "M7", EINVAL, "NEWPID when the new pid namespace would be deeper than level 32 (EINVAL before 4.9)",
        |c| c.has(bits::NEWPID) && c.state.pid_level.is_some_and(|l| l >= PIDNS_MAX_LEVEL)),
    row!("net-missing", "8h", EINVAL, "NEWNET without CONFIG_NET_NS",
        |c| c.missing(bits::NEWNET, NsLink::Net)),
];

/// Linux 2.6.16 (spec §6 M1), in its order: thread, fs, mount ns, sighand, vm, files,
/// semundo. Unknown bits never reach the table (the profile ignores them).
#[rustfmt::skip]
pub const CHECKS_2_6_16: &[Check] = &[
    row!("thread-always-einval", "M1", EINVAL, "THREAD, even single-threaded (2.6.16 to about 2.6.37)",
        |c| c.has(bits::THREAD)),
    row!("ns-needs-cap-sys-admin", "8a", EPERM, "NEWNS without CAP_SYS_ADMIN",
        |c| c.has(NON_USER_NAMESPACES) && !c.target_has_sys_admin()),
    row!("sighand-shared", "3", EINVAL, "SIGHAND|VM while the sighand struct is shared (SIGHAND implies THREAD when threads share it)",
        |c| c.has(bits::SIGHAND | bits::VM) && (c.state.sighand_shared_with_process() || c.state.threads > 1)),
    row!("vm-shared", "4", EINVAL, "VM while another process uses the mm",
        |c| c.has(bits::VM) && c.state.mm_shared()),
    row!("sysvsem-always-einval", "M1", EINVAL, "SYSVSEM (it only worked from 2.6.26)",
        |c| c.has(bits::SYSVSEM)),
];

/// The first row that fires, if any.
pub fn first_failing<'t>(table: &'t [Check], ctx: &Ctx) -> Option<&'t Check> {
    table.iter().find(|row| (row.cond)(ctx))
}

/// Every row that fires, in order (the first decides; the others show precedence).
pub fn all_failing<'t>(table: &'t [Check], ctx: &Ctx) -> Vec<&'t Check> {
    table.iter().filter(|row| (row.cond)(ctx)).collect()
}

/// Looks a row up by id (for reports).
pub fn by_id(table: &'static [Check], id: &str) -> Option<&'static Check> {
    table.iter().find(|row| row.id == id)
}
