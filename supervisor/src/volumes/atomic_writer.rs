//! The layout kubelet's AtomicWriter (pkg/volume/util/atomic_writer.go)
//! gives configMap, secret, downwardAPI and projected volumes, so that a
//! program that knows it (a reloader watching `..data`) finds it here:
//!
//! ```text
//! <volume>/..2026_01_02_15_04_05.123456789/   the payload, a fresh dir per write (0755)
//! <volume>/..data -> ..2026_01_02_15_04_05.123456789
//! <volume>/<first component> -> ..data/<first component>   one per top-level name
//! ```
//!
//! A write makes the new timestamped dir, fills it, points `..data_tmp`
//! at it and renames that over `..data` (one atomic switch for every
//! file), adds the user-visible links that are missing, then removes the
//! links no longer in the payload and the previous timestamped dir, in
//! kubelet's order.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

/// `..data`: the link to the current payload.
pub const DATA_DIR: &str = "..data";
/// `..data_tmp`: the link renamed over `..data`.
const DATA_DIR_TMP: &str = "..data_tmp";

/// One file of a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadFile {
    /// Relative, clean, not starting with `..` (checked by the spec).
    pub path: PathBuf,
    /// Content.
    pub data: Vec<u8>,
    /// Permission bits.
    pub mode: u32,
}

/// Write `payload` into `dir` (which exists) with the AtomicWriter
/// layout; returns the timestamped dir it made. `chown` is applied to
/// every file and directory made in it before the switch.
pub fn write(
    dir: &Path,
    payload: &[PayloadFile],
    chown: impl Fn(&Path) -> io::Result<()>,
) -> io::Result<PathBuf> {
    let previous = fs::read_link(dir.join(DATA_DIR)).ok();
    let ts_dir = new_timestamp_dir(dir)?;
    for file in payload {
        write_file(&ts_dir, file, &chown)?;
    }
    chown(&ts_dir)?;
    let ts_name = ts_dir
        .file_name()
        .map(PathBuf::from)
        .ok_or_else(|| io::Error::other("timestamp dir without a name"))?;
    let tmp = dir.join(DATA_DIR_TMP);
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    symlink(&ts_name, &tmp)?;
    fs::rename(&tmp, dir.join(DATA_DIR))?;
    let visible: BTreeSet<PathBuf> = payload.iter().filter_map(|f| first(&f.path)).collect();
    for name in &visible {
        let link = dir.join(name);
        if fs::symlink_metadata(&link).is_err() {
            symlink(Path::new(DATA_DIR).join(name), &link)?;
        }
    }
    // What the previous payload had and this one has not.
    if let Some(previous) = previous.filter(|p| *p != ts_name) {
        if let Ok(old) = fs::read_dir(dir.join(&previous)) {
            for entry in old.flatten() {
                let name = PathBuf::from(entry.file_name());
                if !visible.contains(&name) {
                    let _ = fs::remove_file(dir.join(&name));
                }
            }
        }
        fs::remove_dir_all(dir.join(previous))?;
    }
    Ok(ts_dir)
}

/// The first component of a payload path: the user-visible name.
fn first(path: &Path) -> Option<PathBuf> {
    match path.components().next() {
        Some(Component::Normal(name)) => Some(PathBuf::from(name)),
        _ => None,
    }
}

/// `..<UTC time as 2006_01_02_15_04_05>.<unique digits>`, as Go's
/// `os.MkdirTemp(dir, now.Format("..2006_01_02_15_04_05."))`, chmod 0755
/// whatever the umask (group and other must be able to traverse it).
fn new_timestamp_dir(dir: &Path) -> io::Result<PathBuf> {
    let now = time::OffsetDateTime::now_utc();
    let stamp = format!(
        "..{:04}_{:02}_{:02}_{:02}_{:02}_{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let mut suffix = u64::from(now.nanosecond()) ^ u64::from(std::process::id());
    for _ in 0..100 {
        let path = dir.join(format!("{stamp}.{suffix}"));
        match fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => {
                fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
                return Ok(path);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => suffix += 1,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "no free timestamped dir name {stamp}.* in {}",
            dir.display()
        ),
    ))
}

/// One file under `ts_dir`: its parents 0755, its mode set after the
/// write (the umask may have narrowed it), as AtomicWriter's
/// `writePayloadToDir`.
fn write_file(
    ts_dir: &Path,
    file: &PayloadFile,
    chown: &impl Fn(&Path) -> io::Result<()>,
) -> io::Result<()> {
    let target = ts_dir.join(&file.path);
    if let Some(parent) = target.parent() {
        let mut missing = Vec::new();
        let mut p = parent;
        while p != ts_dir && !p.exists() {
            missing.push(p.to_path_buf());
            p = p.parent().unwrap_or(ts_dir);
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)?;
        for made in missing {
            fs::set_permissions(&made, fs::Permissions::from_mode(0o755))?;
            chown(&made)?;
        }
    }
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(file.mode)
        .open(&target)?;
    out.write_all(&file.data)?;
    out.sync_all()?;
    fs::set_permissions(&target, fs::Permissions::from_mode(file.mode))?;
    chown(&target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, data: &str, mode: u32) -> PayloadFile {
        PayloadFile {
            path: path.into(),
            data: data.as_bytes().to_vec(),
            mode,
        }
    }

    fn no_chown(_: &Path) -> io::Result<()> {
        Ok(())
    }

    #[test]
    fn the_layout_is_kubelets() {
        let dir = tempfile::tempdir().unwrap();
        let ts = write(
            dir.path(),
            &[file("a", "1", 0o600), file("sub/b", "2", 0o644)],
            no_chown,
        )
        .unwrap();
        let ts_name = ts.file_name().unwrap().to_str().unwrap().to_owned();
        // ..YYYY_MM_DD_HH_MM_SS.<digits>
        let stamp = ts_name.strip_prefix("..").unwrap();
        let (time, digits) = stamp.split_once('.').unwrap();
        assert_eq!(time.len(), 19, "{ts_name}");
        assert_eq!(time.split('_').count(), 6, "{ts_name}");
        assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{ts_name}");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&ts), 0o755);
        assert_eq!(
            fs::read_link(dir.path().join(DATA_DIR)).unwrap(),
            PathBuf::from(&ts_name)
        );
        assert_eq!(
            fs::read_link(dir.path().join("a")).unwrap(),
            Path::new("..data/a")
        );
        assert_eq!(
            fs::read_link(dir.path().join("sub")).unwrap(),
            Path::new("..data/sub")
        );
        assert_eq!(fs::read(dir.path().join("sub/b")).unwrap(), b"2");
        assert_eq!(mode(&ts.join("a")), 0o600);
        assert_eq!(mode(&ts.join("sub")), 0o755);

        // A second write switches ..data and drops what is gone.
        let ts2 = write(dir.path(), &[file("a", "new", 0o644)], no_chown).unwrap();
        assert_ne!(ts, ts2);
        assert!(!ts.exists());
        assert_eq!(fs::read(dir.path().join("a")).unwrap(), b"new");
        assert!(fs::symlink_metadata(dir.path().join("sub")).is_err());
    }
}
