//! `cargo xtask docs`: check the documentation, then build the book.
//!
//! The book is `docs/` (mdBook: `docs/book.toml`, `docs/src/SUMMARY.md`), built into `target/book/`
//! by an mdBook of the pinned version [`MDBOOK_VERSION`]. That mdbook is installed from crates.io into
//! `target/tools/` the first time, and reused afterwards; one of the same version on `PATH` is used as
//! it is. The install leaves out mdBook's default `serve` and `watch` features (a web server and a file
//! watcher stack) and keeps `search` (a search box over every chapter): measured on a busy 2-core
//! machine, the install took 4.4 min of CPU with search and 3.7 min without (9.5 min of wall time
//! either way there).
//!
//! The checks need no tool and run first:
//!
//! - **Links.** Every relative link in `README.md`, `ARCHITECTURE.md` and `docs/src/**/*.md` (and in
//!   a markdown file a chapter pulls in with `{{#include …}}`) names an existing file or directory,
//!   and its `#anchor`, if any, names a heading of that markdown file (mdBook's and GitHub's slug
//!   rule: lower case, letters, digits, `_` and `-` kept, spaces to `-`, the rest dropped; a repeated
//!   heading gets `-1`, `-2`, …). A link inside the book may not leave `docs/src/` (mdBook renders
//!   only what is there): code is named in code spans, not linked. Links with a scheme (`https:`,
//!   `mailto:`) are not followed.
//! - **Named functions.** Every code span of the form `` `path/to/file.rs: fn name` `` (or
//!   `` `…: fn Type::name` ``) in those files names a file that exists and contains `fn name(` or
//!   `fn name<` (and, for `Type::name`, an `impl` of `Type`). The traced path of a segment in
//!   `docs/src/architecture.md` is written this way, so a renamed function fails here, named.
//! - **Layering.** The fenced `crate → deps` lines of `docs/src/architecture.md` are exactly the
//!   workspace members and their `[dependencies]` on each other (see [`crate::layers`]).
//! - **Import circles.** The circles among each crate's modules (see [`crate::circles`]) are exactly
//!   those `docs/src/architecture.md` lists as `` `import circle in CRATE_DIR: a, b` ``: a new one
//!   fails, and so does a listed one that is gone.
//!
//! Code blocks and code spans are not searched for links.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::exec;

/// The mdBook the book is built with (its MSRV, 1.88, is below the workspace's).
pub const MDBOOK_VERSION: &str = "0.5.4";

