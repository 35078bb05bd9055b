//! A container's root filesystem: its image's unpacked layers (or, for the
//! library's own tests, the host's root) under a fresh writable layer,
//! without changing the layers or the host.
//!
//! In the container's private mount namespace the read-only lower layers
//! are overlaid with a fresh writable layer on a tmpfs (the container's
//! writes, gone when it exits, as a container's writable layer is; charged
//! to the memory cgroup of the container that writes them), so mount points
//! for volumes can be created anywhere without touching the layers. Up to
//! [`MAX_LAYERS`] layers: as one `lowerdir=` option when it fits in a page,
//! else one `lowerdir+` at a time through the new mount API (Linux 6.8+). On top come a new
//! proc (of the container's PID namespace), a minimal /dev (null, zero, full,
//! random, urandom, tty, a private devpts, /dev/shm), a read-only sysfs, and
//! the bind mounts of the volumes (read-only where asked), deepest last. Then
//! `pivot_root` makes the overlay `/` and detaches the old root; the working
//! directory is created if the image lacks it; with `read_only` the root is
//! remounted read-only (readOnlyRootFilesystem).
//!
//! Of the host, only what is bound in (volumes, the pod's /etc files) is
//! seen. [`RootfsSpec::prepare`] turns
//! the description into [`Rootfs`], a list of system calls with every path
//! already a C string, which [`Rootfs::apply`] runs in the child between
//! fork and exec without allocating.

use crate::sys;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A bind mount of a host path into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// Host path (a directory or a file).
    pub source: PathBuf,
    /// Absolute, clean path inside the container.
    pub target: PathBuf,
    /// Remount read-only after binding.
    pub read_only: bool,
}

/// The most lower layers overlayfs stacks.
pub const MAX_LAYERS: usize = 500;

/// The longest mount option string the kernel takes (one page, NUL included).
const MAX_MOUNT_DATA: usize = 4095;

/// What a container's root filesystem is made of.
#[derive(Debug, Clone)]
pub struct RootfsSpec {
    staging: PathBuf,
    layers: Vec<PathBuf>,
    binds: Vec<BindMount>,
    shm: Option<PathBuf>,
    read_only: bool,
    working_dir: Option<PathBuf>,
    writable_layer_size: Option<u64>,
}

/// A rootfs description that cannot be prepared.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// A bind target is relative or has `.`/`..` components.
    #[error("mount target {0} is not an absolute, clean path")]
    Target(PathBuf),
    /// A bind source cannot be inspected (usually: it does not exist).
    #[error("mount source {path}: {source}")]
    Source {
        /// The host path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A path or option contains a NUL byte (or is not UTF-8 where a
    /// mount option needs text).
    #[error("path {0} contains a NUL byte")]
    Nul(PathBuf),
    /// More layers than overlayfs stacks.
    #[error("the image has {0} layers; overlayfs stacks at most {MAX_LAYERS}")]
    TooManyLayers(usize),
    /// A layer directory whose path overlay's options cannot carry.
    #[error("layer directory {0}: a path with ':' or ',' cannot be an overlay layer")]
    LayerPath(PathBuf),
}

impl RootfsSpec {
    /// `staging` is an existing empty directory on the host (in the pod's
    /// state dir) where the writable layer and the new root are assembled,
    /// inside the container's mount namespace only.
    pub fn new(staging: impl Into<PathBuf>) -> RootfsSpec {
        RootfsSpec {
            staging: staging.into(),
            layers: Vec::new(),
            binds: Vec::new(),
            shm: None,
            read_only: false,
            working_dir: None,
            writable_layer_size: None,
        }
    }

    /// The most bytes the writable layer (a tmpfs) holds: the container's
    /// `ephemeral-storage` limit. None: the tmpfs default (half of RAM).
    pub fn writable_layer_size(mut self, bytes: Option<u64>) -> RootfsSpec {
        self.writable_layer_size = bytes;
        self
    }

    /// The image's unpacked layers, topmost first, as the overlay's
    /// read-only lower layers. Without any, the host's `/` is the lower
    /// layer (what the library's tests use; the supervisor always gives an
    /// image).
    pub fn layers(mut self, top_first: Vec<PathBuf>) -> RootfsSpec {
        self.layers = top_first;
        self
    }

