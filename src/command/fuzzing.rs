//! The library halves of the cargo-fuzz targets in `fuzz/fuzz_targets/`, whose
//! bodies are one line each over these functions:
//!
//! * [`exec_case`]: bytes -> [`Case`] -> the real kernel, through one executor
//!   process started lazily on the first input (libFuzzer runs in-process and
//!   may be multithreaded, so it never forks itself), -> every invariant. A
//!   violation panics, so libFuzzer saves the input as a crash artifact.
//!   When the probed environment lists restrictions (a seccomp filter, a
//!   distribution sysctl, ...) or the executor cannot build its sandbox, the
//!   target says why once and judges nothing: results there describe the
//!   filter, not the kernel.
//! * [`model_laws`]: bytes -> [`Case`] -> [`predict`] only: never panics on
//!   its own, and checks the model's laws.
//! * [`corpus_file`]: bytes -> [`crate::corpus::parse`]: never panics, and
//!   its errors are clean (a message, a position inside the text); a file it
//!   accepts is valid and survives its canonical text unchanged.
//! * [`init`]: lets the fuzz binary double as its own executor
//!   (`<fuzz binary> __executor`), so the binaries in `$OUT` are self-contained.

use std::sync::{Mutex, Once};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};

use crate::abi::errno::{CallResult, Errno};
use crate::abi::flags::apply_implications;
use crate::abi::ns::NsLink;
use crate::case::Case;
use crate::check::judge;
use crate::env::Environment;
use crate::exec::{EXECUTOR_SUBCOMMAND, ExecError, Executor};
use crate::model::{LinkExpect, PidExpect, Prediction, predict, profile::LINUX_6_18};

/// Environment variable naming an `unshare-fuzz` binary to use as the executor
/// instead of the fuzz binary itself.
pub const EXECUTOR_VAR: &str = "UNSHARE_FUZZ_EXECUTOR";

/// Self-test switch of the `exec` target: when set (to anything), the model is told
/// the executor lacks CAP_SYS_ADMIN, so namespace steps of root cases become
/// violations. `scripts/nightly.sh` uses it to prove that a violation really
/// aborts the fuzzer and leaves an artifact; never set it otherwise.
pub const WRONG_MODEL_VAR: &str = "UNSHARE_FUZZ_SELFTEST_WRONG_MODEL";

/// Watchdog per case in the `exec` target.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(5);

/// The fuzz targets, as `cargo fuzz list` names them.
pub const TARGETS: [&str; 3] = ["exec", "model", "corpus_format"];

/// The case a fuzz input stands for, exactly as the `exec` and `model` targets
/// see it (`None` if the bytes run out before a whole case is read):
///
/// * bytes that are a readable case are taken verbatim: UTF-8 JSON holding a
///   bare case (`{"setup": ..., "steps": [...]}`) or any object with a `case`
///   key (a corpus file), whose case is valid. This is how the fuzz corpora
///   are seeded from `corpus/` ([`case_seed`], `unshare-fuzz seeds`);
/// * any other bytes go through `arbitrary` (libFuzzer's mutations of a JSON
///   seed that break the JSON land here, and still make a case).
pub fn case_from_bytes(data: &[u8]) -> Option<Case> {
    readable_case(data).or_else(|| Case::arbitrary_take_rest(Unstructured::new(data)).ok())
}

/// The case of a readable (JSON) input, if these bytes are one.
pub fn readable_case(data: &[u8]) -> Option<Case> {
    let text = std::str::from_utf8(data).ok()?;
    if !text.trim_start().starts_with('{') {
        return None;
    }
    crate::repro::case_from_json(text).ok()
}

/// The fuzz input that stands for `case` in the `exec` and `model` targets: its
/// compact JSON, which [`case_from_bytes`] reads back verbatim.
///
/// # Errors
/// Only if serialisation fails (it should not).
pub fn case_seed(case: &Case) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(case)
}

/// A stable file name for a seed: `seed-<16 hex digits of FNV-1a>`.
pub fn seed_name(bytes: &[u8]) -> String {
    let h =
        bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3));
    format!("seed-{h:016x}")
}

