//! The layers of docs/design.md ("Layers"), checked on the source: every `crate::` path (and
//! every `super::` path that climbs out of its module) in every file of the library, in `use`
//! lines (grouped `use crate::{a::b, c::{d, e}}` forms included) and inline, must name a module
//! of the file's own layer or of a layer below it. Comments and string literals are not code
//! and are skipped; so is a file's `#[cfg(test)]` tail for the cycle check only (tests may
//! reach sideways, never up).
//!
//! It also checks that no two files of the library import each other, directly or round a
//! loop (a module may use what its parent module defines: `super::Ctx` in a submodule), that
//! every file belongs to a layer, and that docs/design.md lists the same layers in the same
//! order. The binary (`src/cli/`) is the top layer: its `crate::` paths name its own modules,
//! and it reaches the library through `unshare_fuzz::`, all of which is below it.
//!
//! The checker itself is tested on planted sources (`checker_*` tests), so it cannot pass by
//! finding nothing.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[path = "support/rust_lexer.rs"]
mod rust_lexer;
use rust_lexer::{code_only, skip_space, use_tree};

/// The layers, bottom first: (name, module path prefixes). A module belongs to the layer with
/// the longest matching prefix, so `exec::child` is below the rest of `exec`.
const LAYERS: &[(&str, &[&str])] = &[
    ("abi", &["abi"]),
    ("sys", &["sys"]),
    ("env", &["env"]),
    ("case", &["case"]),
    ("model", &["model"]),
    ("generate", &["generate"]),
    ("exec::observe", &["exec::observe"]),
    ("exec::child", &["exec::child"]),
    ("exec::wire", &["exec::wire"]),
    ("exec::executor", &["exec::executor"]),
    ("exec", &["exec"]),
    ("check", &["check"]),
    ("output", &["report", "corpus", "repro"]),
    ("command", &["command", "coverage"]),
];

/// The binary's folder: the top layer, a crate of its own.
const CLI_DIR: &str = "src/cli";

/// Loops between files that are still there, each sorted; the test fails when one is gone too,
/// so the list only shrinks.
const KNOWN_CYCLES: &[&[&str]] = &[];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// (layer index, layer name) of a module path such as `["exec", "child", "plan"]`.
fn layer_of(module: &[String]) -> Option<(usize, &'static str)> {
    let mut best: Option<(usize, &'static str, usize)> = None;
    for (i, (name, prefixes)) in LAYERS.iter().enumerate() {
        for prefix in *prefixes {
            let p: Vec<&str> = prefix.split("::").collect();
            let matches = module.len() >= p.len() && module.iter().zip(&p).all(|(a, b)| a == b);
            if matches && best.is_none_or(|b| p.len() > b.2) {
                best = Some((i, name, p.len()));
            }
        }
    }
    best.map(|(i, n, _)| (i, n))
}

/// `src/exec/child/plan.rs` -> `["exec", "child", "plan"]`; `src/exec/mod.rs` -> `["exec"]`.
fn module_of(rel: &str) -> Vec<String> {
    let rel = rel.strip_prefix("src/").unwrap_or(rel).trim_end_matches(".rs");
    rel.split('/').filter(|s| *s != "mod" && *s != "lib").map(str::to_string).collect()
}

/// One path a file names: its line and the module path it reaches (from the crate root).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reach {
    line: usize,
    path: Vec<String>,
}