/// Checks the docs, then builds the book into `target/book/`.
pub fn run(root: &Path) -> Result<()> {
    let began = Instant::now();
    let report = check(root)?;
    eprintln!(
        "xtask: docs checks passed: {} links in {} files, {} named functions, {} import circles as listed",
        report.links, report.files, report.functions, report.circles
    );
    let mdbook = ensure_mdbook(root)?;
    exec(Command::new(&mdbook).arg("build").arg(root.join("docs")))?;
    eprintln!(
        "xtask: book built in {} ({:.1} s in all)",
        root.join("target/book").display(),
        began.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The pinned mdbook: on `PATH` if that one is the pinned version, else `target/tools/bin/mdbook`,
/// installed there when missing or of another version.
pub fn ensure_mdbook(root: &Path) -> Result<PathBuf> {
    let wanted = format!("mdbook v{MDBOOK_VERSION}");
    let version = |bin: &Path| {
        Command::new(bin)
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    if version(Path::new("mdbook")) == wanted {
        return Ok(PathBuf::from("mdbook"));
    }
    let tools = root.join("target").join("tools");
    let bin = tools.join("bin").join("mdbook");
    if bin.is_file() && version(&bin) == wanted {
        return Ok(bin);
    }
    eprintln!("xtask: installing mdbook {MDBOOK_VERSION} into {} (once; a few minutes)", tools.display());
    let began = Instant::now();
    exec(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["install", "mdbook", "--version", MDBOOK_VERSION, "--locked", "--no-default-features"])
            .args(["--features", "search", "--root"])
            .arg(&tools),
    )?;
    eprintln!("xtask: mdbook installed in {:.0} s", began.elapsed().as_secs_f64());
    if version(&bin) != wanted {
        bail!("{} does not report {wanted} after installing it", bin.display());
    }
    Ok(bin)
}

/// What the checks looked at.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub files: usize,
    pub links: usize,
    pub functions: usize,
    pub circles: usize,
}

/// Runs the link and named-function checks over the repository's docs; fails naming every problem.
pub fn check(root: &Path) -> Result<Report> {
    let src = root.join("docs").join("src");
    let mut files = vec![root.join("README.md")];
    if root.join("ARCHITECTURE.md").is_file() {
        files.push(root.join("ARCHITECTURE.md"));
    }
    let mut book = Vec::new();
    crate::files_with_extension(&src, "md", &mut book)?;
    book.sort();
    if book.is_empty() {
        bail!("no book chapters under {}", src.display());
    }
    files.extend(book);
    let mut report = Report::default();
    let mut problems = Vec::new();
    let mut headings = Headings::default();
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut queue = files;
    while let Some(file) = queue.pop() {
        if seen.contains(&file) {
            continue;
        }
        seen.push(file.clone());
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        let doc = scan(&text);
        let dir = file.parent().unwrap_or(root);
        let shown = file.strip_prefix(root).unwrap_or(&file).display().to_string();
        report.files += 1;
        for include in &doc.includes {
            let target = normalize(&dir.join(include));
            if !target.is_file() {
                problems.push(format!("{shown}: {{{{#include {include}}}}}: no such file"));
            } else if target.extension().is_some_and(|e| e == "md") {
                queue.push(target);
            }
        }
        for link in &doc.links {
            report.links += 1;
            let in_book = file.starts_with(&src);
            if let Err(why) = check_link(&file, dir, link, in_book.then_some(src.as_path()), &mut headings) {
                let root_prefix = format!("{}/", root.display());
                problems.push(format!("{shown}: link ({link}): {}", why.replace(&root_prefix, "")));
            }
        }
        for named in &doc.functions {
            report.functions += 1;
            if let Err(why) = check_function(root, named) {
                problems.push(format!("{shown}: `{named}`: {why}"));
            }
        }
    }
    let arch = src.join("architecture.md");
    let listed = scan(&std::fs::read_to_string(&arch).with_context(|| format!("reading {}", arch.display()))?);
    if listed.functions.is_empty() {
        problems.push("docs/src/architecture.md: the traced path names no `path/file.rs: fn name`".into());
    }
    let mut known = Vec::new();
    for span in &listed.circles {
        match crate::circles::parse(span) {
            Some(c) => known.push(c),
            None => problems
                .push(format!("docs/src/architecture.md: `{span}`: not `{}CRATE_DIR: a, b`", crate::circles::PREFIX)),
        }
    }
    let arch_text = std::fs::read_to_string(&arch)?;
    for p in crate::layers::check(root, &arch_text)? {
        problems.push(format!("docs/src/architecture.md: {p}"));
    }
    let found = crate::circles::find(root)?;
    report.circles = found.len();
    for c in &found {
        if !known.contains(c) {
            problems.push(format!(
                "an import circle the code has and docs/src/architecture.md does not list: `{}`",
                crate::circles::show(c)
            ));
        }
    }
    for c in &known {
        if !found.contains(c) {
            problems.push(format!(
                "docs/src/architecture.md lists an import circle the code no longer has: `{}`",
                crate::circles::show(c)
            ));
        }
    }
    if !problems.is_empty() {
        let mut msg = format!("{} docs problem(s):\n", problems.len());
        for p in &problems {
            let _ = writeln!(msg, "  {p}");
        }
        bail!(msg.trim_end().to_string());
    }
    Ok(report)
}

/// What a markdown file links to, names and includes (outside code).
#[derive(Debug, Default, PartialEq, Eq)]
struct Scanned {
    links: Vec<String>,
    functions: Vec<String>,
    circles: Vec<String>,
    includes: Vec<String>,
    headings: Vec<String>,
}

/// Reads a markdown file: inline links and images, reference definitions, `{{#include}}`s and ATX
/// headings outside fenced code; `path.rs: fn name` code spans.
fn scan(text: &str) -> Scanned {
    let mut out = Scanned::default();
    let mut fence: Option<(char, usize)> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let run = |c: char| trimmed.chars().take_while(|&x| x == c).count();
        if let Some((c, n)) = fence {
            if indent < 4 && run(c) >= n && trimmed.trim_start_matches(c).trim().is_empty() {
                fence = None;
            }
            continue;
        }
        if indent < 4 {
            let (ticks, tildes) = (run('`'), run('~'));
            if ticks >= 3 {
                fence = Some(('`', ticks));
                continue;
            }
            if tildes >= 3 {
                fence = Some(('~', tildes));
                continue;
            }
        }
        let (plain, spans) = split_code(line);
        for span in spans {
            if is_named_function(&span) {
                out.functions.push(span);
            } else if span.starts_with(crate::circles::PREFIX) {
                out.circles.push(span);
            }
        }
        if let Some(rest) = trimmed.strip_prefix("{{#include ")
            && let Some(path) = rest.split("}}").next()
        {
            let path = path.trim();
            // `file:anchor` or `file:1:20` include a part; the file is what is checked.
            let file = path.split(':').next().unwrap_or(path);
            out.includes.push(file.to_string());
            continue;
        }
        if indent < 4 && trimmed.starts_with('#') {
            let level = run('#');
            let rest = &trimmed[level..];
            if level <= 6 && (rest.is_empty() || rest.starts_with(' ')) {
                out.headings.push(heading_text(rest));
            }
        }
        if let Some(def) = reference_definition(&plain) {
            out.links.push(def);
        }
        out.links.extend(inline_links(&plain));
    }
    out
}

