//! Line coverage of unshare's path ([`super::targets`]): which source lines of
//! the target functions have a coverage point, which of them a set of PCs
//! reached, and the text report with every line not reached. Pure: the
//! caller supplies the sites, the PCs, the source text and the reasons.

use std::collections::{BTreeMap, BTreeSet};

use super::reasons::Reasons;
use super::sites::Site;
use super::targets;

/// A source line: file relative to the kernel tree, line number.
pub type Line = (String, u32);

/// The lines of the target functions that have a coverage point.
#[derive(Debug, Clone, Default)]
pub struct LineTable {
    /// Line → the target function it belongs to and the PCs of its sites.
    pub lines: BTreeMap<Line, (String, Vec<u64>)>,
}

impl LineTable {
    /// Every frame of a target function in any site's inline chain makes its line coverable:
    /// the site's PC reaches that line (an inlined helper's block is also its caller's line).
    pub fn from_sites(sites: &[Site]) -> LineTable {
        let mut lines: BTreeMap<Line, (String, Vec<u64>)> = BTreeMap::new();
        for site in sites {
            for f in site.frames.iter().filter(|f| targets::is_target(&f.function)) {
                let e = lines.entry((f.file.clone(), f.line)).or_insert_with(|| (f.function.clone(), Vec::new()));
                e.1.push(site.pc);
            }
        }
        LineTable { lines }
    }

    /// Every PC that reaches some target line (the guest's filter).
    pub fn pcs(&self) -> BTreeSet<u64> {
        self.lines.values().flat_map(|(_, p)| p.iter().copied()).collect()
    }

    /// The lines `pcs` reached.
    pub fn reached(&self, pcs: &BTreeSet<u64>) -> BTreeSet<Line> {
        self.lines.iter().filter(|(_, (_, p))| p.iter().any(|pc| pcs.contains(pc))).map(|(l, _)| l.clone()).collect()
    }

    /// Target functions in report order, each with its file and its lines.
    pub fn functions(&self) -> Vec<(String, String, Vec<u32>)> {
        let mut by: BTreeMap<String, (String, Vec<u32>)> = BTreeMap::new();
        for ((file, line), (function, _)) in &self.lines {
            let e = by.entry(function.clone()).or_insert_with(|| (file.clone(), Vec::new()));
            if e.0 == *file {
                e.1.push(*line);
            }
        }
        let order = |f: &str| {
            targets::TARGETS.iter().flat_map(|g| g.functions.iter()).position(|t| *t == f).unwrap_or(usize::MAX)
        };
        let mut v: Vec<(String, String, Vec<u32>)> = by.into_iter().map(|(f, (file, l))| (f, file, l)).collect();
        v.sort_by_key(|(f, _, _)| order(f));
        v
    }
}

/// One column of the report: a named set of reached lines.
pub struct Column<'a> {
    /// `random`, `corpus`, `guided`, `all`.
    pub name: &'a str,
    /// Its reached lines.
    pub reached: &'a BTreeSet<Line>,
}

fn pct(n: usize, of: usize) -> String {
    if of == 0 { "-".into() } else { format!("{:.1}%", 100.0 * n as f64 / of as f64) }
}

/// The text report: totals per column, a table per function, and every line the last
/// column did not reach with its source text and its reason (or `NO REASON`).
pub fn text(
    table: &LineTable,
    columns: &[Column],
    source: &dyn Fn(&str, u32) -> Option<String>,
    reasons: &Reasons,
) -> String {
    let mut s = String::new();
    let total = table.lines.len();
    s.push_str(&format!(
        "unshare's path: {} target functions with a coverage point, {total} lines with a coverage point\n",
        table.functions().len()
    ));
    s.push_str(&format!("{:<10} {:>14} {:>7}\n", "set", "lines reached", "share"));
    for c in columns {
        s.push_str(&format!(
            "{:<10} {:>8} / {:<4} {:>7}\n",
            c.name,
            c.reached.len(),
            total,
            pct(c.reached.len(), total)
        ));
    }
    s.push_str(&format!("\n{:<28} {:<28} {:>5}", "function", "file", "lines"));
    for c in columns {
        s.push_str(&format!(" {:>8}", c.name));
    }
    s.push('\n');
    for (function, file, lines) in table.functions() {
        s.push_str(&format!("{function:<28} {file:<28} {:>5}", lines.len()));
        for c in columns {
            let n = lines.iter().filter(|l| c.reached.contains(&(file.clone(), **l))).count();
            s.push_str(&format!(" {:>8}", format!("{n}")));
        }
        s.push('\n');
    }
    let Some(last) = columns.last() else { return s };
    let missing: Vec<&Line> = table.lines.keys().filter(|l| !last.reached.contains(*l)).collect();
    let explained = missing.iter().filter(|(f, l)| reasons.get(f, *l).is_some()).count();
    s.push_str(&format!(
        "\nlines not reached by '{}': {} ({} with a reason in the reasons file, {} without)\n",
        last.name,
        missing.len(),
        explained,
        missing.len() - explained
    ));
    for (file, line) in missing {
        let function = &table.lines[&(file.clone(), *line)].0;
        let code = source(file, *line).unwrap_or_default();
        let why = reasons.get(file, *line).map_or_else(|| "NO REASON".to_string(), |r| r.to_string());
        s.push_str(&format!("{file}:{line} {function}: {}    [{why}]\n", code.trim()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::sites::Frame;

    fn frame(function: &str, line: u32) -> Frame {
        Frame { function: function.into(), file: "kernel/fork.c".into(), line }
    }

    #[test]
    fn inlined_target_frames_count_and_unreached_lines_are_listed() {
        let sites = vec![
            Site { pc: 0x10, frames: vec![frame("unshare_fs", 3281), frame("ksys_unshare", 3367)] },
            Site { pc: 0x20, frames: vec![frame("ksys_unshare", 3370)] },
            Site { pc: 0x30, frames: vec![frame("kfree", 1)] },
        ];
        let t = LineTable::from_sites(&sites);
        assert_eq!(t.lines.len(), 3);
        assert_eq!(t.pcs(), [0x10, 0x20].into());
        let reached = t.reached(&[0x10u64].into());
        assert_eq!(reached.len(), 2);
        let reasons = Reasons::parse("kernel/fork.c:3370\tfault-injection\tENOMEM of copy_fs_struct\n").unwrap();
        let txt = text(&t, &[Column { name: "all", reached: &reached }], &|_, _| Some("x();".into()), &reasons);
        assert!(
            txt.contains("kernel/fork.c:3370 ksys_unshare: x();    [fault-injection: ENOMEM of copy_fs_struct]"),
            "{txt}"
        );
        assert!(txt.contains("2 / 3"), "{txt}");
    }
}
