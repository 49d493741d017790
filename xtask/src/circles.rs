//! Import circles inside each crate of the workspace.
//!
//! A module *uses* another when its code (comments and `#[cfg(test)]` items aside) names a
//! `crate::…` or `super::…` path into it, in a `use` line or inline. What a module declares is not
//! counted: the crate root (`lib.rs`/`main.rs`) and a `mod.rs` reach their own submodules by plain
//! paths, and that is the tree, not a circle. A *circle* is a set of two or more modules each
//! reaching all the others through uses (a strongly connected component of the use graph).
//!
//! `docs/src/architecture.md` lists the circles that exist, one code span each,
//! `` `import circle in host/gateway: failover, start, watchers` ``; `cargo xtask docs` fails when
//! the code has a circle not listed there, or one listed there is gone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};

/// A circle: the crate's directory (`host/gateway`) and its modules, sorted (`failover`, `start`).
pub type Circle = (String, Vec<String>);

/// The prefix of a listed circle's code span.
pub const PREFIX: &str = "import circle in ";

/// Parses `import circle in host/gateway: failover, start, watchers`.
pub fn parse(span: &str) -> Option<Circle> {
    let rest = span.strip_prefix(PREFIX)?;
    let (krate, modules) = rest.split_once(": ")?;
    let mut modules: Vec<String> = modules.split(',').map(|m| m.trim().to_string()).collect();
    modules.sort();
    (!krate.is_empty() && modules.len() > 1 && modules.iter().all(|m| !m.is_empty()))
        .then(|| (krate.to_string(), modules))
}

/// How a circle is written in the docs.
pub fn show((krate, modules): &Circle) -> String {
    format!("{PREFIX}{krate}: {}", modules.join(", "))
}

/// Every circle in the workspace's member crates.
pub fn find(root: &Path) -> Result<Vec<Circle>> {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).context("reading Cargo.toml")?;
    let members =
        manifest.lines().find(|l| l.trim_start().starts_with("members")).context("no `members` line in Cargo.toml")?;
    let mut out = Vec::new();
    for krate in members.split('"').skip(1).step_by(2) {
        let src = root.join(krate).join("src");
        let mut files = Vec::new();
        crate::files_with_extension(&src, "rs", &mut files)?;
        let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let modules: BTreeSet<String> = files.iter().filter_map(|f| module_of(&src, f)).collect();
        for file in &files {
            let Some(module) = module_of(&src, file) else { continue };
            let text = std::fs::read_to_string(file)?;
            let here: Vec<&str> = if module.is_empty() { Vec::new() } else { module.split("::").collect() };
            let entry = uses.entry(module.clone()).or_default();
            for path in paths(&code_lines(&text)) {
                let target = resolve(&here, &path, &modules);
                // The root, the module itself and its own submodules are not uses.
                if !target.is_empty() && target != module && !target.starts_with(&format!("{module}::")) {
                    entry.insert(target);
                }
            }
        }
        for mut scc in components(&uses) {
            scc.sort();
            out.push((krate.to_string(), scc));
        }
    }
    out.sort();
    Ok(out)
}

/// `src/a/b.rs` → `a::b`, `src/a/mod.rs` → `a`, the root → ``; test-only files (`tests.rs`,
/// `*_tests.rs`) → `None`.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?.with_extension("");
    let mut parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "tests" || p.ends_with("_tests")) {
        return None;
    }
    if parts.last().is_some_and(|p| p == "mod") || (parts.len() == 1 && (parts[0] == "lib" || parts[0] == "main")) {
        parts.pop();
    }
    Some(parts.join("::"))
}

/// The file's lines without comments and without `#[cfg(test)]` items.
fn code_lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t.starts_with("//") {
            continue;
        }
        if t.starts_with("#[cfg(test)]") {
            // Skip the item that follows: to its `;` or until its braces balance.
            let mut depth = 0i32;
            let mut opened = false;
            for item in lines.by_ref() {
                let it = item.trim_start();
                if !opened && (it.starts_with("#[") || it.is_empty()) {
                    continue;
                }
                depth += item.matches('{').count() as i32 - item.matches('}').count() as i32;
                opened |= item.contains('{');
                if (opened && depth <= 0) || (!opened && it.trim_end().ends_with(';')) {
                    break;
                }
            }
            continue;
        }
        out.push(line.split(" //").next().unwrap_or(line));
    }
    out
}

