//! The HTML page of the coverage report: per target function, its source with
//! the lines that have a coverage point marked reached (green) or not (red,
//! with the reason if one is written down), and a column per set of cases.
//! Pure: the caller supplies the source text.

use std::collections::BTreeSet;

use super::reasons::Reasons;
use super::report::{Column, Line, LineTable};

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The whole page. `source(file)` gives a file's text.
pub fn page(
    table: &LineTable,
    columns: &[Column],
    source: &dyn Fn(&str) -> Option<String>,
    reasons: &Reasons,
) -> String {
    let mut s = String::from(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>unshare coverage</title><style>\n\
         body{font-family:sans-serif;margin:1em 2em}table{border-collapse:collapse}\n\
         td,th{padding:0 .5em;text-align:right}pre{margin:0}\n\
         .src td{text-align:left;font-family:monospace;white-space:pre}\n\
         .hit{background:#c8f0c8}.miss{background:#f6c6c6}.why{color:#744;font-size:85%}\n\
         .n{color:#888}</style></head><body>\n<h1>Kernel line coverage of unshare's path</h1>\n",
    );
    let total = table.lines.len();
    s.push_str("<table><tr><th>set</th><th>lines reached</th><th>of</th></tr>\n");
    for c in columns {
        s.push_str(&format!("<tr><td>{}</td><td>{}</td><td>{total}</td></tr>\n", escape(c.name), c.reached.len()));
    }
    s.push_str(
        "</table>\n<p>A line is green if the last set reached one of its coverage points (KCOV basic blocks), \
                red if it has points and none was reached; plain lines have no point of their own. \
                The small columns say which set reached the line.</p>\n",
    );
    let Some(last) = columns.last() else { return s + "</body></html>\n" };
    for (function, file, lines) in table.functions() {
        let (Some(lo), Some(hi)) = (lines.first(), lines.last()) else { continue };
        let reached = lines.iter().filter(|l| last.reached.contains(&(file.clone(), **l))).count();
        s.push_str(&format!(
            "<h2 id=\"{function}\">{function} <small>({file}, {reached} of {} lines)</small></h2>\n<table class=\"src\">\n",
            lines.len()
        ));
        let text = source(&file).unwrap_or_default();
        let src: Vec<&str> = text.lines().collect();
        let marked: BTreeSet<u32> = lines.iter().copied().collect();
        for n in lo.saturating_sub(2).max(1)..=(hi + 2) {
            let code = src.get(n as usize - 1).copied().unwrap_or("");
            let key: Line = (file.clone(), n);
            let class = match (marked.contains(&n), last.reached.contains(&key)) {
                (true, true) => " class=\"hit\"",
                (true, false) => " class=\"miss\"",
                _ => "",
            };
            s.push_str(&format!("<tr{class}><td class=\"n\">{n}</td>"));
            for c in columns {
                let mark = if marked.contains(&n) {
                    if c.reached.contains(&key) { "&#10003;" } else { "&middot;" }
                } else {
                    ""
                };
                s.push_str(&format!("<td title=\"{}\">{mark}</td>", escape(c.name)));
            }
            s.push_str(&format!("<td>{}", escape(code)));
            if marked.contains(&n) && !last.reached.contains(&key) {
                let why = reasons.get(&file, n).map_or_else(|| "no reason written down".into(), |r| r.to_string());
                s.push_str(&format!("  <span class=\"why\">{}</span>", escape(&why)));
            }
            s.push_str("</td></tr>\n");
        }
        s.push_str("</table>\n");
    }
    s + "</body></html>\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::sites::{Frame, Site};

    #[test]
    fn reached_and_missed_lines_are_marked_and_text_is_escaped() {
        let f = |line| Frame { function: "ksys_unshare".into(), file: "kernel/fork.c".into(), line };
        let t = LineTable::from_sites(&[Site { pc: 1, frames: vec![f(2)] }, Site { pc: 2, frames: vec![f(4)] }]);
        let reached = t.reached(&[1u64].into());
        let cols = [Column { name: "all", reached: &reached }];
        let html = page(&t, &cols, &|_| Some("a\nif (a<b)\nc\nd && e\nf\n".into()), &Reasons::default());
        assert!(html.contains("<tr class=\"hit\"><td class=\"n\">2</td>"), "{html}");
        assert!(html.contains("<tr class=\"miss\"><td class=\"n\">4</td>"), "{html}");
        assert!(html.contains("if (a&lt;b)"));
        assert!(html.contains("d &amp;&amp; e"));
    }
}
