//! Helpers shared by the integration tests: the built binary, and running it.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The harness binary cargo built for these tests.
pub fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_unshare-fuzz"))
}

/// Runs the binary with `args` and returns its output.
pub fn run(args: &[&str]) -> Output {
    Command::new(binary()).args(args).output().expect("start unshare-fuzz")
}

/// A fresh temporary directory under the system temp dir, with a unique name (tempfile), mode
/// 0755 as `mkdir` makes it (runs as other uids read what is in it), removed when the value is
/// dropped. It dereferences to its path.
pub fn temp_dir(tag: &str) -> TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix(&format!("unshare-fuzz-test-{tag}-"))
        .permissions(std::fs::Permissions::from_mode(0o755))
        .tempdir()
        .expect("create temp dir");
    TempDir(dir)
}

/// A temporary directory of a test: removed on drop.
#[derive(Debug)]
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    /// Keeps the directory after the test (for a value that outlives it, such as a built tool
    /// shared by the tests of a binary).
    pub fn keep(self) -> PathBuf {
        self.0.keep()
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<std::ffi::OsStr> for TempDir {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.path().as_os_str()
    }
}

/// True when the tests run as root.
pub fn is_root() -> bool {
    // SAFETY-free: geteuid via std is not available; read /proc instead.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

/// Stdout and stderr as one string, for assertion messages.
pub fn text(out: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}