    /// Create this absolute directory in the new root when the image lacks
    /// it (the container's working directory, as runc does).
    pub fn working_dir(mut self, dir: impl Into<PathBuf>) -> RootfsSpec {
        self.working_dir = Some(dir.into());
        self
    }

    /// Bind `mount` into the container.
    pub fn bind(mut self, mount: BindMount) -> RootfsSpec {
        self.binds.push(mount);
        self
    }

    /// Bind this host directory (the pod's shared tmpfs) at /dev/shm, so the
    /// containers of a pod, which share an IPC namespace, share it too.
    /// Without it /dev/shm is a tmpfs of the container's own.
    pub fn shm(mut self, dir: impl Into<PathBuf>) -> RootfsSpec {
        self.shm = Some(dir.into());
        self
    }

    /// Remount the root read-only after everything is mounted.
    pub fn read_only(mut self, read_only: bool) -> RootfsSpec {
        self.read_only = read_only;
        self
    }

    /// Check the description and compute every system call.
    pub fn prepare(&self) -> Result<Rootfs, RootfsError> {
        let mut plan = Plan::default();
        let staging = &self.staging;
        let root = staging.join("root");
        let upper = staging.join("upper");
        let work = staging.join("work");
        let in_root = |path: &Path| root.join(path.strip_prefix("/").unwrap_or(path));

        plan.mount(
            None,
            Path::new("/"),
            None,
            libc::MS_REC | libc::MS_PRIVATE,
            None,
            "make all mounts private",
        )?;
        let layer_options = match self.writable_layer_size {
            Some(bytes) => format!("mode=0755,size={bytes}"),
            None => "mode=0755".to_string(),
        };
        plan.mount(
            Some("tmpfs"),
            staging,
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some(&layer_options),
            "tmpfs for the writable layer",
        )?;
        for dir in [&upper, &work, &root] {
            plan.mkdir(dir, 0o755)?;
        }
        self.overlay(&mut plan, &root, &upper, &work)?;

        // /proc of the container's PID namespace.
        plan.mkdir(&in_root(Path::new("/proc")), 0o555)?;
        plan.mount(
            Some("proc"),
            &in_root(Path::new("/proc")),
            Some("proc"),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            None,
            "proc",
        )?;

        // A minimal /dev.
        let dev = in_root(Path::new("/dev"));
        plan.mkdir(&dev, 0o755)?;
        plan.mount(
            Some("tmpfs"),
            &dev,
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_STRICTATIME,
            Some("mode=755,size=65536k"),
            "tmpfs /dev",
        )?;
        for node in ["null", "zero", "full", "random", "urandom", "tty"] {
            let target = dev.join(node);
            plan.create_file(&target)?;
            plan.mount(
                Some(&format!("/dev/{node}")),
                &target,
                None,
                libc::MS_BIND,
                None,
                "bind a device node",
            )?;
        }
        plan.mkdir(&dev.join("pts"), 0o755)?;
        plan.mount(
            Some("devpts"),
            &dev.join("pts"),
            Some("devpts"),
            libc::MS_NOSUID | libc::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620"),
            "devpts",
        )?;
        plan.symlink("pts/ptmx", &dev.join("ptmx"))?;
        for (name, to) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            plan.symlink(to, &dev.join(name))?;
        }
        plan.mkdir(&dev.join("shm"), 0o1777)?;
        match &self.shm {
            Some(shm) => plan.mount(
                Some(path_str(shm)?),
                &dev.join("shm"),
                None,
                libc::MS_BIND,
                None,
                "bind the pod's /dev/shm",
            )?,
            None => plan.mount(
                Some("shm"),
                &dev.join("shm"),
                Some("tmpfs"),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                Some("mode=1777,size=65536k"),
                "tmpfs /dev/shm",
            )?,
        }

        // sysfs of the (joined) network namespace, read-only.
        plan.mkdir(&in_root(Path::new("/sys")), 0o555)?;
        plan.mount(
            Some("sysfs"),
            &in_root(Path::new("/sys")),
            Some("sysfs"),
            libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            None,
            "sysfs",
        )?;

