//! The layer unpacker's fuzz corpus (`fuzz/corpus/unpack_layer/`,
//! minimized with `cargo fuzz cmin`, plus real layer tars as seeds) as a
//! regression test: every file goes through the same entry function as the
//! fuzz target, `image::fuzzing::unpack_in_temp_dir`, which unpacks it into
//! a fresh directory and asserts that nothing was written beside it.
//! Unpacking sets owners and device-free whiteouts: run as root it checks
//! the most; as another user chown fails and the entry is an error, which
//! is a normal outcome.

use std::fs;
use std::path::Path;

#[test]
fn unpack_layer_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/unpack_layer");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "{} has {} files",
        dir.display(),
        files.len()
    );
    let mut ok = 0;
    for path in &files {
        let data = fs::read(path).unwrap();
        eprintln!("{}", path.display());
        if image::fuzzing::unpack_in_temp_dir(&data).is_ok() {
            ok += 1;
        }
    }
    // The seeds are real layers: some must unpack.
    assert!(ok >= 2, "only {ok} layers of the corpus unpack");
}

#[test]
fn an_escaping_layer_is_refused_and_writes_nothing_outside() {
    // `../outside/sentinel` as a regular file: refused by the unpacker; the
    // entry function's own checks would fail if it had been written.
    let mut header = tar_header("../outside/sentinel", b'0', 5);
    let mut data = Vec::new();
    data.append(&mut header);
    data.extend_from_slice(b"evil\n");
    data.resize(1024 + 2048, 0);
    let e = image::fuzzing::unpack_in_temp_dir(&data).unwrap_err();
    assert!(e.to_string().contains("../outside/sentinel"), "{e}");
}

/// A ustar header for `name`, of type `kind` and `size` bytes.
fn tar_header(name: &str, kind: u8, size: u64) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}
