//! Unit tests of `abi/flags.rs`.
use super::*;
use proptest::prelude::*;

#[test]
fn table_matches_libc_constants() {
    let pairs: &[(&str, u64)] = &[
        ("NEWTIME", libc::CLONE_NEWTIME as u64),
        ("VM", libc::CLONE_VM as u64),
        ("FS", libc::CLONE_FS as u64),
        ("FILES", libc::CLONE_FILES as u64),
        ("SIGHAND", libc::CLONE_SIGHAND as u64),
        ("PIDFD", libc::CLONE_PIDFD as u64),
        ("PTRACE", libc::CLONE_PTRACE as u64),
        ("VFORK", libc::CLONE_VFORK as u64),
        ("PARENT", libc::CLONE_PARENT as u64),
        ("THREAD", libc::CLONE_THREAD as u64),
        ("NEWNS", libc::CLONE_NEWNS as u64),
        ("SYSVSEM", libc::CLONE_SYSVSEM as u64),
        ("SETTLS", libc::CLONE_SETTLS as u64),
        ("PARENT_SETTID", libc::CLONE_PARENT_SETTID as u64),
        ("CHILD_CLEARTID", libc::CLONE_CHILD_CLEARTID as u64),
        ("DETACHED", libc::CLONE_DETACHED as u64),
        ("UNTRACED", libc::CLONE_UNTRACED as u64),
        ("CHILD_SETTID", libc::CLONE_CHILD_SETTID as u64),
        ("NEWCGROUP", libc::CLONE_NEWCGROUP as u64),
        ("NEWUTS", libc::CLONE_NEWUTS as u64),
        ("NEWIPC", libc::CLONE_NEWIPC as u64),
        ("NEWUSER", libc::CLONE_NEWUSER as u64),
        ("NEWPID", libc::CLONE_NEWPID as u64),
        ("NEWNET", libc::CLONE_NEWNET as u64),
        ("IO", libc::CLONE_IO as u32 as u64),
        // libc declares the two clone3-only bits as c_int, which overflows (libc#3584):
        // these two values are those of include/uapi/linux/sched.h.
        ("CLEAR_SIGHAND", 0x1_0000_0000),
        ("INTO_CGROUP", 0x2_0000_0000),
    ];
    assert_eq!(pairs.len(), FLAGS.len());
    for (name, value) in pairs {
        assert_eq!(by_name(name).map(|s| s.bit), Some(*value), "{name}");
    }
    for w in FLAGS.windows(2) {
        assert!(w[0].bit < w[1].bit, "table must be in bit order");
    }
}

#[test]
fn valid_mask_is_the_spec_value_and_matches_the_table() {
    assert_eq!(UNSHARE_VALID_MASK, 0x7E07_0F80);
    let from_table: u64 = FLAGS.iter().filter(|f| f.unshare_since.is_some()).map(|f| f.bit).fold(0, |a, b| a | b);
    assert_eq!(from_table, UNSHARE_VALID_MASK);
}

#[test]
fn clone3_mask_is_clone3_args_valid() {
    // clone3_args_valid (6.18): CLONE_LEGACY_FLAGS | CLEAR_SIGHAND | INTO_CGROUP, minus
    // DETACHED and (CSIGNAL & ~NEWTIME).
    let from_source = (0xffff_ffff | bits::CLEAR_SIGHAND | bits::INTO_CGROUP) & !(bits::DETACHED | (CSIGNAL & !0x80));
    assert_eq!(CLONE3_VALID_MASK, from_source);
    assert_eq!(CLONE3_VALID_MASK, 0x3_FFBF_FF80);
    for (name, bit) in [
        ("PIDFD", bits::PIDFD),
        ("PTRACE", bits::PTRACE),
        ("VFORK", bits::VFORK),
        ("PARENT", bits::PARENT),
        ("SETTLS", bits::SETTLS),
        ("PARENT_SETTID", bits::PARENT_SETTID),
        ("CHILD_CLEARTID", bits::CHILD_CLEARTID),
        ("DETACHED", bits::DETACHED),
        ("UNTRACED", bits::UNTRACED),
        ("CHILD_SETTID", bits::CHILD_SETTID),
        ("IO", bits::IO),
        ("CLEAR_SIGHAND", bits::CLEAR_SIGHAND),
        ("INTO_CGROUP", bits::INTO_CGROUP),
    ] {
        assert_eq!(by_name(name).map(|s| s.bit), Some(bit), "{name}");
    }
}

#[test]
fn every_entry_says_what_it_means_to_clone() {
    for f in FLAGS {
        assert!(!f.clone.doc.is_empty(), "{} has no clone meaning", f.name);
        assert!(!f.doc.is_empty(), "{} has no unshare meaning", f.name);
        // clone3 arrived in 5.3: no bit can be accepted by it earlier.
        assert!(f.clone.clone3_since.is_none_or(|v| v >= (5, 3, 0)), "{}", f.name);
    }
    // Only DETACHED (among named bits) is refused by clone3.
    let refused: Vec<&str> = FLAGS.iter().filter(|f| f.clone.clone3_since.is_none()).map(|f| f.name).collect();
    assert_eq!(refused, ["DETACHED"]);
}

#[test]
fn implications_close_as_the_spec_says() {
    let imp = |f: u64| apply_implications(RawFlags(f), IMPLICATIONS_6_18).0;
    assert_eq!(imp(bits::NEWUSER), bits::NEWUSER | bits::THREAD | bits::FS);
    assert_eq!(imp(bits::VM), bits::VM | bits::SIGHAND | bits::THREAD);
    assert_eq!(imp(bits::SIGHAND), bits::SIGHAND | bits::THREAD);
    assert_eq!(imp(bits::THREAD), bits::THREAD);
    assert_eq!(imp(bits::NEWNS), bits::NEWNS | bits::FS);
    assert_eq!(imp(bits::NEWPID), bits::NEWPID);
    assert_eq!(imp(bits::NEWIPC), bits::NEWIPC);
}

#[test]
fn prints_like_the_issue_example() {
    let f = RawFlags(bits::NEWNS | bits::NEWUSER | 0x1_0000_0000);
    assert_eq!(f.to_string(), "NEWNS|NEWUSER|0x100000000");
    assert_eq!(RawFlags(0).to_string(), "0");
    assert_eq!(RawFlags(0x7f).to_string(), "0x7f");
    assert_eq!(RawFlags(u64::MAX).to_string().parse::<RawFlags>().unwrap(), RawFlags(u64::MAX));
}

#[test]
fn parse_errors_say_what_was_wrong() {
    let e = "NEWNS|BOGUS".parse::<RawFlags>().unwrap_err();
    assert!(e.to_string().contains("unknown flag name \"BOGUS\""), "{e}");
    assert!("".parse::<RawFlags>().is_err());
    assert!("NEWNS||NEWPID".parse::<RawFlags>().is_err());
    assert!("0xzz".parse::<RawFlags>().is_err());
    assert_eq!("clone_newns | 0x1".parse::<RawFlags>().unwrap(), RawFlags(bits::NEWNS | 1));
}

proptest! {
    #[test]
    fn symbolic_form_round_trips(x in any::<u64>()) {
        let text = RawFlags(x).to_string();
        prop_assert_eq!(text.parse::<RawFlags>().unwrap(), RawFlags(x));
        let json = serde_json::to_string(&RawFlags(x)).unwrap();
        prop_assert_eq!(serde_json::from_str::<RawFlags>(&json).unwrap(), RawFlags(x));
    }
}