        // Volumes, parents before children (as container runtimes sort them).
        let mut binds = self.binds.clone();
        binds.sort_by_key(|b| b.target.components().count());
        for bind in &binds {
            if !is_clean_absolute(&bind.target) {
                return Err(RootfsError::Target(bind.target.clone()));
            }
            let metadata =
                std::fs::metadata(&bind.source).map_err(|source| RootfsError::Source {
                    path: bind.source.clone(),
                    source,
                })?;
            let target = in_root(&bind.target);
            // Create the mount point and its missing parents in the overlay.
            let mut parent = root.clone();
            let components: Vec<_> = bind.target.components().skip(1).collect();
            for (i, component) in components.iter().enumerate() {
                parent.push(component);
                if i + 1 < components.len() || metadata.is_dir() {
                    plan.mkdir(&parent, 0o755)?;
                } else {
                    plan.create_file(&parent)?;
                }
            }
            plan.mount(
                Some(path_str(&bind.source)?),
                &target,
                None,
                libc::MS_BIND | libc::MS_REC,
                None,
                "bind a volume",
            )?;
            if bind.read_only {
                plan.mount(
                    None,
                    &target,
                    None,
                    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                    None,
                    "remount a volume read-only",
                )?;
            }
        }

        plan.ops.push(Op::new(
            OpKind::Chdir(cstring(&root)?),
            "enter the new root",
        ));
        plan.ops.push(Op::new(OpKind::PivotRoot, "pivot_root"));
        plan.ops
            .push(Op::new(OpKind::DetachOldRoot, "detach the old root"));
        plan.ops
            .push(Op::new(OpKind::Chdir(CString::from(c"/")), "chdir /"));
        if let Some(dir) = &self.working_dir {
            if !is_clean_absolute(dir) {
                return Err(RootfsError::Target(dir.clone()));
            }
            // Resolved in the new root: a symlink in the image stays in it.
            let mut path = PathBuf::from("/");
            for component in dir.components().skip(1) {
                path.push(component);
                plan.mkdir(&path, 0o755)?;
            }
        }
        if self.read_only {
            plan.mount(
                None,
                Path::new("/"),
                None,
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                None,
                "remount the root read-only",
            )?;
        }
        Ok(Rootfs { ops: plan.ops })
    }
}

impl RootfsSpec {
    /// The overlay at `root`: the image's layers (or the host's `/`) under
    /// the writable `upper`.
    fn overlay(
        &self,
        plan: &mut Plan,
        root: &Path,
        upper: &Path,
        work: &Path,
    ) -> Result<(), RootfsError> {
        if self.layers.len() > MAX_LAYERS {
            return Err(RootfsError::TooManyLayers(self.layers.len()));
        }
        let mut lowers = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let text = path_str(layer)?;
            if text.contains([':', ',']) {
                return Err(RootfsError::LayerPath(layer.clone()));
            }
            lowers.push(text);
        }
        let lowerdir = if lowers.is_empty() {
            "/".to_string()
        } else {
            lowers.join(":")
        };
        let options = format!(
            "lowerdir={lowerdir},upperdir={},workdir={}",
            path_str(upper)?,
            path_str(work)?
        );
        if options.len() <= MAX_MOUNT_DATA {
            let what = if self.layers.is_empty() {
                "overlay of the host root"
            } else {
                "overlay of the image's layers"
            };
            return plan.mount(
                Some("overlay"),
                root,
                Some("overlay"),
                0,
                Some(&options),
                what,
            );
        }
        let kind = OpKind::OverlayLayers {
            lowers: self
                .layers
                .iter()
                .map(|l| cstring(l))
                .collect::<Result<_, _>>()?,
            upper: cstring(upper)?,
            work: cstring(work)?,
            target: cstring(root)?,
        };
        plan.ops.push(
            Op::new(
                kind,
                "overlay of the image's layers, one lowerdir+ each (Linux 6.8+)",
            )
            .at(root),
        );
        Ok(())
    }
}

fn is_clean_absolute(path: &Path) -> bool {
    // Path::components() silently drops "." segments, so check the bytes.
    let bytes = path.as_os_str().as_bytes();
    bytes.first() == Some(&b'/')
        && bytes
            .split(|b| *b == b'/')
            .skip(1)
            .all(|seg| seg != b"." && seg != b"..")
}

fn cstring(path: &Path) -> Result<CString, RootfsError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| RootfsError::Nul(path.to_path_buf()))
}

fn path_str(path: &Path) -> Result<&str, RootfsError> {
    path.to_str()
        .ok_or_else(|| RootfsError::Nul(path.to_path_buf()))
}

#[derive(Default)]
struct Plan {
    ops: Vec<Op>,
}

