//! The crates' layering: which workspace crates each crate depends on.
//!
//! `docs/src/architecture.md` states it in a fenced block, one line per workspace member:
//! `byoc-gateway      → byoc-media, byoc-payment, byoc-protocol, byoc-trickle` (or `→ (none)`).
//! [`check`] compares that with every member's `Cargo.toml`: its `[dependencies]` and
//! `[target.….dependencies]` on other members (dev-dependencies are tests' business and not
//! counted).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};

/// A crate's name and the members it depends on.
pub type Layers = BTreeMap<String, BTreeSet<String>>;

/// The `crate → a, b` lines of fenced blocks in a markdown text.
pub fn documented(markdown: &str) -> Layers {
    let mut out = Layers::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let Some((name, deps)) = line.split_once('→').filter(|_| fenced) else { continue };
        let name = name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            continue;
        }
        let deps = deps.trim();
        let deps: BTreeSet<String> = if deps == "(none)" {
            BTreeSet::new()
        } else {
            deps.split(',').map(|d| d.trim().to_string()).filter(|d| !d.is_empty()).collect()
        };
        out.insert(name.to_string(), deps);
    }
    out
}

/// What the members' manifests say.
pub fn actual(root: &Path) -> Result<Layers> {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).context("reading Cargo.toml")?;
    let members_line =
        manifest.lines().find(|l| l.trim_start().starts_with("members")).context("no `members` line in Cargo.toml")?;
    let dirs: Vec<&str> = members_line.split('"').skip(1).step_by(2).collect();
    let mut names = BTreeMap::new();
    let mut texts = Vec::new();
    for dir in &dirs {
        let path = root.join(dir).join("Cargo.toml");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let name = package_name(&text).with_context(|| format!("no package name in {}", path.display()))?;
        names.insert(name.clone(), ());
        texts.push((name, text));
    }
    let mut out = Layers::new();
    for (name, text) in texts {
        let mut deps = BTreeSet::new();
        let mut section = String::new();
        for line in text.lines() {
            let t = line.trim();
            if t.starts_with('[') {
                section = t.to_string();
                continue;
            }
            let normal =
                section == "[dependencies]" || (section.starts_with("[target.") && section.ends_with(".dependencies]"));
            if !normal {
                continue;
            }
            let key = t.split(['=', '.']).next().unwrap_or_default().trim().trim_matches('"');
            if names.contains_key(key) && key != name {
                deps.insert(key.to_string());
            }
        }
        out.insert(name, deps);
    }
    Ok(out)
}

fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_package = t == "[package]";
            continue;
        }
        if in_package
            && let Some(v) = t.strip_prefix("name")
            && let Some(v) = v.trim_start().strip_prefix('=')
        {
            return Some(v.trim().trim_matches('"').to_string());
        }
    }
    None
}

/// The differences between the documented layering and the manifests, one line each.
pub fn check(root: &Path, markdown: &str) -> Result<Vec<String>> {
    let (doc, code) = (documented(markdown), actual(root)?);
    let mut problems = Vec::new();
    let show = |s: &BTreeSet<String>| {
        if s.is_empty() { "(none)".to_string() } else { s.iter().cloned().collect::<Vec<_>>().join(", ") }
    };
    for (name, deps) in &code {
        match doc.get(name) {
            None => problems.push(format!("the layering does not list `{name} → {}`", show(deps))),
            Some(d) if d != deps => problems.push(format!(
                "the layering says `{name} → {}`, its Cargo.toml `{name} → {}`",
                show(d),
                show(deps)
            )),
            Some(_) => {}
        }
    }
    for name in doc.keys().filter(|n| !code.contains_key(*n)) {
        problems.push(format!("the layering lists `{name}`, which is not a workspace member"));
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_lines_and_the_manifests() -> Result<()> {
        let doc = "x → y\n```text\nbyoc-a → byoc-b, byoc-c\nbyoc-b → (none)\n```\n";
        let layers = documented(doc);
        assert_eq!(layers.len(), 2);
        assert_eq!(layers["byoc-a"], ["byoc-b", "byoc-c"].into_iter().map(String::from).collect());
        assert!(layers["byoc-b"].is_empty());

        let root = std::env::temp_dir().join(format!("xtask-layers-{}", std::process::id()));
        for (dir, toml) in [
            (
                "a",
                "[package]\nname = \"byoc-a\"\n[dependencies]\nbyoc-b.workspace = true\nserde = \"1\"\n[dev-dependencies]\nbyoc-c = { path = \"../c\" }\n",
            ),
            ("b", "[package]\nname = \"byoc-b\"\n[target.'cfg(unix)'.dependencies]\nbyoc-c = { path = \"../c\" }\n"),
            ("c", "[package]\nname = \"byoc-c\"\n"),
        ] {
            std::fs::create_dir_all(root.join(dir))?;
            std::fs::write(root.join(dir).join("Cargo.toml"), toml)?;
        }
        std::fs::write(root.join("Cargo.toml"), "[workspace]\nmembers = [\"a\", \"b\", \"c\"]\n")?;
        let problems = check(&root, doc)?;
        std::fs::remove_dir_all(&root)?;
        assert_eq!(
            problems,
            [
                "the layering says `byoc-a → byoc-b, byoc-c`, its Cargo.toml `byoc-a → byoc-b`",
                "the layering says `byoc-b → (none)`, its Cargo.toml `byoc-b → byoc-c`",
                "the layering does not list `byoc-c → (none)`",
            ]
        );
        Ok(())
    }
}
