//! The kernel functions whose lines the coverage report counts: unshare's own
//! path (issue 18), by the function names DWARF gives them (an inlined static
//! helper keeps its own name in the inline chain). Pure data.

/// One group of target functions and why they are on unshare's path.
#[derive(Debug, Clone, Copy)]
pub struct TargetGroup {
    /// Short label for the report.
    pub label: &'static str,
    /// Function names (as `addr2line -f` prints them).
    pub functions: &'static [&'static str],
}

/// Every target, in the order of the report.
pub const TARGETS: &[TargetGroup] = &[
    TargetGroup {
        label: "syscall entry and ksys_unshare (kernel/fork.c)",
        functions: &[
            "__x64_sys_unshare",
            "__se_sys_unshare",
            "__do_sys_unshare",
            "ksys_unshare",
            "check_unshare_flags",
            "unshare_fs",
            "unshare_fd",
        ],
    },
    TargetGroup {
        label: "nsproxy (kernel/nsproxy.c)",
        functions: &[
            "unshare_nsproxy_namespaces",
            "create_new_namespaces",
            "create_nsproxy",
            "switch_task_namespaces",
            "free_nsproxy",
            "put_nsproxy",
        ],
    },
    TargetGroup {
        label: "user namespace and credentials (kernel/user_namespace.c, kernel/cred.c)",
        functions: &[
            "unshare_userns",
            "create_user_ns",
            "set_cred_user_ns",
            "inc_user_namespaces",
            "dec_user_namespaces",
            "prepare_creds",
            "commit_creds",
            "abort_creds",
            "set_cred_ucounts",
        ],
    },
    TargetGroup {
        label: "mount namespace (fs/namespace.c)",
        functions: &["copy_mnt_ns", "alloc_mnt_ns", "inc_mnt_namespaces", "dec_mnt_namespaces"],
    },
    TargetGroup {
        label: "UTS namespace (kernel/utsname.c)",
        functions: &["copy_utsname", "clone_uts_ns", "create_uts_ns", "inc_uts_namespaces", "dec_uts_namespaces"],
    },
    TargetGroup {
        label: "IPC namespace and SysV undo (ipc/namespace.c, ipc/sem.c, ipc/shm.c)",
        functions: &[
            "copy_ipcs",
            "create_ipc_ns",
            "inc_ipc_namespaces",
            "dec_ipc_namespaces",
            "exit_sem",
            "exit_shm",
            "shm_init_task",
        ],
    },
    TargetGroup {
        label: "PID namespace (kernel/pid_namespace.c)",
        functions: &[
            "copy_pid_ns",
            "create_pid_namespace",
            "create_pid_cachep",
            "inc_pid_namespaces",
            "dec_pid_namespaces",
        ],
    },
    TargetGroup {
        label: "network namespace (net/core/net_namespace.c)",
        functions: &["copy_net_ns", "net_alloc", "setup_net", "inc_net_namespaces", "dec_net_namespaces"],
    },
    TargetGroup {
        label: "cgroup namespace (kernel/cgroup/namespace.c)",
        functions: &["copy_cgroup_ns", "alloc_cgroup_ns", "inc_cgroup_namespaces", "dec_cgroup_namespaces"],
    },
    TargetGroup {
        label: "time namespace (kernel/time/namespace.c)",
        functions: &["copy_time_ns", "clone_time_ns", "inc_time_namespaces", "dec_time_namespaces"],
    },
    TargetGroup {
        label: "fs_struct and files_struct (fs/fs_struct.c, fs/file.c)",
        functions: &[
            "copy_fs_struct",
            "free_fs_struct",
            "dup_fd",
            "sane_fdtable_size",
            "alloc_fdtable",
            "copy_fd_bitmaps",
            "put_files_struct",
        ],
    },
    TargetGroup {
        label: "namespace counts (kernel/ucount.c)",
        functions: &["inc_ucount", "dec_ucount", "alloc_ucounts", "get_ucounts", "put_ucounts"],
    },
];

/// Whether `function` is a target.
pub fn is_target(function: &str) -> bool {
    TARGETS.iter().any(|g| g.functions.contains(&function))
}

/// The group label of a target function.
pub fn group_of(function: &str) -> Option<&'static str> {
    TARGETS.iter().find(|g| g.functions.contains(&function)).map(|g| g.label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_function_of_the_issue_is_a_target_and_no_name_is_listed_twice() {
        for f in ["ksys_unshare", "check_unshare_flags", "unshare_fs", "unshare_fd", "unshare_userns"] {
            assert!(is_target(f), "{f}");
        }
        for f in ["unshare_nsproxy_namespaces", "create_new_namespaces", "copy_mnt_ns", "copy_net_ns"] {
            assert!(is_target(f), "{f}");
        }
        assert!(!is_target("do_sys_open"));
        let mut all: Vec<&str> = TARGETS.iter().flat_map(|g| g.functions.iter().copied()).collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
        assert_eq!(group_of("copy_ipcs"), Some(TARGETS[5].label));
    }
}
