//! How the model builds the caller's state from a case's setup ([`CallerState::after_setup`]):
//! the executor's own state, then siblings, placement in pid and user namespaces, chroot and
//! privilege, each refused with a plain-language reason where this environment cannot build it.

use crate::abi::ns::NsLink;
use crate::case::{Chroot, NsType, Privilege, Setup, Shm, Sibling};
use crate::env::Environment;

use super::state::*;

impl CallerState {
    /// The state right after `setup`, starting from the executor's state in `env`.
    ///
    /// # Errors
    /// A plain-language reason when the setup cannot be built in this environment
    /// (the case is then skipped with that reason).
    pub fn after_setup(env: &Environment, setup: &Setup) -> Result<CallerState, String> {
        let base = &env.baseline;
        let mut s = CallerState::of_executor(env);
        if base.euid != 0 {
            return Err(format!("the executor runs as uid {} in its sandbox, not root", base.euid));
        }
        if setup.shared_mount {
            s.shared_mount_rules(env)?;
        }
        if setup.nsfs_bind {
            s.nsfs_bind_rules(env)?;
        }
        s.placement(env, setup)?;
        if setup.chroot == Some(Chroot::Subdir) {
            s.chrooted = true;
        }
        s.fds = setup.fds;
        if setup.shm == Some(Shm::RmidForced) {
            // The setup's own IPC namespace (unshare(NEWIPC) before the semaphore and the
            // privilege): the markers then read "not in the executor's" before the steps.
            if !s.cap_sys_admin || !ns_type_present(env, NsLink::Ipc) || s.limit_zero(env, NsType::Ipc) {
                return Err(
                    "the shm setup `rmid-forced` makes an IPC namespace of its own, which needs CAP_SYS_ADMIN, \
                            IPC namespaces and a max_ipc_namespaces above 0 here"
                        .into(),
                );
            }
        }
        if setup.sem_clamp && !setup.sem_undo {
            return Err("`sem_clamp` decrements the setup's semaphore, which only `sem_undo` makes".into());
        }
        s.fd_table_over_nr_open = crate::case::guest::table_exceeds_nr_open(setup.fd_at, setup.nr_open);
        if setup.sem_undo {
            // With `sem_clamp` the value is 0 and the pending adjustment -1.
            let value = if setup.sem_clamp { 0 } else { 1 };
            s.sem = Some(Sem { caller_in_ns: true, value, undo: Undo::Private });
            s.undo_list = true;
        }
        s.privilege(env, setup.privilege)?;
        // Every user namespace the setup makes (nesting, a private one for a zero limit, a
        // fresh one as the privilege) is made without a mount namespace: the sandbox's stays
        // owned by the executor's user namespace.
        s.mnt_owned_by_userns = s.userns_depth == env.userns_depth;
        s.idmap = super::idmap::initial(env, !s.mnt_owned_by_userns);
        s.idmap.witness = super::idmap_witness::at_start(env, &s, !s.mnt_owned_by_userns);
        for kind in &setup.siblings {
            s.add_sibling(*kind);
        }
        s.threads += u32::from(setup.threads);
        // pthread_create passes CLONE_SYSVSEM.
        s.undo_list |= setup.threads > 0;
        if setup.vfork {
            s.become_vfork_child();
        }
        Ok(s)
    }

    /// What the setup's nsfs bind mount needs (`Setup::nsfs_bind`): it runs first, in the
    /// executor's own user namespace, and ends with a setns back into the mount namespace it
    /// made, which also resets root and cwd to that namespace's root. Its mount namespace is
    /// owned by the executor's user namespace like the sandbox's, so nothing the model tracks
    /// changes.
    fn nsfs_bind_rules(&self, env: &Environment) -> Result<(), String> {
        // Its files live in the sandbox's private tmpfs on /tmp, which the chroot tree shares:
        // without that tree (the sandbox's mount namespace is not new, or /tmp is not its own),
        // the setup would write into a /tmp that is not the sandbox's alone.
        if let Some(why) = &env.no_chroot_tree {
            return Err(format!("the sandbox has no private /tmp ({why}), so the nsfs bind setup cannot be built"));
        }
        if self.chrooted {
            return Err("the harness runs chrooted: the nsfs bind setup's setns would leave that chroot".into());
        }
        if !self.has_cap(CAP_SYS_ADMIN) || !self.has_cap(CAP_SYS_CHROOT) {
            return Err("the nsfs bind setup needs CAP_SYS_ADMIN and CAP_SYS_CHROOT (unshare(NEWNS), setns)".into());
        }
        if self.limit_zero(env, NsType::Mnt) {
            return Err("max_mnt_namespaces is 0 here, so the nsfs bind setup's mount namespaces cannot be made".into());
        }
        Ok(())
    }

