//! The text the guest's `kcov run` prints and the host's `kcov report` reads:
//! one record per line, so that a report cut short by a timeout still holds
//! every record before the cut. Pure: formatting and parsing only.
//!
//! ```text
//! kcov-filter <sites>                                   how many PCs the filter lets through
//! kcov-group <name> cases=<n> run=<n> skipped=<n> violations=<n> broken=<n> all-pcs=<n> overflowed=<n> seconds=<s>
//! kcov-pcs <group> <hex PC> ...                          the group's filtered PCs (union)
//! kcov-file <corpus path> <hex PC> ...                   one corpus file's filtered PCs
//! kcov-candidate <group> <new PCs> <one-line corpus JSON>
//! kcov-progress <group> <cases> <filtered PCs so far>
//! ```

use std::collections::{BTreeMap, BTreeSet};

/// One group's totals (`kcov-group`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupStats {
    /// Group name: `random`, `corpus`, `guided`.
    pub name: String,
    /// Cases asked for.
    pub cases: u64,
    /// Cases run (not skipped by the model).
    pub run: u64,
    /// Cases the model skips on this machine.
    pub skipped: u64,
    /// Cases with a violation (coverage mode keeps going).
    pub violations: u64,
    /// Cases that broke (executor died, refused).
    pub broken: u64,
    /// Distinct PCs anywhere in the kernel, before the filter.
    pub all_pcs: u64,
    /// Cases with a KCOV buffer that filled up.
    pub overflowed: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Everything one report holds.
#[derive(Debug, Clone, Default)]
pub struct Data {
    /// Filter size, if printed.
    pub filter: Option<u64>,
    /// Groups in order.
    pub groups: Vec<GroupStats>,
    /// Filtered PCs per group.
    pub pcs: BTreeMap<String, BTreeSet<u64>>,
    /// Filtered PCs per corpus file.
    pub files: BTreeMap<String, BTreeSet<u64>>,
    /// Guided-search candidates: group, new PCs, corpus JSON.
    pub candidates: Vec<(String, u64, String)>,
    /// Progress points: group, cases, filtered PCs.
    pub progress: Vec<(String, u64, u64)>,
}

/// `kcov-group` line.
pub fn group_line(g: &GroupStats) -> String {
    format!(
        "kcov-group {} cases={} run={} skipped={} violations={} broken={} all-pcs={} overflowed={} seconds={:.1}",
        g.name, g.cases, g.run, g.skipped, g.violations, g.broken, g.all_pcs, g.overflowed, g.seconds
    )
}

/// A `kcov-pcs` or `kcov-file` line.
pub fn pcs_line(tag: &str, name: &str, pcs: &BTreeSet<u64>) -> String {
    let mut s = format!("{tag} {name}");
    for pc in pcs {
        s.push_str(&format!(" {pc:x}"));
    }
    s
}

fn hex_set<'a>(words: impl Iterator<Item = &'a str>) -> Result<BTreeSet<u64>, String> {
    words.map(|w| u64::from_str_radix(w, 16).map_err(|e| format!("bad PC {w:?}: {e}"))).collect()
}

fn group_from(words: &[&str]) -> Result<GroupStats, String> {
    let mut g =
        GroupStats { name: words.first().ok_or("kcov-group without a name")?.to_string(), ..Default::default() };
    for w in &words[1..] {
        let (k, v) = w.split_once('=').ok_or_else(|| format!("bad field {w:?}"))?;
        let n = || v.parse::<u64>().map_err(|e| format!("bad {k}={v}: {e}"));
        match k {
            "cases" => g.cases = n()?,
            "run" => g.run = n()?,
            "skipped" => g.skipped = n()?,
            "violations" => g.violations = n()?,
            "broken" => g.broken = n()?,
            "all-pcs" => g.all_pcs = n()?,
            "overflowed" => g.overflowed = n()?,
            "seconds" => g.seconds = v.parse().map_err(|e| format!("bad seconds={v}: {e}"))?,
            _ => {}
        }
    }
    Ok(g)
}

/// Parses a report; lines of other kinds (the KTAP or console noise of a guest) are ignored.
///
/// # Errors
/// The line number and what is wrong with a `kcov-` line.
pub fn parse(text: &str) -> Result<Data, String> {
    let mut d = Data::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let at = |e: String| format!("line {}: {e}", i + 1);
        let mut words = line.split(' ');
        let tag = words.next().unwrap_or("");
        match tag {
            "kcov-filter" => d.filter = words.next().and_then(|w| w.parse().ok()),
            "kcov-group" => d.groups.push(group_from(&words.collect::<Vec<_>>()).map_err(at)?),
            "kcov-pcs" | "kcov-file" => {
                let name = words.next().ok_or_else(|| at("no name".into()))?.to_string();
                let set = hex_set(words.filter(|w| !w.is_empty())).map_err(at)?;
                let map = if tag == "kcov-pcs" { &mut d.pcs } else { &mut d.files };
                map.entry(name).or_default().extend(set);
            }
            "kcov-candidate" => {
                let mut parts = line.splitn(4, ' ').skip(1);
                let (Some(group), Some(new), Some(json)) = (parts.next(), parts.next(), parts.next()) else {
                    return Err(at("kcov-candidate needs a group, a count and JSON".into()));
                };
                d.candidates.push((group.to_string(), new.parse().unwrap_or(0), json.to_string()));
            }
            "kcov-progress" => {
                let v: Vec<&str> = words.collect();
                if let [g, c, p] = v[..] {
                    d.progress.push((g.to_string(), c.parse().unwrap_or(0), p.parse().unwrap_or(0)));
                }
            }
            _ => {}
        }
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_noise_is_ignored() {
        let g = GroupStats {
            name: "random".into(),
            cases: 3,
            run: 2,
            skipped: 1,
            all_pcs: 900,
            seconds: 1.5,
            ..Default::default()
        };
        let pcs: BTreeSet<u64> = [0xffff_ffff_8100_0005, 0xffff_ffff_8100_0105].into();
        let text = format!(
            "ok 1 noise\nkcov-filter 12\n{}\n{}\n{}\nkcov-candidate guided 4 {{\"a\": 1}}\n",
            group_line(&g),
            pcs_line("kcov-pcs", "random", &pcs),
            pcs_line("kcov-file", "corpus/x.json", &pcs)
        );
        let d = parse(&text).unwrap();
        assert_eq!(d.filter, Some(12));
        assert_eq!(d.groups, vec![g]);
        assert_eq!(d.pcs["random"], pcs);
        assert_eq!(d.files["corpus/x.json"], pcs);
        assert_eq!(d.candidates, vec![("guided".to_string(), 4, "{\"a\": 1}".to_string())]);
        assert!(parse("kcov-pcs random zz").is_err());
    }
}
