//! Pod volumes and their mounts: [`Volume`] (emptyDir, hostPath, and the
//! files of a ConfigMap or Secret of the same manifest, resolved here) and
//! [`VolumeMount`], with their validators. Volume types that need a cluster
//! are refused. Creating, filling and mounting volumes is
//! [`crate::volumes`]' work.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::names::{check_label, clean_absolute, clean_relative};
use super::resources::bytes;
use super::{Ctx, DataKind, Result};
use crate::manifest;

/// A pod volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// DNS label, unique in the pod.
    pub name: String,
    /// What backs it.
    pub source: VolumeSource,
}

/// What backs a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSource {
    /// A directory in the pod's state dir (disk) or a tmpfs (Memory).
    EmptyDir {
        /// tmpfs when true.
        memory: bool,
        /// `sizeLimit` in bytes.
        size_limit: Option<u64>,
    },
    /// A host path.
    HostPath {
        /// Absolute host path.
        path: PathBuf,
        /// Check or create.
        kind: HostPathType,
    },
    /// Files from a ConfigMap or Secret, resolved from the same manifest.
    Files {
        /// Which object.
        origin: FilesOrigin,
        /// Files to write (empty for a missing optional object).
        files: Vec<VolumeFile>,
    },
}

/// Where a [`VolumeSource::Files`] volume comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilesOrigin {
    /// `configMap.name`.
    ConfigMap(String),
    /// `secret.secretName`.
    Secret(String),
}

/// One file of a configMap/secret volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeFile {
    /// Relative, clean path inside the volume.
    pub path: PathBuf,
    /// Content.
    pub data: Vec<u8>,
    /// Permission bits (default 0644).
    pub mode: u32,
}

/// `hostPath.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostPathType {
    /// `""`: no check.
    Unchecked,
    /// Create the directory (0755) if missing.
    DirectoryOrCreate,
    /// Must be a directory.
    Directory,
    /// Create an empty file (0644) if missing.
    FileOrCreate,
    /// Must be a file.
    File,
    /// Must be a UNIX socket.
    Socket,
    /// Must be a character device.
    CharDevice,
    /// Must be a block device.
    BlockDevice,
}

/// A mount of a pod volume into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    /// The volume's name (it exists in [`PodSpec::volumes`]).
    pub volume: String,
    /// Absolute, clean path in the container.
    pub mount_path: PathBuf,
    /// Read-only mount.
    pub read_only: bool,
    /// Relative, clean path inside the volume.
    pub sub_path: Option<PathBuf>,
}

/// `spec.volumes`, names unique.
pub(super) fn volumes(ctx: &Ctx<'_>, raw: &[manifest::Volume], p: &str) -> Result<Vec<Volume>> {
    let mut volumes: Vec<Volume> = Vec::new();
    for (i, v) in raw.iter().enumerate() {
        let vp = format!("{p}.volumes[{i}]");
        let vol = volume(ctx, v, &vp)?;
        if volumes.iter().any(|o| o.name == vol.name) {
            return Err(ctx.err(
                format!("{vp}.name"),
                Some(&vol.name),
                "duplicate volume name",
            ));
        }
        volumes.push(vol);
    }
    Ok(volumes)
}

