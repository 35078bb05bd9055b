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
//! random, urandom, tty, a private devpts, /dev/shm), a read-only sysfs
//! (with, on pure cgroup v2, the container's own cgroup2 read-only at
//! /sys/fs/cgroup), the bind mounts of the volumes (read-only where asked),
//! deepest last, and kubelet's masked and read-only paths of /proc and
//! /sys. Then `pivot_root` makes the overlay `/` and detaches the old
//! root; the working directory is created if the image lacks it; with
//! `read_only` the root is made read-only (readOnlyRootFilesystem).
//!
//! **Paths.** Every destination is resolved inside the new root, symlinks
//! included, by the `resolve` module (openat2 `RESOLVE_IN_ROOT` from the
//! root's fd, missing components made with mkdirat in the directory
//! resolved so far), and mounted through the resolved fd with move_mount:
//! nothing can swap a path between the check and the mount, and a symlink
//! left in a volume by an earlier instance (`ln -s /etc /data/x`) leads to
//! the container's `/etc`, never the host's. Volume sources are opened by
//! the parent before fork ([`Rootfs`]'s sources, `open_tree(OPEN_TREE_CLONE
//! | AT_RECURSIVE)`: a detached copy of the source's mounts, made private
//! so nothing propagates back), so a source given as `/proc/self/fd/<n>`
//! is the object that fd holds. runc does the same with securejoin and
//! mount fds (`libcontainer/rootfs_linux.go`).
//!
//! **Devices** (no eBPF). Every mount is `nodev` (the overlay root, /dev's
//! tmpfs, /dev/shm, every volume, /proc, /sys, the masks' tmpfs) except
//! the six standard nodes, each a bind of the host's node, and devpts
//! (which cannot hold a mknod'd node). A node a container makes with
//! mknod (CAP_MKNOD is in the default set) anywhere it can write is
//! therefore refused at open (EACCES): the check is the VFS's own
//! `may_open_dev`, independent of the cgroup version. On cgroup v1 the
//! devices controller adds runc's allow-list as a second wall
//! ([`crate::cgroup::devices`]); on v2 runc attaches the same list as a
//! BPF_PROG_TYPE_CGROUP_DEVICE program, which `nodev` makes unnecessary
//! here: no path the container can reach holds a usable node it made.
//!
//! **/proc and /sys** as kubelet gives them (`pkg/securitycontext/util.go`
//! defaultMaskedPaths, defaultReadonlyPaths) and runc applies them
//! (`libcontainer/rootfs_linux.go` maskPath, readonlyPath): a masked file
//! gets /dev/null bound over it, a masked directory an empty read-only
//! tmpfs, a read-only path a bind of itself made read-only (nosuid, nodev,
//! noexec); a path this kernel does not have is skipped (runc ignores
//! ENOENT).
//!
//! [`RootfsSpec::prepare`] turns the description into [`Rootfs`], a list
//! of system calls with every path already a C string, which the child
//! runs between fork and exec without allocating.

mod resolve;
mod sys;

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use resolve::Create;
use sys::{MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};

/// kubelet's defaultMaskedPaths (`pkg/securitycontext/util.go`), which
/// containerd's CRI passes to runc as the spec's maskedPaths.
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// kubelet's defaultReadonlyPaths (`pkg/securitycontext/util.go`).
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The device nodes of the container's /dev, each a bind of the host's
/// (runc's default devices, `libcontainer/specconv` AllowedDevices, less
/// the console and ptmx, which devpts provides).
pub const DEVICE_NODES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// `MOUNT_ATTR_STRICTATIME` (the atime field of mount_setattr/fsmount).
const MOUNT_ATTR_STRICTATIME: u64 = 0x20;

/// A bind mount of a host path into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// Host path (a directory or a file), or `/proc/self/fd/<n>` for an
    /// object the caller holds open until the spawn returns.
    pub source: PathBuf,
    /// Absolute, clean path inside the container (resolved inside the
    /// container's root, symlinks included).
    pub target: PathBuf,
    /// Make it read-only (recursively: its submounts too).
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
    cgroup2: bool,
}

