//! C reproducers: a [`Case`] plus the model's expectations for it become one
//! standalone C program (libc only, `gcc repro.c`) that a kernel developer can
//! run without Rust. The flag and link tables come from [`crate::flags::FLAGS`]
//! and [`NsLink::ALL`], the expectations from [`crate::model::predict`], and
//! the sandbox, setup and comparison code from `prelude.c` (pulled in with
//! `include_str!`), which follows `exec/sandbox.rs`, `exec/child.rs` and the
//! invariants step by step.

use std::fmt::Write;

use crate::case::{Case, CaseError, Privilege, Setup, Step};
use crate::env::Environment;
use crate::errno::{CallResult, Errno};
use crate::flags::FLAGS;
use crate::model::{KernelProfile, LinkExpect, Prediction, predict};
use crate::ns::NsLink;

/// The C helpers shared by every reproducer.
pub const PRELUDE: &str = include_str!("prelude.c");

/// Why no reproducer could be made.
#[derive(Debug, thiserror::Error)]
pub enum ReproError {
    /// The file is not JSON, or its case does not have the case shape.
    #[error("not a case file: {0}")]
    Parse(#[source] serde_json::Error),
    /// The case breaks a limit of the executor.
    #[error("invalid case: {0}")]
    Invalid(#[from] CaseError),
    /// The model cannot predict the case in this environment.
    #[error("the model skips this case in this environment: {0}")]
    Skipped(String),
    /// The case uses a setup the C prelude does not build.
    #[error("the C reproducer does not support this setup yet: {0}")]
    Unsupported(String),
}

/// Reads a case from JSON: a bare [`Case`], or any object with a `case` key
/// (a corpus file; its other keys are ignored). The case must be valid.
///
/// # Errors
/// [`ReproError::Parse`] or [`ReproError::Invalid`], saying what is wrong.
pub fn case_from_json(text: &str) -> Result<Case, ReproError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(ReproError::Parse)?;
    let inner = match value {
        serde_json::Value::Object(mut map) if map.contains_key("case") => map.remove("case").unwrap_or_default(),
        other => other,
    };
    let case: Case = serde_json::from_value(inner).map_err(ReproError::Parse)?;
    case.validate()?;
    Ok(case)
}

/// A C string literal (octal escapes, so no escape can swallow the next character).
fn c_str(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            b' '..=b'~' if b != b'?' => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
    out.push('"');
    out
}

fn privilege_enum(p: Privilege) -> &'static str {
    match p {
        Privilege::Root => "PRIV_ROOT",
        Privilege::RootWithoutSysAdmin => "PRIV_ROOT_WITHOUT_SYS_ADMIN",
        Privilege::Nobody => "PRIV_NOBODY",
        Privilege::UserNs => "PRIV_USER_NS",
    }
}

fn check_supported(setup: &Setup) -> Result<(), ReproError> {
    #[allow(
        clippy::needless_update,
        reason = "fields added to Setup later must make this comparison refuse, not compile away"
    )]
    let plain = Setup { privilege: setup.privilege, threads: setup.threads, ..Setup::default() };
    if plain == *setup { Ok(()) } else { Err(ReproError::Unsupported(format!("{setup:?}"))) }
}

fn check_steps_supported(case: &Case) -> Result<(), ReproError> {
    match case.steps.iter().find(|s| !matches!(s, Step::Unshare(_))) {
        None => Ok(()),
        Some(step) => Err(ReproError::Unsupported(format!("step {step} (the C reproducer runs unshare steps only)"))),
    }
}

