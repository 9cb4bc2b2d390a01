//! Id map scenarios (issue 16 class 3, the `idmap` and `witness_idmap` steps): a prefix that
//! makes (or does not make) a user namespace, then one to three writes of the caller's
//! uid_map, gid_map or setgroups, by the caller itself or (the high bit of the write's byte)
//! by the inside witness, the parent writer, which the scenario then turns on. Both generators
//! draw one after the whole case (so the streams before it are unchanged) and, in [`SCENARIO`]
//! percent, put its steps in place of the case's. Pure.

use crate::abi::flags::{RawFlags, bits};
use crate::case::idmap::IdmapOp;
use crate::case::{CapsOp, MAX_STEPS, Setup, Step};

/// Percent of cases whose steps become an id map scenario.
pub const SCENARIO: u32 = 6;
/// How many prefixes [`scenario`] knows.
pub const PREFIXES: u32 = 8;

/// The steps of scenario `prefix` (0..[`PREFIXES`]) with the writes `ops` (the low seven bits
/// index [`IdmapOp::ALL`], taken modulo its length; the high bit gives the write to the
/// witness), `writes` of them (1..=3):
///
/// * 0 and 1: `unshare(NEWUSER)` (most writes are meant for a fresh namespace);
/// * 2: `unshare(NEWUSER)` and drop CAP_SYS_ADMIN (the writes' capability checks);
/// * 3: no NEWUSER (the namespace the setup left: written, or the initial one);
/// * 4: `write_maps` after `unshare(NEWUSER)` (everything written already);
/// * 5: every capability but CAP_SYS_ADMIN dropped, then `unshare(NEWUSER)` (as root, the
///   parent's uid 0 then needs the CAP_SETFCAP the creator no longer had);
/// * 6: uid 65534 with the capabilities kept, then `unshare(NEWUSER)` (a namespace whose
///   creator is not the witness's euid);
/// * 7: `unshare(NEWUSER)`, `write_maps`, `unshare(NEWUSER)` (the witness is no longer the
///   parent).
///
/// A write by the witness turns on `setup.inside_witness`.
pub fn scenario(prefix: u32, ops: [u8; 3], writes: u8, setup: &mut Setup) -> Vec<Step> {
    let newuser = Step::Unshare(RawFlags(bits::NEWUSER));
    let mut steps = match prefix % PREFIXES {
        0 | 1 => vec![newuser],
        2 => vec![newuser, Step::DropSysAdmin],
        3 => Vec::new(),
        4 => vec![newuser, Step::WriteMaps],
        5 => vec![Step::Caps(CapsOp::DropAllButSysAdmin), newuser],
        6 => vec![Step::Caps(CapsOp::KeepcapsNobody), newuser],
        _ => vec![newuser, Step::WriteMaps, newuser],
    };
    let room = MAX_STEPS - steps.len();
    let n = usize::from(writes.clamp(1, 3)).min(room);
    for byte in &ops[..n] {
        let op = IdmapOp::ALL[usize::from(byte & 0x7f) % IdmapOp::ALL.len()];
        if byte & 0x80 != 0 {
            setup.inside_witness = true;
            steps.push(Step::WitnessIdmap(op));
        } else {
            steps.push(Step::Idmap(op));
        }
    }
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
                for ops in [[0, 6, 10], [0x80, 0x86, 10]] {
                    let mut setup = Setup::default();
                    let steps = scenario(prefix, ops, writes, &mut setup);
                    assert!(steps.iter().any(|s| matches!(s, Step::Idmap(_) | Step::WitnessIdmap(_))), "{steps:?}");
                    assert_eq!(setup.inside_witness, ops[0] == 0x80);
                    let case = Case { setup, steps };
                    assert!(case.validate().is_ok(), "{case}");
                }
            }
        }
        let mut setup = Setup::default();
        assert_eq!(scenario(0, [6, 0, 0], 1, &mut setup)[1], Step::Idmap(IdmapOp::GidOwn));
        assert_eq!(scenario(0, [0x86, 0, 0], 1, &mut setup)[1], Step::WitnessIdmap(IdmapOp::GidOwn));
    }
}