/// Every `crate::` path of `src`, and every `super::` and `self::` path resolved from `module`
/// (the file's module path). Names of a module's own submodules used bare (`use child::X` in
/// a `mod.rs`) go down into the module itself and are not read.
fn reaches(src: &str, module: &[String]) -> Vec<Reach> {
    let code = code_only(src);
    let b = code.as_bytes();
    let inline = inline_modules(b);
    let mut out = Vec::new();
    for kw in ["crate::", "super::", "self::"] {
        let mut at = 0;
        while let Some(n) = code[at..].find(kw) {
            let start = at + n;
            at = start + kw.len();
            let word_before = start > 0 && (b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_');
            let path_before = start >= 2 && &b[start - 2..start] == b"::";
            if word_before || path_before {
                continue;
            }
            let line = code[..start].matches('\n').count() + 1;
            let mut i = at;
            for tail in use_tree(b, &mut i) {
                let here: Vec<String> = module
                    .iter()
                    .cloned()
                    .chain(inline.iter().filter(|(s, e, _)| *s < start && start < *e).map(|(_, _, n)| n.clone()))
                    .collect();
                let path = match kw {
                    "crate::" => tail,
                    "self::" => [here, tail].concat(),
                    _ => resolve_super(&here, [vec!["super".to_string()], tail].concat()),
                };
                out.push(Reach { line, path });
            }
        }
    }
    out
}

/// The inline modules of a file (`mod tests { .. }`): (start, end, name), outermost first, so
/// that `super::` inside one resolves from it.
fn inline_modules(code: &[u8]) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(n) = code[at..].windows(4).position(|w| w == b"mod ") {
        let start = at + n;
        at = start + 4;
        if start > 0 && (code[start - 1].is_ascii_alphanumeric() || code[start - 1] == b'_') {
            continue;
        }
        let mut i = at;
        skip_space(code, &mut i);
        let name_start = i;
        while i < code.len() && (code[i].is_ascii_alphanumeric() || code[i] == b'_') {
            i += 1;
        }
        let name = String::from_utf8_lossy(&code[name_start..i]).into_owned();
        skip_space(code, &mut i);
        if name.is_empty() || code.get(i) != Some(&b'{') {
            continue;
        }
        let mut depth = 0;
        let mut end = code.len();
        for (j, c) in code.iter().enumerate().skip(i) {
            depth += match c {
                b'{' => 1,
                b'}' => -1,
                _ => 0,
            };
            if depth == 0 {
                end = j;
                break;
            }
        }
        out.push((start, end, name));
    }
    out
}

/// `super::super::x` from module `a::b::c` (a file `a/b/c.rs` or `a/b/c/mod.rs`) is `a::x`.
fn resolve_super(module: &[String], tail: Vec<String>) -> Vec<String> {
    let mut base: Vec<String> = module.to_vec();
    let mut rest = tail.as_slice();
    while rest.first().is_some_and(|s| s == "super") {
        base.pop();
        rest = &rest[1..];
    }
    base.extend(rest.iter().cloned());
    base
}

/// The paths of `src` (file `rel`) that reach into a layer above the file's own, as messages.
fn upward(rel: &str, src: &str) -> Vec<String> {
    let module = module_of(rel);
    let Some((mine, my_name)) = layer_of(&module) else {
        return vec![format!("{rel}: module {} is in no layer of tests/layers.rs", module.join("::"))];
    };
    let mut out = Vec::new();
    for r in reaches(src, &module) {
        if let Some((theirs, their_name)) = layer_of(&r.path)
            && theirs > mine
        {
            out.push(format!(
                "{rel}:{}: `crate::{}` reaches from layer {my_name} ({}) up into layer {their_name} ({}); \
                 move the item down, or the code up (docs/design.md, \"Layers\")",
                r.line,
                r.path.join("::"),
                mine + 1,
                theirs + 1
            ));
        }
    }
    out
}

/// The library's source files, relative to the crate root, without the binary's.
fn library_files() -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root().join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root()).unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if rel != CLI_DIR {
                    stack.push(path);
                }
            } else if rel.ends_with(".rs") && rel != "src/lib.rs" {
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn no_module_reaches_into_a_layer_above_its_own() {
    let files = library_files();
    assert!(files.len() > 50, "found only {} files under src/", files.len());
    let bad: Vec<String> = files.iter().flat_map(|rel| upward(rel, &read(rel))).collect();
    assert!(bad.is_empty(), "{} upward import(s):\n{}", bad.len(), bad.join("\n"));
}

/// The module file a path names: its longest prefix that is a file of `modules`.
fn target<'a>(modules: &'a BTreeSet<Vec<String>>, path: &[String]) -> Option<&'a Vec<String>> {
    (1..=path.len()).rev().find_map(|k| modules.get(&path[..k].to_vec()))
}

/// Module -> the modules it imports (outside `#[cfg(test)]`), leaving out its ancestors.
fn import_graph(files: &[(String, String)]) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let modules: BTreeSet<Vec<String>> = files.iter().map(|(rel, _)| module_of(rel)).collect();
    let mut graph = BTreeMap::new();
    for (rel, src) in files {
        let module = module_of(rel);
        let body = src.find("#[cfg(test)]").map_or(src.as_str(), |i| &src[..i]);
        let edges: BTreeSet<Vec<String>> = reaches(body, &module)
            .iter()
            .filter_map(|r| target(&modules, &r.path))
            .filter(|t| **t != module && !module.starts_with(t))
            .cloned()
            .collect();
        graph.insert(module, edges);
    }
    graph
}