impl Plan {
    fn mount(
        &mut self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: libc::c_ulong,
        data: Option<&str>,
        what: &'static str,
    ) -> Result<(), RootfsError> {
        let c = |s: &str| CString::new(s).map_err(|_| RootfsError::Nul(PathBuf::from(s)));
        let kind = OpKind::Mount {
            source: source.map(c).transpose()?,
            target: cstring(target)?,
            fstype: fstype.map(c).transpose()?,
            flags,
            data: data.map(c).transpose()?,
        };
        self.ops.push(Op::new(kind, what).at(target));
        Ok(())
    }

    fn mkdir(&mut self, path: &Path, mode: u32) -> Result<(), RootfsError> {
        self.ops
            .push(Op::new(OpKind::Mkdir(cstring(path)?, mode), "create a directory").at(path));
        Ok(())
    }

    fn create_file(&mut self, path: &Path) -> Result<(), RootfsError> {
        self.ops.push(
            Op::new(
                OpKind::CreateFile(cstring(path)?),
                "create a mount point file",
            )
            .at(path),
        );
        Ok(())
    }

    fn symlink(&mut self, to: &str, link: &Path) -> Result<(), RootfsError> {
        let to = CString::new(to).map_err(|_| RootfsError::Nul(PathBuf::from(to)))?;
        self.ops
            .push(Op::new(OpKind::Symlink(to, cstring(link)?), "create a symlink").at(link));
        Ok(())
    }
}

#[derive(Debug, Clone)]
enum OpKind {
    Mount {
        source: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: libc::c_ulong,
        data: Option<CString>,
    },
    /// An overlay whose lower layers do not fit in one option string.
    OverlayLayers {
        lowers: Vec<CString>,
        upper: CString,
        work: CString,
        target: CString,
    },
    Mkdir(CString, u32),
    CreateFile(CString),
    Symlink(CString, CString),
    Chdir(CString),
    PivotRoot,
    DetachOldRoot,
}

#[derive(Debug, Clone)]
struct Op {
    kind: OpKind,
    what: &'static str,
    path: Option<PathBuf>,
}

impl Op {
    fn new(kind: OpKind, what: &'static str) -> Op {
        Op {
            kind,
            what,
            path: None,
        }
    }

    fn at(mut self, path: &Path) -> Op {
        self.path = Some(path.to_path_buf());
        self
    }
}

/// A prepared root filesystem: the system calls to make, in order.
#[derive(Debug, Clone)]
pub struct Rootfs {
    ops: Vec<Op>,
}

/// The step of [`Rootfs::apply`] that failed, and its errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootfsFailure {
    /// Index of the failed step; [`Rootfs::describe`] names it.
    pub step: usize,
    /// The errno.
    pub errno: i32,
}

impl Rootfs {
    /// Make the root filesystem. Runs in the child between fork and exec, in
    /// its own mount namespace and final PID namespace: only system calls,
    /// no allocation.
    pub fn apply(&self) -> Result<(), RootfsFailure> {
        for (step, op) in self.ops.iter().enumerate() {
            let result = match &op.kind {
                OpKind::Mount {
                    source,
                    target,
                    fstype,
                    flags,
                    data,
                } => sys::mount(
                    source.as_deref(),
                    target,
                    fstype.as_deref(),
                    *flags,
                    data.as_deref(),
                ),
                OpKind::OverlayLayers {
                    lowers,
                    upper,
                    work,
                    target,
                } => sys::mount_overlay_layers(lowers, upper, work, target),
                OpKind::Mkdir(path, mode) => sys::mkdir_exist_ok(path, *mode),
                OpKind::CreateFile(path) => sys::create_file_exist_ok(path),
                OpKind::Symlink(to, link) => sys::symlink(to, link),
                OpKind::Chdir(path) => sys::chdir(path),
                OpKind::PivotRoot => sys::pivot_root_here(),
                OpKind::DetachOldRoot => sys::umount2(c".", libc::MNT_DETACH),
            };
            result.map_err(|errno| RootfsFailure { step, errno })?;
        }
        Ok(())
    }

    /// What step `step` does, with its path, for an error message.
    pub fn describe(&self, step: usize) -> String {
        match self.ops.get(step) {
            Some(Op {
                what,
                path: Some(path),
                ..
            }) => format!("{what} ({})", path.display()),
            Some(Op { what, .. }) => what.to_string(),
            None => format!("rootfs step {step}"),
        }
    }

