//! Pod volumes on the host side: the directories, tmpfs mounts and files
//! that back `emptyDir`, `configMap`, `secret`, `downwardAPI`,
//! `projected`, `persistentVolumeClaim` and `hostPath` volumes.
//!
//! Everything created lives under the pod's volume directory (in its state
//! dir) and is removed when the pod ends; an emptyDir outlives container
//! restarts because it belongs to the pod. The files of configMap, secret,
//! downwardAPI and projected volumes are written as kubelet's AtomicWriter
//! lays them out ([`atomic_writer`]). Two kinds live elsewhere because the
//! manifest asks for it by name: `hostPath` is checked against its `type`,
//! and only the `...OrCreate` types create anything; a claim's volume
//! lives under the volume root and outlives the pod ([`claims`]). With a
//! pod `fsGroup`, the volumes that support ownership management get it as
//! kubelet gives it ([`ownership`]). Mounting these into a container
//! happens in the container's own mount namespace (see `rootfs`).

pub mod atomic_writer;
pub mod claims;
pub mod ownership;
pub mod subpath;

pub use subpath::SubPathError;

use crate::spec::{
    FileContent, HostPathType, NodeAllocatable, PodSpec, Volume, VolumeFile, VolumeSource,
};
use nix::mount::{MntFlags, MsFlags};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A volume could not be prepared or removed.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("volume {volume}: {action} {path}: {source}")]
    Io {
        volume: String,
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("volume {volume}: mount tmpfs on {path}: {errno}")]
    Tmpfs {
        volume: String,
        path: PathBuf,
        errno: nix::errno::Errno,
    },
    #[error("volume {volume}: {source}")]
    Claim {
        volume: String,
        source: Box<claims::ClaimError>,
    },
    #[error("volume {volume}: set the fsGroup {gid} on {path}: {errno}")]
    Ownership {
        volume: String,
        gid: u32,
        path: PathBuf,
        errno: nix::errno::Errno,
    },
    #[error("volume {volume}: hostPath {path} is not a {expected} (type {kind:?})")]
    HostPathType {
        volume: String,
        path: PathBuf,
        expected: &'static str,
        kind: HostPathType,
    },
}

/// What the host gives a pod's volumes beyond its own volume dir.
#[derive(Debug, Clone, Default)]
pub struct VolumeHost {
    /// The root of the claims' volumes ([`claims::resolve_root`]).
    pub claims_root: PathBuf,
    /// What an unset limit read by a downwardAPI item is.
    pub node: NodeAllocatable,
}

/// The host paths backing a pod's volumes, by volume name.
#[derive(Debug, Default)]
pub struct PodVolumes {
    root: PathBuf,
    paths: BTreeMap<String, PathBuf>,
    tmpfs: Vec<(String, PathBuf)>,
    shm: Option<PathBuf>,
    /// The claims this pod holds while it runs.
    claims: Vec<claims::ClaimHold>,
}

/// The size of the pod's /dev/shm, as Docker and kubelet's sandboxes have it.
pub const SHM_SIZE: u64 = 64 * 1024 * 1024;
/// The pod's /dev/shm under the volume dir; no volume name (a DNS label)
/// can start with a dot.
const SHM_DIR: &str = ".shm";
/// The resolved subPaths, bound under the volume dir as kubelet binds them
/// under `volume-subpaths/`: `.subpaths/<container>/<mount index>`.
const SUBPATHS_DIR: &str = ".subpaths";

