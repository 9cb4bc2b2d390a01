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
    /// For every corpus case with a guest-only `fail_nth`: run it again with fail-nth 1, 2, ...
    /// until the armed unshare succeeds, at most this many times (0: no sweep). Group
    /// `fault-sweep` (docs/guest-only.md).
    pub fail_nth_sweep: u32,
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
    if s.fail_nth_sweep > 0 && !s.corpus.is_empty() {
        seen.extend(fail_nth_sweep(&mut executor, s, emit)?);
    }
    if s.guided > 0 {
        guided(&mut executor, s, seeds, seen, emit)?;
    }
    Ok(())
}

/// Successes in a row after which a fail-nth sweep stops (the N-th site is past the path's end).
const SWEEP_STOP: u32 = 10;

/// The result of the armed (last) step, if the case ran that far.
fn armed_result(executed: &pipeline::Executed) -> Option<crate::abi::errno::CallResult> {
    match executed.outcome.as_ref()? {
        crate::exec::observe::Outcome::Completed { trace } => trace.steps.last().map(|o| o.result),
        _ => None,
    }
}

/// Adds the last case's PCs to `g` (when it ran), as `run_case` does.
fn add_pcs(g: &mut Group, s: &Settings, executor: &Executor, ran: bool) {
    match executor.last_pcs().filter(|_| ran) {
        Some(pcs) => {
            g.stats.run += 1;
            g.all.extend(pcs.pcs.iter().copied());
            g.union.extend(pcs.pcs.iter().copied().filter(|p| s.filter.as_ref().is_none_or(|f| f.contains(p))));
        }
        None => g.stats.skipped += 1,
    }
}

/// Sweeps fail-nth over every corpus case that has one (see [`Settings::fail_nth_sweep`]):
/// one `kcov-sweep` line per case with the N at which the call first succeeded, how many N
/// ended in ENOMEM, any other result, and the violations.
fn fail_nth_sweep(
    executor: &mut Executor,
    s: &Settings,
    emit: &mut dyn FnMut(String),
) -> Result<BTreeSet<u64>, ExecError> {
    use crate::abi::errno::{CallResult, Errno};
    let mut g = Group::new("fault-sweep");
    for loaded in crate::corpus::store::load_paths(&s.corpus) {
        let Ok(file) = loaded.file else { continue };
        let template = crate::generate::neutralize(file.case.clone());
        if template.setup.fail_nth.is_none() {
            continue;
        }
        let (mut enomem, mut other, mut violations, mut first_success) = (0u32, Vec::new(), 0u64, None);
        let (mut last_enomem, mut successes_in_a_row, mut last_n) = (None, 0u32, 0u32);
        for n in 1..=s.fail_nth_sweep {
            last_n = n;
            let mut case = template.clone();
            case.setup.fail_nth = Some(n);
            g.stats.cases += 1;
            let executed = pipeline::execute_case(executor, &s.config, &case)?;
            violations += executed.verdict.violations.len() as u64;
            if !executed.verdict.violations.is_empty() {
                g.stats.violations += 1;
                for v in &executed.verdict.violations {
                    emit(format!("kcov-note fault-sweep {} N={n} VIOLATED {}: {}", loaded.name, v.invariant, v.detail));
                }
            }
            add_pcs(&mut g, s, executor, executed.outcome.is_some());
            match armed_result(&executed) {
                Some(CallResult::Failure(Errno::ENOMEM)) => {
                    enomem += 1;
                    last_enomem = Some(n);
                    successes_in_a_row = 0;
                }
                Some(CallResult::Success) => {
                    first_success.get_or_insert(n);
                    successes_in_a_row += 1;
                    // A success may be an absorbed failure (xarray's xas_nomem retry, kvmalloc's
                    // vmalloc fallback): the path ends only after SWEEP_STOP successes in a row.
                    if successes_in_a_row >= SWEEP_STOP {
                        break;
                    }
                }
                Some(r) => other.push(format!("N={n}:{r}")),
                None => other.push(format!(
                    "N={n}:not-run({})",
                    executed.verdict.broken.as_deref().or(executed.verdict.case_skipped.as_deref()).unwrap_or("?")
                )),
            }
        }
        emit(format!(
            "kcov-sweep {} first-success={} last-enomem={} enomem={enomem} swept=1..{last_n}{} other=[{}] violations={violations}",
            loaded.name,
            first_success.map_or_else(|| "none".to_string(), |n| n.to_string()),
            last_enomem.map_or_else(|| "none".to_string(), |n| n.to_string()),
            if successes_in_a_row >= SWEEP_STOP { "" } else { " (limit reached)" },
            other.join(" ")
        ));
    }
    Ok(g.finish(emit))
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
