//! The guest side of the coverage mode (`unshare-fuzz kcov run`): runs random
//! cases, the corpus and the coverage-guided search through executors in the
//! coverage mode ([`crate::exec::executor::kcov`]), and prints [`super::data`] records.
//! Every case still goes through the model and the checker (a violation is
//! counted, not fatal); only the cases the model skips are not run.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use crate::case::Case;
use crate::command::pipeline::{self, RunConfig};
use crate::corpus::{CorpusFile, FORMAT_VERSION, Origin};
use crate::exec::{ExecError, Executor};

use super::data::{self, GroupStats};
use super::mutate::{self, Rng};

/// What to run.
pub struct Settings {
    /// Model, timeout, executor arguments; `config.cases` random cases from `config.seed`.
    pub config: RunConfig,
    /// Only these PCs are reported (the target lines' sites); all if `None`.
    pub filter: Option<BTreeSet<u64>>,
    /// Corpus files or directories.
    pub corpus: Vec<PathBuf>,
    /// Cases of the guided search (0: none).
    pub guided: u64,
}

/// One group's running totals.
struct Group {
    stats: GroupStats,
    all: HashSet<u64>,
    union: BTreeSet<u64>,
    start: Instant,
}

impl Group {
    fn new(name: &str) -> Group {
        Group {
            stats: GroupStats { name: name.into(), ..Default::default() },
            all: HashSet::new(),
            union: BTreeSet::new(),
            start: Instant::now(),
        }
    }

    fn finish(mut self, emit: &mut dyn FnMut(String)) -> BTreeSet<u64> {
        self.stats.all_pcs = self.all.len() as u64;
        self.stats.seconds = self.start.elapsed().as_secs_f64();
        emit(data::group_line(&self.stats));
        emit(data::pcs_line("kcov-pcs", &self.stats.name, &self.union));
        self.union
    }
}

/// Runs one case, adds it to `g`, returns its filtered PCs (`None` if not run).
fn run_case(
    executor: &mut Executor,
    s: &Settings,
    case: &Case,
    g: &mut Group,
    emit: &mut dyn FnMut(String),
) -> Result<Option<BTreeSet<u64>>, ExecError> {
    g.stats.cases += 1;
    let executed = pipeline::execute_case(executor, &s.config, case)?;
    let v = &executed.verdict;
    if v.broken.is_some() {
        g.stats.broken += 1;
    }
    if !v.violations.is_empty() {
        g.stats.violations += 1;
        for x in &v.violations {
            let step = x.step.map_or("case".to_string(), |i| format!("step {i}"));
            emit(format!(
                "kcov-note violation in {} case {}: {} at {step}: {}",
                g.stats.name, case, x.invariant, x.detail
            ));
        }
    }
    if executed.outcome.is_none() {
        if v.broken.is_none() {
            g.stats.skipped += 1;
        }
        return Ok(None);
    }
    g.stats.run += 1;
    let Some(pcs) = executor.last_pcs() else { return Ok(Some(BTreeSet::new())) };
    if pcs.overflowed > 0 {
        g.stats.overflowed += 1;
        emit(format!("kcov-note {} buffer(s) filled up in {} case {}", pcs.overflowed, g.stats.name, case));
    }
    g.all.extend(pcs.pcs.iter().copied());
    let kept: BTreeSet<u64> = match &s.filter {
        Some(f) => pcs.pcs.iter().copied().filter(|p| f.contains(p)).collect(),
        None => pcs.pcs.iter().copied().collect(),
    };
    g.union.extend(kept.iter().copied());
    Ok(Some(kept))
}

/// Runs the random cases, the corpus and the guided search; records go to `emit`.
///
/// # Errors
/// When an executor cannot be started or restarted.
pub fn run(s: &Settings, emit: &mut dyn FnMut(String)) -> Result<(), ExecError> {
    let mut executor = s.config.spawn_executor(1, 0)?;
    if let Some(f) = &s.filter {
        emit(format!("kcov-filter {}", f.len()));
    }
    let mut seen: BTreeSet<u64> = BTreeSet::new();
    if s.config.cases > 0 {
        let mut g = Group::new("random");
        for (i, case) in crate::command::run::cases_for_seed(s.config.seed).take(s.config.cases as usize).enumerate() {
            run_case(&mut executor, s, &case, &mut g, emit)?;
            if (i + 1) % 500 == 0 {
                emit(format!("kcov-progress random {} {}", i + 1, g.union.len()));
            }
        }
        seen.extend(g.finish(emit));
    }
    let mut seeds: Vec<Case> = Vec::new();
    if !s.corpus.is_empty() {
        let mut g = Group::new("corpus");
        for loaded in crate::corpus::store::load_paths(&s.corpus) {
            let Ok(file) = loaded.file else {
                emit(format!("kcov-note unreadable corpus file {}", loaded.name));
                continue;
            };
            let case = crate::generate::neutralize(file.case.clone());
            if let Some(pcs) = run_case(&mut executor, s, &case, &mut g, emit)? {
                emit(data::pcs_line("kcov-file", &loaded.name, &pcs));
                seeds.push(case);
            }
        }
        seen.extend(g.finish(emit));
    }
    if s.guided > 0 {
        guided(&mut executor, s, seeds, seen, emit)?;
    }
    Ok(())
}

/// The coverage-guided search: mutate a kept case, run it, keep it if it reaches a point not
/// reached before (by the random cases, the corpus or an earlier kept case), and print it as a
/// corpus candidate. Seeded from the corpus (or one `unshare(0)` without one).
fn guided(
    executor: &mut Executor,
    s: &Settings,
    mut kept: Vec<Case>,
    mut seen: BTreeSet<u64>,
    emit: &mut dyn FnMut(String),
) -> Result<(), ExecError> {
    if kept.is_empty() {
        kept.push(Case::unshare(&[0]));
    }
    let mut g = Group::new("guided");
    let mut rng = Rng::new(s.config.seed ^ 0x6b63_6f76);
    for i in 0..s.guided {
        let parent = &kept[rng.below(kept.len())];
        let case = mutate::mutate(parent, &kept, &mut rng);
        if let Some(pcs) = run_case(executor, s, &case, &mut g, emit)? {
            let new: Vec<u64> = pcs.difference(&seen).copied().collect();
            if !new.is_empty() {
                seen.extend(new.iter().copied());
                emit(format!("kcov-candidate guided {} {}", new.len(), candidate_json(&case, new.len(), i + 1)));
                kept.push(case);
            }
        }
        if (i + 1) % 250 == 0 {
            emit(format!("kcov-progress guided {} {}", i + 1, seen.len()));
        }
    }
    g.stats.cases = s.guided;
    g.finish(emit);
    Ok(())
}

fn candidate_json(case: &Case, new: usize, iteration: u64) -> String {
    let file = CorpusFile {
        format: FORMAT_VERSION,
        title: format!("kcov guided search: reaches {new} coverage points of unshare's path not reached before"),
        comments: vec![
            format!("Kept by `unshare-fuzz kcov run --guided` at mutation {iteration} (docs/coverage.md)."),
            "A candidate: review it, add `expected` if it pins a rule, then keep it in corpus/.".into(),
        ],
        origin: Some(Origin::Fuzz),
        seed: None,
        profile: None,
        case: case.clone(),
        expected: None,
    };
    serde_json::to_string(&file).unwrap_or_default()
}