impl PodVolumes {
    /// Create every volume of `pod` under `root` (the pod's volume dir),
    /// its claims under `host.claims_root`. On error, whatever was created
    /// under `root` is removed again (a claim's volume is kept).
    pub fn prepare(
        pod: &PodSpec,
        root: &Path,
        host: &VolumeHost,
    ) -> Result<PodVolumes, VolumeError> {
        let mut volumes = PodVolumes {
            root: root.to_path_buf(),
            ..PodVolumes::default()
        };
        // Root only: no other user of the host reaches a pod's volumes or
        // secrets through here (a container sees only the volumes bound
        // into it, whatever the modes of their parents on the host).
        let private = create_dir(root, 0o700)
            .and_then(|()| fs::set_permissions(root, fs::Permissions::from_mode(0o700)));
        if let Err(source) = private {
            return Err(VolumeError::Io {
                volume: "*".to_string(),
                action: "create",
                path: root.to_path_buf(),
                source,
            });
        }
        let pod_memory_limit = pod_memory_limit(pod);
        for volume in &pod.volumes {
            if let Err(error) = volumes.prepare_one(pod, volume, host, pod_memory_limit) {
                volumes.remove();
                return Err(error);
            }
        }
        // The containers of a pod share one IPC namespace, so they share
        // one /dev/shm too: a tmpfs of the pod's.
        let shm = root.join(SHM_DIR);
        let made = create_dir(&shm, 0o1777)
            .map_err(|source| VolumeError::Io {
                volume: "/dev/shm".to_string(),
                action: "create",
                path: shm.clone(),
                source,
            })
            .and_then(|()| {
                mount_tmpfs(&shm, Some(SHM_SIZE)).map_err(|errno| VolumeError::Tmpfs {
                    volume: "/dev/shm".to_string(),
                    path: shm.clone(),
                    errno,
                })
            });
        if let Err(error) = made {
            volumes.remove();
            return Err(error);
        }
        volumes.tmpfs.push(("/dev/shm".to_string(), shm.clone()));
        volumes.shm = Some(shm);
        Ok(volumes)
    }

    /// The pod's /dev/shm (a tmpfs), bound into every container.
    pub fn shm(&self) -> Option<&Path> {
        self.shm.as_deref()
    }

    /// The host path of volume `name`.
    pub fn path(&self, name: &str) -> Option<&Path> {
        self.paths.get(name).map(PathBuf::as_path)
    }

