//! The entry point shared by the layer-unpacking fuzz target (`fuzz/`,
//! cargo fuzz) and its corpus regression test (`tests/fuzz_corpus.rs`), so
//! the two cannot drift.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::unpack::{UnpackError, UnpackedLayer, unpack_layer};

/// The file the entry point leaves beside the layer directory and checks
/// after unpacking.
const SENTINEL: &str = "outside/sentinel";
const SENTINEL_TEXT: &[u8] = b"must not change\n";

/// Unpacks `data` (a layer: tar, gzip or zstd) into `scratch/layer`, with
/// `scratch/outside/sentinel` beside it, as the store unpacks a pulled
/// layer. `scratch` must be an empty directory the caller removes.
///
/// Invariants: no panic; nothing appears in `scratch` but `layer` and
/// `outside`; `outside` still holds only the sentinel with its text;
/// `layer` is still a directory; a success's tar length is zero or at
/// least one tar block. (Symlinks in the layer may point anywhere, as in
/// any image: the unpacker itself never follows them, which the sentinel
/// checks.)
pub fn unpack_contained(data: &[u8], scratch: &Path) -> Result<UnpackedLayer, UnpackError> {
    let layer = scratch.join("layer");
    fs::create_dir(&layer).expect("make the layer directory");
    fs::create_dir(scratch.join("outside")).expect("make the outside directory");
    fs::write(scratch.join(SENTINEL), SENTINEL_TEXT).expect("write the sentinel");

    let result = unpack_layer(data, &layer);

    let mut names: Vec<PathBuf> = fs::read_dir(scratch)
        .expect("list the scratch directory")
        .map(|e| PathBuf::from(e.expect("entry").file_name()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [PathBuf::from("layer"), PathBuf::from("outside")],
        "the layer wrote beside its directory"
    );
    let outside: Vec<_> = fs::read_dir(scratch.join("outside"))
        .expect("list outside")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(outside, ["sentinel"], "the layer wrote into outside/");
    assert_eq!(
        fs::read(scratch.join(SENTINEL)).expect("read the sentinel"),
        SENTINEL_TEXT,
        "the layer changed the sentinel"
    );
    assert!(
        fs::symlink_metadata(&layer)
            .expect("the layer dir")
            .is_dir(),
        "the layer directory was replaced"
    );
    if let Ok(unpacked) = &result {
        assert!(
            unpacked.tar_bytes == 0 || unpacked.tar_bytes >= 512,
            "a tar stream of {} bytes unpacked",
            unpacked.tar_bytes
        );
    }
    result
}

/// Runs [`unpack_contained`] in a fresh directory under `std::env::temp_dir()`
/// and removes it: what the fuzz target and the corpus test call.
pub fn unpack_in_temp_dir(data: &[u8]) -> Result<UnpackedLayer, UnpackError> {
    let scratch = ScratchDir::new().expect("make a scratch directory");
    unpack_contained(data, &scratch.0)
}

/// A directory removed on drop (the image crate has no tempfile
/// dependency outside its tests).
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> io::Result<ScratchDir> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("image-fuzz-{}-{n}", std::process::id()));
        fs::create_dir(&path)?;
        Ok(ScratchDir(path))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
