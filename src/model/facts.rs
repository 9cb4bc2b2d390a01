//! How the probed contract facts ([`crate::env::facts`]) change a kernel profile: the model
//! follows what the probe saw over the profile the release string chose
//! ([`ProbedFacts::adjust`]), and reports each switch ([`ProbedFacts::lines`]). Pure.

use crate::abi::flags::IMPLICATIONS_6_18;
use crate::env::facts::{CLONE3_BITS_7_3, FactLine, Probed, ProbedFacts};
use crate::model::KernelProfile;
use crate::model::profile::{EMPTY_MNTNS, IMPLICATIONS_7_3};

fn show(p: &Probed) -> String {
    match p {
        Probed::NotProbed => "not probed".into(),
        Probed::Fact(b) => b.to_string(),
        Probed::Unknown(raw) => format!("no Linux answers this way: {raw} (not a fact; nothing switched)"),
    }
}

impl ProbedFacts {
    fn clone3_fact(&self) -> Option<u64> {
        self.clone3_extra_bits.filter(|m| *m == 0 || *m == CLONE3_BITS_7_3)
    }

    /// `profile` with every probed fact applied.
    pub fn adjust(&self, profile: &KernelProfile) -> KernelProfile {
        let mut p = *profile;
        if let Probed::Fact(v) = self.pid_for_children_at_once {
            p.pid_for_children_visible_at_once = v;
        }
        match self.empty_mntns_bit {
            Probed::Fact(true) if p.empty_mntns_bit.is_none() => {
                p.valid_mask |= EMPTY_MNTNS;
                p.empty_mntns_bit = Some(EMPTY_MNTNS);
                p.implications = IMPLICATIONS_7_3;
            }
            Probed::Fact(false) if p.empty_mntns_bit.is_some() => {
                p.valid_mask &= !EMPTY_MNTNS;
                p.empty_mntns_bit = None;
                p.implications = IMPLICATIONS_6_18;
            }
            _ => {}
        }
        if let Probed::Fact(v) = self.newtime_blocks_vm_children {
            p.newtime_blocks_threads = v;
        }
        if let Some(m) = self.clone3_fact() {
            p.clone3_extra_bits = m;
        }
        p
    }