    fn prepare_one(
        &mut self,
        pod: &PodSpec,
        volume: &Volume,
        host: &VolumeHost,
        pod_memory_limit: Option<u64>,
    ) -> Result<(), VolumeError> {
        let fs_group = pod.fs_group;
        let name = volume.name.as_str();
        let ownership = |path: &Path, gid: u32, read_only: bool| {
            ownership::set_volume_ownership(path, gid, read_only).map_err(|errno| {
                VolumeError::Ownership {
                    volume: name.to_string(),
                    gid,
                    path: path.to_path_buf(),
                    errno,
                }
            })
        };
        let io = |action: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| VolumeError::Io {
                volume: name.to_string(),
                action,
                path,
                source,
            }
        };
        let path = match &volume.source {
            VolumeSource::EmptyDir { memory, size_limit } => {
                let dir = self.root.join(name);
                create_dir(&dir, 0o777).map_err(io("create", &dir))?;
                if *memory {
                    // kubelet (emptydir calculateEmptyDirMemorySize): the
                    // sizeLimit, or the pod's memory limit when it is
                    // smaller or the sizeLimit is unset.
                    let size = match (*size_limit, pod_memory_limit) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    mount_tmpfs(&dir, size).map_err(|errno| VolumeError::Tmpfs {
                        volume: name.to_string(),
                        path: dir.clone(),
                        errno,
                    })?;
                    self.tmpfs.push((name.to_string(), dir.clone()));
                }
                // Kubernetes makes emptyDir world-writable, so any runAsUser
                // can use it.
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o777))
                    .map_err(io("chmod", &dir))?;
                dir
            }
            VolumeSource::HostPath { path, kind } => {
                check_host_path(name, path, *kind)?;
                path.clone()
            }
            VolumeSource::Files { files, .. } => {
                let dir = self.root.join(name);
                create_dir(&dir, 0o755).map_err(io("create", &dir))?;
                let payload = payload(files, &host.node);
                atomic_writer::write(&dir, &payload, |_| Ok(())).map_err(io("write", &dir))?;
                // kubelet: these volumes are read-only, so the group
                // gets read, not write (SetVolumeOwnership's roMask).
                if let Some(gid) = fs_group {
                    ownership(&dir, gid, true)?;
                }
                dir
            }
            VolumeSource::Claim { claim, read_only } => {
                let claim_error = |source| VolumeError::Claim {
                    volume: name.to_string(),
                    source: Box::new(source),
                };
                let hold = claims::ClaimPath::new(&host.claims_root, &pod.namespace, claim)
                    .and_then(|c| c.acquire())
                    .map_err(claim_error)?;
                let dir = hold.dir().to_path_buf();
                self.claims.push(hold);
                if let Some(gid) = fs_group {
                    ownership(&dir, gid, *read_only)?;
                }
                dir
            }
        };
        self.paths.insert(name.to_string(), path);
        Ok(())
    }

    /// Bind the subPath held by `fd` (see [`subpath::open`]) at the
    /// container's staging point for mount `index`, through
    /// `/proc/self/fd/<n>` (the very inode that was checked; nothing
    /// swapped in the volume since is followed), and return that point:
    /// the container binds it in its own mount namespace (a bind of an
    /// fd's path from another mount namespace is EINVAL). The staging dir
    /// is root's only, in no volume.
    pub fn stage_subpath(
        &self,
        container: &str,
        index: usize,
        fd: &std::os::fd::OwnedFd,
    ) -> Result<PathBuf, VolumeError> {
        use std::os::fd::AsRawFd;
        let point = self
            .root
            .join(SUBPATHS_DIR)
            .join(container)
            .join(index.to_string());
        let io = |action: &'static str| {
            let point = point.clone();
            move |source| VolumeError::Io {
                volume: format!("subPath of {container}"),
                action,
                path: point,
                source,
            }
        };
        let source = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let is_dir = fs::metadata(&source).map_err(io("inspect"))?.is_dir();
        if let Some(parent) = point.parent() {
            create_dir(parent, 0o700).map_err(io("create"))?;
        }
        if is_dir {
            create_dir(&point, 0o700).map_err(io("create"))?;
        } else {
            fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&point)
                .map(drop)
                .map_err(io("create"))?;
        }
        nix::mount::mount(
            Some(source.as_str()),
            &point,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|errno| io("bind")(std::io::Error::from(errno)))?;
        Ok(point)
    }

    /// Unmount and remove a container's staged subPaths (before it stages
    /// its next instance's: the instances that used them have bound them
    /// in their own mount namespaces already).
    pub fn clear_subpaths(&self, container: &str) {
        let dir = self.root.join(SUBPATHS_DIR).join(container);
        if dir.exists() {
            let _ = unmount_below(&dir);
            let _ = fs::remove_dir_all(&dir);
        }
    }

    /// Unmount the tmpfs volumes and remove the volume directory. Errors are
    /// returned after everything possible was removed.
    pub fn remove(&mut self) -> Vec<VolumeError> {
        let mut errors = Vec::new();
        // The staged subPaths are binds of volume (or host) directories:
        // never remove through them.
        let subpaths = self.root.join(SUBPATHS_DIR);
        let unbound = unmount_below(&subpaths);
        if !unbound.is_empty() {
            errors.extend(unbound.into_iter().map(|problem| VolumeError::Io {
                volume: "subPath".to_string(),
                action: "unmount",
                path: subpaths.clone(),
                source: std::io::Error::other(problem),
            }));
            return errors;
        }
        // A claim's volume stays; the pod lets go of it.
        self.claims.clear();
        for (volume, path) in self.tmpfs.drain(..) {
            if let Err(errno) = nix::mount::umount2(&path, MntFlags::MNT_DETACH) {
                errors.push(VolumeError::Tmpfs {
                    volume,
                    path,
                    errno,
                });
            }
        }
        if let Err(source) = fs::remove_dir_all(&self.root)
            && source.kind() != std::io::ErrorKind::NotFound
        {
            errors.push(VolumeError::Io {
                volume: "*".to_string(),
                action: "remove",
                path: self.root.clone(),
                source,
            });
        }
        self.paths.clear();
        errors
    }
}

