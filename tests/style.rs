//! Style rules of CONVENTIONS.md that a grep can check, each with sample lines it must catch
//! (and, for the exceptions, lines it must let through), so the rules cannot silently rot:
//!
//! * post-fork code (`POST_FORK`: the case child's files, whole) never allocates, formats,
//!   prints, panics or exits through Rust's runtime;
//! * the executor's per-case path (`PER_CASE`: `exec/executor/watch.rs` whole, and the functions of
//!   `exec/executor/server.rs` that serve a case) allocates and formats nothing, except on the way out
//!   with an error (a line that builds an `Err`), and never panics;
//! * every function of `src/sys/` that either of them calls, directly or through other `sys`
//!   functions, follows the post-fork rules (the call graph is found by name, below);
//!
//! The rules on whole files (the `unsafe` list, file sizes, no truncating unshare path) are in
//! `tests/source_files.rs`.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// Allocates or formats: never after fork; on the executor's per-case path only in a line
    /// that builds an error.
    Alloc,
    /// Panics or exits through the runtime: never after fork nor per case.
    Abort,
}

struct Rule {
    pattern: &'static str,
    why: &'static str,
    kind: Kind,
    must_match: &'static [&'static str],
}

const RULES: &[Rule] = &[
    Rule {
        pattern: "println!",
        why: "printing allocates and locks stdout",
        kind: Kind::Alloc,
        must_match: &["println!(\"x\");"],
    },
    Rule {
        pattern: "eprintln!",
        why: "printing allocates and locks stderr",
        kind: Kind::Alloc,
        must_match: &["eprintln!(\"x\");"],
    },
    Rule {
        pattern: "format!",
        why: "formatting allocates",
        kind: Kind::Alloc,
        must_match: &["let s = format!(\"{x}\");"],
    },
    Rule { pattern: "vec!", why: "allocates", kind: Kind::Alloc, must_match: &["let v = vec![1];"] },
    Rule { pattern: "Vec<", why: "allocates", kind: Kind::Alloc, must_match: &["let v: Vec<u8> = x;"] },
    Rule { pattern: "Vec::", why: "allocates", kind: Kind::Alloc, must_match: &["let v = Vec::new();"] },
    Rule { pattern: ".to_vec()", why: "allocates", kind: Kind::Alloc, must_match: &["let v = x.to_vec();"] },
    Rule {
        pattern: ".collect",
        why: "collecting allocates",
        kind: Kind::Alloc,
        must_match: &["let v: X = i.collect();"],
    },
    Rule { pattern: "Box<", why: "allocates", kind: Kind::Alloc, must_match: &["let b: Box<u8> = x;"] },
    Rule { pattern: "Box::", why: "allocates", kind: Kind::Alloc, must_match: &["let b = Box::new(1);"] },
    Rule { pattern: "String", why: "allocates", kind: Kind::Alloc, must_match: &["let s = String::new();"] },
    Rule { pattern: ".to_string()", why: "allocates", kind: Kind::Alloc, must_match: &["let s = x.to_string();"] },
    Rule { pattern: ".to_owned()", why: "allocates", kind: Kind::Alloc, must_match: &["let s = x.to_owned();"] },
    Rule { pattern: "CString", why: "allocates", kind: Kind::Alloc, must_match: &["let c = CString::new(x);"] },
    Rule {
        pattern: "std::fs::",
        why: "std::fs allocates paths and buffers",
        kind: Kind::Alloc,
        must_match: &["std::fs::read(p);"],
    },
    Rule { pattern: ".unwrap()", why: "may panic", kind: Kind::Abort, must_match: &["x.unwrap();"] },
    Rule { pattern: ".expect(", why: "may panic", kind: Kind::Abort, must_match: &["x.expect(\"y\");"] },
    Rule { pattern: "panic!", why: "panics", kind: Kind::Abort, must_match: &["panic!(\"x\");"] },
    Rule { pattern: "unreachable!", why: "panics", kind: Kind::Abort, must_match: &["unreachable!()"] },
    Rule { pattern: "todo!", why: "panics", kind: Kind::Abort, must_match: &["todo!()"] },
    Rule {
        pattern: "process::exit",
        why: "runs atexit handlers; use sys::exit_now",
        kind: Kind::Abort,
        must_match: &["std::process::exit(1);"],
    },
];

/// Lines of the executor's per-case path that may allocate: they build the error that ends
/// the case (the harness reports it), never run for a case that works, or they name `String`
/// as the error type of a `Result`.
fn builds_an_error(line: &str) -> bool {
    line.contains("Err(") || line.contains("map_err(") || line.contains(", String>")
}