/// An error's laws: a message that says something, and a position (if any) inside the text.
fn error_is_clean(text: &str, position: Option<crate::corpus::Position>, problem: &str) -> Result<(), String> {
    if problem.trim().is_empty() {
        return Err("an error without a message".into());
    }
    if let Some(p) = position {
        let lines: Vec<&str> = text.split('\n').collect();
        let Some(line) = lines.get(p.line.wrapping_sub(1)) else {
            return Err(format!("error at line {} of a text of {} lines: {problem}", p.line, lines.len()));
        };
        if p.column == 0 || p.column > line.len() + 1 {
            return Err(format!("error at column {} of a line of {} bytes: {problem}", p.column, line.len()));
        }
    }
    Ok(())
}

/// The `corpus_format` target: parses the bytes as a corpus file's text (not
/// UTF-8: lossily, so the parser still sees the JSON around it).
///
/// # Panics
/// When the parser breaks a law of [`corpus_laws`], with the law and the input.
pub fn corpus_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Err(law) = corpus_laws(&text) {
        panic!("corpus parser law broken: {law}\ninput: {text:?}");
    }
}

/// The corpus parser's laws on one text: it returns (it never panics); an error
/// has a non-empty message and, when it has a position, one inside the text; a
/// file it accepts has a valid case, one expectation per step if any, and its
/// canonical text parses back to the same file and the same text.
///
/// # Errors
/// The first law broken, in words.
pub fn corpus_laws(text: &str) -> Result<(), String> {
    match crate::corpus::parse(text) {
        Err(e) => error_is_clean(text, e.position, &e.problem.to_string()),
        Ok(file) => {
            file.case.validate().map_err(|e| format!("accepted an invalid case: {e}"))?;
            if file.expected.as_ref().is_some_and(|x| x.len() != file.case.steps.len()) {
                return Err("accepted an `expected` without one entry per step".into());
            }
            let canonical = file.to_text().map_err(|e| format!("cannot write the accepted file: {e}"))?;
            let again =
                crate::corpus::parse(&canonical).map_err(|e| format!("its canonical text is refused: {e:?}"))?;
            if again != file {
                return Err(format!("the canonical text reads back differently: {again:?} != {file:?}"));
            }
            match again.to_text() {
                Ok(t) if t == canonical => Ok(()),
                _ => Err("the canonical text is not stable".into()),
            }
        }
    }
}

/// Called first by every fuzz binary: when started as `<binary> __executor`, it
/// becomes the executor and exits. It also ignores SIGPIPE, as a Rust `main`
/// would: libFuzzer's C `main` does not, and a dead executor must not kill the fuzzer.
pub fn init() {
    crate::sys::ignore_sigpipe();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(EXECUTOR_SUBCOMMAND) {
        std::process::exit(crate::exec::executor::server::executor_main_with(None, pin_slot(&args[2..])));
    }
}

/// The executor arguments after `__executor` of a fuzz binary: the only one the exec target
/// passes is `--pin-slot N` (see `start`); anything else means no pinning.
fn pin_slot(args: &[String]) -> Option<usize> {
    match args {
        [flag, n] if flag == crate::exec::executor::placement::SLOT_ARG => n.parse().ok(),
        _ => None,
    }
}

enum Runner {
    /// Ready to judge.
    Ready(Box<Executor>),
    /// Said why once; judges nothing.
    Inert,
}

static RUNNER: Mutex<Option<Runner>> = Mutex::new(None);
static REFUSAL: Once = Once::new();

fn refuse(why: &str) -> Runner {
    REFUSAL.call_once(|| {
        eprintln!(
            "unshare-fuzz exec target: NOT judging any input: {why}\n\
             unshare-fuzz exec target: run it on a machine (or VM) where unshare is not filtered; \
             `unshare-fuzz env` shows what the harness sees"
        );
    });
    Runner::Inert
}