/// The strongly connected components with more than one module (Tarjan's algorithm).
fn cycles(graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<String>> {
    struct T<'g> {
        graph: &'g BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'g Vec<String>, (usize, usize)>,
        stack: Vec<&'g Vec<String>>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'g>(t: &mut T<'g>, v: &'g Vec<String>) {
        t.index.insert(v, (t.next, t.next));
        t.next += 1;
        t.stack.push(v);
        for w in t.graph.get(v).into_iter().flatten() {
            let Some(w) = t.graph.get_key_value(w).map(|(k, _)| k) else { continue };
            if !t.index.contains_key(w) {
                visit(t, w);
                let low = t.index[w].1.min(t.index[v].1);
                t.index.get_mut(v).unwrap().1 = low;
            } else if t.stack.contains(&w) {
                let low = t.index[w].0.min(t.index[v].1);
                t.index.get_mut(v).unwrap().1 = low;
            }
        }
        if t.index[v].0 == t.index[v].1 {
            let at = t.stack.iter().position(|x| *x == v).unwrap();
            let comp: Vec<String> = t.stack.drain(at..).map(|m| m.join("::")).collect();
            if comp.len() > 1 {
                t.out.push(comp.into_iter().collect::<BTreeSet<_>>().into_iter().collect());
            }
        }
    }
    let mut t = T { graph, index: BTreeMap::new(), stack: Vec::new(), next: 0, out: Vec::new() };
    for v in graph.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out.sort();
    t.out
}

#[test]
fn no_two_files_import_each_other() {
    let files: Vec<(String, String)> = library_files().into_iter().map(|rel| (rel.clone(), read(&rel))).collect();
    let found = cycles(&import_graph(&files));
    let known: Vec<Vec<String>> = KNOWN_CYCLES.iter().map(|c| c.iter().map(|s| s.to_string()).collect()).collect();
    let new: Vec<&Vec<String>> = found.iter().filter(|c| !known.contains(c)).collect();
    let gone: Vec<&Vec<String>> = known.iter().filter(|c| !found.contains(c)).collect();
    assert!(new.is_empty(), "files that import each other (round a loop): {new:?}; break the loop");
    assert!(gone.is_empty(), "KNOWN_CYCLES lists loops that are gone, remove them: {gone:?}");
}

#[test]
fn design_md_lists_the_layers_bottom_to_top() {
    let design = read("docs/design.md");
    let section = design.split("\n## Layers\n").nth(1).expect("docs/design.md has a `## Layers` section");
    let section = section.split("\n## ").next().unwrap();
    let listed: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| "))
        .filter_map(|l| l.split(" |").next())
        .filter_map(|c| c.trim().strip_prefix('`')?.strip_suffix('`'))
        .collect();
    let ours: Vec<&str> = LAYERS.iter().map(|(n, _)| *n).chain(["cli"]).collect();
    assert_eq!(listed, ours, "docs/design.md's layer table and tests/layers.rs's LAYERS differ");
}

#[test]
fn the_binary_is_only_in_its_folder() {
    let main = Path::new(CLI_DIR).join("main.rs");
    assert!(root().join(&main).exists(), "{} is missing", main.display());
    for rel in library_files() {
        let code = code_only(&read(&rel));
        assert!(!code.contains("crate::cli"), "{rel} names the binary's modules");
    }
}

// The checker, on planted sources.

fn planted(rel: &str, src: &str) -> Vec<String> {
    upward(rel, src)
}

#[test]
fn checker_catches_a_planted_upward_use() {
    let bad = planted("src/model/x.rs", "use crate::abi::flags::RawFlags;\nuse crate::command::run::RunReport;\n");
    assert_eq!(bad.len(), 1, "{bad:?}");
    let m = &bad[0];
    for part in ["src/model/x.rs:2:", "`crate::command::run::RunReport`", "layer model (5)", "layer command (14)"] {
        assert!(m.contains(part), "message lacks {part:?}: {m}");
    }
}

#[test]
fn checker_reads_grouped_and_nested_uses() {
    let src = "use crate::{\n    abi::flags::RawFlags,\n    check::{Tally, invariants::{self as inv}},\n    case::Case,\n};\n";
    let bad = planted("src/model/x.rs", src);
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad[0].contains("src/model/x.rs:1: `crate::check::Tally`"), "{}", bad[0]);
    assert!(bad[1].contains("`crate::check::invariants::self`"), "{}", bad[1]);
}

