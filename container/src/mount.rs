//! Mounts made inside a spawned process's own mount namespace: bind,
//! read-only bind, tmpfs with a size, and proc. The description is built
//! by the caller; [`crate::spawn`] prepares it (C strings, flags) before
//! fork and applies it in the child, after making every mount private so
//! nothing propagates back to the host.
//!
//! A missing target is created (a directory, or an empty file for a file
//! bind) on the filesystem underneath, so it outlives the process, as with
//! runc. A read-only bind makes only the top mount read-only; submounts
//! of the source keep their own flags.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::sys::{self, Errno};

/// What to mount at a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// Bind `source` (recursively: submounts included).
    Bind {
        /// The host path.
        source: PathBuf,
        /// Remount read-only after binding.
        readonly: bool,
    },
    /// A fresh tmpfs.
    Tmpfs {
        /// Its size limit in bytes (`size=`), or the kernel default (half
        /// of RAM).
        size_bytes: Option<u64>,
        /// Permission bits of its root.
        mode: u32,
    },
    /// procfs for the process's pid namespace.
    Proc,
}

/// One mount: a kind and the path it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted (an absolute path in the process's view).
    pub target: PathBuf,
    /// What is mounted.
    pub kind: MountKind,
}

impl Mount {
    /// A recursive bind mount of `source` at `target`.
    pub fn bind(source: impl Into<PathBuf>, target: impl Into<PathBuf>) -> Mount {
        Mount {
            target: target.into(),
            kind: MountKind::Bind {
                source: source.into(),
                readonly: false,
            },
        }
    }

    /// A read-only recursive bind mount (bind, then remount read-only,
    /// keeping the source's nosuid/nodev/noexec flags).
    pub fn bind_readonly(source: impl Into<PathBuf>, target: impl Into<PathBuf>) -> Mount {
        Mount {
            target: target.into(),
            kind: MountKind::Bind {
                source: source.into(),
                readonly: true,
            },
        }
    }

    /// A tmpfs (nosuid, nodev, mode 0755) of at most `size_bytes`.
    pub fn tmpfs(target: impl Into<PathBuf>, size_bytes: Option<u64>) -> Mount {
        Mount {
            target: target.into(),
            kind: MountKind::Tmpfs {
                size_bytes,
                mode: 0o755,
            },
        }
    }

    /// procfs (nosuid, nodev, noexec).
    pub fn proc(target: impl Into<PathBuf>) -> Mount {
        Mount {
            target: target.into(),
            kind: MountKind::Proc,
        }
    }
}

/// Whether the target is created as a directory or as an empty file (a
/// bind of a file needs a file to cover).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TargetKind {
    Dir,
    File,
}

/// A mount with every string and flag ready for the child.
#[derive(Debug)]
pub(crate) struct PreparedMount {
    target: CString,
    target_kind: TargetKind,
    source: Option<CString>,
    fstype: Option<CString>,
    flags: libc::c_ulong,
    data: Option<CString>,
    readonly_remount: bool,
}

fn cstring(path: &Path) -> Result<CString, String> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| format!("path {} contains a NUL byte", path.display()))
}

impl PreparedMount {
    /// Build the C strings and flags (in the parent, before fork).
    pub(crate) fn new(m: &Mount) -> Result<PreparedMount, String> {
        if !m.target.is_absolute() {
            return Err(format!(
                "mount target {} is not absolute",
                m.target.display()
            ));
        }
        let target = cstring(&m.target)?;
        let nosuid_nodev = libc::MS_NOSUID | libc::MS_NODEV;
        Ok(match &m.kind {
            MountKind::Bind { source, readonly } => PreparedMount {
                target,
                target_kind: if source.is_dir() {
                    TargetKind::Dir
                } else {
                    TargetKind::File
                },
                source: Some(cstring(source)?),
                fstype: None,
                flags: libc::MS_BIND | libc::MS_REC,
                data: None,
                readonly_remount: *readonly,
            },
            MountKind::Tmpfs { size_bytes, mode } => {
                let mut data = format!("mode={mode:o}");
                if let Some(size) = size_bytes {
                    data.push_str(&format!(",size={size}"));
                }
                PreparedMount {
                    target,
                    target_kind: TargetKind::Dir,
                    source: Some(c"tmpfs".to_owned()),
                    fstype: Some(c"tmpfs".to_owned()),
                    flags: nosuid_nodev,
                    data: Some(CString::new(data).expect("no NUL in formatted numbers")),
                    readonly_remount: false,
                }
            }
            MountKind::Proc => PreparedMount {
                target,
                target_kind: TargetKind::Dir,
                source: Some(c"proc".to_owned()),
                fstype: Some(c"proc".to_owned()),
                flags: nosuid_nodev | libc::MS_NOEXEC,
                data: None,
                readonly_remount: false,
            },
        })
    }

