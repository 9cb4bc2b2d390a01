//! Style rules for post-fork code: `src/exec/child.rs` must not allocate,
//! format, print, panic or exit through Rust's runtime. Each rule carries
//! sample lines it must catch, so the rules cannot silently rot.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

struct Rule {
    pattern: &'static str,
    why: &'static str,
    must_match: &'static [&'static str],
}

const RULES: &[Rule] = &[
    Rule { pattern: "println!", why: "printing allocates and locks stdout", must_match: &["println!(\"x\");"] },
    Rule { pattern: "eprintln!", why: "printing allocates and locks stderr", must_match: &["eprintln!(\"x\");"] },
    Rule { pattern: "format!", why: "formatting allocates", must_match: &["let s = format!(\"{x}\");"] },
    Rule { pattern: "vec!", why: "allocates", must_match: &["let v = vec![1];"] },
    Rule { pattern: "Vec<", why: "allocates", must_match: &["let v: Vec<u8> = x;"] },
    Rule { pattern: "Vec::", why: "allocates", must_match: &["let v = Vec::new();"] },
    Rule { pattern: "Box<", why: "allocates", must_match: &["let b: Box<u8> = x;"] },
    Rule { pattern: "Box::", why: "allocates", must_match: &["let b = Box::new(1);"] },
    Rule { pattern: "String", why: "allocates", must_match: &["let s = String::new();"] },
    Rule { pattern: ".to_string()", why: "allocates", must_match: &["let s = x.to_string();"] },
    Rule { pattern: ".unwrap()", why: "may panic after fork", must_match: &["x.unwrap();"] },
    Rule { pattern: ".expect(", why: "may panic after fork", must_match: &["x.expect(\"y\");"] },
    Rule { pattern: "panic!", why: "panics after fork", must_match: &["panic!(\"x\");"] },
    Rule { pattern: "unreachable!", why: "panics after fork", must_match: &["unreachable!()"] },
    Rule {
        pattern: "process::exit",
        why: "runs atexit handlers; use sys::exit_now",
        must_match: &["std::process::exit(1);"],
    },
];

fn code_lines(src: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut in_tests = false;
    src.lines().enumerate().filter_map(move |(i, l)| {
        let t = l.trim_start();
        if t.starts_with("#[cfg(test)]") {
            in_tests = true;
        }
        (!in_tests && !t.starts_with("//")).then_some((i + 1, l))
    })
}

#[test]
fn rules_catch_their_samples() {
    for rule in RULES {
        for sample in rule.must_match {
            assert!(sample.contains(rule.pattern), "rule {:?} misses its sample {sample:?}", rule.pattern);
        }
    }
}

#[test]
fn post_fork_code_follows_the_rules() {
    let mut problems = Vec::new();
    for file in ["child.rs", "child_setup.rs", "sibling.rs", "clone3.rs", "limits_child.rs"] {
        let path = format!("{}/src/exec/{file}", env!("CARGO_MANIFEST_DIR"));
        let src = std::fs::read_to_string(&path).unwrap();
        for (n, line) in code_lines(&src) {
            for rule in RULES {
                if line.contains(rule.pattern) {
                    problems.push(format!("src/exec/{file}:{n}: `{}` ({}): {}", rule.pattern, rule.why, line.trim()));
                }
            }
        }
    }
    assert!(problems.is_empty(), "post-fork rule violations:\n{}", problems.join("\n"));
}

#[test]
fn no_truncating_unshare_path_in_the_crate() {
    let src_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    let mut stack = vec![std::path::PathBuf::from(src_dir)];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let src = std::fs::read_to_string(&p).unwrap();
                for (n, line) in code_lines(&src) {
                    for banned in ["libc::unshare(", "nix::sched::unshare", "from_bits_truncate"] {
                        assert!(
                            !line.contains(banned),
                            "{}:{n} uses {banned}: pass the raw u64 to SYS_unshare",
                            p.display()
                        );
                    }
                }
            }
        }
    }
}
