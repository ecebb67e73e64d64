//! House rule 11, checked: the domain takes time only from the clock in its
//! `Ctx` (virtual in the simulator), never from the wall clock.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

const WALL_CLOCK: [&str; 6] = [
    "clock::now_ms",
    "clock::now_s",
    "Day::today",
    "SystemTime::now",
    "Utc::now",
    "use crate::clock::now",
];

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_domain_never_reads_the_wall_clock() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for dir in ["domain", "edge"] {
        sources(&root.join(dir), &mut files);
    }
    assert!(files.len() > 20, "found {} files", files.len());
    let mut found = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        // Unit tests (the tail of a file) may use the wall clock.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (n, line) in code.lines().enumerate() {
            if WALL_CLOCK.iter().any(|w| line.contains(w)) {
                found.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "wall clock in the domain: {found:#?}");
}
