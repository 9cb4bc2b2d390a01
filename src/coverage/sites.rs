//! The kernel's coverage points and their source lines: every call of
//! `__sanitizer_cov_trace_pc` in `vmlinux` (found by `objdump -d`), mapped with
//! `addr2line -f -i` to its chain of inlined frames. KCOV reports the return
//! address of that call, so a site's PC is the call's address plus 5 (a
//! `call rel32`). Built once per kernel and cached next to it (`sites.tsv`).
//! The parsers are pure; [`load_or_build`] runs the tools.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Bytes of `call rel32`: KCOV's PC is the call's address plus this.
pub const CALL_LEN: u64 = 5;

/// One source frame of a site (innermost first in [`Site::frames`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Frame {
    /// Function name, as DWARF gives it (inlined static helpers keep theirs).
    pub function: String,
    /// Source file relative to the kernel tree (`kernel/fork.c`).
    pub file: String,
    /// Line.
    pub line: u32,
}

/// One coverage point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// The PC KCOV reports for it.
    pub pc: u64,
    /// Inline chain, innermost first.
    pub frames: Vec<Frame>,
}

/// Call addresses of `__sanitizer_cov_trace_pc` in `objdump -d` output.
pub fn parse_objdump(text: &str) -> Vec<u64> {
    text.lines()
        .filter(|l| l.contains("<__sanitizer_cov_trace_pc>") && l.contains("call"))
        .filter_map(|l| u64::from_str_radix(l.trim_start().split(':').next()?.trim(), 16).ok())
        .collect()
}

/// Strips `root` (the source tree) and `./` from a DWARF file name.
fn relative(file: &str, root: &str) -> String {
    let f = if !root.is_empty() { file.strip_prefix(root).unwrap_or(file) } else { file };
    f.trim_start_matches('/').trim_start_matches("./").to_string()
}

/// `addr2line -a -f -i` output: an address line (`0x...`), then function and `file:line`
/// pairs, innermost first. `(discriminator N)` suffixes and unknown lines (`??:0`) are dropped.
pub fn parse_addr2line(text: &str, root: &str) -> Vec<(u64, Vec<Frame>)> {
    let mut out: Vec<(u64, Vec<Frame>)> = Vec::new();
    let mut function: Option<&str> = None;
    for l in text.lines() {
        if let Some(a) = l.strip_prefix("0x").and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok()) {
            out.push((a, Vec::new()));
            function = None;
            continue;
        }
        match function.take() {
            None => function = Some(l),
            Some(f) => {
                let loc = l.split(" (discriminator").next().unwrap_or(l);
                let Some((file, line)) = loc.rsplit_once(':') else { continue };
                let Ok(line) = line.trim().parse::<u32>() else { continue };
                if line == 0 || file == "??" {
                    continue;
                }
                if let Some((_, frames)) = out.last_mut() {
                    frames.push(Frame { function: f.to_string(), file: relative(file, root), line });
                }
            }
        }
    }
    out
}

/// The cache file's text: `pc<TAB>function@file:line;...` per site.
pub fn to_tsv(sites: &[Site]) -> String {
    let mut s = String::new();
    for site in sites {
        let frames: Vec<String> = site.frames.iter().map(|f| format!("{}@{}:{}", f.function, f.file, f.line)).collect();
        s.push_str(&format!("{:x}\t{}\n", site.pc, frames.join(";")));
    }
    s
}

/// Parses [`to_tsv`]'s text.
pub fn from_tsv(text: &str) -> Vec<Site> {
    text.lines()
        .filter_map(|l| {
            let (pc, rest) = l.split_once('\t')?;
            let frames = rest
                .split(';')
                .filter_map(|f| {
                    let (function, loc) = f.split_once('@')?;
                    let (file, line) = loc.rsplit_once(':')?;
                    Some(Frame { function: function.into(), file: file.into(), line: line.parse().ok()? })
                })
                .collect();
            Some(Site { pc: u64::from_str_radix(pc, 16).ok()?, frames })
        })
        .collect()
}