    /// The path step `step` works on, if any.
    pub fn step_path(&self, step: usize) -> Option<&Path> {
        self.ops.get(step)?.path.as_deref()
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_must_be_clean_and_absolute() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["relative", "/a/../b", "/a/./b"] {
            let spec = RootfsSpec::new(dir.path()).bind(BindMount {
                source: dir.path().to_path_buf(),
                target: PathBuf::from(bad),
                read_only: false,
            });
            assert!(
                matches!(spec.prepare(), Err(RootfsError::Target(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn layers_go_in_one_option_string_until_it_passes_a_page() {
        let layer =
            |i: usize| PathBuf::from(format!("/var/lib/supervisor/images/layers/{i:064}/fs"));
        let describe_all = |rootfs: &Rootfs| -> Vec<String> {
            (0..rootfs.len()).map(|i| rootfs.describe(i)).collect()
        };
        let few = RootfsSpec::new("/run/pod/c/rootfs")
            .layers((0..3).map(layer).collect())
            .prepare()
            .unwrap();
        assert!(
            describe_all(&few)
                .iter()
                .any(|d| d.starts_with("overlay of the image's layers (")),
            "{:?}",
            describe_all(&few)
        );
        let many = RootfsSpec::new("/run/pod/c/rootfs")
            .layers((0..MAX_LAYERS).map(layer).collect())
            .prepare()
            .unwrap();
        assert!(
            describe_all(&many).iter().any(|d| d.contains("lowerdir+")),
            "{:?}",
            describe_all(&many)
        );
        let too_many = RootfsSpec::new("/run/pod/c/rootfs")
            .layers((0..=MAX_LAYERS).map(layer).collect())
            .prepare();
        assert!(matches!(too_many, Err(RootfsError::TooManyLayers(501))));
        let colon = RootfsSpec::new("/run/pod/c/rootfs")
            .layers(vec![PathBuf::from("/a:b")])
            .prepare();
        assert!(matches!(colon, Err(RootfsError::LayerPath(_))));
    }

    #[test]
    fn the_working_dir_is_made_in_the_new_root() {
        let rootfs = RootfsSpec::new("/run/pod/c/rootfs")
            .working_dir("/srv/app")
            .prepare()
            .unwrap();
        let steps: Vec<String> = (0..rootfs.len()).map(|i| rootfs.describe(i)).collect();
        let pivot = steps.iter().position(|d| d == "pivot_root").unwrap();
        let made = steps
            .iter()
            .position(|d| d == "create a directory (/srv/app)")
            .unwrap();
        assert!(made > pivot, "{steps:?}");
    }

    #[test]
    fn a_missing_source_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let spec = RootfsSpec::new(dir.path()).bind(BindMount {
            source: dir.path().join("missing"),
            target: PathBuf::from("/data"),
            read_only: true,
        });
        let error = spec.prepare().err().unwrap().to_string();
        assert!(error.contains("missing"), "{error}");
    }

    #[test]
    fn mount_points_are_created_in_the_overlay_and_read_only_is_remounted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("index.html");
        std::fs::write(&file, b"x").unwrap();
        let rootfs = RootfsSpec::new("/run/pod/c/rootfs")
            .bind(BindMount {
                source: file,
                target: PathBuf::from("/www/index.html"),
                read_only: true,
            })
            .read_only(true)
            .prepare()
            .unwrap();
        let steps: Vec<String> = (0..rootfs.len()).map(|i| rootfs.describe(i)).collect();
        let find = |s: &str| {
            steps
                .iter()
                .position(|d| d == s)
                .unwrap_or_else(|| panic!("no step {s} in {steps:#?}"))
        };
        let mkdir = find("create a directory (/run/pod/c/rootfs/root/www)");
        let file = find("create a mount point file (/run/pod/c/rootfs/root/www/index.html)");
        let bind = find("bind a volume (/run/pod/c/rootfs/root/www/index.html)");
        let ro = find("remount a volume read-only (/run/pod/c/rootfs/root/www/index.html)");
        let pivot = find("pivot_root");
        let root_ro = find("remount the root read-only (/)");
        assert!(mkdir < file && file < bind && bind < ro && ro < pivot && pivot < root_ro);
    }
}
