//! A strict KTAP version 1 parser written from its specification
//! (Documentation/dev-tools/ktap.rst: version and plan lines, numbered results, two-space
//! nested blocks, directives), for `tests/report_formats.rs` to read the reports back.

#[derive(Debug)]
pub struct KtapTest {
    pub ok: bool,
    pub name: String,
    pub directive: Option<String>,
    pub data: String,
    pub subtests: Vec<KtapTest>,
    pub diagnostics: Vec<String>,
}

const DIRECTIVES: &[&str] = &["SKIP", "TODO", "XFAIL", "TIMEOUT", "ERROR"];

fn indent_of(line: &str, n: usize) -> Result<usize, String> {
    let spaces = line.len() - line.trim_start_matches(' ').len();
    if line.trim_start_matches(' ').starts_with('\t') || !spaces.is_multiple_of(2) {
        return Err(format!("line {n}: indentation must be pairs of spaces: {line:?}"));
    }
    Ok(spaces / 2)
}

fn parse_result(body: &str, n: usize) -> Result<Option<(bool, usize, KtapTest)>, String> {
    let (ok, rest) = if let Some(r) = body.strip_prefix("not ok ") {
        (false, r)
    } else if let Some(r) = body.strip_prefix("ok ") {
        (true, r)
    } else {
        return Ok(None);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let number: usize = digits.parse().map_err(|_| format!("line {n}: result without a number"))?;
    let rest = &rest[digits.len()..];
    if !rest.is_empty() && !rest.starts_with(' ') {
        return Err(format!("line {n}: number not followed by a space"));
    }
    let (desc, tail) = match rest.find('#') {
        Some(i) => (&rest[..i], Some(rest[i + 1..].trim())),
        None => (rest, None),
    };
    let name = desc.trim().to_string();
    let (mut directive, mut data) = (None, String::new());
    if let Some(tail) = tail {
        let (word, after) = tail.split_once(' ').unwrap_or((tail, ""));
        if DIRECTIVES.contains(&word) {
            directive = Some(word.to_string());
            data = after.trim().to_string();
        } else {
            data = tail.to_string();
        }
    }
    match directive.as_deref() {
        Some("TIMEOUT" | "ERROR") if ok => {
            return Err(format!("line {n}: {directive:?} must be on a `not ok` result"));
        }
        Some("TODO") => return Err(format!("line {n}: TODO is not recognised by KTAP")),
        _ => {}
    }
    Ok(Some((ok, number, KtapTest { ok, name, directive, data, subtests: vec![], diagnostics: vec![] })))
}

/// Parses one block (version, plan, results) at `depth`; returns its tests.
fn parse_block(lines: &[&str], pos: &mut usize, depth: usize) -> Result<Vec<KtapTest>, String> {
    let pad = "  ".repeat(depth);
    let version = lines.get(*pos).ok_or("missing version line")?;
    if *version != format!("{pad}KTAP version 1") {
        return Err(format!("line {}: expected `{pad}KTAP version 1`, got {version:?}", *pos + 1));
    }
    *pos += 1;
    let plan_line = lines.get(*pos).ok_or("missing plan line")?;
    let plan: usize = plan_line
        .strip_prefix(&format!("{pad}1.."))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("line {}: expected a plan `{pad}1..N`, got {plan_line:?}", *pos + 1))?;
    *pos += 1;
    let mut tests = Vec::new();
    let mut diags = Vec::new();
    let mut children: Option<Vec<KtapTest>> = None;
    while *pos < lines.len() {
        let n = *pos + 1;
        let line = lines[*pos];
        let d = indent_of(line, n)?;
        if d < depth {
            break;
        }
        if d > depth {
            if d != depth + 1 || children.is_some() {
                return Err(format!("line {n}: unexpected nesting: {line:?}"));
            }
            children = Some(parse_block(lines, pos, depth + 1)?);
            continue;
        }
        let body = &line[pad.len()..];
        *pos += 1;
        if let Some(text) = body.strip_prefix("# ") {
            diags.push(text.to_string());
            continue;
        }
        let Some((ok, number, mut test)) = parse_result(body, n)? else {
            return Err(format!("line {n}: not a KTAP line: {line:?}"));
        };
        if number != tests.len() + 1 {
            return Err(format!("line {n}: test number {number}, expected {}", tests.len() + 1));
        }
        test.subtests = children.take().unwrap_or_default();
        let child_failed = test.subtests.iter().any(|t| !t.ok && t.directive.as_deref() != Some("SKIP"));
        if child_failed && ok {
            return Err(format!("line {n}: `ok` although a subtest failed"));
        }
        test.diagnostics = std::mem::take(&mut diags);
        tests.push(test);
    }
    if children.is_some() {
        return Err("a nested block is not followed by its parent's result".into());
    }
    if tests.len() != plan {
        return Err(format!("plan 1..{plan} at depth {depth}, but {} results", tests.len()));
    }
    Ok(tests)
}

pub fn parse_ktap(text: &str) -> Result<Vec<KtapTest>, String> {
    if !text.ends_with('\n') {
        return Err("output does not end with a newline".into());
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut pos = 0;
    let tests = parse_block(&lines, &mut pos, 0)?;
    if pos != lines.len() {
        return Err(format!("line {}: not part of the top-level block", pos + 1));
    }
    Ok(tests)
}

pub fn by_name<'a>(tests: &'a [KtapTest], name: &str) -> &'a KtapTest {
    tests.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no test {name}"))
}
