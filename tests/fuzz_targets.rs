//! The fuzz targets' library halves, driven through the hidden `__target`
//! command (what the libFuzzer binaries call, minus libFuzzer): inputs pass on
//! this kernel; an injected violation aborts with the case; under a seccomp
//! filter (as in a container) the exec target refuses to judge and says why.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use unshare_fuzz::abi::flags::NON_USER_NAMESPACES;
use unshare_fuzz::case::Step;
use unshare_fuzz::command::fuzzing::{WRONG_MODEL_VAR, case_from_bytes};

fn pseudo_random_inputs(n: usize) -> Vec<Vec<u8>> {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    (0..n)
        .map(|i| {
            (0..(i % 40) + 1)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect()
        })
        .collect()
}

fn write_inputs(dir: &Path, inputs: &[Vec<u8>]) -> Vec<PathBuf> {
    inputs
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let p = dir.join(format!("input-{i}"));
            std::fs::write(&p, bytes).expect("write a fuzz input");
            p
        })
        .collect()
}

/// An input that decodes to a root case whose first step asks for a non-user namespace
/// and nothing unknown: the kernel grants it, so a model without CAP_SYS_ADMIN is wrong.
fn namespace_input() -> Vec<u8> {
    pseudo_random_inputs(5000)
        .into_iter()
        .find(|b| {
            case_from_bytes(b).is_some_and(|c| {
                let Step::Unshare(f) = c.steps[0] else { return false };
                c.setup == unshare_fuzz::case::Setup::default()
                    && f.0 & NON_USER_NAMESPACES != 0
                    && f.unknown_to_unshare() == 0
            })
        })
        .expect("some input decodes to a root namespace case")
}

fn target(args: &[&Path], wrong_model: bool, launcher: Option<&Path>) -> Output {
    let mut cmd = match launcher {
        Some(l) => {
            let mut c = Command::new(l);
            c.arg(common::binary());
            c
        }
        None => Command::new(common::binary()),
    };
    cmd.arg("__target").args(args);
    if wrong_model {
        cmd.env(WRONG_MODEL_VAR, "1");
    }
    cmd.output().expect("run unshare-fuzz __target")
}

#[test]
fn exec_and_model_targets_pass_on_this_kernel() {
    let dir = common::temp_dir("targets-pass");
    let files = write_inputs(&dir, &pseudo_random_inputs(300));
    for t in ["exec", "model"] {
        let mut args: Vec<&Path> = vec![Path::new(t)];
        args.extend(files.iter().map(PathBuf::as_path));
        let out = target(&args, false, None);
        assert_eq!(out.status.code(), Some(0), "{t}: {}", common::text(&out));
        assert!(common::text(&out).contains("300 input(s) passed"), "{}", common::text(&out));
    }
}

#[test]
fn a_violation_aborts_the_exec_target_with_the_case() {
    let dir = common::temp_dir("targets-violation");
    let file = write_inputs(&dir, &[namespace_input()]).remove(0);
    let out = target(&[Path::new("exec"), &file], true, None);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(101), "a panic: {text}");
    assert!(text.contains("unshare invariant violated"), "{text}");
    assert!(text.contains("[errno-matches-model]") && text.contains("case (JSON)"), "{text}");
}

#[test]
fn under_a_seccomp_filter_the_exec_target_refuses_to_judge_and_says_why() {
    let dir = common::temp_dir("targets-seccomp");
    let launcher = dir.join("with-seccomp-filter");
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/with-seccomp-filter.c");
    let gcc = Command::new("gcc")
        .args(["-O2", "-Wall", "-Werror", "-o"])
        .arg(&launcher)
        .arg(src)
        .output()
        .expect("gcc must be installed (apt-get install gcc)");
    assert!(gcc.status.success(), "{}", common::text(&gcc));
    let file = write_inputs(&dir, &[namespace_input()]).remove(0);
    // The same input that aborts above, with the same injected wrong model: no verdict now.
    let out = target(&[Path::new("exec"), &file, &file], true, Some(&launcher));
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("NOT judging any input: the environment restricts unshare"), "{text}");
    assert!(text.contains("seccomp filter"), "says which restriction: {text}");
    assert_eq!(text.matches("NOT judging").count(), 1, "said once: {text}");
}

#[test]
fn the_corpus_format_target_passes_good_bad_and_random_files() {
    let dir = common::temp_dir("targets-corpus-format");
    let mut files = write_inputs(&dir, &pseudo_random_inputs(200));
    for src in ["corpus/single-bits", "tests/data/bad-corpus"] {
        for entry in std::fs::read_dir(src).expect("list a corpus directory") {
            files.push(entry.expect("a directory entry").path());
        }
    }
    let mut args: Vec<&Path> = vec![Path::new("corpus_format")];
    args.extend(files.iter().map(PathBuf::as_path));
    let out = target(&args, false, None);
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
    assert!(common::text(&out).contains(&format!("{} input(s) passed", files.len())), "{}", common::text(&out));
}