/// Pinning of the exec target's executor: `auto` (the default: lease a free CPU, as `run`
/// does; libFuzzer's `-fork`/`-jobs` workers each lease their own while there are free ones)
/// or `off`.
pub const PIN_VAR: &str = "UNSHARE_FUZZ_PIN";

fn start() -> Runner {
    let pinning = match std::env::var(PIN_VAR).map(|v| v.parse()) {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            eprintln!("unshare-fuzz exec target: {PIN_VAR}: {e}; using auto");
            Default::default()
        }
        Err(_) => Default::default(),
    };
    let args = crate::exec::executor::placement::executor_args(&[], pinning, 1, 0);
    let spawned = match std::env::var_os(EXECUTOR_VAR) {
        Some(bin) => Executor::spawn(std::path::Path::new(&bin), &args),
        None => Executor::spawn_self(&args),
    };
    match spawned {
        Err(e) => refuse(&format!("the executor cannot start here: {e}")),
        Ok(ex) if !ex.environment().restrictions.is_empty() => refuse(&format!(
            "the environment restricts unshare, so a difference would describe the filter, not the kernel: {}",
            ex.environment().restrictions.join("; ")
        )),
        Ok(ex) => Runner::Ready(Box::new(ex)),
    }
}

/// Runs the case these bytes stand for on the real kernel and checks every invariant.
///
/// # Panics
/// On a violated invariant (that is the point: libFuzzer keeps the input), with
/// the case in JSON and every difference in the message.
pub fn exec_case(data: &[u8]) {
    let Some(case) = case_from_bytes(data) else {
        return;
    };
    let mut guard = RUNNER.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let runner = guard.get_or_insert_with(start);
    let Runner::Ready(executor) = runner else {
        return;
    };
    let env = executor.environment().clone();
    let mut model_env = env.clone();
    if std::env::var_os(WRONG_MODEL_VAR).is_some() {
        model_env.baseline.cap_eff &= !(1 << crate::model::state::CAP_SYS_ADMIN);
    }
    let prediction = predict(&LINUX_6_18, &model_env, &case);
    if let Prediction::Skip { .. } = prediction {
        return;
    }
    let outcome = match executor.run(&case, CASE_TIMEOUT) {
        Ok(o) => o,
        Err(ExecError::Died(why)) => {
            eprintln!("unshare-fuzz exec target: the executor died ({why}); restarting it");
            *guard = None;
            return;
        }
        Err(e) => {
            eprintln!("unshare-fuzz exec target: case not judged: {e}");
            return;
        }
    };
    let verdict = judge(&env, &case, &prediction, &outcome);
    if !verdict.violations.is_empty() {
        let json = serde_json::to_string(&case).unwrap_or_default();
        let lines: Vec<String> =
            verdict.violations.iter().map(|v| format!("  [{}] step {:?}: {}", v.invariant, v.step, v.detail)).collect();
        panic!(
            "unshare invariant violated\ncase: {case}\ncase (JSON): {json}\n{}\n\
             (decode the artifact with `unshare-fuzz decode`)",
            lines.join("\n")
        );
    }
}

/// Environments the model is checked in: the reference machine and variants
/// that switch on each environment-dependent rule.
fn environments(choice: u8) -> Environment {
    let mut env = Environment::reference();
    match choice % 6 {
        0 => {}
        1 => {
            // An unprivileged run: the executor is root in its own user namespace.
            env.sandbox_user_ns = true;
            env.userns_depth = Some(1);
            env.nobody_mapped = false;
        }
        2 => env.chrooted = true,
        3 => env.userns_depth = Some(32),
        4 => {
            for v in env.max_namespaces.values_mut() {
                *v = 0;
            }
        }
        _ => env.ns_links.retain(|l| !matches!(l, NsLink::Time | NsLink::TimeForChildren | NsLink::Cgroup)),
    }
    env
}

