//! The fuzz corpora (`fuzz/corpus/<target>/`, minimized with `cargo fuzz
//! cmin`, plus hand-written seeds) as regression tests: every file goes
//! through the same entry function as its fuzz target
//! (`supervisor::fuzzing`), whose assertions are the invariants. A crash
//! the fuzzer found is kept in the corpus once fixed.

use std::fs;
use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    files.sort();
    files
}

/// Feeds each file to `entry`; returns how many it accepted.
fn run(target: &str, min_files: usize, entry: fn(&[u8]) -> Result<(), String>) -> usize {
    let files = corpus(target);
    assert!(
        files.len() >= min_files,
        "fuzz/corpus/{target} has {} files",
        files.len()
    );
    let mut ok = 0;
    for path in &files {
        let data = fs::read(path).unwrap();
        eprintln!("{}", path.display());
        if entry(&data).is_ok() {
            ok += 1;
        }
    }
    ok
}

#[test]
fn manifest_corpus() {
    let ok = run("manifest", 10, supervisor::fuzzing::manifest);
    // The seeds include the good manifests of tests/manifests.
    assert!(ok >= 5, "only {ok} manifests of the corpus load");
}

#[test]
fn quantity_corpus() {
    let ok = run("quantity", 10, supervisor::fuzzing::quantity);
    assert!(ok >= 5, "only {ok} quantities of the corpus parse");
}

#[test]
fn cni_result_corpus() {
    let ok = run("cni_result", 3, supervisor::fuzzing::cni_result);
    assert!(ok >= 2, "only {ok} CNI results of the corpus parse");
}

#[test]
fn entries_refuse_what_they_must() {
    use supervisor::fuzzing::{cni_result, manifest, quantity};
    assert!(manifest(b"\xff").is_err());
    assert!(manifest(b"kind: Pod\n").is_err());
    assert!(quantity(b"-1").is_err());
    assert!(quantity(b"1e").is_err());
    assert!(quantity(b"100Mi").is_ok());
    assert!(cni_result(b"").is_err());
    assert!(
        cni_result(br#"{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24","interface":3}]}"#)
            .is_err()
    );
}
