//! Rules on the project's source files as a whole, each tested on planted samples where it
//! reads text:
//!
//! * CONVENTIONS.md names exactly the files that allow `unsafe`;
//! * no source file but a named data table is over 500 lines (issue 17);
//! * no path to the kernel truncates unshare's flag word.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Numbered lines of code before the first `#[cfg(test)]`, without line comments.
fn code_lines(src: &str) -> impl Iterator<Item = (usize, &str)> {
    let code = src.find("#[cfg(test)]").map_or(src, |i| &src[..i]);
    code.lines().enumerate().filter(|(_, l)| !l.trim_start().starts_with("//")).map(|(i, l)| (i + 1, l))
}

/// Rust files under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    files_ending(dir, &["rs"], out);
}

/// Files under `dir` (recursively, `target` folders skipped) whose extension is one of `exts`.
fn files_ending(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries {
        let p = entry.unwrap().path();
        if p.is_dir() {
            if !p.ends_with("target") {
                files_ending(&p, exts, out);
            }
        } else if p.extension().is_some_and(|e| exts.iter().any(|x| e == *x)) {
            out.push(p);
        }
    }
}

/// The `unsafe` entries of CONVENTIONS.md: backticked paths ending in `.rs` or `/` in its
/// `**unsafe**` item, up to its first `;`.
fn conventions_unsafe_list(text: &str) -> Vec<String> {
    let start = text.find("* **unsafe**").expect("CONVENTIONS.md has a `* **unsafe**` item");
    let item = &text[start + 2..];
    // The list ends at the first `;` (what follows is about the blocks, not the files).
    let item = &item[..item.find(';').unwrap_or(item.len())];
    item.split('`').skip(1).step_by(2).filter(|s| s.ends_with(".rs") || s.ends_with('/')).map(str::to_string).collect()
}

#[test]
fn conventions_name_exactly_the_files_that_allow_unsafe() {
    let listed = conventions_unsafe_list(&read("CONVENTIONS.md"));
    assert!(listed.len() >= 3, "the list was not found: {listed:?}");
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "fuzz"] {
        rust_files(&root().join(dir), &mut files);
    }
    let mut allowing = BTreeSet::new();
    for p in &files {
        let src = std::fs::read_to_string(p).unwrap();
        if code_lines(&src).any(|(_, l)| l.contains("allow(unsafe_code)")) {
            allowing.insert(p.strip_prefix(root()).unwrap().to_str().unwrap().to_string());
        }
    }
    let covered = |f: &str| listed.iter().any(|l| l == f || (l.ends_with('/') && f.starts_with(l.as_str())));
    let unlisted: Vec<&String> = allowing.iter().filter(|f| !covered(f)).collect();
    assert!(unlisted.is_empty(), "files that allow unsafe_code but CONVENTIONS.md does not name: {unlisted:?}");
    let stale: Vec<&String> = listed
        .iter()
        .filter(|l| !allowing.iter().any(|f| f == *l || (l.ends_with('/') && f.starts_with(l.as_str()))))
        .collect();
    assert!(stale.is_empty(), "CONVENTIONS.md names files that do not allow unsafe_code (or do not exist): {stale:?}");
}

#[test]
fn conventions_list_is_read_as_written() {
    let sample =
        "* **unsafe** only in `src/sys/`, `src/a.rs` and `src/b.rs`; `unsafe fn` too.\n* **Next** `src/c.rs`\n";
    assert_eq!(conventions_unsafe_list(sample), ["src/sys/", "src/a.rs", "src/b.rs"]);
}

#[test]
fn no_truncating_unshare_path_in_the_crate() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    assert!(files.len() > 20, "{files:?}");
    for p in files {
        let src = std::fs::read_to_string(&p).unwrap();
        for (n, line) in code_lines(&src) {
            for banned in ["libc::unshare(", "nix::sched::unshare", "from_bits_truncate"] {
                assert!(!line.contains(banned), "{}:{n} uses {banned}: pass the raw u64 to SYS_unshare", p.display());
            }
        }
    }
}

/// The longest a source file may be (issue 17): a longer one mixes jobs and is split.
const MAX_LINES: usize = 500;

/// Files allowed over [`MAX_LINES`]: data tables, read as tables, each with the reason.
const DATA_TABLES: &[(&str, &str)] = &[(
    "src/abi/flags.rs",
    "the flag table: one entry per clone/unshare bit with its kernel versions and notes, read as a table",
)];

/// Every Rust and C source file of the project with its line count, over the limit.
fn oversized(root: &Path) -> Vec<(String, usize)> {
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "fuzz", "scripts"] {
        files_ending(&root.join(dir), &["rs", "c"], &mut files);
    }
    let mut over: Vec<(String, usize)> = files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            (p.strip_prefix(root).unwrap().to_str().unwrap().to_string(), text.lines().count())
        })
        .filter(|(_, n)| *n > MAX_LINES)
        .collect();
    over.sort();
    over
}

#[test]
fn no_source_file_but_data_tables_is_over_500_lines() {
    let over = oversized(&root());
    let unexpected: Vec<_> = over.iter().filter(|(f, _)| !DATA_TABLES.iter().any(|(t, _)| t == f)).collect();
    assert!(
        unexpected.is_empty(),
        "source files over {MAX_LINES} lines (split them by job, or name a data table in DATA_TABLES with the reason): {unexpected:?}"
    );
    for (table, _) in DATA_TABLES {
        assert!(root().join(table).exists(), "DATA_TABLES names {table}, which does not exist");
    }
}

#[test]
fn the_size_rule_catches_a_planted_long_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src/deep")).unwrap();
    std::fs::write(dir.path().join("src/deep/long.rs"), "// x\n".repeat(MAX_LINES + 1)).unwrap();
    std::fs::write(dir.path().join("src/short.c"), "/* x */\n".repeat(MAX_LINES)).unwrap();
    assert_eq!(oversized(dir.path()), vec![("src/deep/long.rs".to_string(), MAX_LINES + 1)]);
}