/// The source a volume names (at most one).
enum RawSource<'a> {
    EmptyDir(&'a manifest::EmptyDir),
    HostPath(&'a manifest::HostPath),
    ConfigMap(&'a manifest::ConfigMapVolume),
    Secret(&'a manifest::SecretVolume),
}

fn volume(ctx: &Ctx<'_>, v: &manifest::Volume, vp: &str) -> Result<Volume> {
    let name = v
        .name
        .as_deref()
        .ok_or_else(|| ctx.err(format!("{vp}.name"), None, "missing"))?;
    check_label(ctx.file, &ctx.doc, &format!("{vp}.name"), name)?;
    let unsupported = [
        ("persistentVolumeClaim", v.persistent_volume_claim.is_some()),
        ("projected", v.projected.is_some()),
        ("downwardAPI", v.downward_api.is_some()),
        ("ephemeral", v.ephemeral.is_some()),
        ("image", v.image.is_some()),
        ("csi", v.csi.is_some()),
        ("nfs", v.nfs.is_some()),
        ("iscsi", v.iscsi.is_some()),
        ("gitRepo", v.git_repo.is_some()),
        ("local", v.local.is_some()),
    ];
    if let Some((field, _)) = unsupported.iter().find(|(_, present)| *present) {
        return Err(ctx.err(
            format!("{vp}.{field}"),
            None,
            "volume type not supported (supported: emptyDir, hostPath, configMap, secret)",
        ));
    }
    let raw = ctx.at_most_one(
        vp,
        [
            ("emptyDir", v.empty_dir.as_ref().map(RawSource::EmptyDir)),
            ("hostPath", v.host_path.as_ref().map(RawSource::HostPath)),
            ("configMap", v.config_map.as_ref().map(RawSource::ConfigMap)),
            ("secret", v.secret.as_ref().map(RawSource::Secret)),
        ],
    )?;
    let source = match raw {
        Some(RawSource::HostPath(hp)) => host_path(ctx, hp, vp)?,
        Some(RawSource::ConfigMap(cm)) => files(
            ctx,
            FilesRef {
                kind: DataKind::ConfigMap,
                field: "configMap",
                name_key: "name",
                name: cm.name.as_deref(),
                items: cm.items.as_deref(),
                default_mode: cm.default_mode,
                optional: cm.optional,
            },
            vp,
        )?,
        Some(RawSource::Secret(s)) => files(
            ctx,
            FilesRef {
                kind: DataKind::Secret,
                field: "secret",
                name_key: "secretName",
                name: s.secret_name.as_deref(),
                items: s.items.as_deref(),
                default_mode: s.default_mode,
                optional: s.optional,
            },
            vp,
        )?,
        Some(RawSource::EmptyDir(ed)) => empty_dir(ctx, ed, vp)?,
        // No source at all is an emptyDir, as Kubernetes defaults it.
        None => empty_dir(ctx, &manifest::EmptyDir::default(), vp)?,
    };
    Ok(Volume {
        name: name.to_owned(),
        source,
    })
}

fn host_path(ctx: &Ctx<'_>, hp: &manifest::HostPath, vp: &str) -> Result<VolumeSource> {
    let path_field = format!("{vp}.hostPath.path");
    let text = hp
        .path
        .as_deref()
        .ok_or_else(|| ctx.err(&path_field, None, "missing"))?;
    let path = if text == "/" {
        PathBuf::from("/")
    } else {
        clean_absolute(text).map_err(|r| ctx.err(&path_field, Some(text), r))?
    };
    let kind = match hp.type_.as_deref() {
        None | Some("") => HostPathType::Unchecked,
        Some("DirectoryOrCreate") => HostPathType::DirectoryOrCreate,
        Some("Directory") => HostPathType::Directory,
        Some("FileOrCreate") => HostPathType::FileOrCreate,
        Some("File") => HostPathType::File,
        Some("Socket") => HostPathType::Socket,
        Some("CharDevice") => HostPathType::CharDevice,
        Some("BlockDevice") => HostPathType::BlockDevice,
        Some(other) => {
            return Err(ctx.err(
                format!("{vp}.hostPath.type"),
                Some(other),
                "must be \"\", DirectoryOrCreate, Directory, FileOrCreate, File, Socket, CharDevice or BlockDevice",
            ));
        }
    };
    Ok(VolumeSource::HostPath { path, kind })
}

fn empty_dir(ctx: &Ctx<'_>, ed: &manifest::EmptyDir, vp: &str) -> Result<VolumeSource> {
    let memory = match ed.medium.as_deref() {
        None | Some("") => false,
        Some("Memory") => true,
        Some(other) => {
            return Err(ctx.err(
                format!("{vp}.emptyDir.medium"),
                Some(other),
                "must be \"\" or Memory",
            ));
        }
    };
    let size_limit = ed
        .size_limit
        .as_ref()
        .map(|q| bytes(ctx, &format!("{vp}.emptyDir.sizeLimit"), q))
        .transpose()?;
    Ok(VolumeSource::EmptyDir { memory, size_limit })
}

/// A configMap or secret volume as written: `{field}.{name_key}` names
/// the object.
struct FilesRef<'a> {
    kind: DataKind,
    field: &'static str,
    name_key: &'static str,
    name: Option<&'a str>,
    items: Option<&'a [manifest::KeyToPath]>,
    default_mode: Option<i64>,
    optional: Option<bool>,
}

fn files(ctx: &Ctx<'_>, f: FilesRef<'_>, vp: &str) -> Result<VolumeSource> {
    let sp = format!("{vp}.{}", f.field);
    let name_field = format!("{sp}.{}", f.name_key);
    let name = f
        .name
        .ok_or_else(|| ctx.err(&name_field, None, "missing"))?;
    let default_mode = mode(ctx, &format!("{sp}.defaultMode"), f.default_mode, 0o644)?;
    let optional = f.optional.unwrap_or(false);
    let origin = match f.kind {
        DataKind::ConfigMap => FilesOrigin::ConfigMap(name.to_owned()),
        DataKind::Secret => FilesOrigin::Secret(name.to_owned()),
    };
    let Some(obj) = ctx.data_object(f.kind, name, &name_field, optional)? else {
        return Ok(VolumeSource::Files {
            origin,
            files: Vec::new(),
        });
    };
    let mut files = Vec::new();
    match f.items {
        None | Some([]) => {
            for (k, v) in &obj.data {
                files.push(VolumeFile {
                    path: PathBuf::from(k),
                    data: v.clone(),
                    mode: default_mode,
                });
            }
        }
        Some(items) => {
            let mut seen = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                let ip = format!("{sp}.items[{i}]");
                let key = item
                    .key
                    .as_deref()
                    .ok_or_else(|| ctx.err(format!("{ip}.key"), None, "missing"))?;
                let path_text = item
                    .path
                    .as_deref()
                    .ok_or_else(|| ctx.err(format!("{ip}.path"), None, "missing"))?;
                let path = clean_relative(path_text)
                    .map_err(|r| ctx.err(format!("{ip}.path"), Some(path_text), r))?;
                if !seen.insert(path.clone()) {
                    return Err(ctx.err(format!("{ip}.path"), Some(path_text), "duplicate path"));
                }
                let m = mode(ctx, &format!("{ip}.mode"), item.mode, default_mode)?;
                match obj.data.get(key) {
                    Some(data) => files.push(VolumeFile {
                        path,
                        data: data.clone(),
                        mode: m,
                    }),
                    None if optional => {}
                    None => {
                        return Err(ctx.err(
                            format!("{ip}.key"),
                            Some(key),
                            format!("{} {name} has no such key", f.kind),
                        ));
                    }
                }
            }
        }
    }
    Ok(VolumeSource::Files { origin, files })
}

fn mode(ctx: &Ctx<'_>, path: &str, m: Option<i64>, default: u32) -> Result<u32> {
    match m {
        None => Ok(default),
        Some(n) if (0..=0o777).contains(&n) => Ok(u32::try_from(n).unwrap_or(default)),
        Some(n) => Err(ctx.err(
            path,
            Some(&format!("{n:#o}")),
            "must be between 0 and 0777 (octal)",
        )),
    }
}

/// A container's `volumeMounts`: each names a pod volume, mount paths
/// unique in the container.
pub(super) fn mounts(
    ctx: &Ctx<'_>,
    raw: &[manifest::VolumeMount],
    volumes: &[Volume],
    cp: &str,
) -> Result<Vec<VolumeMount>> {
    let mut mounts: Vec<VolumeMount> = Vec::new();
    for (i, m) in raw.iter().enumerate() {
        let mp = format!("{cp}.volumeMounts[{i}]");
        let vol = m
            .name
            .as_deref()
            .ok_or_else(|| ctx.err(format!("{mp}.name"), None, "missing"))?;
        if !volumes.iter().any(|v| v.name == vol) {
            return Err(ctx.err(
                format!("{mp}.name"),
                Some(vol),
                "no volume of this name in spec.volumes",
            ));
        }
        let text = m
            .mount_path
            .as_deref()
            .ok_or_else(|| ctx.err(format!("{mp}.mountPath"), None, "missing"))?;
        let mount_path =
            clean_absolute(text).map_err(|r| ctx.err(format!("{mp}.mountPath"), Some(text), r))?;
        if mounts.iter().any(|o| o.mount_path == mount_path) {
            return Err(ctx.err(
                format!("{mp}.mountPath"),
                Some(text),
                "mounted twice in this container",
            ));
        }
        if m.sub_path_expr.is_some() {
            return Err(ctx.err(
                format!("{mp}.subPathExpr"),
                None,
                "not supported; use subPath",
            ));
        }
        for (field, value, only, why) in [
            (
                "mountPropagation",
                m.mount_propagation.as_deref(),
                "None",
                "not supported: mounts are private (None)",
            ),
            (
                "recursiveReadOnly",
                m.recursive_read_only.as_deref(),
                "Disabled",
                "not supported (Disabled only)",
            ),
        ] {
            if let Some(other) = value.filter(|v| *v != only) {
                return Err(ctx.err(format!("{mp}.{field}"), Some(other), why));
            }
        }
        let sub_path = match m.sub_path.as_deref() {
            None | Some("") => None,
            Some(s) => {
                Some(clean_relative(s).map_err(|r| ctx.err(format!("{mp}.subPath"), Some(s), r))?)
            }
        };
        mounts.push(VolumeMount {
            volume: vol.to_owned(),
            mount_path,
            read_only: m.read_only.unwrap_or(false),
            sub_path,
        });
    }
    Ok(mounts)
}