    /// What the setup's shared tmpfs needs (`Setup::shared_mount`): like the nsfs bind mount it
    /// runs first, in the executor's user namespace, and its mount namespace is owned by that
    /// user namespace like the sandbox's, so nothing the model tracks changes.
    fn shared_mount_rules(&self, env: &Environment) -> Result<(), String> {
        if let Some(why) = &env.no_chroot_tree {
            return Err(format!("the sandbox has no private /tmp ({why}), so the shared tmpfs setup cannot be built"));
        }
        if !self.has_cap(CAP_SYS_ADMIN) {
            return Err("the shared tmpfs setup needs CAP_SYS_ADMIN (unshare(NEWNS), mount)".into());
        }
        if self.limit_zero(env, NsType::Mnt) {
            return Err(
                "max_mnt_namespaces is 0 here, so the shared tmpfs setup's mount namespace cannot be made".into()
            );
        }
        Ok(())
    }

    /// The executor's own state in `env`, before any setup.
    fn of_executor(env: &Environment) -> CallerState {
        let base = &env.baseline;
        CallerState {
            threads: 1,
            vfork_parent: false,
            cap_sys_admin: base.cap_eff & (1 << CAP_SYS_ADMIN) != 0,
            uid: base.uid,
            gid: base.gid,
            cap_eff: base.cap_eff,
            ids_mapped: true,
            maps_writable: false,
            chrooted: env.chrooted,
            userns_depth: env.userns_depth,
            pid_level: env.pidns_level,
            pid_children: PidChildren::Active,
            pid_owner_foreign: false,
            time_pending: false,
            limits_zero: Vec::new(),
            siblings: Vec::new(),
            sem: None,
            fds: 0,
            proc_visible: true,
            mnt_owned_by_userns: true,
            mounts_locked: false,
            undo_list: false,
            is_init: false,
            sigchld_ignored: false,
            unknowable: None,
            sighand_held_by_zombie: false,
            fd_table_over_nr_open: false,
            parent_ignores_sigchld: false,
            caps: Default::default(),
            setns: SetnsState::default(),
            idmap: super::idmap_state::IdmapState::default(),
        }
    }

    /// A sibling made by raw clone with `kind`'s flags.
    fn add_sibling(&mut self, kind: Sibling) {
        let flags = kind.clone_flags();
        use crate::abi::flags::bits;
        let undo = flags & bits::SYSVSEM != 0;
        if undo && let Some(sem) = self.sem.as_mut() {
            sem.undo = Undo::Shared;
        }
        // clone(CLONE_SYSVSEM) gives the caller an undo list if it had none.
        self.undo_list |= undo;
        self.siblings.push(SiblingState {
            kind,
            files: flags & bits::FILES != 0,
            fs: flags & bits::FS != 0,
            mm: flags & bits::VM != 0,
            sighand: flags & bits::SIGHAND != 0,
            undo,
            kcmp_allowed: true,
            pid_visible: true,
        });
    }

    /// The steps run in clone(CLONE_VM|CLONE_VFORK): one thread, the parent's mm (and so any
    /// CLONE_VM sibling's), but copies of everything else and no undo list.
    fn become_vfork_child(&mut self) {
        self.threads = 1;
        self.vfork_parent = true;
        self.undo_list = false;
        self.is_init = false;
        for sib in &mut self.siblings {
            sib.files = false;
            sib.fs = false;
            sib.sighand = false;
            sib.undo = false;
        }
        if let Some(sem) = self.sem.as_mut() {
            sem.undo = Undo::None;
        }
    }

