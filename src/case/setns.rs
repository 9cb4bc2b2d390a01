//! `SetnsStep`: a setns(2) call of a case (issue 16 class 4), on a namespace file the child
//! opens (its own `pid_for_children` or `time_for_children` link at the step, or a link it
//! opened before the first step: "setns back") or on a pidfd of a child that has exited and
//! been reaped. The namespace type argument is a raw flag word, so 0 and mismatching types are
//! expressible.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::abi::flags::{RawFlags, bits};
use crate::abi::ns::NsLink;

/// What the descriptor passed to setns refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SetnsTarget {
    /// `/proc/self/ns/pid_for_children`, opened at the step.
    PidForChildren,
    /// `/proc/self/ns/time_for_children`, opened at the step.
    TimeForChildren,
    /// `/proc/self/ns/pid`, opened before the first step.
    StartPid,
    /// `/proc/self/ns/time`, opened before the first step.
    StartTime,
    /// `/proc/self/ns/uts`, opened before the first step.
    StartUts,
    /// `/proc/self/ns/user`, opened before the first step.
    StartUser,
    /// A pidfd (`pidfd_open`) of a child forked before the first step, which exited and was
    /// reaped before the first step.
    ExitedPidfd,
}

impl SetnsTarget {
    /// All targets, for generators and tables.
    pub const ALL: [SetnsTarget; 7] = [
        SetnsTarget::PidForChildren,
        SetnsTarget::TimeForChildren,
        SetnsTarget::StartPid,
        SetnsTarget::StartTime,
        SetnsTarget::StartUts,
        SetnsTarget::StartUser,
        SetnsTarget::ExitedPidfd,
    ];

    /// The `/proc/self/ns` link the descriptor is opened on; `None` for a pidfd.
    pub fn link(self) -> Option<NsLink> {
        match self {
            SetnsTarget::PidForChildren => Some(NsLink::PidForChildren),
            SetnsTarget::TimeForChildren => Some(NsLink::TimeForChildren),
            SetnsTarget::StartPid => Some(NsLink::Pid),
            SetnsTarget::StartTime => Some(NsLink::Time),
            SetnsTarget::StartUts => Some(NsLink::Uts),
            SetnsTarget::StartUser => Some(NsLink::User),
            SetnsTarget::ExitedPidfd => None,
        }
    }

    /// The descriptor is opened before the first step (and stays open), not at the step.
    pub fn opened_at_start(self) -> bool {
        !matches!(self, SetnsTarget::PidForChildren | SetnsTarget::TimeForChildren)
    }

    /// The `CLONE_NEW*` type of the namespace a namespace file refers to; `None` for a pidfd.
    pub fn ns_flag(self) -> Option<u64> {
        Some(match self.link()? {
            NsLink::Pid | NsLink::PidForChildren => bits::NEWPID,
            NsLink::Time | NsLink::TimeForChildren => bits::NEWTIME,
            NsLink::Uts => bits::NEWUTS,
            NsLink::User => bits::NEWUSER,
            NsLink::Cgroup => bits::NEWCGROUP,
            NsLink::Ipc => bits::NEWIPC,
            NsLink::Mnt => bits::NEWNS,
            NsLink::Net => bits::NEWNET,
        })
    }

    /// Index among [`Self::ALL`] (the wire and the child's descriptor table).
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }

    /// The name used in files and reports.
    pub fn name(self) -> &'static str {
        match self {
            SetnsTarget::PidForChildren => "pid_for_children",
            SetnsTarget::TimeForChildren => "time_for_children",
            SetnsTarget::StartPid => "start_pid",
            SetnsTarget::StartTime => "start_time",
            SetnsTarget::StartUts => "start_uts",
            SetnsTarget::StartUser => "start_user",
            SetnsTarget::ExitedPidfd => "exited_pidfd",
        }
    }
}

/// `setns(fd of target, nstype)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetnsStep {
    /// What the descriptor refers to.
    pub target: SetnsTarget,
    /// The second argument, as a raw word (0: any type).
    pub nstype: RawFlags,
}

impl fmt::Display for SetnsStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "setns({}, {})", self.target.name(), self.nstype)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::{Case, Step};

    #[test]
    fn setns_steps_read_and_print() {
        let json = r#"{"steps":[{"unshare":"NEWPID"},{"setns":{"target":"start_pid","nstype":"NEWPID"}}]}"#;
        let case: Case = serde_json::from_str(json).unwrap();
        let want = SetnsStep { target: SetnsTarget::StartPid, nstype: RawFlags(bits::NEWPID) };
        assert_eq!(case.steps[1], Step::Setns(want));
        assert_eq!(case.to_string(), "[root] unshare(NEWPID); setns(start_pid, NEWPID);");
        let back = serde_json::to_string(&case).unwrap();
        assert!(back.contains(r#"{"setns":{"target":"start_pid","nstype":"NEWPID"}}"#), "{back}");
        let unknown = r#"{"steps":[{"setns":{"target":"start_pid","nstype":"0","fd":3}}]}"#;
        assert!(serde_json::from_str::<Case>(unknown).is_err());
    }

    #[test]
    fn targets_name_their_type() {
        for t in SetnsTarget::ALL {
            assert_eq!(SetnsTarget::ALL[t.index()], t);
            assert_eq!(t.link().is_some(), t.ns_flag().is_some(), "{}", t.name());
        }
        assert_eq!(SetnsTarget::TimeForChildren.ns_flag(), Some(bits::NEWTIME));
        assert!(!SetnsTarget::PidForChildren.opened_at_start());
    }
}
