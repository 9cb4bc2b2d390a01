//! The fuzzing side of the CLI: `seeds` (corpus files -> fuzz inputs) and the
//! corpus file that `decode --save` writes for an artifact. Part of the binary
//! (anyhow, as in `cli/main.rs`); the conversions are `unshare_fuzz::command::fuzzing`'s.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use unshare_fuzz::case::Case;
use unshare_fuzz::check::expected::expectations_of;
use unshare_fuzz::command::fuzzing::{TARGETS, case_from_bytes, case_seed, readable_case, seed_name};
use unshare_fuzz::corpus::store::load_paths;
use unshare_fuzz::corpus::{CorpusFile, DirStore, FORMAT_VERSION, Origin, Store};
use unshare_fuzz::env::Environment;
use unshare_fuzz::model::{predict, profile::LINUX_6_18};

/// `unshare-fuzz seeds`.
#[derive(clap::Args)]
pub struct SeedsArgs {
    /// Corpus files, or directories searched recursively for *.json (e.g. `corpus/`).
    #[arg(required = true, value_name = "SOURCE")]
    pub sources: Vec<PathBuf>,
    /// Where the seeds go, e.g. `fuzz/corpus/exec/` (created if missing).
    #[arg(value_name = "DEST")]
    pub dest: PathBuf,
    /// The target the seeds are for: `exec` and `model` get each case as compact JSON
    /// (which they read back verbatim), `corpus_format` the files themselves, valid or not.
    /// [default: DEST's directory name, when it names a target]
    #[arg(long, value_parser = TARGETS)]
    pub target: Option<String>,
}

/// Writes `bytes` as `dest/<seed name><ext>` unless that file already holds them;
/// returns whether it was new.
fn write_seed(dest: &Path, bytes: &[u8], ext: &str) -> anyhow::Result<bool> {
    let path = dest.join(format!("{}{ext}", seed_name(bytes)));
    if std::fs::read(&path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(true)
}

/// Every `*.json` file under the sources (recursively for directories), as bytes.
fn raw_files(sources: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut out = Vec::new();
    for src in sources {
        let paths = if src.is_dir() {
            let store = DirStore::new(src);
            store
                .keys()
                .with_context(|| format!("cannot list {}", src.display()))?
                .iter()
                .map(|k| src.join(k))
                .collect()
        } else {
            vec![src.clone()]
        };
        for p in paths {
            let bytes = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
            out.push((p, bytes));
        }
    }
    Ok(out)
}

/// `seeds`: exit 0 when every file became a seed, 2 when some could not (they are named).
pub fn seeds_command(args: SeedsArgs) -> anyhow::Result<i32> {
    let target = match &args.target {
        Some(t) => t.clone(),
        None => match args.dest.file_name().and_then(|n| n.to_str()).filter(|n| TARGETS.contains(n)) {
            Some(t) => t.to_string(),
            None => bail!("cannot tell the target from {}; pass --target {}", args.dest.display(), TARGETS.join("|")),
        },
    };
    std::fs::create_dir_all(&args.dest).with_context(|| format!("cannot create {}", args.dest.display()))?;
    let (mut total, mut new, mut bad) = (0, 0, 0);
    if target == "corpus_format" {
        for (_, bytes) in raw_files(&args.sources)? {
            total += 1;
            new += usize::from(write_seed(&args.dest, &bytes, ".json")?);
        }
    } else {
        for loaded in load_paths(&args.sources) {
            let file = match loaded.file {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("seeds: skipped {}: {e}", loaded.name);
                    bad += 1;
                    continue;
                }
            };
            let bytes = case_seed(&file.case)?;
            // The seed must stand for exactly this case, or fuzzing it would test another one.
            if case_from_bytes(&bytes).as_ref() != Some(&file.case) {
                bail!("{}: its seed does not decode to its case (a bug in fuzzing::case_seed)", loaded.name);
            }
            total += 1;
            new += usize::from(write_seed(&args.dest, &bytes, ".json")?);
        }
    }
    if total == 0 && bad == 0 {
        let shown: Vec<String> = args.sources.iter().map(|p| p.display().to_string()).collect();
        bail!("no corpus files (*.json) found in {}", shown.join(", "));
    }
    println!(
        "seeds: {total} input(s) for the {target} target in {} ({new} new){}",
        args.dest.display(),
        if bad > 0 { format!("; {bad} invalid file(s) skipped") } else { String::new() }
    );
    Ok(if bad > 0 { 2 } else { 0 })
}

/// The corpus file for a decoded fuzz input: format 1, origin `fuzz`, comments naming
/// the artifact, and `expected` from the model on the reference machine.
pub fn decoded_file(artifact: &Path, bytes: &[u8], case: &Case) -> CorpusFile {
    let how = if readable_case(bytes).is_some() {
        "its bytes are a readable JSON case, taken verbatim"
    } else {
        "its bytes decode through `arbitrary`, as the exec and model targets read them"
    };
    let prediction = predict(&LINUX_6_18, &Environment::reference(), case);
    let mut comments = vec![
        format!("Converted by `unshare-fuzz decode --save` from the libFuzzer input {}", artifact.display()),
        format!("({} bytes; {how}).", bytes.len()),
        format!("Re-run the input itself: cargo fuzz run <target> {}", artifact.display()),
        "Review it (docs/corpus.md): give it a title that says what it shows, comments naming the spec rule, \
         then move it into corpus/regressions/."
            .into(),
    ];
    comments.push(match &prediction {
        unshare_fuzz::model::Prediction::Steps { .. } => format!(
            "`expected` is the {} model's prediction for the reference machine when this file was written: \
             check it against the spec before committing.",
            LINUX_6_18.name
        ),
        unshare_fuzz::model::Prediction::Skip { reason } => {
            format!("No `expected`: the model cannot predict this case on the reference machine ({reason}).")
        }
    });
    CorpusFile {
        format: FORMAT_VERSION,
        title: format!("fuzz finding: {case}"),
        comments,
        origin: Some(Origin::Fuzz),
        seed: None,
        profile: None,
        case: case.clone(),
        expected: expectations_of(&prediction),
    }
}

/// `decode --save DIR`: writes `DIR/<artifact name>.json` and checks that it reads back.
pub fn save_decoded(dir: &Path, artifact: &Path, bytes: &[u8], case: &Case) -> anyhow::Result<PathBuf> {
    let name = artifact.file_name().map_or("input".into(), |n| n.to_string_lossy());
    let path = dir.join(format!("{name}.json"));
    let text = decoded_file(artifact, bytes, case).to_text()?;
    unshare_fuzz::corpus::parse(&text)
        .map_err(|e| anyhow::anyhow!("the corpus file for {} does not read back: {e:?}", artifact.display()))?;
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}