#[test]
fn checker_reads_inline_paths_and_super() {
    // From `exec::executor::x`, `super::super` is `exec`, and one more `super` is the root.
    let src = "fn f() {\n    let v = crate::report::human::verdict(&r);\n    super::super::super::check::judge(x);\n    \
               super::super::Executor::spawn();\n}\n";
    let bad = planted("src/exec/executor/x.rs", src);
    assert_eq!(bad.len(), 3, "{bad:?}");
    assert!(bad[0].contains(":2: `crate::report::human::verdict` reaches from layer exec::executor"), "{}", bad[0]);
    assert!(bad[1].contains(":3: `crate::check::judge`"), "{}", bad[1]);
    assert!(bad[2].contains(":4: `crate::exec::Executor::spawn` reaches from layer exec::executor"), "{}", bad[2]);
    // In an inline module, the first `super` is the file's own module.
    let src = "#[cfg(test)]\nmod tests {\n    use super::super::bpf::install;\n    mod deeper { use super::super::super::super::Executor; }\n}\n";
    let bad = planted("src/exec/executor/x.rs", src);
    assert!(bad.len() == 1 && bad[0].contains(":4: `crate::exec::Executor`"), "{bad:?}");
}

#[test]
fn checker_skips_comments_strings_and_reaches_down() {
    let src = "//! [`crate::command::run`]\n// crate::command\n/* crate::command /* nested */ crate::command */\n\
               let s = \"crate::command\"; let r = r#\"crate::command\"#; let c = '\"';\n\
               let l: &'static str = x; use crate::exec::child::plan::Plan; use crate::abi::errno::Errno;\n";
    assert_eq!(planted("src/exec/executor/x.rs", src), Vec::<String>::new());
    // The char literal '"' must not open a string that hides the line after it.
    let bad = planted("src/case/x.rs", "let c = '\"';\nuse crate::model::predict;\n");
    assert!(bad.len() == 1 && bad[0].contains("src/case/x.rs:2:"), "{bad:?}");
}

#[test]
fn checker_sublayers_take_the_longest_prefix() {
    let as_mod = |s: &str| s.split("::").map(str::to_string).collect::<Vec<_>>();
    assert_eq!(layer_of(&as_mod("exec::child::plan")).unwrap().1, "exec::child");
    assert_eq!(layer_of(&as_mod("exec")).unwrap().1, "exec");
    assert_eq!(layer_of(&as_mod("report::human")).unwrap().1, "output");
    assert!(layer_of(&as_mod("nowhere")).is_none());
    let bad = planted("src/exec/child/x.rs", "use crate::exec::wire::protocol::MAX_FRAME;\n");
    assert!(bad.len() == 1 && bad[0].contains("layer exec::child (8) up into layer exec::wire (9)"), "{bad:?}");
    assert_eq!(planted("src/nowhere/x.rs", "").len(), 1, "a file outside every layer is reported");
}

#[test]
fn checker_finds_loops_and_lets_submodules_use_their_parent() {
    let files = vec![
        ("src/model/a.rs".to_string(), "use super::b::X;\n".to_string()),
        ("src/model/b.rs".to_string(), "fn f() { crate::model::c::g() }\n".to_string()),
        ("src/model/c.rs".to_string(), "use crate::model::a::Y;\n#[cfg(test)]\nuse crate::model::d::Z;\n".to_string()),
        ("src/model/d/mod.rs".to_string(), "mod e;\nuse self::e::Q;\n".to_string()),
        ("src/model/d/e.rs".to_string(), "use super::Ctx;\nuse crate::model::d::P;\n".to_string()),
    ];
    let found = cycles(&import_graph(&files));
    assert_eq!(found, vec![vec!["model::a".to_string(), "model::b".to_string(), "model::c".to_string()]]);
}
