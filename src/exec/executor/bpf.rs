//! A small classic-BPF assembler for seccomp filters over unshare's 64-bit flag
//! word (or another call's 64-bit argument, [`Entry::arg_index`]), and an interpreter for the same instruction subset, so that a compiled
//! mutant can be checked against its reference semantics
//! ([`super::mutants::Mutant::decide`]) without installing it (`sandbox::install_mutant` does
//! that). Pure code.
//!
//! A filter is `sys::seccomp::prelude` (allow every call that is not this
//! architecture's unshare) followed by the body built here: one block per
//! rule, in order (the first rule whose condition holds returns its action),
//! then allow.

use libc::sock_filter;

use crate::sys::seccomp::{
    ALU_AND_K, AUDIT_ARCH, I386_ENTRY, JMP_JEQ_K, JMP_JSET_K, LD_W_ABS, NR_UNSHARE, OFF_ARCH, OFF_ARG0_HI, OFF_ARG0_LO,
    OFF_NR, RET_K, insn, prelude,
};

use super::mutants::{Action, Entry, Mutant, Rule};

/// The seccomp return value of an action.
pub fn ret_value(action: Action) -> u32 {
    match action {
        Action::Allow => libc::SECCOMP_RET_ALLOW,
        // SECCOMP_RET_ERRNO with data 0 makes the call return 0 without running it.
        Action::FakeSuccess => libc::SECCOMP_RET_ERRNO,
        Action::Fail(e) => libc::SECCOMP_RET_ERRNO | (e.0 as u32 & 0xffff),
    }
}

/// Where a conditional jump inside a rule block goes.
#[derive(Clone, Copy)]
enum To {
    /// The next instruction.
    Fall,
    /// The block's final `RET action`.
    Action,
    /// The first instruction after the block (the next rule).
    Next,
}

enum Op {
    Load(u32),
    And(u32),
    Jeq(u32, To, To),
    Jset(u32, To, To),
    Ret(u32),
}

/// The offsets of the low and high halves of argument `arg` in `struct seccomp_data`.
fn arg_offsets(arg: u32) -> (u32, u32) {
    (OFF_ARG0_LO + 8 * arg, OFF_ARG0_HI + 8 * arg)
}

fn rule_ops(rule: &Rule, arg: u32) -> Vec<Op> {
    let (lo, hi) = arg_offsets(arg);
    let halves = |mask: u64| [(lo, mask as u32), (hi, (mask >> 32) as u32)];
    let mut ops = Vec::new();
    for (off, part) in halves(rule.all) {
        if part != 0 {
            ops.extend([Op::Load(off), Op::And(part), Op::Jeq(part, To::Fall, To::Next)]);
        }
    }
    for (off, part) in halves(rule.none) {
        if part != 0 {
            ops.extend([Op::Load(off), Op::Jset(part, To::Next, To::Fall)]);
        }
    }
    let any: Vec<(u32, u32)> = halves(rule.any).into_iter().filter(|(_, p)| *p != 0).collect();
    for (i, (off, part)) in any.iter().enumerate() {
        let otherwise = if i + 1 == any.len() { To::Next } else { To::Fall };
        ops.extend([Op::Load(*off), Op::Jset(*part, To::Action, otherwise)]);
    }
    ops.push(Op::Ret(ret_value(rule.action)));
    ops
}

/// Why a mutant could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// No `AUDIT_ARCH` is known for this build.
    #[error("seccomp mutants are only supported on little-endian x86_64 and aarch64 builds")]
    UnsupportedArch,
    /// A jump does not fit the 8-bit offset of classic BPF.
    #[error("rule {rule} of mutant {mutant} is too long for classic BPF jumps")]
    TooLong {
        /// The mutant.
        mutant: &'static str,
        /// Index of the rule.
        rule: usize,
    },
}

fn offset(from: usize, to: To, len: usize) -> Option<u8> {
    let target = match to {
        To::Fall => from + 1,
        To::Action => len - 1,
        To::Next => len,
    };
    u8::try_from(target.checked_sub(from + 1)?).ok()
}

fn lower(ops: &[Op]) -> Option<Vec<sock_filter>> {
    let len = ops.len();
    ops.iter()
        .enumerate()
        .map(|(i, op)| {
            Some(match *op {
                Op::Load(off) => insn(LD_W_ABS, 0, 0, off),
                Op::And(k) => insn(ALU_AND_K, 0, 0, k),
                Op::Jeq(k, t, f) => insn(JMP_JEQ_K, offset(i, t, len)?, offset(i, f, len)?, k),
                Op::Jset(k, t, f) => insn(JMP_JSET_K, offset(i, t, len)?, offset(i, f, len)?, k),
                Op::Ret(k) => insn(RET_K, 0, 0, k),
            })
        })
        .collect()
}