/// A line with its code spans blanked out, and the spans' contents.
fn split_code(line: &str) -> (String, Vec<String>) {
    let mut plain = String::with_capacity(line.len());
    let mut spans = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        plain.push_str(&rest[..start]);
        let after = &rest[start..];
        let n = after.chars().take_while(|&c| c == '`').count();
        let body = &after[n..];
        let closing = "`".repeat(n);
        let mut search = 0;
        let mut end = None;
        while let Some(i) = body[search..].find(&closing) {
            let at = search + i;
            let len = body[at..].chars().take_while(|&c| c == '`').count();
            if len == n {
                end = Some(at);
                break;
            }
            search = at + len;
        }
        match end {
            Some(e) => {
                spans.push(body[..e].trim().to_string());
                plain.push_str(&" ".repeat(e + 2 * n));
                rest = &body[e + n..];
            }
            None => {
                plain.push_str(&after[..n]);
                rest = body;
            }
        }
    }
    plain.push_str(rest);
    (plain, spans)
}

/// `path/to/file.rs: fn name` or `path/to/file.rs: fn Type::name`.
fn is_named_function(span: &str) -> bool {
    let Some((path, name)) = span.split_once(": fn ") else { return false };
    let ident = |s: &str| {
        !s.is_empty()
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !s.starts_with(|c: char| c.is_ascii_digit())
    };
    let name_ok = match name.split_once("::") {
        Some((ty, f)) => ident(ty) && ident(f),
        None => ident(name),
    };
    path.ends_with(".rs")
        && !path.contains(char::is_whitespace)
        && !path.starts_with('/')
        && !path.split('/').any(|c| c == "..")
        && name_ok
}

fn check_function(root: &Path, named: &str) -> Result<(), String> {
    let (path, name) = named.split_once(": fn ").ok_or("not `path: fn name`")?;
    let file = root.join(path);
    let text = std::fs::read_to_string(&file).map_err(|_| format!("no file {path}"))?;
    let (ty, func) = match name.split_once("::") {
        Some((ty, f)) => (Some(ty), f),
        None => (None, name),
    };
    let defines = |f: &str| {
        text.match_indices(&format!("fn {f}"))
            .any(|(i, m)| matches!(text[i + m.len()..].chars().next(), Some('(' | '<')))
    };
    if !defines(func) {
        return Err(format!("{path} has no `fn {func}`"));
    }
    if let Some(ty) = ty {
        let has_impl = text
            .lines()
            .map(str::trim_start)
            .filter(|l| l.starts_with("impl"))
            .any(|l| l.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).any(|word| word == ty));
        if !has_impl {
            return Err(format!("{path} has no `impl` of `{ty}`"));
        }
    }
    Ok(())
}