/// Per-case lines that must pass (an error on the way out) and that must not.
const ERROR_PATH_SAMPLES: &[(&str, bool)] = &[
    ("    return Err(format!(\"bad frame {len}\"));", true),
    ("    Err(e) => return Err(format!(\"reading: {e}\")),", true),
    ("    decode(b).map_err(|e| format!(\"bad case: {e}\"))?;", true),
    ("fn next(&mut self) -> Result<Option<(usize, usize)>, String> {", true),
    ("    let names: Vec<String> = x;", false),
    ("    let s = format!(\"{x}\");", false),
    ("    let v: Vec<u64> = body.iter().collect();", false),
];

/// The case child's code, checked whole: everything in these files runs after fork.
const POST_FORK: &[&str] = &[
    "src/exec/child.rs",
    "src/exec/child/ops.rs",
    "src/exec/child/setup.rs",
    "src/exec/child/sibling.rs",
    "src/exec/child/clone3.rs",
    "src/exec/child/limits_child.rs",
    "src/exec/child/caps.rs",
    "src/exec/child/inside.rs",
    "src/exec/child/inside_witness.rs",
    "src/exec/child/setns.rs",
    "src/exec/child/idmap.rs",
];

/// The executor's per-case path: a whole file, or the named functions of a file (each must
/// exist, so a rename cannot drop one silently).
const PER_CASE: &[(&str, Option<&[&str]>)] = &[
    ("src/exec/executor/watch.rs", None),
    ("src/exec/executor/server.rs", Some(&["write_all", "next", "begin_report", "serve_case"])),
];

/// `use crate::sys::{.., X as Y}` aliases of `sys` modules in the files above.
const SYS_ALIASES: &[(&str, &str)] = &[("raw", "clone3")];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The text before the first `#[cfg(test)]` (unit tests run in the test harness, not after fork).
fn without_tests(src: &str) -> &str {
    src.find("#[cfg(test)]").map_or(src, |i| &src[..i])
}

/// A function found in a source file.
#[derive(Debug, Clone)]
struct Func {
    /// `impl X` it belongs to, if any.
    owner: Option<String>,
    name: String,
    /// First line (1-based) and the text of its signature and body.
    line: usize,
    text: String,
}

