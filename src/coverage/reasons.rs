//! Why a line of unshare's path is not reached: one reason from a fixed list
//! per `file:line`, with its evidence, read from `docs/coverage-reasons.tsv`
//! (`file:line<TAB>reason<TAB>evidence`, `#` comments). Pure parsing.

use std::collections::BTreeMap;

/// The fixed list of reasons (issue 18).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Only an allocation failure gets there: fault injection (#12/#16's ENOMEM cases).
    FaultInjection,
    /// Needs a kernel config that is off in the coverage kernel.
    ConfigOff,
    /// Needs a global sysctl (a guest-only case reaches it).
    GlobalSysctl,
    /// Unreachable from user space (the evidence says why).
    Unreachable,
    /// A generator change reaches it now (the evidence names it).
    Generator,
    /// A generator change would reach it and is not made yet (the evidence names it).
    NeedsGenerator,
    /// Needs another task racing the caller (a lock-free check losing a race).
    Race,
}

impl Reason {
    /// The word used in the file.
    pub fn word(self) -> &'static str {
        match self {
            Reason::FaultInjection => "fault-injection",
            Reason::ConfigOff => "config-off",
            Reason::GlobalSysctl => "global-sysctl",
            Reason::Unreachable => "unreachable",
            Reason::Generator => "generator",
            Reason::NeedsGenerator => "needs-generator",
            Reason::Race => "race",
        }
    }

    fn from_word(w: &str) -> Option<Reason> {
        [
            Reason::FaultInjection,
            Reason::ConfigOff,
            Reason::GlobalSysctl,
            Reason::Unreachable,
            Reason::Generator,
            Reason::NeedsGenerator,
            Reason::Race,
        ]
        .into_iter()
        .find(|r| r.word() == w)
    }
}

/// A reason with its evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    /// The reason.
    pub reason: Reason,
    /// What shows it.
    pub evidence: String,
}

impl std::fmt::Display for Explained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason.word(), self.evidence)
    }
}

/// The reasons file.
#[derive(Debug, Clone, Default)]
pub struct Reasons(BTreeMap<(String, u32), Explained>);

impl Reasons {
    /// Parses the file's text.
    ///
    /// # Errors
    /// The line number and what is wrong.
    pub fn parse(text: &str) -> Result<Reasons, String> {
        let mut m = BTreeMap::new();
        for (i, l) in text.lines().enumerate() {
            if l.trim().is_empty() || l.starts_with('#') {
                continue;
            }
            let mut parts = l.splitn(3, '\t');
            let (Some(loc), Some(word), Some(evidence)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(format!("line {}: expected file:line<TAB>reason<TAB>evidence", i + 1));
            };
            let (file, line) = loc.rsplit_once(':').ok_or_else(|| format!("line {}: no :line in {loc:?}", i + 1))?;
            let line: u32 = line.parse().map_err(|e| format!("line {}: bad line {line:?}: {e}", i + 1))?;
            let reason = Reason::from_word(word).ok_or_else(|| {
                format!(
                    "line {}: unknown reason {word:?} (fault-injection, config-off, global-sysctl, unreachable, \
                     generator, needs-generator, race)",
                    i + 1
                )
            })?;
            if evidence.trim().is_empty() {
                return Err(format!("line {}: a reason needs its evidence", i + 1));
            }
            m.insert((file.to_string(), line), Explained { reason, evidence: evidence.trim().to_string() });
        }
        Ok(Reasons(m))
    }

    /// The reason for a line, if written down.
    pub fn get(&self, file: &str, line: u32) -> Option<&Explained> {
        self.0.get(&(file.to_string(), line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_fixed_reasons_with_evidence_are_accepted() {
        let r = Reasons::parse("# c\nkernel/fork.c:3289\tfault-injection\tcopy_fs_struct NULL\n").unwrap();
        assert_eq!(r.get("kernel/fork.c", 3289).unwrap().reason, Reason::FaultInjection);
        assert!(r.get("kernel/fork.c", 1).is_none());
        assert!(Reasons::parse("kernel/fork.c:1\tbecause\tx\n").is_err());
        assert!(Reasons::parse("kernel/fork.c:1\tunreachable\t \n").is_err());
        assert!(Reasons::parse("kernel/fork.c\tunreachable\tx\n").is_err());
    }
}
