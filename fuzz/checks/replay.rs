//! Replays a fuzz target's inputs through its check, in an ordinary `cargo test`: the seeds
//! (`fuzz/seeds/<target>/`) and every crash input kept (`fuzz/regressions/<target>/`).
//! Included by the owning crates' `tests/fuzz_regressions.rs` (each two levels below the root).

use std::path::{Path, PathBuf};

/// Run `check` on every seed and regression of `target`; returns how many inputs ran.
pub fn replay(target: &str, check: fn(&[u8])) -> usize {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let seeds = files(&fuzz.join("seeds").join(target));
    assert!(!seeds.is_empty(), "no seeds for {target} in {}", fuzz.display());
    let regressions = files(&fuzz.join("regressions").join(target));
    for path in seeds.iter().chain(&regressions) {
        let input = std::fs::read(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        // Printed before the check: a failing test names the input (the harness shows it).
        eprintln!("{target}: {}", path.display());
        check(&input);
    }
    seeds.len() + regressions.len()
}

/// The files of `dir`, sorted (none when it is missing); dotfiles (a `.gitkeep`) are skipped.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file() && !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    files.sort();
    files
}
