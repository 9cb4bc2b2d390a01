//! Corpus distillation: which corpus files reach coverage points no other file
//! reaches, and a smallest-found subset with the same coverage (greedy set
//! cover: repeatedly take the file adding the most points not yet covered;
//! ties by name). Pure.

use std::collections::{BTreeMap, BTreeSet};

/// The distillation of one corpus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distilled {
    /// Files with points no other file has, and how many such points.
    pub unique: Vec<(String, usize)>,
    /// The proposed corpus, in the order chosen, with the points each adds.
    pub keep: Vec<(String, usize)>,
    /// Points of the whole corpus (= of `keep`).
    pub covered: usize,
}

/// Distills `files` (file → coverage points).
pub fn distill(files: &BTreeMap<String, BTreeSet<u64>>) -> Distilled {
    let mut count: BTreeMap<u64, usize> = BTreeMap::new();
    for set in files.values() {
        for p in set {
            *count.entry(*p).or_default() += 1;
        }
    }
    let unique = files
        .iter()
        .map(|(f, set)| (f.clone(), set.iter().filter(|p| count[*p] == 1).count()))
        .filter(|(_, n)| *n > 0)
        .collect();
    let mut left: BTreeSet<u64> = count.keys().copied().collect();
    let covered = left.len();
    let mut keep = Vec::new();
    while !left.is_empty() {
        let best = files
            .iter()
            .map(|(f, set)| (set.iter().filter(|p| left.contains(*p)).count(), f))
            .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)));
        let Some((gain, f)) = best else { break };
        if gain == 0 {
            break;
        }
        for p in &files[f] {
            left.remove(p);
        }
        keep.push((f.clone(), gain));
    }
    Distilled { unique, keep, covered }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_cover_keeps_every_point_and_unique_files_are_named() {
        let files: BTreeMap<String, BTreeSet<u64>> = [
            ("a".to_string(), BTreeSet::from([1, 2, 3])),
            ("b".to_string(), BTreeSet::from([3, 4])),
            ("c".to_string(), BTreeSet::from([1, 2])),
            ("d".to_string(), BTreeSet::from([5])),
        ]
        .into();
        let d = distill(&files);
        assert_eq!(d.covered, 5);
        assert_eq!(d.keep, vec![("a".to_string(), 3), ("b".to_string(), 1), ("d".to_string(), 1)]);
        assert_eq!(d.unique, vec![("b".to_string(), 1), ("d".to_string(), 1)]);
        let kept: BTreeSet<u64> = d.keep.iter().flat_map(|(f, _)| files[f].iter().copied()).collect();
        assert_eq!(kept.len(), d.covered);
    }
}