    /// Nesting, zero limit and the foreign pid namespace.
    fn placement(&mut self, env: &Environment, setup: &Setup) -> Result<(), String> {
        let bounded = |what: &str, room: Option<crate::env::Room>| {
            format!(
                "the executor's {what} is only bounded (room for nested namespaces: at least {}, the probe stopped \
                 with {}), so it cannot be set up",
                room.map_or(0, |r| r.made),
                room.and_then(|r| r.stopped_by).map_or("nothing".into(), |e| crate::abi::errno::Errno(e).to_string())
            )
        };
        if setup.pidns_level.is_some() && self.pid_level.is_some() && !env.headroom.pid_exact() {
            return Err(bounded("pid-namespace level", env.headroom.pid_nested));
        }
        if setup.userns_depth.is_some() && self.userns_depth.is_some() && !env.headroom.user_exact() {
            return Err(bounded("user-namespace depth", env.headroom.user_nested));
        }
        if let Some(target) = setup.pidns_level {
            let Some(level) = self.pid_level else {
                return Err("the executor's pid-namespace level is unknown, so a pid-ns level cannot be set up".into());
            };
            if u32::from(target) < level {
                return Err(format!("the executor is already at pid-namespace level {level}, above {target}"));
            }
            if !ns_type_present(env, NsLink::PidForChildren) {
                return Err("this kernel has no pid namespaces".into());
            }
            self.pid_level = Some(u32::from(target));
            // Each nesting round forks the new namespace's init and continues in it.
            self.is_init = u32::from(target) > level;
        }
        if let Some(target) = setup.userns_depth {
            let Some(depth) = self.userns_depth else {
                return Err("the executor's user-namespace depth is unknown, so a depth cannot be set up".into());
            };
            if u32::from(target) < depth {
                return Err(format!("the executor is already at user-namespace depth {depth}, below {target}"));
            }
            if u32::from(target) > depth {
                self.enter_mapped_userns(env, u32::from(target) - depth)?;
            }
        }
        if let Some(t) = setup.limit_zero {
            if env.max_namespaces(t.name()).is_none() {
                return Err(format!(
                    "this kernel has no /proc/sys/user/max_{}_namespaces, so that limit cannot be set to 0",
                    t.name()
                ));
            }
            self.enter_mapped_userns(env, 1)?;
            self.limits_zero.push(t);
        }
        if setup.foreign_pidns {
            self.enter_foreign_pidns(env)?;
        }
        Ok(())
    }

    /// The foreign pid namespace: a helper makes a user+pid namespace pair and forks its init;
    /// the case joins it through a pidfd and forks.
    fn enter_foreign_pidns(&mut self, env: &Environment) -> Result<(), String> {
        if self.chrooted {
            return Err("the harness runs chrooted, so NEWUSER gives EPERM and the helper cannot make the user \
                        namespace that owns the foreign pid namespace"
                .into());
        }
        if self.userns_depth.is_some_and(|d| d >= USERNS_MAX_DEPTH) || self.limit_zero(env, NsType::User) {
            return Err("no room for the child user namespace that owns the foreign pid namespace".into());
        }
        if self.pid_level.is_none_or(|l| l >= PIDNS_MAX_LEVEL) || self.limit_zero(env, NsType::Pid) {
            return Err("no room (or unknown level) for the foreign pid namespace".into());
        }
        self.pid_level = self.pid_level.map(|l| l + 1);
        self.pid_owner_foreign = true;
        // The helper forked that namespace's init; we continue as a later process.
        self.is_init = false;

        Ok(())
    }

    fn enter_mapped_userns(&mut self, env: &Environment, levels: u32) -> Result<(), String> {
        if !ns_type_present(env, NsLink::User) {
            return Err("this kernel has no user namespaces".into());
        }
        if self.chrooted {
            return Err(
                "the harness runs chrooted, so NEWUSER gives EPERM and the setup's user namespaces cannot be made"
                    .into(),
            );
        }
        if self.limit_zero(env, NsType::User) {
            return Err("max_user_namespaces is 0 here, so the setup's user namespaces cannot be made".into());
        }
        let depth = self.userns_depth.map(|d| d + levels);
        if depth.is_none_or(|d| d > USERNS_MAX_DEPTH) {
            return Err(match depth {
                Some(d) if env.headroom.user_exact() => {
                    format!("the setup would need user-namespace depth {d}, over the limit of 33")
                }
                _ => format!(
                    "the setup needs {levels} more nested user namespace(s), past the room the start-up probe could \
                     show (at least {})",
                    env.headroom.user_nested.map_or(0, |r| r.made)
                ),
            });
        }
        self.userns_depth = depth;
        self.uid = 0;
        self.gid = 0;
        self.cap_eff = env.full_caps();
        self.cap_sys_admin = true;
        Ok(())
    }

    fn privilege(&mut self, env: &Environment, privilege: Privilege) -> Result<(), String> {
        match privilege {
            Privilege::Root => {}
            Privilege::RootWithoutSysAdmin => {
                self.cap_sys_admin = false;
                self.cap_eff &= !(1 << CAP_SYS_ADMIN);
            }
            Privilege::Nobody => {
                if !env.nobody_mapped || self.userns_depth != env.userns_depth {
                    return Err("uid/gid 65534 are not mapped in the current user namespace (an unprivileged run's \
                                sandbox, or a nested user namespace, maps only uid 0); run as root without nesting to cover it"
                        .into());
                }
                self.cap_sys_admin = false;
                self.cap_eff = 0;
                self.uid = 65534;
                self.gid = 65534;
            }
            Privilege::UserNs => {
                if self.chrooted {
                    return Err("the user-ns privilege cannot be set up while chrooted (NEWUSER gives EPERM)".into());
                }
                self.enter_mapped_userns(env, 1)?;
            }
        }
        Ok(())
    }
}
