//! The abstract state of the calling process that unshare's checks read
//! (unshare-semantics.md Appendix A, "state P"), built from the environment
//! and the setup, and carried from step to step.

use crate::case::{Privilege, Setup};
use crate::env::Environment;
use crate::ns::NsLink;

/// `CAP_SYS_ADMIN`.
pub const CAP_SYS_ADMIN: u32 = 21;

/// What the model knows about the caller before a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerState {
    /// Threads in the thread group.
    pub threads: u32,
    /// The sighand struct is shared with another process (a CLONE_SIGHAND sibling).
    pub sighand_shared_with_process: bool,
    /// The mm is used by another process (a CLONE_VM sibling or a blocked vfork parent).
    pub mm_shared_with_process: bool,
    /// CAP_SYS_ADMIN in the caller's current user namespace.
    pub cap_sys_admin: bool,
    /// euid and egid have mappings in the current user namespace.
    pub ids_mapped: bool,
    /// Root is not the root of the mount namespace.
    pub chrooted: bool,
    /// Depth of the current user namespace below the initial one, if known.
    pub userns_depth: Option<u32>,
    /// `pid_for_children` is still the active pid namespace (no NEWPID or setns(pid) so far).
    pub pid_for_children_is_active: bool,
    /// uid/gid as they read now, and the effective capability set.
    pub uid: u32,
    /// gid as it reads now.
    pub gid: u32,
    /// Effective capabilities as they read now.
    pub cap_eff: u64,
}

impl CallerState {
    /// The state right after `setup`, starting from the executor's state in `env`.
    ///
    /// # Errors
    /// A plain-language reason when the setup cannot be built in this environment
    /// (the case is then skipped with that reason).
    pub fn after_setup(env: &Environment, setup: &Setup) -> Result<CallerState, String> {
        let base = &env.baseline;
        let mut s = CallerState {
            threads: 1 + u32::from(setup.threads),
            sighand_shared_with_process: false,
            mm_shared_with_process: false,
            cap_sys_admin: base.cap_eff & (1 << CAP_SYS_ADMIN) != 0,
            ids_mapped: true,
            chrooted: env.chrooted,
            userns_depth: env.userns_depth,
            pid_for_children_is_active: true,
            uid: base.uid,
            gid: base.gid,
            cap_eff: base.cap_eff,
        };
        match setup.privilege {
            Privilege::Root => {
                if base.euid != 0 {
                    return Err(format!(
                        "the executor runs as uid {} in its sandbox, not root",
                        base.euid
                    ));
                }
            }
            Privilege::RootWithoutSysAdmin => {
                if base.euid != 0 {
                    return Err(format!(
                        "the executor runs as uid {} in its sandbox, not root",
                        base.euid
                    ));
                }
                s.cap_sys_admin = false;
                s.cap_eff &= !(1 << CAP_SYS_ADMIN);
            }
            Privilege::Nobody => {
                if !env.nobody_mapped {
                    return Err("uid/gid 65534 are not mapped in the executor's user namespace \
                                (the sandbox of an unprivileged run maps only uid 0); run as root to cover it"
                        .into());
                }
                s.cap_sys_admin = false;
                s.cap_eff = 0;
                s.uid = 65534;
                s.gid = 65534;
            }
            Privilege::UserNs => {
                if env.max_namespaces("user") == Some(0) {
                    return Err(
                        "max_user_namespaces is 0 here, so the user-ns setup cannot be built"
                            .into(),
                    );
                }
                if env.chrooted {
                    return Err(
                        "the executor is chrooted, so the user-ns setup cannot be built".into(),
                    );
                }
                if !env.has_link(NsLink::User) {
                    return Err("user namespaces are not available on this kernel".into());
                }
                s.cap_sys_admin = true;
                s.cap_eff = env.full_caps();
                s.uid = 0;
                s.gid = 0;
                s.userns_depth = s.userns_depth.map(|d| d + 1);
            }
        }
        Ok(s)
    }
}
