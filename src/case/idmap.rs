//! What an `idmap` step writes (issue 16 class 3, "what writing uid_map/gid_map allows"): the
//! caller writes its own `/proc/self/uid_map`, `/proc/self/gid_map` or `/proc/self/setgroups`,
//! usually after a NEWUSER step made its user namespace. The lines are chosen relative to the
//! caller's own effective id in the parent namespace (the id before its last NEWUSER), so that
//! the same case means the same thing as root and as uid 65534.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which lines an id map write holds (`<inner> <outer> <count>`, one per line). `own` is the
/// writer's effective id before its last NEWUSER, `other` is `own ^ 1` (an id it does not own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdmapLines {
    /// `0 own 1`: the one map an unprivileged writer may set.
    Own,
    /// `0 other 1`: an id the writer does not own.
    Foreign,
    /// `0 own 1` and `1 other 1`: two extents.
    TwoExtents,
    /// `0 own 1` and `0 other 1`: the inner ranges overlap.
    Overlap,
    /// `0 own 0`: an empty extent.
    ZeroCount,
}

impl IdmapLines {
    /// Every kind, in wire order.
    pub const ALL: [IdmapLines; 5] =
        [IdmapLines::Own, IdmapLines::Foreign, IdmapLines::TwoExtents, IdmapLines::Overlap, IdmapLines::ZeroCount];

    /// The extents `(inner, outer, count)` for the writer's own id `own` (at most two).
    pub fn extents(self, own: u32) -> ([(u32, u32, u32); 2], usize) {
        let other = own ^ 1;
        match self {
            IdmapLines::Own => ([(0, own, 1), (0, 0, 0)], 1),
            IdmapLines::Foreign => ([(0, other, 1), (0, 0, 0)], 1),
            IdmapLines::TwoExtents => ([(0, own, 1), (1, other, 1)], 2),
            IdmapLines::Overlap => ([(0, own, 1), (0, other, 1)], 2),
            IdmapLines::ZeroCount => ([(0, own, 0), (0, 0, 0)], 1),
        }
    }

    fn word(self) -> &'static str {
        match self {
            IdmapLines::Own => "own",
            IdmapLines::Foreign => "foreign",
            IdmapLines::TwoExtents => "two-extents",
            IdmapLines::Overlap => "overlap",
            IdmapLines::ZeroCount => "zero-count",
        }
    }
}

/// One write of an `idmap` step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdmapOp {
    /// `deny` to `/proc/self/setgroups`.
    SetgroupsDeny,
    /// `/proc/self/uid_map`, own id.
    UidOwn,
    /// `/proc/self/uid_map`, an id the writer does not own.
    UidForeign,
    /// `/proc/self/uid_map`, two extents.
    UidTwoExtents,
    /// `/proc/self/uid_map`, overlapping extents.
    UidOverlap,
    /// `/proc/self/uid_map`, an extent of count 0.
    UidZeroCount,
    /// `/proc/self/gid_map`, own id.
    GidOwn,
    /// `/proc/self/gid_map`, an id the writer does not own.
    GidForeign,
    /// `/proc/self/gid_map`, two extents.
    GidTwoExtents,
    /// `/proc/self/gid_map`, overlapping extents.
    GidOverlap,
    /// `/proc/self/gid_map`, an extent of count 0.
    GidZeroCount,
}

/// The file an [`IdmapOp`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdmapFile {
    /// `/proc/self/setgroups`.
    Setgroups = 0,
    /// `/proc/self/uid_map`.
    Uid = 1,
    /// `/proc/self/gid_map`.
    Gid = 2,
}

impl IdmapOp {
    /// Every operation, in wire order.
    pub const ALL: [IdmapOp; 11] = [
        IdmapOp::SetgroupsDeny,
        IdmapOp::UidOwn,
        IdmapOp::UidForeign,
        IdmapOp::UidTwoExtents,
        IdmapOp::UidOverlap,
        IdmapOp::UidZeroCount,
        IdmapOp::GidOwn,
        IdmapOp::GidForeign,
        IdmapOp::GidTwoExtents,
        IdmapOp::GidOverlap,
        IdmapOp::GidZeroCount,
    ];

    /// The file written and, for a map, its lines.
    pub fn target(self) -> (IdmapFile, Option<IdmapLines>) {
        let i = IdmapOp::ALL.iter().position(|o| *o == self).unwrap_or(0);
        match i {
            0 => (IdmapFile::Setgroups, None),
            1..=5 => (IdmapFile::Uid, Some(IdmapLines::ALL[i - 1])),
            _ => (IdmapFile::Gid, Some(IdmapLines::ALL[i - 6])),
        }
    }
}

impl fmt::Display for IdmapOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.target() {
            (IdmapFile::Setgroups, _) => f.write_str("write setgroups deny"),
            (IdmapFile::Uid, Some(l)) => write!(f, "write uid_map {}", l.word()),
            (IdmapFile::Gid, Some(l)) => write!(f, "write gid_map {}", l.word()),
            (_, None) => f.write_str("write an id map"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_names_its_file_and_lines() {
        assert_eq!(IdmapOp::UidOverlap.target(), (IdmapFile::Uid, Some(IdmapLines::Overlap)));
        assert_eq!(IdmapOp::GidOwn.target(), (IdmapFile::Gid, Some(IdmapLines::Own)));
        assert_eq!(IdmapOp::SetgroupsDeny.target(), (IdmapFile::Setgroups, None));
        assert_eq!(IdmapOp::GidZeroCount.to_string(), "write gid_map zero-count");
        assert_eq!(serde_json::to_string(&IdmapOp::UidTwoExtents).unwrap(), "\"uid-two-extents\"");
    }

    #[test]
    fn foreign_ids_are_never_the_writers_own() {
        for own in [0, 1, 1000, 65534] {
            let (e, n) = IdmapLines::Foreign.extents(own);
            assert_eq!(n, 1);
            assert_ne!(e[0].1, own);
            let (e, _) = IdmapLines::Overlap.extents(own);
            assert_eq!(e[0].0, e[1].0, "the inner ranges overlap");
        }
    }
}
