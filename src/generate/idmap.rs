//! Id map scenarios (issue 16 class 3, the `idmap` step): a prefix that makes (or does not
//! make) a user namespace, then one to three writes of the caller's own uid_map, gid_map or
//! setgroups. Both generators draw one after the whole case (so the streams before it are
//! unchanged) and, in [`SCENARIO`] percent, put its steps in place of the case's. Pure.

use crate::abi::flags::{RawFlags, bits};
use crate::case::idmap::IdmapOp;
use crate::case::{MAX_STEPS, Step};

/// Percent of cases whose steps become an id map scenario.
pub const SCENARIO: u32 = 6;
/// How many prefixes [`scenario`] knows.
pub const PREFIXES: u32 = 6;

/// The steps of scenario `prefix` (0..[`PREFIXES`]) with the writes `ops` (indices into
/// [`IdmapOp::ALL`], taken modulo its length), `writes` of them (1..=3):
///
/// * 0 and 1: `unshare(NEWUSER)` (most writes are meant for a fresh namespace);
/// * 2: `unshare(NEWUSER)` and drop CAP_SYS_ADMIN (the writes' capability checks);
/// * 3: no NEWUSER (the namespace the setup left: written, or the initial one);
/// * 4: `write_maps` after `unshare(NEWUSER)` (everything written already);
/// * 5: every capability but CAP_SYS_ADMIN dropped, then `unshare(NEWUSER)` (as root, the
///   parent's uid 0 then needs the CAP_SETFCAP the creator no longer had).
pub fn scenario(prefix: u32, ops: [u8; 3], writes: u8) -> Vec<Step> {
    let newuser = Step::Unshare(RawFlags(bits::NEWUSER));
    let mut steps = match prefix % PREFIXES {
        0 | 1 => vec![newuser],
        2 => vec![newuser, Step::DropSysAdmin],
        3 => Vec::new(),
        4 => vec![newuser, Step::WriteMaps],
        _ => vec![Step::Caps(crate::case::CapsOp::DropAllButSysAdmin), newuser],
    };
    let room = MAX_STEPS - steps.len();
    let n = usize::from(writes.clamp(1, 3)).min(room);
    steps.extend(ops[..n].iter().map(|i| Step::Idmap(IdmapOp::ALL[usize::from(*i) % IdmapOp::ALL.len()])));
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::Case;

    #[test]
    fn every_scenario_is_a_valid_case_with_a_write() {
        for prefix in 0..PREFIXES {
            for writes in 0..=4 {
                let steps = scenario(prefix, [0, 6, 10], writes);
                assert!(steps.iter().any(|s| matches!(s, Step::Idmap(_))), "{steps:?}");
                let case = Case { setup: Default::default(), steps };
                assert!(case.validate().is_ok(), "{case}");
            }
        }
        assert_eq!(scenario(0, [6, 0, 0], 1)[1], Step::Idmap(IdmapOp::GidOwn));
    }
}