/// Every `crate::a::b` / `super::…::x` path in the lines, as its segments (`crate` or `super` first).
/// `use super::{a::X, b}` is read as both paths.
fn paths(lines: &[&str]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for line in lines {
        for (start, word) in [("crate", "crate::"), ("super", "super::")] {
            let mut from = 0;
            while let Some(i) = line[from..].find(word) {
                let at = from + i;
                from = at + word.len();
                let before = line[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == ':') {
                    continue;
                }
                let mut segs = vec![start.to_string()];
                let rest = &line[from..];
                let tail: String =
                    rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':' || *c == '{').collect();
                let tail = tail.split('{').next().unwrap_or_default();
                segs.extend(tail.split("::").filter(|s| !s.is_empty()).map(str::to_string));
                if rest[tail.len()..].starts_with('{') {
                    // A group: each first segment inside the braces is a path of its own.
                    let group = rest[tail.len() + 1..].split('}').next().unwrap_or_default();
                    for item in group.split(',') {
                        let first: String =
                            item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                        if !first.is_empty() {
                            let mut p = segs.clone();
                            p.push(first);
                            out.push(p);
                        }
                    }
                } else {
                    out.push(segs);
                }
            }
        }
    }
    out
}

/// The module a path leads into (the longest prefix that is a module), from module `here`.
fn resolve(here: &[&str], path: &[String], modules: &BTreeSet<String>) -> String {
    let mut at: Vec<String> = match path.first().map(String::as_str) {
        Some("crate") => Vec::new(),
        _ => here.iter().map(|s| s.to_string()).collect(),
    };
    let mut rest = &path[1..];
    if path.first().is_some_and(|p| p == "super") {
        at.pop();
        while rest.first().is_some_and(|p| p == "super") {
            at.pop();
            rest = &rest[1..];
        }
    }
    let mut best = at.join("::");
    for seg in rest {
        at.push(seg.clone());
        let name = at.join("::");
        if modules.contains(&name) {
            best = name;
        } else {
            break;
        }
    }
    best
}

/// Strongly connected components of two or more modules (Tarjan).
fn components(uses: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        uses: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        if let Some(next) = s.uses.get(v) {
            for w in next {
                let w = w.as_str();
                if !s.uses.contains_key(w) {
                    continue;
                }
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let lw = s.low[w];
                    let lv = s.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if s.stack.contains(&w) {
                    let iw = s.index[w];
                    let lv = s.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                s.out.push(comp);
            }
        }
    }
    let mut s = State { uses, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), out: Vec::new() };
    for v in uses.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_groups() {
        let lines = ["use super::{Gateway, model::GwStream};", "let x = crate::a::b::f(); // crate::c", "$crate::x"];
        let got = paths(&lines.iter().map(|l| code_lines(l)[0]).collect::<Vec<_>>());
        assert_eq!(
            got,
            [vec!["super", "Gateway"], vec!["super", "model"], vec!["crate", "a", "b", "f"]]
                .map(|v| v.into_iter().map(String::from).collect::<Vec<_>>())
        );
    }

    #[test]
    fn test_items_are_skipped() {
        let text =
            "use crate::a;\n#[cfg(test)]\nfn t() {\n    crate::b::x();\n}\n#[cfg(test)]\nmod tests;\nuse crate::c;\n";
        assert_eq!(code_lines(text), ["use crate::a;", "use crate::c;"]);
    }

    #[test]
    fn resolves_to_the_deepest_module() {
        let modules: BTreeSet<String> = ["a", "a::b", "c"].into_iter().map(String::from).collect();
        let p = |s: &str| s.split("::").map(String::from).collect::<Vec<_>>();
        assert_eq!(resolve(&[], &p("crate::a::b::X"), &modules), "a::b");
        assert_eq!(resolve(&["a", "b"], &p("super::X"), &modules), "a");
        assert_eq!(resolve(&["a", "b"], &p("super::super::c::f"), &modules), "c");
        assert_eq!(resolve(&["c"], &p("super::Thing"), &modules), "");
    }

    #[test]
    fn circles_are_found_and_written() {
        let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in [("start", "watchers"), ("watchers", "failover"), ("failover", "start"), ("x", "start")] {
            uses.entry(a.into()).or_default().insert(b.into());
            uses.entry(b.into()).or_default();
        }
        let mut c = components(&uses);
        c[0].sort();
        assert_eq!(c, [vec!["failover", "start", "watchers"]]);
        let circle = ("host/gateway".to_string(), c[0].clone());
        assert_eq!(parse(&show(&circle)), Some(circle));
    }
}
