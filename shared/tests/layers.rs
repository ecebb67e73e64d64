//! The common crate's layers only point down: no module cycle in
//! `shared/src` (modules grouped two levels deep, e.g. `domain::payouts`),
//! and no lower layer naming a higher one. Read from the `crate::` paths of
//! the sources themselves (tests excluded), so a new upward `use` fails here.

// Helpers outside `#[test]` fns read the sources; a read error is a test failure.
#![allow(clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layers, lowest first; a module may use its own layer and those below.
const LAYERS: [&[&str]; 9] = [
    &["clock", "ids", "money", "secret", "text"],
    &["store", "queue", "error"],
    &["schema"],
    &["metrics"],
    &["psp"],
    &["config"],
    &["domain"],
    &["edge"],
    &["runtime"],
];

fn layer_of(module: &str) -> Option<usize> {
    let top = module.split("::").next()?;
    LAYERS.iter().position(|l| l.contains(&top))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `foo/mod.rs` → `foo`, `foo/bar.rs` → `foo::bar`, `lib.rs` → ``.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts.join("::")
}

/// The group a module counts in: its first two path segments.
fn group(module: &str) -> String {
    module.split("::").take(2).collect::<Vec<_>>().join("::")
}

/// The source without its test module and comments.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every module path named after `crate::`, with `{a, b::c}` groups
/// expanded, resolved to the longest known module.
fn targets(code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        let end = rest
            .find(|c: char| {
                !(is_ident(c) || c == ':' || c == '{' || c == '}' || c == ',' || c.is_whitespace())
            })
            .unwrap_or(rest.len());
        let path = &rest[..end];
        let (prefix, inner) = match path.split_once('{') {
            Some((p, inner)) => (
                p.trim_end_matches(':'),
                inner.split('}').next().unwrap_or(""),
            ),
            None => (path, ""),
        };
        let mut candidates = vec![prefix.split_whitespace().next().unwrap_or("").to_owned()];
        for item in inner.split(',') {
            let item = item.trim();
            if !item.is_empty() {
                candidates.push(format!("{prefix}::{item}"));
            }
        }
        for c in candidates {
            let mut parts: Vec<&str> = c
                .split("::")
                .map(|p| p.trim_matches(|ch: char| !is_ident(ch)))
                .filter(|p| !p.is_empty())
                .collect();
            while !parts.is_empty() && !modules.contains(&parts.join("::")) {
                parts.pop();
            }
            if !parts.is_empty() {
                out.insert(parts.join("::"));
            }
        }
    }
    out
}

fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let module = module_of(&src, f);
        let text = std::fs::read_to_string(f).expect("source readable");
        let from = group(&module);
        let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
        let absolute = if parent.is_empty() {
            "crate::".to_owned()
        } else {
            format!("crate::{parent}::")
        };
        let code = code(&text).replace("super::", &absolute);
        for to in targets(&code, &modules) {
            let to = group(&to);
            if to != from && !to.is_empty() && !from.is_empty() {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    edges
}

/// Groups on a cycle: those from which a path leads back to themselves.
fn on_cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    let reaches = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<String> = edges.get(from).into_iter().flatten().cloned().collect();
        while let Some(n) = todo.pop() {
            if seen.insert(n.clone()) {
                todo.extend(edges.get(&n).into_iter().flatten().cloned());
            }
        }
        seen
    };
    edges
        .keys()
        .filter(|g| reaches(g).contains(*g))
        .cloned()
        .collect()
}

#[test]
fn the_module_graph_has_no_cycle() {
    let edges = edges();
    assert!(edges.len() > 20, "the scan found the modules: {edges:?}");
    let cyclic = on_cycles(&edges);
    assert!(cyclic.is_empty(), "modules on a cycle: {cyclic:?}");
}

#[test]
fn layers_only_point_down() {
    let mut upward = Vec::new();
    for (from, tos) in edges() {
        let Some(low) = layer_of(&from) else {
            panic!("module {from} is in no layer: add it to LAYERS");
        };
        for to in tos {
            if layer_of(&to).is_some_and(|high| high > low) {
                upward.push(format!("{from} -> {to}"));
            }
        }
    }
    assert!(upward.is_empty(), "upward uses: {upward:?}");
}

#[test]
fn the_scan_sees_a_planted_cycle() {
    let modules: BTreeSet<String> = ["a", "b", "b::c"].iter().map(|s| s.to_string()).collect();
    let found = targets("use crate::b::{c::X, y};\nlet v = crate::a::f();", &modules);
    assert_eq!(
        found,
        ["a", "b", "b::c"].iter().map(|s| s.to_string()).collect()
    );
    let mut edges = BTreeMap::new();
    edges.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    edges.insert("b".to_owned(), BTreeSet::from(["a".to_owned()]));
    edges.insert("c".to_owned(), BTreeSet::from(["a".to_owned()]));
    assert_eq!(
        on_cycles(&edges),
        BTreeSet::from(["a".to_owned(), "b".to_owned()])
    );
}
