//! A small lexer of Rust source for the source checks (`tests/layers.rs`): comments, string
//! and char literals blanked out, and the paths of a `use` tree read. Not a parser: enough for
//! code that `cargo fmt` formats.

/// The source with comments, string literals and char literals blanked out (newlines kept, so
/// byte offsets and line numbers stay those of the file).
pub fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    while i < b.len() {
        let end = skip_len(b, i);
        if end > i {
            for c in &mut out[i..end] {
                if *c != b'\n' {
                    *c = b' ';
                }
            }
            i = end;
        } else {
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The end of a comment or literal starting at `i`, or `i` when none starts there.
fn skip_len(b: &[u8], i: usize) -> usize {
    let at = |s: &str| b[i..].starts_with(s.as_bytes());
    let ident_before = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
    if at("//") {
        return b[i..].iter().position(|c| *c == b'\n').map_or(b.len(), |n| i + n);
    }
    if at("/*") {
        return block_comment_end(b, i);
    }
    if (at("r\"") || at("r#") || at("br\"") || at("br#")) && !ident_before {
        return raw_string_end(b, i);
    }
    if b[i] == b'"' {
        return string_end(b, i);
    }
    if b[i] == b'\'' {
        return char_end(b, i);
    }
    i
}

fn block_comment_end(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0;
    while i < b.len() {
        if b[i..].starts_with(b"/*") {
            depth += 1;
            i += 2;
        } else if b[i..].starts_with(b"*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

fn raw_string_end(b: &[u8], i: usize) -> usize {
    let start = i + if b[i] == b'b' { 2 } else { 1 };
    let hashes = b[start..].iter().take_while(|c| **c == b'#').count();
    if b.get(start + hashes) != Some(&b'"') {
        return i; // `r#ident`, not a string
    }
    let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
    let body = start + hashes + 1;
    b[body..].windows(close.len()).position(|w| w == close.as_slice()).map_or(b.len(), |n| body + n + close.len())
}

fn string_end(b: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < b.len() && b[i] != b'"' {
        i += if b[i] == b'\\' { 2 } else { 1 };
    }
    (i + 1).min(b.len())
}

/// A char literal (`'x'`, `'\n'`, `'\u{1F600}'`); a lifetime (`'a`) is left alone.
fn char_end(b: &[u8], i: usize) -> usize {
    if b.get(i + 1) == Some(&b'\\') {
        return b.get(i + 3..).and_then(|rest| rest.iter().position(|c| *c == b'\'')).map_or(i, |n| i + 4 + n);
    }
    let next = &b[i + 1..b.len().min(i + 5)];
    let valid = match std::str::from_utf8(next) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&next[..e.valid_up_to()]).unwrap(),
    };
    let width = valid.chars().next().map_or(1, char::len_utf8);
    if b.get(i + 1 + width) == Some(&b'\'') { i + 2 + width } else { i }
}

/// The paths of a use tree starting at `i` (just after `crate::` or `super::`), expanded:
/// `{a::b, c::{d, e as f}, *}` gives `a::b`, `c::d`, `c::e`, `*`.
pub fn use_tree(code: &[u8], i: &mut usize) -> Vec<Vec<String>> {
    let mut segs = Vec::new();
    loop {
        skip_space(code, i);
        if code.get(*i) == Some(&b'{') {
            *i += 1;
            let mut out = Vec::new();
            loop {
                skip_space(code, i);
                match code.get(*i) {
                    Some(b',') => *i += 1,
                    Some(b'}') | None => {
                        *i += 1;
                        return out;
                    }
                    _ => out.extend(use_tree(code, i).into_iter().map(|t| [segs.clone(), t].concat())),
                }
            }
        }
        let start = *i;
        while *i < code.len() && (code[*i].is_ascii_alphanumeric() || code[*i] == b'_' || code[*i] == b'*') {
            *i += 1;
        }
        if *i == start {
            return vec![segs];
        }
        segs.push(String::from_utf8_lossy(&code[start..*i]).into_owned());
        let mut j = *i;
        skip_space(code, &mut j);
        if code[j..].starts_with(b"::") {
            *i = j + 2;
            continue;
        }
        skip_alias(code, i);
        return vec![segs];
    }
}

pub fn skip_space(code: &[u8], i: &mut usize) {
    while *i < code.len() && code[*i].is_ascii_whitespace() {
        *i += 1;
    }
}

/// Skips ` as name` after a path.
fn skip_alias(code: &[u8], i: &mut usize) {
    let mut j = *i;
    skip_space(code, &mut j);
    if code[j..].starts_with(b"as") && code.get(j + 2).is_some_and(u8::is_ascii_whitespace) {
        j += 2;
        skip_space(code, &mut j);
        while j < code.len() && (code[j].is_ascii_alphanumeric() || code[j] == b'_') {
            j += 1;
        }
        *i = j;
    }
}
