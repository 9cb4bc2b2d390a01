//! Namespace types the running kernel was built without (CONFIG_UTS_NS=n and
//! friends, issue 16 class 6), found by their missing `/proc/self/ns` link
//! before the sandbox is built. Used only on a kernel declared a throwaway
//! (`sandbox::enter`): there the sandbox leaves such a type out instead of
//! failing with EINVAL. See docs/guest-only.md.

use crate::abi::flags::bits;

/// The bits of `flags` (uts, ipc, net, pid) whose namespace type has no `/proc/self/ns` link.
pub fn absent_types(flags: u64) -> u64 {
    [(bits::NEWUTS, "uts"), (bits::NEWIPC, "ipc"), (bits::NEWNET, "net"), (bits::NEWPID, "pid")]
        .into_iter()
        .filter(|(bit, name)| flags & bit != 0 && !std::path::Path::new(&format!("/proc/self/ns/{name}")).exists())
        .fold(0, |acc, (bit, _)| acc | bit)
}