/// The tables the prelude reads, generated from the harness's own.
fn tables(out: &mut String) {
    let _ = writeln!(out, "#define NLINKS {}", NsLink::COUNT);
    let _ = writeln!(out, "#define MAX_STEPS {}", crate::case::MAX_STEPS);
    let links: Vec<String> = NsLink::ALL.iter().map(|l| c_str(l.file_name())).collect();
    let _ = writeln!(out, "static const char *const LINK_NAMES[NLINKS] = {{ {} }};", links.join(", "));
    let named: Vec<_> = FLAGS.iter().filter(|f| f.print_by_name).collect();
    let _ = writeln!(out, "#define NFLAGS {}", named.len());
    let names: Vec<String> = named.iter().map(|f| c_str(f.name)).collect();
    let bits: Vec<String> = named.iter().map(|f| format!("{:#x}ULL", f.bit)).collect();
    let _ = writeln!(out, "static const char *const FLAG_NAMES[NFLAGS] = {{ {} }};", names.join(", "));
    let _ = writeln!(out, "static const unsigned long long FLAG_BITS[NFLAGS] = {{ {} }};", bits.join(", "));
    let errnos: Vec<(i32, &str)> = (1..200).filter_map(|e| Errno(e).name().map(|n| (e, n))).collect();
    let _ = writeln!(out, "#define NERRNOS {}", errnos.len());
    let values: Vec<String> = errnos.iter().map(|(e, _)| e.to_string()).collect();
    let strs: Vec<String> = errnos.iter().map(|(_, n)| c_str(n)).collect();
    let _ = writeln!(out, "static const int ERRNO_VALUES[NERRNOS] = {{ {} }};", values.join(", "));
    let _ = writeln!(out, "static const char *const ERRNO_STRS[NERRNOS] = {{ {} }};", strs.join(", "));
}