/// The pod's memory limit as kubelet's `ResourceConfigForPod` has it: when
/// every container has one, their sum, or the largest init container's
/// when that is more (init containers run one at a time); else none.
pub fn pod_memory_limit(pod: &PodSpec) -> Option<u64> {
    let limit = |c: &crate::spec::Container| c.resources.limits.memory_limit_bytes;
    let apps = pod
        .containers
        .iter()
        .map(limit)
        .try_fold(0u64, |sum, l| l.map(|l| sum.saturating_add(l)))?;
    let init = pod
        .init_containers
        .iter()
        .map(limit)
        .try_fold(0u64, |max, l| l.map(|l| max.max(l)))?;
    Some(apps.max(init))
}

/// Unmount everything mounted at or below `dir` (deepest first): what a
/// killed run of the pod left mounted in its state dir.
pub fn unmount_below(dir: &Path) -> Vec<String> {
    let Ok(mountinfo) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut points: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| PathBuf::from(container::mount::unescape_mountinfo(point)))
        .filter(|point| point.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points
        .into_iter()
        .filter_map(|point| {
            nix::mount::umount2(&point, MntFlags::MNT_DETACH)
                .err()
                .map(|errno| format!("unmount {}: {errno}", point.display()))
        })
        .collect()
}

fn create_dir(path: &Path, mode: u32) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
}

fn mount_tmpfs(dir: &Path, size_limit: Option<u64>) -> Result<(), nix::errno::Errno> {
    let options = match size_limit {
        Some(bytes) => format!("mode=1777,size={bytes}"),
        None => "mode=1777".to_string(),
    };
    nix::mount::mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options.as_str()),
    )
}

/// The files of a volume as the AtomicWriter writes them, a
/// `resourceFieldRef` turned into its text for this node.
fn payload(files: &[VolumeFile], node: &NodeAllocatable) -> Vec<atomic_writer::PayloadFile> {
    files
        .iter()
        .map(|f| atomic_writer::PayloadFile {
            path: f.path.clone(),
            data: match &f.content {
                FileContent::Data(d) => d.clone(),
                FileContent::Resource(r) => r.value(node).into_bytes(),
            },
            mode: f.mode,
        })
        .collect()
}

