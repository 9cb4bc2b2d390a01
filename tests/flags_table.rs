//! `unshare-fuzz flags` on this kernel: the table has 64 rows, every bit alone behaves as the
//! model predicts for both calls (the command exits 0 and marks nothing), a few rows read as
//! the kernel sources say, and docs/flags.md is the command's own output (all but the column
//! observed on the machine that generated it).

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

mod common;

use unshare_fuzz::command::flags::MARKDOWN_HEADER;

fn observed_column(line: &str) -> &str {
    line.trim_end_matches('|').rsplit('|').next().unwrap_or("").trim()
}

/// The markdown rows keyed by bit, without their last column.
fn table_without_observed(md: &str) -> Vec<String> {
    md.lines()
        .skip_while(|l| *l != MARKDOWN_HEADER)
        .skip(1)
        .filter(|l| l.starts_with("| "))
        .map(|l| l.trim_end_matches('|').rsplit_once('|').map_or(l, |(head, _)| head).to_string())
        .collect()
}

#[test]
fn every_bit_behaves_as_the_model_says_on_this_kernel() {
    let out = common::run(&["flags", "--markdown"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("| ") && !l.starts_with(MARKDOWN_HEADER)).collect();
    assert_eq!(rows.len(), 64, "{text}");
    assert!(!rows.iter().any(|r| observed_column(r).contains("(!)")), "{text}");
    let cell = |bit: usize| observed_column(rows[bit]).to_string();
    // Read from clone3_args_valid and copy_process, observed here.
    assert_eq!(cell(0), "EINVAL / EINVAL", "CSIGNAL is not a flag for either call");
    assert_eq!(cell(7), "ok / ok", "NEWTIME is allowed in clone3 since a402f1e35313");
    assert_eq!(cell(9), "ok / ok");
    assert_eq!(cell(11), "ok / EINVAL", "clone3(SIGHAND) needs VM");
    assert_eq!(cell(12), "EINVAL / ok", "PIDFD");
    assert_eq!(cell(16), "ok / EINVAL", "clone3(THREAD) needs SIGHAND");
    assert_eq!(cell(22), "EINVAL / EINVAL", "DETACHED");
    assert_eq!(cell(32), "EINVAL / ok", "CLEAR_SIGHAND");
    assert_eq!(cell(33), "EINVAL / EBADF", "INTO_CGROUP with a closed fd");
    assert_eq!(cell(34), "EINVAL / EINVAL");
    assert_eq!(cell(63), "EINVAL / EINVAL");
}

#[test]
fn docs_flags_md_is_the_commands_output() {
    let out = common::run(&["flags", "--markdown"]);
    assert!(out.status.success(), "{}", common::text(&out));
    let fresh = table_without_observed(&String::from_utf8_lossy(&out.stdout));
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/flags.md")).unwrap();
    let committed = table_without_observed(&doc);
    assert_eq!(committed.len(), 64, "docs/flags.md lost rows");
    for (bit, (a, b)) in fresh.iter().zip(&committed).enumerate() {
        assert_eq!(a, b, "bit {bit}: docs/flags.md is stale; regenerate it with `unshare-fuzz flags --markdown`");
    }
}

#[test]
fn the_text_table_names_every_bit() {
    let out = common::run(&["flags"]);
    assert!(out.status.success(), "{}", common::text(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let numbered =
        text.lines().filter(|l| l.split_whitespace().next().is_some_and(|w| w.parse::<u32>().is_ok())).count();
    assert_eq!(numbered, 64, "{text}");
    assert!(text.contains("INTO_CGROUP") && text.contains("unshare: private copy of the fd table"), "{text}");
}