    /// Create the target if missing (a directory, or an empty file for a
    /// file bind). Child-safe.
    pub(crate) fn create_target(&self) -> Result<(), Errno> {
        match self.target_kind {
            TargetKind::Dir => sys::mkdir_exist_ok(&self.target, 0o755),
            TargetKind::File => {
                let fd = sys::open(&self.target, libc::O_WRONLY | libc::O_CREAT, 0o644)?;
                sys::close(fd);
                Ok(())
            }
        }
    }

    /// Mount it. Child-safe.
    pub(crate) fn mount(&self) -> Result<(), Errno> {
        sys::mount(
            self.source.as_deref(),
            &self.target,
            self.fstype.as_deref(),
            self.flags,
            self.data.as_deref(),
        )?;
        if self.readonly_remount {
            // A bind remount must repeat the locked flags of the source
            // mount or the kernel refuses it (EPERM in user namespaces).
            let st = sys::mount_flags(&self.target)?;
            let mut keep = 0;
            for (st_flag, ms_flag) in [
                (libc::ST_NOSUID, libc::MS_NOSUID),
                (libc::ST_NODEV, libc::MS_NODEV),
                (libc::ST_NOEXEC, libc::MS_NOEXEC),
                (libc::ST_NOATIME, libc::MS_NOATIME),
                (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
                (libc::ST_RELATIME, libc::MS_RELATIME),
            ] {
                if st & st_flag != 0 {
                    keep |= ms_flag;
                }
            }
            sys::mount(
                None,
                &self.target,
                None,
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | keep,
                None,
            )?;
        }
        Ok(())
    }

    /// The target path (for error messages).
    pub(crate) fn target_path(&self) -> PathBuf {
        PathBuf::from(std::ffi::OsStr::from_bytes(self.target.as_bytes()))
    }
}

/// Make every mount of the current mount namespace private (recursively),
/// so mounts made here never propagate to the host. Child-safe.
pub(crate) fn make_private() -> Result<(), Errno> {
    sys::mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE, None)
}

/// A path field of /proc/PID/mountinfo as a path: mountinfo escapes
/// space, tab, newline and backslash as \\ooo.
pub fn unescape_mountinfo(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepares_flags_and_data() {
        let t = PreparedMount::new(&Mount::tmpfs("/tmp/x", Some(1 << 20))).unwrap();
        assert_eq!(t.data.as_deref(), Some(c"mode=755,size=1048576"));
        assert_eq!(t.flags, libc::MS_NOSUID | libc::MS_NODEV);
        let p = PreparedMount::new(&Mount::proc("/proc")).unwrap();
        assert_eq!(p.flags & libc::MS_NOEXEC, libc::MS_NOEXEC);
        let b = PreparedMount::new(&Mount::bind_readonly("/etc/hostname", "/x")).unwrap();
        assert!(b.readonly_remount);
        assert_eq!(b.target_kind, TargetKind::File);
        let d = PreparedMount::new(&Mount::bind("/etc", "/x")).unwrap();
        assert_eq!(d.target_kind, TargetKind::Dir);
        assert!(PreparedMount::new(&Mount::proc("relative")).is_err());
    }
}