/// The body of `mutant`'s filter (what follows the prelude): its rules, then allow.
///
/// # Errors
/// [`CompileError::TooLong`] when a rule's jumps do not fit.
pub fn body(mutant: &Mutant) -> Result<Vec<sock_filter>, CompileError> {
    let mut prog = Vec::new();
    for (index, rule) in mutant.rules.iter().enumerate() {
        let block = lower(&rule_ops(rule, mutant.entry.arg_index()))
            .ok_or(CompileError::TooLong { mutant: mutant.name, rule: index })?;
        prog.extend(block);
    }
    prog.push(insn(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW));
    Ok(prog)
}

/// The whole program as the kernel will run it: the prelude for this architecture, then [`body`].
///
/// # Errors
/// [`CompileError`] when the architecture is unknown or a rule is too long.
pub fn program(mutant: &Mutant) -> Result<Vec<sock_filter>, CompileError> {
    let (arch, nr) = target(mutant)?;
    Ok(prelude(arch, nr).into_iter().chain(body(mutant)?).collect())
}

/// The architecture and call number the filter of `mutant` lies about.
///
/// # Errors
/// [`CompileError::UnsupportedArch`] when this build has no such entry.
pub fn target(mutant: &Mutant) -> Result<(u32, u32), CompileError> {
    match mutant.entry {
        Entry::Native => AUDIT_ARCH.map(|a| (a, NR_UNSHARE)).ok_or(CompileError::UnsupportedArch),
        Entry::I386 => I386_ENTRY.ok_or(CompileError::UnsupportedArch),
        Entry::Setns => AUDIT_ARCH.map(|a| (a, libc::SYS_setns as u32)).ok_or(CompileError::UnsupportedArch),
        Entry::InsideMount | Entry::InsidePropagation => {
            AUDIT_ARCH.map(|a| (a, libc::SYS_mount as u32)).ok_or(CompileError::UnsupportedArch)
        }
        Entry::InsideSethostname => {
            AUDIT_ARCH.map(|a| (a, libc::SYS_sethostname as u32)).ok_or(CompileError::UnsupportedArch)
        }
    }
}

/// The input of a filter: the fields of `struct seccomp_data` the programs read.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    /// System call number.
    pub nr: u32,
    /// `AUDIT_ARCH_*`.
    pub arch: u32,
    /// The argument the filter reads (unshare's flag word, the first; or the one its entry
    /// names, [`Entry::arg_index`]).
    pub arg0: u64,
    /// Which argument `arg0` is (0 for unshare).
    pub arg_index: u32,
}

impl Call {
    /// `unshare(flags)` on this architecture (arch 0 if unknown).
    pub fn unshare(flags: u64) -> Call {
        Call { nr: NR_UNSHARE, arch: AUDIT_ARCH.unwrap_or(0), arg0: flags, arg_index: 0 }
    }

    fn word(&self, off: u32) -> Option<u32> {
        let (lo, hi) = arg_offsets(self.arg_index);
        match off {
            o if o == OFF_NR => Some(self.nr),
            o if o == OFF_ARCH => Some(self.arch),
            o if o == lo => Some(self.arg0 as u32),
            o if o == hi => Some((self.arg0 >> 32) as u32),
            _ => None,
        }
    }
}