/// Renders `case` as a standalone C program that checks the kernel against the
/// expectations `profile` gives in `env`.
///
/// # Errors
/// [`ReproError`] if the case is invalid, skipped by the model here, or uses a
/// setup the prelude cannot build.
pub fn c_source(case: &Case, profile: &KernelProfile, env: &Environment) -> Result<String, ReproError> {
    case.validate()?;
    check_supported(&case.setup)?;
    check_steps_supported(case)?;
    let steps = match predict(profile, env, case) {
        Prediction::Skip { reason } => return Err(ReproError::Skipped(reason)),
        Prediction::Steps { steps, .. } => steps,
    };
    let json = serde_json::to_string(case).map_err(ReproError::Parse)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "/* unshare-fuzz reproducer, generated by unshare-fuzz {}.\n * case: {}\n * \
         build and run:  gcc -O2 -Wall -o repro repro.c && ./repro   (add -pthread on glibc < 2.34)\n * \
         exit status: 0 the kernel agrees with the model, 1 mismatch (or timeout, crash), 2 could not run\n */",
        env!("CARGO_PKG_VERSION"),
        case.to_string().replace("*/", "* /")
    );
    tables(&mut out);
    out.push_str(PRELUDE);
    out.push_str("\nstatic const struct expect_step STEPS[] = {\n");
    for (step, exp) in case.steps.iter().zip(&steps) {
        let Step::Unshare(flags) = step else {
            return Err(ReproError::Unsupported(format!("step {step}")));
        };
        let mut links = Vec::with_capacity(NsLink::COUNT);
        for l in NsLink::ALL {
            links.push(match exp.links[l.index()] {
                LinkExpect::Unchanged => "LINK_UNCHANGED".to_string(),
                LinkExpect::Fresh => "LINK_FRESH".to_string(),
                LinkExpect::Unreadable(e) => format!("-{}", e.0),
                other => return Err(ReproError::Unsupported(format!("link expectation {other:?}"))),
            });
        }
        let errno = match exp.result {
            CallResult::Success => 0,
            CallResult::Failure(e) => e.0,
        };
        let new_userns = exp.result.is_success() && exp.effective_flags.intersects(crate::flags::bits::NEWUSER);
        let (creds_new, uid, gid, cap) =
            if new_userns { (1, exp.creds.uid, exp.creds.gid, exp.creds.cap_eff) } else { (0, 0, 0, 0) };
        let _ = writeln!(
            out,
            "\t{{ {:#x}ULL, {:#x}ULL, {errno} /* {} */, {}, {{ {} }}, {creds_new}, {uid}, {gid}, {cap:#x}ULL }},",
            flags.0,
            exp.effective_flags.0,
            exp.result,
            c_str(exp.rule),
            links.join(", ")
        );
    }
    out.push_str("};\n\nstatic const struct repro_case CASE = {\n");
    let _ = writeln!(out, "\t.title = {},", c_str(&case.to_string()));
    let _ = writeln!(out, "\t.json = {},", c_str(&json));
    let _ = writeln!(out, "\t.model = {},", c_str(profile.name));
    let _ = writeln!(out, "\t.gen_kernel = {},", c_str(&env.kernel_release));
    let _ = writeln!(out, "\t.gen_sandbox = {},", c_str(&env.sandbox));
    let _ = writeln!(out, "\t.privilege = {},", privilege_enum(case.setup.privilege));
    let _ = writeln!(out, "\t.threads = {},", case.setup.threads);
    let _ = writeln!(out, "\t.nsteps = {},", case.steps.len());
    out.push_str("\t.steps = STEPS,\n};\n\nint main(void)\n{\n\treturn repro_main(&CASE);\n}\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::profile::LINUX_6_18;

    #[test]
    fn reads_bare_cases_and_corpus_files() {
        let bare = r#"{"setup":{"privilege":"nobody","threads":1},"steps":[{"unshare":"NEWNS|0x100000000"}]}"#;
        let case = case_from_json(bare).unwrap();
        assert_eq!(case.setup.privilege, Privilege::Nobody);
        let corpus = format!(r#"{{"format":1,"title":"x","note":"y","case":{bare}}}"#);
        assert_eq!(case_from_json(&corpus).unwrap(), case);
        let e = case_from_json(r#"{"steps":[]}"#).unwrap_err().to_string();
        assert!(e.contains("1 to 4 steps"), "{e}");
        let e = case_from_json("{").unwrap_err().to_string();
        assert!(e.starts_with("not a case file"), "{e}");
        let e = case_from_json(r#"{"case":{"steps":[{"unshare":"NEWBOGUS"}]}}"#).unwrap_err().to_string();
        assert!(e.contains("NEWBOGUS"), "{e}");
    }

    #[test]
    fn c_strings_escape_everything_odd() {
        assert_eq!(c_str("a\"b\\c\n??/"), "\"a\\\"b\\\\c\\012\\077\\077/\"");
    }

    #[test]
    fn source_embeds_the_raw_flags_and_the_prediction() {
        let case = Case::unshare(&[0x2_0000 | 0x1_0000_0000, 0x4000_0000]);
        let src = c_source(&case, &LINUX_6_18, &Environment::reference()).unwrap();
        assert!(src.contains("0x100020000ULL, 0x100020200ULL, 22 /* EINVAL */, \"unknown-bit\""));
        assert!(src.contains("0x40000000ULL, 0x40000000ULL, 0 /* success */, \"success\""));
        assert!(src.contains("syscall(SYS_unshare, (unsigned long)flags)"));
        // glibc declares its int unshare() in <sched.h>; without it, a call would not compile
        // (the gcc test builds with -Werror=implicit-function-declaration).
        assert!(!src.contains("<sched.h>"), "never glibc's int unshare()");
        assert!(src.contains("\"NEWTIME\"") && src.contains("0x20000ULL"));
    }

    #[test]
    fn skipped_cases_are_refused_with_the_reason() {
        let mut env = Environment::reference();
        env.nobody_mapped = false;
        let mut case = Case::unshare(&[0]);
        case.setup.privilege = Privilege::Nobody;
        let e = c_source(&case, &LINUX_6_18, &env).unwrap_err().to_string();
        assert!(e.contains("65534"), "{e}");
    }
}
