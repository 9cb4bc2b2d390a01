//! What a successful unshare changes (unshare-semantics.md §4), as
//! expectations on each observed link and on the credentials, and the
//! matching update of the model's state.

#![deny(missing_docs)]

use serde::Serialize;

use crate::env::Environment;
use crate::errno::Errno;
use crate::flags::{RawFlags, bits, by_bit};
use crate::ns::NsLink;

use super::state::CallerState;

/// What one `/proc/self/ns` link does across a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkExpect {
    /// Same value as before.
    Unchanged,
    /// A namespace that did not exist before: an inode different from every
    /// namespace alive at the time of the call.
    Fresh,
    /// The link cannot be read, with this errno (pid_for_children after NEWPID).
    Unreadable(#[serde(serialize_with = "ser_errno")] Errno),
}

fn ser_errno<S: serde::Serializer>(e: &Errno, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(e)
}

/// What happens to uid, gid and CapEff across a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredExpect {
    /// uid, gid, euid, egid and CapEff as before.
    Unchanged,
    /// After NEWUSER: uid and gid read as the overflow ids, CapEff is the full set.
    NewUserNs {
        /// Expected uid/euid.
        uid: u32,
        /// Expected gid/egid.
        gid: u32,
        /// Expected CapEff.
        cap_eff: u64,
    },
}

/// Applies a successful call with `f` (after implications) to `state`, and returns the
/// expectations on links and credentials.
pub fn apply_success(
    env: &Environment,
    state: &mut CallerState,
    f: RawFlags,
) -> ([LinkExpect; NsLink::COUNT], CredExpect) {
    let mut links = [LinkExpect::Unchanged; NsLink::COUNT];
    let mut bit = 1u64;
    while bit != 0 {
        if f.0 & bit != 0
            && let Some(link) = by_bit(bit).and_then(|s| s.ns_link)
            && env.has_link(link)
        {
            links[link.index()] = LinkExpect::Fresh;
        }
        bit <<= 1;
    }
    if f.intersects(bits::NEWPID) && env.has_link(NsLink::PidForChildren) {
        // The new pid ns has no init yet: the link is hidden until the first fork (spec §5.9 item 7).
        links[NsLink::PidForChildren.index()] = LinkExpect::Unreadable(Errno::ENOENT);
        state.pid_for_children_is_active = false;
    }
    let mut creds = CredExpect::Unchanged;
    if f.intersects(bits::NEWUSER) {
        state.cap_sys_admin = true;
        state.ids_mapped = false;
        state.userns_depth = state.userns_depth.map(|d| d + 1);
        state.uid = env.overflow_uid;
        state.gid = env.overflow_gid;
        state.cap_eff = env.full_caps();
        creds = CredExpect::NewUserNs {
            uid: state.uid,
            gid: state.gid,
            cap_eff: state.cap_eff,
        };
    }
    (links, creds)
}
