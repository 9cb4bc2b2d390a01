//! The phase timeline of a case: where its wall time goes, from the fork to
//! the executor being ready for the next one. The child stamps its side with
//! CLOCK_MONOTONIC (a vDSO read, no system call) and sends the stamps with its
//! `Done` record; the executor adds its own three. `bench` prints the means
//! next to the bare loop, so the gap to the bare fork+unshare+wait is
//! explained by measurement, not guessed.

use serde::Serialize;

use super::watch::exec_clock;
use crate::exec::child::record::{CLOCKS, MSG_LEN, Msg, MsgKind, clock};

/// Names of the phases, in order.
pub const NAMES: [&str; PHASES] =
    ["fork to child", "setup", "first observation", "steps and observations", "exit to wake-up", "executor after"];

/// Number of phases.
pub const PHASES: usize = 6;

/// One case's phases, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phases(pub [u64; PHASES]);

impl Phases {
    /// The phases of a case from the child's raw records and the executor's stamps; `None`
    /// when the child did not reach its end (no complete `Done` record) or a stamp is out of
    /// order.
    pub fn from_records(raw: &[u8], executor: [u64; 3]) -> Option<Phases> {
        let child = raw.chunks_exact(MSG_LEN).rev().find_map(|chunk| {
            let mut one = [0u8; MSG_LEN];
            one.copy_from_slice(chunk);
            Msg::decode(&one).filter(|m| m.kind == MsgKind::Done).map(|m| m.clock)
        })?;
        let stamps: [u64; CLOCKS + 3] = [
            executor[exec_clock::FORK],
            child[clock::START],
            child[clock::SETUP],
            child[clock::BEFORE],
            child[clock::END],
            executor[exec_clock::WOKE],
            executor[exec_clock::DONE],
        ];
        let mut out = [0u64; PHASES];
        for (k, slot) in out.iter_mut().enumerate() {
            *slot = stamps[k + 1].checked_sub(stamps[k])?;
        }
        Some(Phases(out))
    }
}

/// Means over many cases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct PhaseSummary {
    /// Cases with a complete timeline.
    pub cases: u64,
    /// Mean microseconds per phase, in the order of [`NAMES`].
    pub mean_us: [f64; PHASES],
    #[serde(skip)]
    sums_ns: [u128; PHASES],
}

impl PhaseSummary {
    /// Adds one case.
    pub fn add(&mut self, p: &Phases) {
        for (sum, v) in self.sums_ns.iter_mut().zip(p.0) {
            *sum += u128::from(v);
        }
        self.cases += 1;
        self.refresh();
    }

    /// Adds another summary (another job's cases).
    pub fn merge(&mut self, other: &PhaseSummary) {
        for (sum, v) in self.sums_ns.iter_mut().zip(other.sums_ns) {
            *sum += v;
        }
        self.cases += other.cases;
        self.refresh();
    }

    fn refresh(&mut self) {
        for (mean, sum) in self.mean_us.iter_mut().zip(self.sums_ns) {
            *mean = if self.cases == 0 { 0.0 } else { sum as f64 / self.cases as f64 / 1e3 };
        }
    }

    /// Sum of the means, in microseconds.
    pub fn total_us(&self) -> f64 {
        self.mean_us.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done_at(stamps: [u64; CLOCKS]) -> Vec<u8> {
        let mut m = Msg::new(MsgKind::Done);
        m.clock = stamps;
        let mut buf = [0u8; MSG_LEN];
        m.encode(&mut buf);
        let mut raw = vec![0u8; 0];
        let mut before = [0u8; MSG_LEN];
        Msg::new(MsgKind::Before).encode(&mut before);
        raw.extend_from_slice(&before);
        raw.extend_from_slice(&buf);
        raw
    }

    #[test]
    fn phases_are_differences_of_consecutive_stamps() {
        let raw = done_at([110, 130, 180, 200]);
        let p = Phases::from_records(&raw, [100, 260, 300]).unwrap();
        assert_eq!(p.0, [10, 20, 50, 20, 60, 40]);
        let mut s = PhaseSummary::default();
        s.add(&p);
        s.add(&Phases([30, 0, 0, 0, 0, 0]));
        assert_eq!(s.cases, 2);
        assert!((s.mean_us[0] - 0.02).abs() < 1e-9);
        let mut t = PhaseSummary::default();
        t.merge(&s);
        assert_eq!(t, s);
        assert!((t.total_us() - 0.115).abs() < 1e-9);
    }

    #[test]
    fn no_end_or_disorder_gives_no_timeline() {
        assert_eq!(Phases::from_records(&done_at([110, 130, 180, 200])[..MSG_LEN], [100, 260, 300]), None);
        assert_eq!(Phases::from_records(&done_at([110, 130, 180, 200]), [120, 260, 300]), None);
        assert_eq!(Phases::from_records(&done_at([0, 0, 0, 0]), [0, 0, 0]), Some(Phases([0; PHASES])));
    }
}