/// `[label]: target` at the start of a line.
fn reference_definition(line: &str) -> Option<String> {
    let t = line.trim_start();
    if line.len() - t.len() >= 4 {
        return None;
    }
    let rest = t.strip_prefix('[')?;
    let close = rest.find("]:")?;
    if rest[..close].is_empty() || rest[..close].starts_with('^') {
        return None;
    }
    let target = rest[close + 2..].split_whitespace().next()?;
    Some(target.trim_start_matches('<').trim_end_matches('>').to_string())
}

/// Targets of `[text](target)` and `![alt](target)` on a line (code spans already blanked).
fn inline_links(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = line.as_bytes();
    let mut from = 0;
    while let Some(i) = line[from..].find("](") {
        let open = from + i + 2;
        // The target runs to the `)` that balances the `(`.
        let mut depth = 1;
        let mut end = None;
        for (j, &b) in bytes.iter().enumerate().skip(open) {
            match b {
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(j);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(end) = end else { break };
        let inner = line[open..end].trim();
        let target = if let Some(angled) = inner.strip_prefix('<') {
            angled.split('>').next().unwrap_or_default()
        } else {
            inner.split_whitespace().next().unwrap_or_default()
        };
        out.push(target.to_string());
        from = end + 1;
    }
    out
}

/// A heading's text as rendered: code-span ticks, emphasis stars and link targets dropped.
fn heading_text(raw: &str) -> String {
    let mut t = raw.trim();
    // A closing sequence of `#`s is not part of the heading.
    let stripped = t.trim_end_matches('#');
    if stripped.is_empty() || stripped.ends_with(' ') {
        t = stripped.trim_end();
    }
    let mut out = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '`' | '*' => {}
            ']' if chars.peek() == Some(&'(') => {
                for d in chars.by_ref() {
                    if d == ')' {
                        break;
                    }
                }
            }
            '[' => {}
            c => out.push(c),
        }
    }
    out
}

/// mdBook's (and GitHub's) heading id: lower case; letters, digits, `_` and `-` kept; whitespace
/// to `-`; everything else dropped.
fn slug(text: &str) -> String {
    text.trim()
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                Some(c.to_lowercase().next().unwrap_or(c))
            } else if c.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

/// The anchors of each markdown file, read once.
#[derive(Default)]
struct Headings(HashMap<PathBuf, Vec<String>>);

impl Headings {
    fn anchors(&mut self, file: &Path) -> &[String] {
        self.0.entry(file.to_path_buf()).or_insert_with(|| {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            let mut headings = scan(&text).headings;
            // A chapter that is one `{{#include}}` shows the included file's headings.
            for include in scan(&text).includes {
                let dir = file.parent().unwrap_or(Path::new("."));
                headings.extend(scan(&std::fs::read_to_string(dir.join(include)).unwrap_or_default()).headings);
            }
            anchors(&headings)
        })
    }
}

/// Ids of a file's headings, in order, with mdBook's `-1`, `-2` suffixes for repeats.
fn anchors(headings: &[String]) -> Vec<String> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    headings
        .iter()
        .map(|h| {
            let id = slug(h);
            let n = counts.entry(id.clone()).or_insert(0);
            let out = if *n == 0 { id.clone() } else { format!("{id}-{n}") };
            *n += 1;
            out
        })
        .collect()
}

/// `a/./b/../c` → `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

