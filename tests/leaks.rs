//! The executor leaks nothing across cases: after thousands of random cases
//! (siblings, nesting, chroot, semaphores, forks), it holds the same fds and
//! mounts as when it started, no process other than itself is left in its
//! pid namespace, and its resident memory stays under 20 MiB.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

mod common;

use std::time::Duration;

use unshare_fuzz::exec::Executor;
use unshare_fuzz::model::profile::LINUX_6_18;
use unshare_fuzz::runner::{RunConfig, cases_for_seed, check_case};

#[test]
fn thousands_of_cases_leave_no_fd_mount_process_or_memory_behind() {
    let mut ex = Executor::spawn(common::binary(), &[]).unwrap();
    let (_, before) = ex.bare_loop(&[]).unwrap();
    let config = RunConfig {
        cases: 3000,
        seed: 77,
        timeout: Duration::from_secs(5),
        profile: &LINUX_6_18,
        executor_args: Vec::new(),
        jobs: 1,
        fault: None,
    };
    let mut ran = 0;
    for case in cases_for_seed(config.seed).take(config.cases as usize) {
        let v = check_case(&mut ex, &config, &case).unwrap();
        assert!(v.broken.is_none(), "{case}: {:?}", v.broken);
        ran += u32::from(v.reached_syscall);
    }
    let (_, after) = ex.bare_loop(&[]).unwrap();
    assert!(ran > 2000, "only {ran} cases reached the syscall");
    assert_eq!(after.fds, before.fds, "fds: {before:?} -> {after:?}");
    assert_eq!(after.mounts, before.mounts, "mounts: {before:?} -> {after:?}");
    assert_eq!(after.other_processes, 0, "processes left behind: {after:?}");
    assert!(after.rss_kib <= 20 * 1024, "executor RSS {} KiB", after.rss_kib);
    assert!(after.rss_kib <= before.rss_kib + 2048, "RSS grew: {before:?} -> {after:?}");
}