/// Checks the model's laws on the case these bytes stand for, in an environment
/// chosen by the last byte (for a readable JSON input, whose last byte is nearly
/// always `}`, by the sum of its bytes). Never panics unless a law is broken.
///
/// # Panics
/// When a law of [`laws`] is broken, with the law and the case in the message.
pub fn model_laws(data: &[u8]) {
    let (case, choice) = match readable_case(data) {
        Some(case) => (case, data.iter().fold(0u8, |a, b| a.wrapping_add(*b))),
        None => match Case::arbitrary_take_rest(Unstructured::new(data)) {
            Ok(case) => (case, data.last().copied().unwrap_or(0)),
            Err(_) => return,
        },
    };
    let env = environments(choice);
    let first = predict(&LINUX_6_18, &env, &case);
    let second = predict(&LINUX_6_18, &env, &case);
    if let Err(law) = laws(&LINUX_6_18, &case, &first, &second) {
        panic!("model law broken: {law}\ncase: {case}");
    }
}

/// The model's laws over two predictions of the same case: they are equal
/// (deterministic); one expectation per step; the effective flags contain the
/// requested bits and are closed under the implications; a bit outside the
/// valid mask fails with EINVAL; a failing call lists no change.
///
/// # Errors
/// The first law broken, in words.
pub fn laws(
    profile: &crate::model::KernelProfile,
    case: &Case,
    first: &Prediction,
    second: &Prediction,
) -> Result<(), String> {
    if first != second {
        return Err("not deterministic: two predictions differ".into());
    }
    let Prediction::Steps { steps, .. } = first else {
        return Ok(());
    };
    if steps.len() != case.steps.len() {
        return Err(format!("{} expectations for {} steps", steps.len(), case.steps.len()));
    }
    let mut previous_creds = None;
    for (step, exp) in case.steps.iter().zip(steps) {
        let creds_before = previous_creds.replace(exp.creds);
        let Some(raw) = step.unshare_word() else {
            if !exp.result.is_success() && exp.links.iter().any(|l| *l != LinkExpect::Unchanged) {
                return Err(format!("{step} is predicted to fail ({}) but lists changes", exp.result));
            }
            continue;
        };
        let eff = exp.effective_flags;
        if apply_implications(eff, profile.implications) != eff {
            return Err(format!("effective flags {eff} of {raw} are not closed under the implications"));
        }
        if eff.0 & raw.0 != raw.0 {
            return Err(format!("effective flags {eff} drop requested bits of {raw}"));
        }
        if eff.0 & !profile.valid_mask != 0 && exp.result != CallResult::Failure(Errno::EINVAL) {
            return Err(format!("{raw} has a bit outside the mask but is predicted {}", exp.result));
        }
        let unchanged = exp.links.iter().all(|l| *l == LinkExpect::Unchanged)
            && exp.pid == PidExpect::Unchanged
            && !exp.cwd_changes
            && creds_before.is_none_or(|c| c == exp.creds);
        if !exp.result.is_success() && !unchanged {
            return Err(format!("{raw} is predicted to fail ({}) but lists changes", exp.result));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_executor_of_a_fuzz_binary_reads_only_a_pin_slot() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(pin_slot(&words(&["--pin-slot", "1"])), Some(1));
        assert_eq!(pin_slot(&words(&[])), None);
        assert_eq!(pin_slot(&words(&["--pin-slot", "x"])), None);
        assert_eq!(pin_slot(&words(&["--mutant", "1"])), None);
    }

    #[test]
    fn model_laws_hold_on_many_inputs() {
        let mut seed = 0x9e37_79b9_u64;
        for len in 0..4000 {
            let bytes: Vec<u8> = (0..len % 97)
                .map(|_| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                    (seed >> 33) as u8
                })
                .collect();
            model_laws(&bytes);
        }
    }

    #[test]
    fn each_law_catches_its_breach() {
        let p = &LINUX_6_18;
        let case = Case::unshare(&[(1 << 40) | 0x2_0000, 0x2_0000]);
        let good = predict(p, &Environment::reference(), &case);
        assert_eq!(laws(p, &case, &good, &good), Ok(()));
        let Prediction::Steps { steps, final_probe } = &good else {
            panic!("the reference environment never skips a root case");
        };
        let broken = |f: &dyn Fn(&mut Vec<crate::model::Expected>)| {
            let mut s = steps.clone();
            f(&mut s);
            let bad = Prediction::Steps { steps: s, final_probe: *final_probe };
            laws(p, &case, &bad, &bad).unwrap_err()
        };
        let e = laws(p, &case, &good, &Prediction::Skip { reason: "x".into() }).unwrap_err();
        assert!(e.contains("deterministic"), "{e}");
        assert!(
            broken(&|s| {
                s.pop();
            })
            .contains("expectations for 2 steps")
        );
        assert!(broken(&|s| s[1].effective_flags.0 = 0x2_0000).contains("not closed"));
        assert!(broken(&|s| s[1].effective_flags.0 = 0x200).contains("drop requested"));
        assert!(broken(&|s| s[0].result = CallResult::Success).contains("outside the mask"));
        assert!(broken(&|s| s[0].links[2] = LinkExpect::Fresh).contains("lists changes"));
    }

    #[test]
    fn readable_cases_and_corpus_files_are_taken_verbatim() {
        let case = Case::unshare(&[0x2_0000 | 0x1_0000_0000, 0]);
        let seed = case_seed(&case).unwrap();
        assert_eq!(case_from_bytes(&seed), Some(case.clone()));
        let file = crate::corpus::CorpusFile {
            format: 1,
            title: "t".into(),
            comments: vec![],
            origin: None,
            seed: None,
            profile: None,
            case: case.clone(),
            expected: None,
        };
        assert_eq!(case_from_bytes(file.to_text().unwrap().as_bytes()), Some(case.clone()));
        // Not a valid case (5 steps): arbitrary decodes the bytes instead.
        let bad = br#"{"steps":[{"unshare":"0"},{"unshare":"0"},{"unshare":"0"},{"unshare":"0"},{"unshare":"0"}]}"#;
        assert!(readable_case(bad).is_none());
        assert!(case_from_bytes(bad).is_some_and(|c| c.validate().is_ok()));
        assert!(seed_name(&seed).starts_with("seed-") && seed_name(&seed) != seed_name(b"x"));
    }

    #[test]
    fn corpus_laws_hold_on_good_and_bad_files_and_catch_a_breach() {
        for dir in ["corpus", "tests/data/bad-corpus"] {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
            let store = crate::corpus::DirStore::new(&root);
            let keys = crate::corpus::Store::keys(&store).unwrap();
            assert!(!keys.is_empty(), "{dir}");
            for key in keys {
                let bytes = std::fs::read(root.join(&key)).unwrap();
                corpus_file(&bytes);
                // Every prefix too: truncated files must fail cleanly.
                for cut in (0..bytes.len()).step_by(97) {
                    corpus_file(&bytes[..cut]);
                }
            }
        }
        for odd in ["", "{", "[]", "\u{0}", "{\"format\":1,\"title\":\"a\",\"case\":{\"steps\":[\"fork\"]}}\n\n"] {
            assert_eq!(corpus_laws(odd), Ok(()), "{odd:?}");
        }
        // Each error law catches its breach.
        let at = |line, column| Some(crate::corpus::Position { line, column });
        assert_eq!(error_is_clean("{\n}", at(2, 2), "x"), Ok(()));
        assert!(error_is_clean("{", at(9, 1), "x").unwrap_err().contains("line 9 of a text of 1 lines"));
        assert!(error_is_clean("{", at(1, 0), "x").unwrap_err().contains("column 0"));
        assert!(error_is_clean("{", at(1, 3), "x").unwrap_err().contains("column 3"));
        assert!(error_is_clean("{", None, " ").unwrap_err().contains("without a message"));
    }

    #[test]
    fn bytes_decode_to_valid_cases() {
        assert!(case_from_bytes(&[]).is_some_and(|c| c.validate().is_ok()));
        let c = case_from_bytes(&[3, 200, 1, 7, 9, 250, 0, 0, 0, 12]).unwrap();
        assert!(c.validate().is_ok());
        assert_eq!(case_from_bytes(&[3, 200, 1, 7, 9, 250, 0, 0, 0, 12]), Some(c));
    }
}
