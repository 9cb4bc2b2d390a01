//! `kcov report` answers bad input with a clear error and exit 2, before it needs a kernel.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

mod common;

#[test]
fn records_that_are_not_a_guests_output_are_refused() {
    let dir = common::temp_dir("kcov-cli");
    let bad = dir.join("console.log");
    std::fs::write(&bad, "Linux version 6.12\nsome console line\n").unwrap();
    let out = common::run(&["kcov", "report", "--kernel", "/nonexistent", "--data", bad.to_str().unwrap()]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("no `kcov-group` record"), "{text}");
    let out = common::run(&["kcov", "report", "--kernel", "/nonexistent", "--data", "/nonexistent/data.txt"]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("cannot read /nonexistent/data.txt"), "{text}");
}