/// Byte offsets of the code outside strings, chars and comments are scanned for braces; returns
/// the offset just past the brace matching the one at `open`.
fn matching_brace(src: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    let mut i = open;
    while i < src.len() {
        match src[i] {
            b'/' if src.get(i + 1) == Some(&b'/') => {
                while i < src.len() && src[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                i += 1;
                while i < src.len() && src[i] != b'"' {
                    i += if src[i] == b'\\' { 2 } else { 1 };
                }
            }
            // A char literal ('{', '\n'), not a lifetime ('a).
            b'\'' if src.get(i + 2) == Some(&b'\'') => i += 2,
            b'\'' if src.get(i + 1) == Some(&b'\\') => {
                i += 2;
                while i < src.len() && src[i] != b'\'' {
                    i += 1;
                }
            }
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    src.len()
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The identifier starting at `at`.
fn ident_at(src: &str, at: usize) -> &str {
    let end = src[at..].bytes().position(|b| !is_ident(b)).map_or(src.len(), |k| at + k);
    &src[at..end]
}

/// Every function with a body (free, or a method of an `impl`), outside the unit tests.
fn functions(src: &str) -> Vec<Func> {
    let src = without_tests(src);
    let bytes = src.as_bytes();
    // impl blocks: (start, end, type name).
    let mut impls = Vec::new();
    for (i, _) in src.match_indices("impl") {
        let line_start = src[..i].rfind('\n').map_or(0, |k| k + 1);
        let before = src[line_start..i].trim();
        if !(before.is_empty() || before == "unsafe") || bytes.get(i + 4).is_some_and(|&b| is_ident(b)) {
            continue;
        }
        let Some(open) = src[i..].find('{').map(|k| i + k) else { continue };
        let head = &src[i + 4..open];
        let head = head.rsplit(" for ").next().unwrap_or(head);
        let name: String =
            head.trim().trim_start_matches('<').chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        impls.push((open, matching_brace(bytes, open), name));
    }
    let mut out = Vec::new();
    for (i, _) in src.match_indices("fn ") {
        if i > 0 && is_ident(bytes[i - 1]) {
            continue;
        }
        let line_start = src[..i].rfind('\n').map_or(0, |k| k + 1);
        if src[line_start..i].trim_start().starts_with("//") {
            continue;
        }
        let name = ident_at(src, i + 3);
        if name.is_empty() {
            continue;
        }
        // A declaration without a body (`fn f();` in a trait or an extern block) ends at `;`.
        let rest = &src[i..];
        let (Some(open), semi) = (rest.find('{'), rest.find(';')) else { continue };
        if semi.is_some_and(|s| s < open) {
            continue;
        }
        let end = matching_brace(bytes, i + open);
        let owner = impls.iter().find(|(s, e, _)| *s < i && i < *e).map(|(_, _, n)| n.clone());
        let line = src[..i].matches('\n').count() + 1;
        out.push(Func { owner, name: name.to_string(), line, text: src[line_start..end].to_string() });
    }
    out
}

/// One violation per rule and line of `text` (lines numbered from `first`).
fn check(label: &str, first: usize, text: &str, per_case: bool, problems: &mut Vec<String>) {
    for (k, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("//") {
            continue;
        }
        for rule in RULES {
            if line.contains(rule.pattern) && !(per_case && rule.kind == Kind::Alloc && builds_an_error(line)) {
                problems.push(format!("{label}:{}: `{}` ({}): {}", first + k, rule.pattern, rule.why, line.trim()));
            }
        }
    }
}

/// The code of the executor's per-case path, as (label, first line, text).
fn per_case_code() -> Vec<(String, usize, String)> {
    let mut out = Vec::new();
    for (file, names) in PER_CASE {
        let src = read(file);
        match names {
            None => out.push((file.to_string(), 1, without_tests(&src).to_string())),
            Some(names) => {
                let funcs = functions(&src);
                for name in *names {
                    let f = funcs
                        .iter()
                        .find(|f| f.name == *name)
                        .unwrap_or_else(|| panic!("{file}: no fn {name} (named in PER_CASE: rename it there)"));
                    out.push((file.to_string(), f.line, f.text.clone()));
                }
            }
        }
    }
    out
}

/// The functions of `src/sys/`, by (module, owner, name); module "" is `sys` itself.
type SysKey = (String, Option<String>, String);

fn sys_functions() -> BTreeMap<SysKey, Func> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(root().join("src/sys")).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        let module = if stem == "mod" { String::new() } else { stem };
        for f in functions(&std::fs::read_to_string(&path).unwrap()) {
            out.insert((module.clone(), f.owner.clone(), f.name.clone()), f);
        }
    }
    out
}

/// The `sys` functions that `text` calls: `sys::f(`, `sys::m::f(`, `alias::f(`, and
/// `.f(` for methods of `sys` types (ParentOnlyBuf). `module` is the sys module `text` is in
/// (for its own `f(`, `self.f(`, `super::f(`), or None outside `sys`.
fn sys_calls(text: &str, module: Option<&str>, owner: Option<&str>, sys: &BTreeMap<SysKey, Func>) -> BTreeSet<SysKey> {
    let modules: BTreeSet<&str> = sys.keys().map(|(m, _, _)| m.as_str()).filter(|m| !m.is_empty()).collect();
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < text.len() {
        if !is_ident(bytes[at]) || (at > 0 && is_ident(bytes[at - 1])) {
            at += 1;
            continue;
        }
        let word = ident_at(text, at);
        let next = at + word.len();
        let after = &text[next..];
        let prefix = &text[..at];
        let free = |m: &str, f: &str| (m.to_string(), None, f.to_string());
        let mut candidates = Vec::new();
        // Not the function's own name in its signature.
        if after.starts_with('(') && !prefix.ends_with("fn ") {
            if let Some(p) = prefix.strip_suffix('.') {
                // A method: of the same impl through self, or of any sys type.
                if let (true, Some(m)) = (p.ends_with("self"), module) {
                    candidates.push((m.to_string(), owner.map(str::to_string), word.to_string()));
                } else {
                    candidates.extend(sys.keys().filter(|(_, o, n)| o.is_some() && n == word).cloned());
                }
            } else if prefix.ends_with("sys::") || prefix.ends_with("super::") && module.is_some() {
                // `sys::f` is re-exported from the family file that defines it.
                candidates.extend(sys.keys().filter(|(_, o, n)| o.is_none() && n == word).cloned());
            } else if let Some(p) = prefix.strip_suffix("::") {
                let named = p.rsplit(|c: char| !c.is_alphanumeric() && c != '_').next().unwrap_or("");
                let alias = SYS_ALIASES.iter().find(|(a, _)| *a == named);
                let m = alias.map_or(named, |(_, real)| real);
                let through_sys = p.ends_with(&format!("sys::{named}"));
                if modules.contains(m) && (module.is_some() || alias.is_some() || through_sys) {
                    candidates.push(free(m, word));
                }
            } else if let Some(m) = module {
                // A function of the same file, or one imported from another family file.
                candidates.push(free(m, word));
                candidates.extend(sys.keys().filter(|(km, o, n)| o.is_none() && n == word && km != m).cloned());
            }
        }
        out.extend(candidates.into_iter().filter(|k| sys.contains_key(k)));
        at = next;
    }
    out
}

#[test]
fn rules_catch_their_samples() {
    for rule in RULES {
        for sample in rule.must_match {
            assert!(sample.contains(rule.pattern), "rule {:?} misses its sample {sample:?}", rule.pattern);
        }
    }
    for (line, allowed) in ERROR_PATH_SAMPLES {
        let caught = RULES.iter().any(|r| line.contains(r.pattern));
        assert!(caught, "no rule catches {line:?}");
        assert_eq!(builds_an_error(line), *allowed, "error-path exception for {line:?}");
    }
}

#[test]
fn the_function_finder_and_call_graph_work_on_samples() {
    let src = "impl Buf {\n    pub fn len(&self) -> usize {\n        self.n\n    }\n    fn grow(&mut self) { let s = \"}\"; self.len(); }\n}\n\
               fn top() { let c = '{'; helper(); }\nfn helper() {}\nextern \"C\" { fn decl(); }\n#[cfg(test)]\nfn t() {}\n";
    let funcs = functions(src);
    let names: Vec<(Option<&str>, &str, usize)> =
        funcs.iter().map(|f| (f.owner.as_deref(), f.name.as_str(), f.line)).collect();
    assert_eq!(names, [(Some("Buf"), "len", 2), (Some("Buf"), "grow", 5), (None, "top", 7), (None, "helper", 8)]);
    assert!(funcs[1].text.ends_with("self.len(); }"), "{:?}", funcs[1].text);
    let sys: BTreeMap<SysKey, Func> = funcs
        .iter()
        .map(|f| ((String::new(), f.owner.clone(), f.name.clone()), f.clone()))
        .chain([(("proc".into(), None, "maps".into()), funcs[3].clone())])
        .chain([(("clone3".into(), None, "go".into()), funcs[3].clone())])
        .collect();
    let key = |m: &str, o: Option<&str>, n: &str| (m.to_string(), o.map(str::to_string), n.to_string());
    let from_outside = sys_calls(
        "sys::top(); buf.len(); sys::proc::maps(); raw::go(); raw::maps(); other::top(); proc::maps();",
        None,
        None,
        &sys,
    );
    let expected =
        [key("", None, "top"), key("", Some("Buf"), "len"), key("proc", None, "maps"), key("clone3", None, "go")];
    assert_eq!(from_outside, expected.into_iter().collect());
    let inside = sys_calls(&funcs[1].text, Some(""), Some("Buf"), &sys);
    assert_eq!(inside, [key("", Some("Buf"), "len")].into_iter().collect());
    assert_eq!(sys_calls(&funcs[2].text, Some(""), None, &sys), [key("", None, "helper")].into_iter().collect());
}

#[test]
fn post_fork_code_follows_the_rules() {
    let mut problems = Vec::new();
    for file in POST_FORK {
        check(file, 1, without_tests(&read(file)), false, &mut problems);
    }
    assert!(problems.is_empty(), "post-fork rule violations:\n{}", problems.join("\n"));
}

#[test]
fn the_executors_per_case_path_follows_the_rules() {
    let mut problems = Vec::new();
    for (label, first, text) in per_case_code() {
        check(&label, first, &text, true, &mut problems);
    }
    assert!(problems.is_empty(), "per-case rule violations:\n{}", problems.join("\n"));
}

#[test]
fn sys_functions_called_after_fork_or_per_case_follow_the_rules() {
    let sys = sys_functions();
    let mut todo: Vec<SysKey> = Vec::new();
    for file in POST_FORK {
        todo.extend(sys_calls(without_tests(&read(file)), None, None, &sys));
    }
    for (_, _, text) in per_case_code() {
        todo.extend(sys_calls(&text, None, None, &sys));
    }
    let mut seen = BTreeSet::new();
    while let Some(key) = todo.pop() {
        if seen.insert(key.clone()) {
            let f = &sys[&key];
            todo.extend(sys_calls(&f.text, Some(&key.0), f.owner.as_deref(), &sys));
        }
    }
    // The walk must reach the obvious ones, or it walks nothing.
    for (module, must) in
        [("process", "fork"), ("ns", "unshare"), ("process", "exit_now"), ("process", "waitpid"), ("clone3", "clone3")]
    {
        assert!(
            seen.contains(&(module.to_string(), None, must.to_string())),
            "sys {module}::{must} not reached: {seen:?}"
        );
    }
    let mut problems = Vec::new();
    for key in &seen {
        let f = &sys[key];
        let file = if key.0.is_empty() { "src/sys/mod.rs".to_string() } else { format!("src/sys/{}.rs", key.0) };
        check(&file, f.line, &f.text, false, &mut problems);
    }
    assert!(
        problems.is_empty(),
        "sys functions reached from post-fork or per-case code break the rules ({} reached):\n{}",
        seen.len(),
        problems.join("\n")
    );
}
