//! Where corpus files live: a small [`Store`] trait with a directory
//! implementation ([`DirStore`], the real `corpus/`) and an in-memory one
//! ([`MemStore`], for tests). Keys are relative paths with `/`, ending in `.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::error::{LoadError, Problem, StoreError};
use super::{CorpusFile, parse};

/// One file as found: its display name and either the parsed file or why it is invalid.
#[derive(Debug)]
pub struct Loaded {
    /// Path or key, as shown in reports.
    pub name: String,
    /// The file, or what is wrong with it.
    pub file: Result<CorpusFile, LoadError>,
}

/// A set of corpus files addressed by key.
pub trait Store {
    /// Every key, sorted.
    ///
    /// # Errors
    /// [`StoreError`] if the store cannot be listed.
    fn keys(&self) -> Result<Vec<String>, StoreError>;

    /// The name shown for `key` in reports and errors.
    fn display_name(&self, key: &str) -> PathBuf;

    /// The raw text of `key`.
    ///
    /// # Errors
    /// The I/O error, if it cannot be read.
    fn read(&self, key: &str) -> std::io::Result<String>;

    /// Writes `text` under `key`, replacing what was there.
    ///
    /// # Errors
    /// [`StoreError`] if it cannot be written.
    fn write(&mut self, key: &str, text: &str) -> Result<(), StoreError>;

    /// Reads and validates `key`.
    ///
    /// # Errors
    /// [`LoadError`] naming the file, the position and what was expected.
    fn load(&self, key: &str) -> Result<CorpusFile, LoadError> {
        let name = self.display_name(key);
        let text = self.read(key).map_err(|e| LoadError {
            path: name.clone(),
            position: None,
            field: None,
            problem: Box::new(Problem::Io(e)),
        })?;
        parse(&text).map_err(|e| e.in_file(name))
    }

    /// Writes `file` in canonical form under `key`.
    ///
    /// # Errors
    /// [`StoreError`] if it cannot be serialised or written.
    fn save(&mut self, key: &str, file: &CorpusFile) -> Result<(), StoreError> {
        let text = file.to_text().map_err(StoreError::Serialise)?;
        self.write(key, &text)
    }

    /// Loads every file, good or bad.
    ///
    /// # Errors
    /// [`StoreError`] if the store cannot be listed.
    fn load_all(&self) -> Result<Vec<Loaded>, StoreError> {
        Ok(self
            .keys()?
            .into_iter()
            .map(|k| Loaded { name: self.display_name(&k).display().to_string(), file: self.load(&k) })
            .collect())
    }
}

fn check_key(key: &str) -> Result<(), StoreError> {
    let ok = key.ends_with(".json")
        && !key.starts_with('/')
        && key.split('/').all(|part| !part.is_empty() && part != "." && part != "..");
    if ok { Ok(()) } else { Err(StoreError::Key(key.to_string())) }
}

/// Corpus files under a directory, searched recursively for `*.json`.
#[derive(Debug, Clone)]
pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    /// A store rooted at `root` (which need not exist until the first write).
    pub fn new(root: impl Into<PathBuf>) -> DirStore {
        DirStore { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<(), StoreError> {
    let list = |cause| StoreError::List { path: dir.to_path_buf(), cause };
    for entry in std::fs::read_dir(dir).map_err(list)? {
        let entry = entry.map_err(list)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type().map_err(list)?;
        let key = format!("{prefix}{name}");
        if kind.is_dir() {
            walk(&entry.path(), &format!("{key}/"), out)?;
        } else if name.ends_with(".json") {
            out.push(key);
        }
    }
    Ok(())
}

impl Store for DirStore {
    fn keys(&self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        if !self.root.exists() {
            // Nothing written yet: an empty store (replay reports "no files" itself).
            return Ok(out);
        }
        walk(&self.root, "", &mut out)?;
        out.sort();
        Ok(out)
    }

    fn display_name(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn read(&self, key: &str) -> std::io::Result<String> {
        std::fs::read_to_string(self.root.join(key))
    }

    fn write(&mut self, key: &str, text: &str) -> Result<(), StoreError> {
        check_key(key)?;
        let path = self.root.join(key);
        let write = |cause| StoreError::Write { path: path.clone(), cause };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(write)?;
        }
        std::fs::write(&path, text).map_err(write)
    }
}

/// Corpus files in memory (tests).
#[derive(Debug, Clone, Default)]
pub struct MemStore {
    /// Key -> text.
    pub files: BTreeMap<String, String>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> MemStore {
        MemStore::default()
    }
}

impl Store for MemStore {
    fn keys(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.files.keys().cloned().collect())
    }

    fn display_name(&self, key: &str) -> PathBuf {
        PathBuf::from(format!("mem:{key}"))
    }

    fn read(&self, key: &str) -> std::io::Result<String> {
        self.files.get(key).cloned().ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }

    fn write(&mut self, key: &str, text: &str) -> Result<(), StoreError> {
        check_key(key)?;
        self.files.insert(key.to_string(), text.to_string());
        Ok(())
    }
}

/// Loads the files named on a command line: each path is a `*.json` file, or a
/// directory searched recursively. A path that does not exist becomes a bad
/// entry (so the other paths are still replayed).
pub fn load_paths(paths: &[PathBuf]) -> Vec<Loaded> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let store = DirStore::new(path);
            match store.load_all() {
                Ok(all) => out.extend(all),
                Err(e) => out.push(Loaded {
                    name: path.display().to_string(),
                    file: Err(LoadError {
                        path: path.clone(),
                        position: None,
                        field: None,
                        problem: Box::new(Problem::List(e)),
                    }),
                }),
            }
        } else {
            out.push(Loaded { name: path.display().to_string(), file: load_file(path) });
        }
    }
    out
}

/// Reads and validates one file.
///
/// # Errors
/// [`LoadError`] naming the file, the position and what was expected.
pub fn load_file(path: &Path) -> Result<CorpusFile, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError {
        path: path.to_path_buf(),
        position: None,
        field: None,
        problem: Box::new(Problem::Io(e)),
    })?;
    parse(&text).map_err(|e| e.in_file(path))
}