/// Runs `prog` on `call` the way the kernel would, for the instruction subset this module
/// emits, and returns the seccomp return value.
///
/// # Errors
/// A description of the first instruction it cannot run (unknown opcode, a load outside the
/// fields above, running off the end).
pub fn interpret(prog: &[sock_filter], call: &Call) -> Result<u32, String> {
    let (mut pc, mut acc) = (0usize, 0u32);
    loop {
        let i = prog.get(pc).ok_or_else(|| format!("ran off the end of the program at {pc}"))?;
        let jump = |taken: bool| pc + 1 + usize::from(if taken { i.jt } else { i.jf });
        pc = match i.code {
            LD_W_ABS => {
                acc = call.word(i.k).ok_or_else(|| format!("load from unsupported offset {} at {pc}", i.k))?;
                pc + 1
            }
            ALU_AND_K => {
                acc &= i.k;
                pc + 1
            }
            JMP_JEQ_K => jump(acc == i.k),
            JMP_JSET_K => jump(acc & i.k != 0),
            RET_K => return Ok(i.k),
            other => return Err(format!("unsupported opcode {other:#x} at {pc}")),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::executor::mutants::MUTANTS;
    use proptest::prelude::*;

    fn words_for(m: &Mutant) -> Vec<u64> {
        // Every combination of the rule masks' parts, plus single bits: the edges of each rule.
        let mut masks: Vec<u64> = m.rules.iter().flat_map(|r| [r.all, r.any, r.none]).filter(|x| *x != 0).collect();
        masks.extend((0..64).map(|b| 1u64 << b));
        let mut words = vec![0, u64::MAX, crate::abi::flags::UNSHARE_VALID_MASK];
        for a in &masks {
            for b in &masks {
                words.extend([
                    *a,
                    a | b,
                    a & !b,
                    a & b.wrapping_neg(),
                    (a | b) & crate::abi::flags::UNSHARE_VALID_MASK,
                ]);
            }
        }
        words
    }

    #[test]
    fn every_mutant_compiles_and_matches_its_reference_semantics_on_edge_words() {
        for m in MUTANTS {
            let prog = program(m).unwrap();
            for w in words_for(m) {
                let call = call_for(m, w);
                let got = interpret(&prog, &call).unwrap();
                assert_eq!(got, ret_value(m.decide(call.arg0)), "{}: word {w:#x}", m.name);
            }
        }
    }

    #[test]
    fn other_calls_and_architectures_always_run() {
        for m in MUTANTS {
            let prog = program(m).unwrap();
            let (arch, unshare) = target(m).unwrap();
            for nr in [0, unshare + 1, libc::SYS_clone as u32, libc::SYS_munmap as u32] {
                let call = Call { nr, arch, arg0: u64::MAX, arg_index: m.entry.arg_index() };
                assert_eq!(interpret(&prog, &call), Ok(libc::SECCOMP_RET_ALLOW), "{} nr {nr}", m.name);
            }
            // The other entry runs honestly.
            let other = match m.entry {
                Entry::Native => Call { nr: 310, arch: 0x4000_0003, arg0: u64::MAX, arg_index: 0 },
                Entry::I386
                | Entry::Setns
                | Entry::InsideMount
                | Entry::InsideSethostname
                | Entry::InsidePropagation => Call::unshare(u64::MAX),
            };
            assert_eq!(interpret(&prog, &other), Ok(libc::SECCOMP_RET_ALLOW), "{}", m.name);
        }
    }

    /// `unshare(w)` as the filter of `m` sees it: through the i386 entry only the low half
    /// arrives.
    fn call_for(m: &Mutant, w: u64) -> Call {
        let (arch, nr) = target(m).unwrap();
        let arg0 = if m.entry == Entry::I386 { w & u64::from(u32::MAX) } else { w };
        Call { nr, arch, arg0, arg_index: m.entry.arg_index() }
    }

    #[test]
    fn fake_success_is_errno_zero_and_errors_keep_their_number() {
        assert_eq!(ret_value(Action::FakeSuccess), 0x0005_0000);
        assert_eq!(ret_value(Action::Fail(crate::abi::errno::Errno::EINVAL)), 0x0005_0000 | 22);
        assert_eq!(ret_value(Action::Allow), 0x7fff_0000);
    }

    #[test]
    fn the_interpreter_can_fail() {
        assert!(interpret(&[], &Call::unshare(0)).is_err());
        assert!(interpret(&[insn(LD_W_ABS, 0, 0, 60)], &Call::unshare(0)).is_err());
        assert!(interpret(&[insn(0x07, 0, 0, 0)], &Call::unshare(0)).is_err());
        assert!(interpret(&[insn(JMP_JEQ_K, 5, 5, 0)], &Call::unshare(0)).is_err());
    }

    #[test]
    fn a_rule_with_every_kind_of_mask_in_both_halves_compiles() {
        const RULES: &[Rule] =
            &[Rule { all: 0x1_0000_0001, any: 0x2_0000_0002, none: 0x4_0000_0004, action: Action::FakeSuccess }];
        let m = Mutant { name: "t", lie: "", origin: "", rules: RULES, entry: super::super::mutants::Entry::Native };
        let prog = program(&m).unwrap();
        for w in [0x1_0000_0001u64, 0x1_0000_0003, 0x3_0000_0001, 0x5_0000_0003, 0x1_0000_0007, 0x1, 0x3_0000_0003] {
            assert_eq!(interpret(&prog, &Call::unshare(w)), Ok(ret_value(m.decide(w))), "{w:#x}");
        }
    }

    proptest! {
        #[test]
        fn compiled_filters_agree_with_the_reference_on_random_words(w in any::<u64>(), idx in 0..MUTANTS.len()) {
            let m = &MUTANTS[idx];
            let prog = program(m).unwrap();
            let call = call_for(m, w);
            prop_assert_eq!(interpret(&prog, &call).unwrap(), ret_value(m.decide(call.arg0)));
        }
    }
}