    /// Every probed fact, its value, and the rule it switched in `profile`.
    pub fn lines(&self, profile: &KernelProfile) -> Vec<FactLine> {
        let after = self.adjust(profile);
        let switch = |name: &str, was: String, now: String, probed: bool| {
            if !probed {
                "nothing switched".to_string()
            } else if was == now {
                format!("{name} = {now}, as {} has it", profile.name)
            } else {
                format!("{name}: {was} -> {now} (switched from {})", profile.name)
            }
        };
        let is_fact = |p: &Probed| matches!(p, Probed::Fact(_));
        vec![
            FactLine {
                fact: "pid-for-children-visible-at-once",
                value: show(&self.pid_for_children_at_once),
                rule: switch(
                    "pid_for_children_visible_at_once",
                    profile.pid_for_children_visible_at_once.to_string(),
                    after.pid_for_children_visible_at_once.to_string(),
                    is_fact(&self.pid_for_children_at_once),
                ),
            },
            FactLine {
                fact: "unshare-bit-20-is-empty-mntns",
                value: show(&self.empty_mntns_bit),
                rule: switch(
                    "empty_mntns_bit (bit 20 valid, implies NEWNS)",
                    profile.empty_mntns_bit.is_some().to_string(),
                    after.empty_mntns_bit.is_some().to_string(),
                    is_fact(&self.empty_mntns_bit),
                ),
            },
            FactLine {
                fact: "newtime-blocks-vm-children",
                value: show(&self.newtime_blocks_vm_children),
                rule: switch(
                    "newtime_blocks_threads (thread-after-newtime, clone-vm-or-thread-after-newtime)",
                    profile.newtime_blocks_threads.to_string(),
                    after.newtime_blocks_threads.to_string(),
                    is_fact(&self.newtime_blocks_vm_children),
                ),
            },
            FactLine {
                fact: "clone3-extra-bits",
                value: match self.clone3_extra_bits {
                    None => "not probed".into(),
                    Some(m) if self.clone3_fact().is_some() => format!("{m:#x}"),
                    Some(m) => format!("{m:#x}: no Linux accepts this set (not a fact; nothing switched)"),
                },
                rule: switch(
                    "clone3_extra_bits",
                    format!("{:#x}", profile.clone3_extra_bits),
                    format!("{:#x}", after.clone3_extra_bits),
                    self.clone3_fact().is_some(),
                ),
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::profile::{LINUX_5_10, LINUX_6_18, LINUX_7_3};

    fn facts_of_7_3() -> ProbedFacts {
        ProbedFacts {
            pid_for_children_at_once: Probed::Fact(true),
            empty_mntns_bit: Probed::Fact(true),
            newtime_blocks_vm_children: Probed::Fact(false),
            clone3_extra_bits: Some(CLONE3_BITS_7_3),
        }
    }

    #[test]
    fn facts_of_a_7_3_kernel_turn_the_6_18_profile_into_7_3s_rules() {
        let p = facts_of_7_3().adjust(&LINUX_6_18);
        assert_eq!(
            (p.valid_mask, p.empty_mntns_bit, p.pid_for_children_visible_at_once, p.clone3_extra_bits),
            (LINUX_7_3.valid_mask, LINUX_7_3.empty_mntns_bit, true, LINUX_7_3.clone3_extra_bits)
        );
        let pairs = |i: &[crate::abi::flags::Implication]| i.iter().map(|x| (x.when, x.adds)).collect::<Vec<_>>();
        assert_eq!(pairs(p.implications), pairs(LINUX_7_3.implications));
        // And 6.18's facts take them back out of the 7.3 profile.
        let f = ProbedFacts {
            pid_for_children_at_once: Probed::Fact(false),
            empty_mntns_bit: Probed::Fact(false),
            newtime_blocks_vm_children: Probed::Fact(false),
            clone3_extra_bits: Some(0),
        };
        let q = f.adjust(&LINUX_7_3);
        assert_eq!((q.valid_mask, q.empty_mntns_bit, q.clone3_extra_bits), (LINUX_6_18.valid_mask, None, 0));
        assert!(!q.pid_for_children_visible_at_once);
    }

    #[test]
    fn the_newtime_fact_switches_the_5_10_rule() {
        let f = ProbedFacts { newtime_blocks_vm_children: Probed::Fact(false), ..Default::default() };
        assert!(!f.adjust(&LINUX_5_10).newtime_blocks_threads);
        let f = ProbedFacts { newtime_blocks_vm_children: Probed::Fact(true), ..Default::default() };
        assert!(f.adjust(&LINUX_6_18).newtime_blocks_threads);
        let lines = f.lines(&LINUX_6_18);
        assert!(lines[2].rule.contains("false -> true (switched from linux-6.18)"), "{:?}", lines[2]);
    }

    #[test]
    fn answers_no_linux_gives_switch_nothing() {
        let f = ProbedFacts {
            pid_for_children_at_once: Probed::Unknown("readable, same as pid".into()),
            empty_mntns_bit: Probed::Unknown("success, /proc still there".into()),
            newtime_blocks_vm_children: Probed::Unknown("EPERM".into()),
            clone3_extra_bits: Some(1 << 40),
        };
        let p = f.adjust(&LINUX_6_18);
        assert_eq!(
            format!(
                "{:?}",
                (
                    p.valid_mask,
                    p.empty_mntns_bit,
                    p.pid_for_children_visible_at_once,
                    p.newtime_blocks_threads,
                    p.clone3_extra_bits
                )
            ),
            format!("{:?}", (LINUX_6_18.valid_mask, LINUX_6_18.empty_mntns_bit, false, false, 0u64))
        );
        let lines = f.lines(&LINUX_6_18);
        assert!(lines.iter().all(|l| l.rule == "nothing switched"), "{lines:?}");
        assert!(lines[3].value.contains("not a fact"));
    }
}