/// A rootfs description that cannot be prepared, or a source that cannot
/// be opened.
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
    /// A bind source cannot be opened as a detached mount (open_tree,
    /// mount_setattr).
    #[error("open mount source {path} for {target}: {source}")]
    OpenSource {
        /// The host path.
        path: PathBuf,
        /// Where it was to be mounted in the container.
        target: PathBuf,
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
            cgroup2: false,
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

    /// Make the root read-only after everything is mounted.
    pub fn read_only(mut self, read_only: bool) -> RootfsSpec {
        self.read_only = read_only;
        self
    }

    /// Mount cgroup2 read-only (nosuid, nodev, noexec) at /sys/fs/cgroup,
    /// as containerd's CRI does on a pure cgroup v2 host. The process must
    /// have a cgroup namespace of its own, created once it is in its cgroup
    /// ([`crate::Command`] refuses this without
    /// [`crate::Namespace::Cgroup`] among the namespaces it creates), so
    /// the mount shows its own cgroup as the root and nothing above it.
    /// Off (the default, and what to keep on v1 and hybrid hosts, as
    /// containerd has no cgroup namespace there): /sys/fs/cgroup is the
    /// empty directory of the read-only sysfs, so nothing of the host's
    /// hierarchies is visible, let alone writable.
    pub fn cgroup2(mut self, on: bool) -> RootfsSpec {
        self.cgroup2 = on;
        self
    }

    /// Check the description and compute every system call.
    pub fn prepare(&self) -> Result<Rootfs, RootfsError> {
        let mut plan = Plan::default();
        let staging = &self.staging;
        let root = staging.join("root");
        let upper = staging.join("upper");
        let work = staging.join("work");

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
        plan.push(
            OpKind::OpenRoot(cstring(&root)?),
            "open the new root",
            &root,
        );

        // /proc of the container's PID namespace.
        let hardened = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
        plan.new_fs("proc", &[], hardened, "/proc", Create::Dir(0o555), "proc")?;

        // A minimal /dev: nodev, but for the bound standard nodes.
        plan.new_fs(
            "tmpfs",
            &[("mode", "755"), ("size", "65536k")],
            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_STRICTATIME,
            "/dev",
            Create::Dir(0o755),
            "tmpfs /dev",
        )?;
        for node in DEVICE_NODES {
            plan.bind_host(
                &format!("/dev/{node}"),
                false,
                MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
                MOUNT_ATTR_NODEV,
                &format!("/dev/{node}"),
                Create::File,
                "bind a device node",
            )?;
        }
        plan.new_fs(
            "devpts",
            &[("ptmxmode", "0666"), ("mode", "0620")],
            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
            "/dev/pts",
            Create::Dir(0o755),
            "devpts",
        )?;
        for (name, to) in [
            ("ptmx", "pts/ptmx"),
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            plan.symlink(to, "/dev", name)?;
        }
        match &self.shm {
            Some(shm) => plan.bind_host(
                path_str(shm)?,
                true,
                hardened,
                0,
                "/dev/shm",
                Create::Dir(0o1777),
                "bind the pod's /dev/shm",
            )?,
            None => plan.new_fs(
                "tmpfs",
                &[("mode", "1777"), ("size", "65536k")],
                hardened,
                "/dev/shm",
                Create::Dir(0o1777),
                "tmpfs /dev/shm",
            )?,
        }

        // sysfs of the (joined) network namespace, read-only.
        plan.new_fs(
            "sysfs",
            &[],
            MOUNT_ATTR_RDONLY | hardened,
            "/sys",
            Create::Dir(0o555),
            "sysfs",
        )?;
        if self.cgroup2 {
            plan.new_fs(
                "cgroup2",
                &[],
                MOUNT_ATTR_RDONLY | hardened,
                "/sys/fs/cgroup",
                Create::Nothing,
                "cgroup2 of the container's cgroup namespace",
            )?;
        }

        // Volumes, parents before children (as container runtimes sort
        // them), from the sources the parent opened.
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
            let create = if metadata.is_dir() {
                Create::Dir(0o755)
            } else {
                Create::File
            };
            let index = plan.sources.len();
            plan.sources.push(Source {
                path: cstring(&bind.source)?,
                shown: bind.source.clone(),
                target: bind.target.clone(),
                read_only: bind.read_only,
            });
            let at = relative(&bind.target)?;
            plan.push(
                OpKind::BindSource { index, at, create },
                "bind a volume",
                &bind.target,
            );
        }

        // kubelet's masked and read-only paths, over everything above.
        for path in MASKED_PATHS {
            let at = relative(Path::new(path))?;
            plan.push(OpKind::Mask { at }, "mask a path", Path::new(path));
        }
        for path in READONLY_PATHS {
            let at = relative(Path::new(path))?;
            plan.push(
                OpKind::ReadOnly { at },
                "make a path read-only",
                Path::new(path),
            );
        }

        plan.push(OpKind::Chdir(cstring(&root)?), "enter the new root", &root);
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
            plan.push(
                OpKind::OpenRoot(CString::from(c"/")),
                "open the new root",
                Path::new("/"),
            );
            let at = relative(dir)?;
            plan.push(
                OpKind::MakeDir { at, mode: 0o755 },
                "create the working directory",
                dir,
            );
        }
        if self.read_only {
            plan.push(
                OpKind::RootReadOnly,
                "make the root read-only",
                Path::new("/"),
            );
        }
        Ok(Rootfs {
            ops: plan.ops,
            sources: plan.sources,
        })
    }
}