fn check_host_path(volume: &str, path: &Path, kind: HostPathType) -> Result<(), VolumeError> {
    let metadata = fs::metadata(path);
    let wrong = |expected| VolumeError::HostPathType {
        volume: volume.to_string(),
        path: path.to_path_buf(),
        expected,
        kind,
    };
    let create_error = |action| {
        move |source| VolumeError::Io {
            volume: volume.to_string(),
            action,
            path: path.to_path_buf(),
            source,
        }
    };
    match kind {
        HostPathType::Unchecked => Ok(()),
        HostPathType::DirectoryOrCreate => match metadata {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(wrong("directory")),
            Err(_) => create_dir(path, 0o755).map_err(create_error("create")),
        },
        HostPathType::FileOrCreate => match metadata {
            Ok(m) if m.is_file() => Ok(()),
            Ok(_) => Err(wrong("file")),
            Err(_) => fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .open(path)
                .map(drop)
                .map_err(create_error("create")),
        },
        HostPathType::Directory => match metadata {
            Ok(m) if m.is_dir() => Ok(()),
            _ => Err(wrong("directory")),
        },
        HostPathType::File => match metadata {
            Ok(m) if m.is_file() => Ok(()),
            _ => Err(wrong("file")),
        },
        HostPathType::Socket => match metadata {
            Ok(m) if m.file_type().is_socket() => Ok(()),
            _ => Err(wrong("socket")),
        },
        HostPathType::CharDevice => match metadata {
            Ok(m) if m.file_type().is_char_device() => Ok(()),
            _ => Err(wrong("character device")),
        },
        HostPathType::BlockDevice => match metadata {
            Ok(m) if m.file_type().is_block_device() => Ok(()),
            _ => Err(wrong("block device")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::FilesOrigin;

    fn pod_with(volumes: Vec<Volume>) -> PodSpec {
        let mut pod = crate::spec::load_str(
            "test.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    command: [/bin/true]\n",
        )
        .unwrap()
        .pod;
        pod.volumes = volumes;
        pod
    }

    #[test]
    fn empty_dirs_and_files_are_created_under_the_root_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("volumes");
        let pod = pod_with(vec![
            Volume {
                name: "cache".into(),
                source: VolumeSource::EmptyDir {
                    memory: false,
                    size_limit: None,
                },
            },
            Volume {
                name: "config".into(),
                source: VolumeSource::Files {
                    origin: FilesOrigin::ConfigMap("cm".into()),
                    files: vec![
                        VolumeFile {
                            path: "index.html".into(),
                            content: FileContent::Data(b"hello".to_vec()),
                            mode: 0o644,
                        },
                        VolumeFile {
                            path: "sub/run.sh".into(),
                            content: FileContent::Data(b"#!/bin/sh".to_vec()),
                            mode: 0o755,
                        },
                    ],
                },
            },
        ]);
        let host = VolumeHost {
            claims_root: dir.path().join("claims"),
            ..VolumeHost::default()
        };
        let mut volumes = PodVolumes::prepare(&pod, &root, &host).unwrap();
        let cache = volumes.path("cache").unwrap();
        assert_eq!(
            fs::metadata(cache).unwrap().permissions().mode() & 0o7777,
            0o777
        );
        let config = volumes.path("config").unwrap().to_path_buf();
        assert_eq!(fs::read(config.join("index.html")).unwrap(), b"hello");
        let mode = fs::metadata(config.join("sub/run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        // kubelet's AtomicWriter layout.
        let data = fs::read_link(config.join(atomic_writer::DATA_DIR)).unwrap();
        assert!(data.to_string_lossy().starts_with("..20"), "{data:?}");
        assert_eq!(
            fs::read_link(config.join("index.html")).unwrap(),
            Path::new("..data/index.html")
        );
        assert!(volumes.remove().is_empty());
        assert!(!root.exists());
    }

    #[test]
    fn a_claim_is_outside_the_pod_dir_gets_the_fs_group_and_outlives_the_pod() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("volumes");
        let mut pod = pod_with(vec![Volume {
            name: "data".into(),
            source: VolumeSource::Claim {
                claim: "db".into(),
                read_only: false,
            },
        }]);
        pod.fs_group = Some(3456);
        let host = VolumeHost {
            claims_root: dir.path().join("claims"),
            ..VolumeHost::default()
        };
        let mut volumes = PodVolumes::prepare(&pod, &root, &host).unwrap();
        let data = volumes.path("data").unwrap().to_path_buf();
        assert_eq!(data, dir.path().join("claims/default/db"));
        let meta = fs::metadata(&data).unwrap();
        assert_eq!((meta.gid(), meta.mode() & 0o7777), (3456, 0o2775));
        fs::write(data.join("row"), b"1").unwrap();
        let claim = claims::ClaimPath::new(&host.claims_root, "default", "db").unwrap();
        assert!(claim.in_use().unwrap());
        assert!(volumes.remove().is_empty());
        assert!(!root.exists());
        assert_eq!(fs::read(data.join("row")).unwrap(), b"1");
        assert!(!claim.in_use().unwrap());
    }

    #[test]
    fn host_path_types_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, b"").unwrap();
        assert!(check_host_path("v", &file, HostPathType::File).is_ok());
        let error = check_host_path("v", &file, HostPathType::Directory).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "volume v: hostPath {} is not a directory (type Directory)",
                file.display()
            )
        );
        let created = dir.path().join("new/dir");
        check_host_path("v", &created, HostPathType::DirectoryOrCreate).unwrap();
        assert!(created.is_dir());
        assert!(check_host_path("v", &dir.path().join("missing"), HostPathType::Socket).is_err());
    }
}
