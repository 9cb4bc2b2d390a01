//! `cargo bench`: the throughput table of issue 8, from the built binary's `bench` command
//! (harness cases per second with every invariant checked, next to a bare
//! fork+unshare+wait loop in the same executor, per flag mix; then the phase timeline).
//! A plain benchmark (`harness = false`): it reports ratios, it asserts nothing.
//!
//! `UF_BENCH_CASES` sets the cases per mix (default 2000); the JSON table is written to
//! `target/bench/throughput.json`.

use std::path::Path;
use std::process::Command;

fn main() {
    let cases = std::env::var("UF_BENCH_CASES").unwrap_or_else(|_| "2000".into());
    let out_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    if let Err(e) = std::fs::create_dir_all(&out_dir) {
        eprintln!("throughput: cannot create {}: {e}", out_dir.display());
        std::process::exit(2);
    }
    let json = out_dir.join("throughput.json");
    let status = Command::new(env!("CARGO_BIN_EXE_unshare-fuzz"))
        .args(["bench", "--cases", &cases, "--json"])
        .arg(&json)
        .status();
    match status {
        Ok(s) if s.success() => println!("table written to {}", json.display()),
        Ok(s) => {
            eprintln!("throughput: `unshare-fuzz bench` exited with {s}");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("throughput: cannot start unshare-fuzz: {e}");
            std::process::exit(2);
        }
    }
}