impl RootfsSpec {
    /// The overlay at `root`: the image's layers (or the host's `/`) under
    /// the writable `upper`; nodev (a node made in the writable layer is
    /// never usable), setuid binaries of the image kept.
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
                libc::MS_NODEV,
                Some(&options),
                what,
            );
        }
        let mut layer_options = self
            .layers
            .iter()
            .map(|l| Ok((CString::from(c"lowerdir+"), cstring(l)?)))
            .collect::<Result<Vec<_>, RootfsError>>()?;
        layer_options.push((CString::from(c"upperdir"), cstring(upper)?));
        layer_options.push((CString::from(c"workdir"), cstring(work)?));
        let kind = OpKind::OverlayLayers {
            options: layer_options,
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

/// An absolute container path as the path below the root the resolver
/// takes (`/dev/pts` is `dev/pts`).
fn relative(path: &Path) -> Result<CString, RootfsError> {
    cstring(path.strip_prefix("/").unwrap_or(path))
}

fn text(s: &str) -> Result<CString, RootfsError> {
    CString::new(s).map_err(|_| RootfsError::Nul(PathBuf::from(s)))
}

fn path_str(path: &Path) -> Result<&str, RootfsError> {
    path.to_str()
        .ok_or_else(|| RootfsError::Nul(path.to_path_buf()))
}

#[derive(Default)]
struct Plan {
    ops: Vec<Op>,
    sources: Vec<Source>,
}

impl Plan {
    fn push(&mut self, kind: OpKind, what: &'static str, path: &Path) {
        self.ops.push(Op::new(kind, what).at(path));
    }

    fn mount(
        &mut self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: libc::c_ulong,
        data: Option<&str>,
        what: &'static str,
    ) -> Result<(), RootfsError> {
        let kind = OpKind::Mount {
            source: source.map(text).transpose()?,
            target: cstring(target)?,
            fstype: fstype.map(text).transpose()?,
            flags,
            data: data.map(text).transpose()?,
        };
        self.ops.push(Op::new(kind, what).at(target));
        Ok(())
    }

    /// A new file system mounted at the container path `at`.
    fn new_fs(
        &mut self,
        fstype: &str,
        options: &[(&str, &str)],
        attrs: u64,
        at: &str,
        create: Create,
        what: &'static str,
    ) -> Result<(), RootfsError> {
        let kind = OpKind::NewFs {
            fstype: text(fstype)?,
            options: options
                .iter()
                .map(|(k, v)| Ok((text(k)?, text(v)?)))
                .collect::<Result<_, RootfsError>>()?,
            attrs,
            at: relative(Path::new(at))?,
            create,
        };
        self.push(kind, what, Path::new(at));
        Ok(())
    }

    /// A bind of a host path (trusted: the supervisor's, not the
    /// container's), opened in the child's mount namespace before
    /// pivot_root, at the container path `at`.
    #[expect(clippy::too_many_arguments, reason = "one plain record of a mount")]
    fn bind_host(
        &mut self,
        source: &str,
        recursive: bool,
        set: u64,
        clear: u64,
        at: &str,
        create: Create,
        what: &'static str,
    ) -> Result<(), RootfsError> {
        let kind = OpKind::BindHost {
            source: text(source)?,
            recursive,
            set,
            clear,
            at: relative(Path::new(at))?,
            create,
        };
        self.push(kind, what, Path::new(at));
        Ok(())
    }

    fn mkdir(&mut self, path: &Path, mode: u32) -> Result<(), RootfsError> {
        self.ops
            .push(Op::new(OpKind::Mkdir(cstring(path)?, mode), "create a directory").at(path));
        Ok(())
    }

    /// The symlink `name` in the container directory `dir`, to `to`.
    fn symlink(&mut self, to: &str, dir: &str, name: &str) -> Result<(), RootfsError> {
        let kind = OpKind::Symlink {
            to: text(to)?,
            dir: relative(Path::new(dir))?,
            name: text(name)?,
        };
        self.push(kind, "create a symlink", &Path::new(dir).join(name));
        Ok(())
    }
}

/// A volume source, opened by the parent before fork.
#[derive(Debug, Clone)]
struct Source {
    path: CString,
    shown: PathBuf,
    target: PathBuf,
    read_only: bool,
}

#[derive(Debug, Clone)]
enum OpKind {
    /// mount(2) on a host path of the staging area (trusted).
    Mount {
        source: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: libc::c_ulong,
        data: Option<CString>,
    },
    /// An overlay whose lower layers do not fit in one option string:
    /// made with the new mount API (`lowerdir+` once per layer, then
    /// `upperdir`, `workdir`) and moved onto a host path of the staging
    /// area.
    OverlayLayers {
        options: Vec<(CString, CString)>,
        target: CString,
    },
    /// mkdir(2) of a host path of the staging area.
    Mkdir(CString, u32),
    /// Open this directory as the root the next steps resolve in.
    OpenRoot(CString),
    /// A new file system (fsopen, fsmount) moved onto `at`.
    NewFs {
        fstype: CString,
        options: Vec<(CString, CString)>,
        attrs: u64,
        at: CString,
        create: Create,
    },
    /// A detached copy of a host path's mount moved onto `at`.
    BindHost {
        source: CString,
        recursive: bool,
        set: u64,
        clear: u64,
        at: CString,
        create: Create,
    },
    /// The parent's detached source `index` moved onto `at`.
    BindSource {
        index: usize,
        at: CString,
        create: Create,
    },
    /// /dev/null over a file, an empty read-only tmpfs over a directory;
    /// nothing when the kernel has no such path.
    Mask {
        at: CString,
    },
    /// A read-only bind of the path over itself; nothing when absent.
    ReadOnly {
        at: CString,
    },
    /// symlinkat in the directory `dir`.
    Symlink {
        to: CString,
        dir: CString,
        name: CString,
    },
    /// A directory (and its missing parents) in the root.
    MakeDir {
        at: CString,
        mode: u32,
    },
    Chdir(CString),
    PivotRoot,
    DetachOldRoot,
    /// Make the mount at `/` read-only (mount_setattr: its other flags,
    /// nodev among them, are kept).
    RootReadOnly,
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

/// A prepared root filesystem: the system calls to make, in order, and
/// the volume sources the parent opens before fork.
#[derive(Debug, Clone)]
pub struct Rootfs {
    ops: Vec<Op>,
    sources: Vec<Source>,
}

/// The step of [`Rootfs::apply`] that failed, and its errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootfsFailure {
    /// Index of the failed step; [`Rootfs::describe`] names it.
    pub step: usize,
    /// The errno.
    pub errno: i32,
}

/// `mount_setattr`'s propagation value for a private mount.
const PRIVATE: u64 = libc::MS_PRIVATE;

impl Rootfs {
    /// Open every volume source as a detached copy of its mount tree
    /// (open_tree `OPEN_TREE_CLONE | AT_RECURSIVE`), private (nothing the
    /// container mounts beneath it propagates to the host), nodev, and
    /// read-only when asked (recursively): in the caller's mount namespace,
    /// before fork, so `/proc/self/fd/<n>` is the caller's fd `n`. The
    /// child moves each onto its resolved destination; the fds must stay
    /// open until the spawn has returned.
    pub(crate) fn open_sources(&self) -> Result<Vec<OwnedFd>, RootfsError> {
        self.sources
            .iter()
            .map(|source| {
                let error = |errno| RootfsError::OpenSource {
                    path: source.shown.clone(),
                    target: source.target.clone(),
                    source: std::io::Error::from_raw_os_error(errno),
                };
                let fd = sys::open_tree_owned(
                    libc::AT_FDCWD,
                    &source.path,
                    sys::OPEN_TREE_CLONE | libc::AT_RECURSIVE as u32,
                )
                .map_err(error)?;
                let mut set = MOUNT_ATTR_NODEV;
                if source.read_only {
                    set |= MOUNT_ATTR_RDONLY;
                }
                sys::mount_setattr(fd.as_raw_fd(), true, set, 0, PRIVATE).map_err(error)?;
                Ok(fd)
            })
            .collect()
    }

    /// Whether cgroup2 is mounted at /sys/fs/cgroup ([`RootfsSpec::cgroup2`]).
    pub(crate) fn mounts_cgroup2(&self) -> bool {
        self.ops.iter().any(
            |op| matches!(&op.kind, OpKind::NewFs { fstype, .. } if fstype.as_bytes() == b"cgroup2"),
        )
    }

    /// Make the root filesystem. Runs in the child between fork and exec, in
    /// its own mount namespace and final PID namespace: only system calls,
    /// no allocation. `sources` are the fds of [`Rootfs::open_sources`].
    pub(crate) fn apply(&self, sources: &[RawFd]) -> Result<(), RootfsFailure> {
        let mut root: RawFd = -1;
        for (step, op) in self.ops.iter().enumerate() {
            let result = apply_op(&op.kind, &mut root, sources);
            result.map_err(|errno| {
                if root >= 0 {
                    sys::close(root);
                }
                RootfsFailure { step, errno }
            })?;
        }
        if root >= 0 {
            sys::close(root);
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

/// Move the detached mount `mount` onto the resolved `target`; both closed.
fn move_onto(mount: Result<RawFd, i32>, target: RawFd) -> Result<(), i32> {
    let result = mount.and_then(|m| {
        let moved = sys::move_mount(m, target);
        sys::close(m);
        moved
    });
    sys::close(target);
    result
}

/// Resolve `at` in `root` as `create` says.
fn resolve_at(root: RawFd, at: &CStr, create: Create) -> Result<RawFd, i32> {
    resolve::resolve(root, at.to_bytes(), create)
}

/// One step of [`Rootfs::apply`]. Child-safe.
fn apply_op(kind: &OpKind, root: &mut RawFd, sources: &[RawFd]) -> Result<(), i32> {
    match kind {
        OpKind::Mount {
            source,
            target,
            fstype,
            flags,
            data,
        } => crate::sys::mount(
            source.as_deref(),
            target,
            fstype.as_deref(),
            *flags,
            data.as_deref(),
        ),
        OpKind::OverlayLayers { options, target } => {
            let target = crate::sys::open(target, libc::O_PATH | libc::O_DIRECTORY, 0)?;
            move_onto(sys::new_fs(c"overlay", options, MOUNT_ATTR_NODEV), target)
        }
        OpKind::Mkdir(path, mode) => crate::sys::mkdir_exist_ok(path, *mode),
        OpKind::OpenRoot(path) => {
            let fd = crate::sys::open(path, libc::O_PATH | libc::O_DIRECTORY, 0)?;
            if *root >= 0 {
                sys::close(*root);
            }
            *root = fd;
            Ok(())
        }
        OpKind::NewFs {
            fstype,
            options,
            attrs,
            at,
            create,
        } => {
            let target = resolve_at(*root, at, *create)?;
            move_onto(sys::new_fs(fstype, options, *attrs), target)
        }
        OpKind::BindHost {
            source,
            recursive,
            set,
            clear,
            at,
            create,
        } => {
            let target = resolve_at(*root, at, *create)?;
            let mut flags = sys::OPEN_TREE_CLONE;
            if *recursive {
                flags |= libc::AT_RECURSIVE as u32;
            }
            let mount =
                sys::open_tree(libc::AT_FDCWD, source, flags).and_then(
                    |m| match sys::mount_setattr(m, *recursive, *set, *clear, 0) {
                        Ok(()) => Ok(m),
                        Err(e) => {
                            sys::close(m);
                            Err(e)
                        }
                    },
                );
            move_onto(mount, target)
        }
        OpKind::BindSource { index, at, create } => {
            let source = *sources.get(*index).ok_or(libc::EBADF)?;
            let target = resolve_at(*root, at, *create)?;
            let moved = sys::move_mount(source, target);
            sys::close(target);
            moved
        }
        OpKind::Mask { at } => {
            let target = match resolve_at(*root, at, Create::Nothing) {
                Err(libc::ENOENT) => return Ok(()),
                other => other?,
            };
            let mount = match sys::is_dir(target) {
                Ok(true) => sys::new_fs(
                    c"tmpfs",
                    &[],
                    MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
                ),
                Ok(false) => sys::open_tree(libc::AT_FDCWD, c"/dev/null", sys::OPEN_TREE_CLONE),
                Err(e) => Err(e),
            };
            move_onto(mount, target)
        }
        OpKind::ReadOnly { at } => {
            let target = match resolve_at(*root, at, Create::Nothing) {
                Err(libc::ENOENT) => return Ok(()),
                other => other?,
            };
            let flags = sys::OPEN_TREE_CLONE | libc::AT_RECURSIVE as u32;
            let mount = sys::open_tree(target, c"", flags).and_then(|m| {
                let set =
                    MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
                match sys::mount_setattr(m, true, set, 0, 0) {
                    Ok(()) => Ok(m),
                    Err(e) => {
                        sys::close(m);
                        Err(e)
                    }
                }
            });
            move_onto(mount, target)
        }
        OpKind::Symlink { to, dir, name } => {
            let dir = resolve_at(*root, dir, Create::Nothing)?;
            let made = match sys::symlinkat(to, dir, name) {
                Err(libc::EEXIST) => Ok(()),
                other => other,
            };
            sys::close(dir);
            made
        }
        OpKind::MakeDir { at, mode } => {
            let fd = resolve_at(*root, at, Create::Dir(*mode))?;
            sys::close(fd);
            Ok(())
        }
        OpKind::Chdir(path) => crate::sys::chdir(path),
        OpKind::PivotRoot => crate::sys::pivot_root_here(),
        OpKind::DetachOldRoot => crate::sys::umount2(c".", libc::MNT_DETACH),
        OpKind::RootReadOnly => {
            let fd = crate::sys::open(c"/", libc::O_PATH | libc::O_DIRECTORY, 0)?;
            let result = sys::mount_setattr(fd, false, MOUNT_ATTR_RDONLY, 0, 0);
            sys::close(fd);
            result
        }
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
            .position(|d| d == "create the working directory (/srv/app)")
            .unwrap();
        assert!(made > pivot, "{steps:?}");
    }

    /// The index of the plan's step described as `s`; panics listing
    /// every step when there is none.
    fn step_finder(rootfs: &Rootfs) -> impl Fn(&str) -> usize {
        let steps: Vec<String> = (0..rootfs.len()).map(|i| rootfs.describe(i)).collect();
        move |s: &str| {
            steps
                .iter()
                .position(|d| d == s)
                .unwrap_or_else(|| panic!("no step {s} in {steps:#?}"))
        }
    }

    /// Every mount of the plan and whether it may hold usable device nodes.
    fn device_capable_mounts(rootfs: &Rootfs) -> Vec<String> {
        let mut out = Vec::new();
        for (i, op) in rootfs.ops.iter().enumerate() {
            let nodev = match &op.kind {
                OpKind::Mount { flags, fstype, .. } => {
                    fstype.is_none() || flags & libc::MS_NODEV != 0
                }
                OpKind::OverlayLayers { .. } => true,
                OpKind::NewFs { attrs, .. } => attrs & MOUNT_ATTR_NODEV != 0,
                OpKind::BindHost { set, .. } => set & MOUNT_ATTR_NODEV != 0,
                _ => true,
            };
            if !nodev {
                out.push(rootfs.describe(i));
            }
        }
        out
    }

    #[test]
    fn every_mount_is_nodev_but_the_standard_nodes_and_devpts() {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = RootfsSpec::new("/run/pod/c/rootfs")
            .shm(dir.path())
            .bind(BindMount {
                source: dir.path().to_path_buf(),
                target: PathBuf::from("/data"),
                read_only: false,
            })
            .prepare()
            .unwrap();
        let mut expected: Vec<String> = DEVICE_NODES
            .iter()
            .map(|n| format!("bind a device node (/dev/{n})"))
            .collect();
        expected.push("devpts (/dev/pts)".into());
        let mut got = device_capable_mounts(&rootfs);
        got.sort();
        expected.sort();
        assert_eq!(got, expected);
        // The standard nodes clear nodev explicitly; the overlay sets it.
        assert!(rootfs.ops.iter().any(|op| matches!(
            &op.kind,
            OpKind::BindHost { clear, .. } if clear & MOUNT_ATTR_NODEV != 0
        )));
        assert!(rootfs.ops.iter().any(|op| matches!(
            &op.kind,
            OpKind::Mount { fstype: Some(t), flags, .. }
                if t.as_bytes() == b"overlay" && flags & libc::MS_NODEV != 0
        )));
        // The volume is the parent's detached source, made nodev there.
        assert_eq!(rootfs.sources.len(), 1);
    }

    #[test]
    fn masks_and_read_only_paths_come_after_the_volumes_before_pivot() {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = RootfsSpec::new("/run/pod/c/rootfs")
            .bind(BindMount {
                source: dir.path().to_path_buf(),
                target: PathBuf::from("/proc/driver/x"),
                read_only: true,
            })
            .prepare()
            .unwrap();
        let find = step_finder(&rootfs);
        let volume = find("bind a volume (/proc/driver/x)");
        let pivot = find("pivot_root");
        for path in MASKED_PATHS {
            let mask = find(&format!("mask a path ({path})"));
            assert!(volume < mask && mask < pivot, "{path}");
        }
        for path in READONLY_PATHS {
            let ro = find(&format!("make a path read-only ({path})"));
            assert!(volume < ro && ro < pivot, "{path}");
        }
        assert!(find("proc (/proc)") < find("sysfs (/sys)"));
        assert!(find("sysfs (/sys)") < volume);
        assert!(rootfs.sources[0].read_only);
    }

    #[test]
    fn cgroup2_is_mounted_only_when_asked() {
        let plain = RootfsSpec::new("/run/pod/c/rootfs").prepare().unwrap();
        assert!(!plain.mounts_cgroup2());
        let v2 = RootfsSpec::new("/run/pod/c/rootfs")
            .cgroup2(true)
            .prepare()
            .unwrap();
        assert!(v2.mounts_cgroup2());
        let steps: Vec<String> = (0..v2.len()).map(|i| v2.describe(i)).collect();
        let sys = steps.iter().position(|d| d == "sysfs (/sys)").unwrap();
        let cg = steps
            .iter()
            .position(|d| d == "cgroup2 of the container's cgroup namespace (/sys/fs/cgroup)")
            .unwrap();
        assert!(sys < cg, "{steps:?}");
        let read_only_nodev = v2.ops.iter().any(|op| {
            matches!(&op.kind, OpKind::NewFs { fstype, attrs, create, .. }
                if fstype.as_bytes() == b"cgroup2"
                    && *attrs == MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC
                    && *create == Create::Nothing)
        });
        assert!(read_only_nodev);
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
    fn volumes_are_resolved_in_the_root_and_the_root_made_read_only_after_pivot() {
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
        let find = step_finder(&rootfs);
        let open_root = find("open the new root (/run/pod/c/rootfs/root)");
        let bind = find("bind a volume (/www/index.html)");
        let pivot = find("pivot_root");
        let root_ro = find("make the root read-only (/)");
        assert!(open_root < bind && bind < pivot && pivot < root_ro);
        // A file bind: its mount point is created as a file, in the root.
        assert!(matches!(
            &rootfs.ops[bind].kind,
            OpKind::BindSource { index: 0, at, create: Create::File }
                if at.as_bytes() == b"www/index.html"
        ));
        assert!(rootfs.sources[0].read_only);
    }
}