fn check_link(file: &Path, dir: &Path, link: &str, book: Option<&Path>, headings: &mut Headings) -> Result<(), String> {
    if link.is_empty() {
        return Err("empty target".into());
    }
    let scheme = link.split_once(':').is_some_and(|(s, _)| {
        !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
    });
    if scheme || link.starts_with("//") {
        return Ok(());
    }
    let (path, anchor) = match link.split_once('#') {
        Some((p, a)) => (p, Some(a)),
        None => (link, None),
    };
    let path = path.split('?').next().unwrap_or(path);
    let target = if path.is_empty() { file.to_path_buf() } else { normalize(&dir.join(path)) };
    if path.starts_with('/') {
        return Err("absolute path (use a relative one)".into());
    }
    if let Some(book) = book
        && !target.starts_with(book)
    {
        return Err("leaves docs/src/, which is all mdBook renders (name code in a code span instead)".into());
    }
    if !target.exists() {
        return Err(format!("no such file {}", target.display()));
    }
    if let Some(anchor) = anchor
        && target.extension().is_some_and(|e| e == "md")
        && !headings.anchors(&target).iter().any(|a| a == anchor)
    {
        return Err(format!("no heading with the anchor #{anchor} in {}", target.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_mdbook() {
        assert_eq!(slug("Where we differ from go-livepeer, on purpose"), "where-we-differ-from-go-livepeer-on-purpose");
        assert_eq!(slug(&heading_text("The `byoc` CLI: flags & keys")), "the-byoc-cli-flags--keys");
        assert_eq!(slug(&heading_text("[Links](x.md) and *stars* ##")), "links-and-stars");
        assert_eq!(anchors(&["A".into(), "a".into(), "B".into(), "A".into()]), ["a", "a-1", "b", "a-2"]);
    }

    #[test]
    fn scan_skips_code_and_finds_links_functions_and_headings() {
        let text = "# Title\n\
                    See [one](a.md#x) and ![img](p.png \"t\"), `[not](a link)`.\n\
                    ```sh\n[nor](this)\n# nor this heading\n```\n\
                    [ref]: <b.md>\n\
                    | hop | `host/x/src/a.rs: fn feed_input` | `x.rs: fn T::on_chunk` | `a: fn b` |\n\
                    {{#include ../../plugins/README.md}}\n\
                    ## Next `step` ##\n";
        let s = scan(text);
        assert_eq!(s.links, ["a.md#x", "p.png", "b.md"]);
        assert_eq!(s.functions, ["host/x/src/a.rs: fn feed_input", "x.rs: fn T::on_chunk"]);
        assert_eq!(s.includes, ["../../plugins/README.md"]);
        assert_eq!(s.headings, ["Title", "Next step"]);
    }

    #[test]
    fn links_balance_parentheses() {
        assert_eq!(inline_links("[a](x_(1).md) [b](y.md)"), ["x_(1).md", "y.md"]);
    }

    #[test]
    fn broken_links_and_functions_are_named() -> Result<()> {
        let root = std::env::temp_dir().join(format!("xtask-docs-{}", std::process::id()));
        let src = root.join("docs/src");
        std::fs::create_dir_all(&src)?;
        std::fs::create_dir_all(root.join("host/a/src"))?;
        std::fs::write(root.join("host/a/src/lib.rs"), "struct S;\nimpl S {\n    pub fn there(&self) {}\n}\n")?;
        std::fs::write(root.join("Cargo.toml"), "[workspace]\nmembers = [\"host/a\"]\n")?;
        std::fs::write(root.join("host/a/Cargo.toml"), "[package]\nname = \"byoc-a\"\n")?;
        std::fs::write(root.join("README.md"), "[book](docs/src/intro.md#hello) [gone](docs/src/gone.md)\n")?;
        std::fs::write(
            src.join("intro.md"),
            "# Hello\n[bad anchor](#nope) [out](../../README.md) [web](https://example.com)\n",
        )?;
        std::fs::write(
            src.join("architecture.md"),
            "`host/a/src/lib.rs: fn S::there` `host/a/src/lib.rs: fn missing` `host/a/src/lib.rs: fn T::there`\n\
             ```text\nbyoc-a → (none)\n```\n",
        )?;
        let err = check(&root).map(|_| ()).expect_err("problems expected").to_string();
        std::fs::remove_dir_all(&root)?;
        assert!(err.contains("README.md: link (docs/src/gone.md): no such file"), "{err}");
        assert!(err.contains("intro.md: link (#nope): no heading with the anchor #nope"), "{err}");
        assert!(err.contains("intro.md: link (../../README.md): leaves docs/src/"), "{err}");
        assert!(err.contains("has no `fn missing`"), "{err}");
        assert!(err.contains("has no `impl` of `T`"), "{err}");
        assert!(err.starts_with("5 docs problem(s)"), "{err}");
        Ok(())
    }
}
