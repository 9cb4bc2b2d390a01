//! Links the binary with `src/exec/child-text.ld`, which puts the case child's code in one
//! place (fewer page faults per case; docs/throughput.md). Libraries, tests and the fuzz
//! targets link as before.

fn main() {
    let script = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("src/exec/child-text.ld");
    println!("cargo:rerun-if-changed=src/exec/child-text.ld");
    println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
}