/// The kernel directory's parts (scripts/kcov-kernel.sh's output).
pub struct KernelDir {
    /// `vmlinux` with debug info.
    pub vmlinux: PathBuf,
    /// The source tree the line numbers refer to.
    pub src: PathBuf,
    /// The site cache.
    pub cache: PathBuf,
}

impl KernelDir {
    /// The parts of `dir`.
    pub fn new(dir: &Path) -> KernelDir {
        KernelDir { vmlinux: dir.join("vmlinux"), src: dir.join("src"), cache: dir.join("sites.tsv") }
    }
}

fn tool_output(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("cannot run {what}: {e} (install binutils)"))?;
    if !out.status.success() {
        return Err(format!("{what} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Reads the cached sites, or finds and maps them (a minute or two) and caches them.
///
/// # Errors
/// What failed (no vmlinux, objdump or addr2line missing or failing).
pub fn load_or_build(k: &KernelDir) -> Result<Vec<Site>, String> {
    if let Ok(text) = std::fs::read_to_string(&k.cache) {
        return Ok(from_tsv(&text));
    }
    if !k.vmlinux.exists() {
        return Err(format!("{} does not exist: build it with scripts/kcov-kernel.sh", k.vmlinux.display()));
    }
    let dis =
        tool_output(Command::new("objdump").arg("-d").arg("--no-show-raw-insn").arg(&k.vmlinux), "objdump -d vmlinux")?;
    let calls = parse_objdump(&dis);
    drop(dis);
    if calls.is_empty() {
        return Err(format!("no call of __sanitizer_cov_trace_pc in {}: not a KCOV kernel", k.vmlinux.display()));
    }
    let mut child = Command::new("addr2line")
        .args(["-a", "-f", "-i", "-e"])
        .arg(&k.vmlinux)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run addr2line: {e} (install binutils)"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin for addr2line")?;
    let input: String = calls.iter().map(|a| format!("{a:x}\n")).collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().map_err(|e| format!("addr2line: {e}"))?;
    let _ = writer.join();
    let root = std::fs::canonicalize(&k.src).map(|p| format!("{}/", p.display())).unwrap_or_default();
    let mapped: BTreeMap<u64, Vec<Frame>> =
        parse_addr2line(&String::from_utf8_lossy(&out.stdout), &root).into_iter().collect();
    let sites: Vec<Site> =
        calls.iter().map(|a| Site { pc: a + CALL_LEN, frames: mapped.get(a).cloned().unwrap_or_default() }).collect();
    let tmp = k.cache.with_extension("tsv.tmp");
    std::fs::write(&tmp, to_tsv(&sites))
        .and_then(|()| std::fs::rename(&tmp, &k.cache))
        .map_err(|e| format!("cannot write {}: {e}", k.cache.display()))?;
    Ok(sites)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objdump_and_addr2line_output_become_sites() {
        let dis = "ffffffff81001000 <ksys_unshare>:\n\
                   ffffffff81001004:\tcall   ffffffff81200000 <__sanitizer_cov_trace_pc>\n\
                   ffffffff81001009:\tmov    %rax,%rbx\n\
                   ffffffff81001010:\tcall   ffffffff81300000 <kfree>\n";
        assert_eq!(parse_objdump(dis), vec![0xffff_ffff_8100_1004]);
        let a2l = "0xffffffff81001004\nunshare_fs\n/src/kernel/fork.c:3281 (discriminator 2)\n\
                   ksys_unshare\n/src/kernel/fork.c:3367\n0xffffffff81001100\n??\n??:0\n";
        let got = parse_addr2line(a2l, "/src/");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1[0], Frame { function: "unshare_fs".into(), file: "kernel/fork.c".into(), line: 3281 });
        assert_eq!(got[0].1[1].function, "ksys_unshare");
        assert!(got[1].1.is_empty());
        let sites = vec![Site { pc: 0x1009, frames: got[0].1.clone() }];
        assert_eq!(from_tsv(&to_tsv(&sites)), sites);
    }
}
