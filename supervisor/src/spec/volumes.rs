//! Pod volumes and their mounts: [`Volume`] (emptyDir, hostPath, a
//! persistentVolumeClaim's named local volume, and the files of
//! configMap, secret, downwardAPI and projected volumes, resolved here
//! from the same manifest) and [`VolumeMount`], with their validators.
//! Volume types that need a cluster are refused. Creating, filling and
//! mounting volumes is [`crate::volumes`]' work.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::downward::{self, ResourceRef};
use super::names::{check_label, check_subdomain, clean_absolute, clean_relative};
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
    /// A `persistentVolumeClaim`: a named local volume of the pod's
    /// namespace, kept across runs (see [`crate::volumes::claims`]).
    Claim {
        /// `claimName` (a DNS-1123 subdomain).
        claim: String,
        /// `readOnly`: every mount of it read-only.
        read_only: bool,
    },
    /// Files from a ConfigMap, Secret, the downward API or a projection
    /// of them, resolved from the same manifest, written as kubelet's
    /// AtomicWriter lays them out.
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
    /// `downwardAPI`.
    DownwardApi,
    /// `projected`.
    Projected,
}

/// One file of a configMap, secret, downwardAPI or projected volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeFile {
    /// Relative, clean path inside the volume (never starting with `..`).
    pub path: PathBuf,
    /// Content.
    pub content: FileContent,
    /// Permission bits (default 0644).
    pub mode: u32,
}

/// What a [`VolumeFile`] holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileContent {
    /// Bytes known from the manifest (a key, a pod field).
    Data(Vec<u8>),
    /// A container's limit or request, known once the node's allocatable
    /// resources are.
    Resource(ResourceRef),
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
    /// `subPath` or `subPathExpr`.
    pub sub_path: Option<SubPath>,
}

/// Where in its volume a mount starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubPath {
    /// `subPath`: relative, clean.
    Path(PathBuf),
    /// `subPathExpr` as written: `$(VAR)` is expanded from the container's
    /// env when it is created ([`SubPath::resolve`]).
    Expr(String),
}

/// A `subPathExpr` that cannot be used (CreateContainerConfigError).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubPathExprError {
    #[error("subPathExpr {expr:?}: missing value for {}", missing.join(", "))]
    Missing { expr: String, missing: Vec<String> },
    #[error("subPathExpr {expr:?} expands to {path:?}, which {reason}")]
    Invalid {
        expr: String,
        path: String,
        reason: &'static str,
    },
}

impl SubPath {
    /// The relative path, a `subPathExpr` expanded with `env` as kubelet's
    /// `ExpandContainerVolumeMounts` (pkg/kubelet/container/helpers.go)
    /// does: a variable that is unset or empty is an error naming it; the
    /// result may be neither absolute nor hold `..` (makeMounts,
    /// pkg/kubelet/kubelet_pods.go). An empty result is the volume itself.
    pub fn resolve(
        &self,
        env: &[(String, String)],
    ) -> std::result::Result<Option<PathBuf>, SubPathExprError> {
        let expr = match self {
            SubPath::Path(p) => return Ok(Some(p.clone())),
            SubPath::Expr(e) => e,
        };
        let missing = std::cell::RefCell::new(BTreeSet::new());
        let expanded = super::env::expand(expr, |name| {
            match env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()) {
                Some(v) if !v.is_empty() => Some(v),
                _ => {
                    missing.borrow_mut().insert(name.to_owned());
                    Some("")
                }
            }
        });
        let missing = missing.into_inner();
        if !missing.is_empty() {
            return Err(SubPathExprError::Missing {
                expr: expr.clone(),
                missing: missing.into_iter().collect(),
            });
        }
        if expanded.is_empty() {
            return Ok(None);
        }
        let invalid = |reason| SubPathExprError::Invalid {
            expr: expr.clone(),
            path: expanded.clone(),
            reason,
        };
        if expanded.starts_with('/') {
            return Err(invalid("must not be an absolute path"));
        }
        if expanded.split('/').any(|part| part == "..") {
            return Err(invalid("must not contain '..'"));
        }
        if expanded.contains('\0') {
            return Err(invalid("must not contain NUL"));
        }
        // kubelet joins the rest as a path: `a//b/./c/` is `a/b/c`.
        let clean: PathBuf = expanded
            .split('/')
            .filter(|part| !part.is_empty() && *part != ".")
            .collect();
        if clean.as_os_str().is_empty() {
            return Ok(None);
        }
        Ok(Some(clean))
    }
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
    DownwardApi(&'a manifest::DownwardApiVolume),
    Projected(&'a manifest::ProjectedVolume),
    Claim(&'a manifest::PersistentVolumeClaimVolume),
}

fn volume(ctx: &Ctx<'_>, v: &manifest::Volume, vp: &str) -> Result<Volume> {
    let name = v
        .name
        .as_deref()
        .ok_or_else(|| ctx.err(format!("{vp}.name"), None, "missing"))?;
    check_label(ctx.file, &ctx.doc, &format!("{vp}.name"), name)?;
    let unsupported = [
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
            "volume type not supported (supported: emptyDir, hostPath, configMap, secret, downwardAPI, projected, persistentVolumeClaim)",
        ));
    }
    let raw = ctx.at_most_one(
        vp,
        [
            ("emptyDir", v.empty_dir.as_ref().map(RawSource::EmptyDir)),
            ("hostPath", v.host_path.as_ref().map(RawSource::HostPath)),
            ("configMap", v.config_map.as_ref().map(RawSource::ConfigMap)),
            ("secret", v.secret.as_ref().map(RawSource::Secret)),
            (
                "downwardAPI",
                v.downward_api.as_ref().map(RawSource::DownwardApi),
            ),
            ("projected", v.projected.as_ref().map(RawSource::Projected)),
            (
                "persistentVolumeClaim",
                v.persistent_volume_claim.as_ref().map(RawSource::Claim),
            ),
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
        Some(RawSource::DownwardApi(d)) => {
            let dp = format!("{vp}.downwardAPI");
            let default_mode = mode(ctx, &format!("{dp}.defaultMode"), d.default_mode, 0o644)?;
            let mut seen = BTreeSet::new();
            let files = downward_files(
                ctx,
                d.items.as_deref().unwrap_or_default(),
                default_mode,
                &dp,
                &mut seen,
            )?;
            VolumeSource::Files {
                origin: FilesOrigin::DownwardApi,
                files,
            }
        }
        Some(RawSource::Projected(pr)) => projected(ctx, pr, vp)?,
        Some(RawSource::Claim(c)) => {
            let field = format!("{vp}.persistentVolumeClaim.claimName");
            let claim = c
                .claim_name
                .as_deref()
                .ok_or_else(|| ctx.err(&field, None, "missing"))?;
            check_subdomain(ctx.file, &ctx.doc, &field, claim)?;
            VolumeSource::Claim {
                claim: claim.to_owned(),
                read_only: c.read_only.unwrap_or(false),
            }
        }
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
    let default_mode = mode(ctx, &format!("{sp}.defaultMode"), f.default_mode, 0o644)?;
    let origin = match f.kind {
        DataKind::ConfigMap => FilesOrigin::ConfigMap(f.name.unwrap_or_default().to_owned()),
        DataKind::Secret => FilesOrigin::Secret(f.name.unwrap_or_default().to_owned()),
    };
    let files = key_files(ctx, &f, default_mode, &sp, &mut BTreeSet::new())?;
    Ok(VolumeSource::Files { origin, files })
}

/// The files of a configMap or secret volume or projection at `sp`: every
/// key, or the `items`; their paths added to `seen` (a projection's
/// paths are unique across its sources).
fn key_files(
    ctx: &Ctx<'_>,
    f: &FilesRef<'_>,
    default_mode: u32,
    sp: &str,
    seen: &mut BTreeSet<PathBuf>,
) -> Result<Vec<VolumeFile>> {
    let name_field = format!("{sp}.{}", f.name_key);
    let name = f
        .name
        .ok_or_else(|| ctx.err(&name_field, None, "missing"))?;
    let optional = f.optional.unwrap_or(false);
    let Some(obj) = ctx.data_object(f.kind, name, &name_field, optional)? else {
        return Ok(Vec::new());
    };
    let mut files = Vec::new();
    match f.items {
        None | Some([]) => {
            for (k, v) in &obj.data {
                let path = PathBuf::from(k);
                if !seen.insert(path.clone()) {
                    return Err(ctx.err(
                        format!("{sp}.{}", f.name_key),
                        Some(name),
                        format!("key {k}: conflicting duplicate paths"),
                    ));
                }
                files.push(VolumeFile {
                    path,
                    content: FileContent::Data(v.clone()),
                    mode: default_mode,
                });
            }
        }
        Some(items) => {
            for (i, item) in items.iter().enumerate() {
                let ip = format!("{sp}.items[{i}]");
                let key = item
                    .key
                    .as_deref()
                    .ok_or_else(|| ctx.err(format!("{ip}.key"), None, "missing"))?;
                let path = item_path(ctx, item.path.as_deref(), &ip, seen)?;
                let m = mode(ctx, &format!("{ip}.mode"), item.mode, default_mode)?;
                match obj.data.get(key) {
                    Some(data) => files.push(VolumeFile {
                        path,
                        content: FileContent::Data(data.clone()),
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
    Ok(files)
}

/// `items[].path` at `ip`: relative, clean, not starting with `..` (the
/// AtomicWriter's own names, Kubernetes' `validateLocalNonReservedPath`),
/// and not already in `seen`.
fn item_path(
    ctx: &Ctx<'_>,
    text: Option<&str>,
    ip: &str,
    seen: &mut BTreeSet<PathBuf>,
) -> Result<PathBuf> {
    let field = format!("{ip}.path");
    let text = text.ok_or_else(|| ctx.err(&field, None, "missing"))?;
    let path = clean_relative(text).map_err(|r| ctx.err(&field, Some(text), r))?;
    if text.starts_with("..") {
        return Err(ctx.err(&field, Some(text), "must not start with '..'"));
    }
    if !seen.insert(path.clone()) {
        return Err(ctx.err(&field, Some(text), "conflicting duplicate paths"));
    }
    Ok(path)
}

/// The `items` of a downwardAPI volume or projection at `dp`.
fn downward_files(
    ctx: &Ctx<'_>,
    items: &[manifest::DownwardApiFile],
    default_mode: u32,
    dp: &str,
    seen: &mut BTreeSet<PathBuf>,
) -> Result<Vec<VolumeFile>> {
    let mut files = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let ip = format!("{dp}.items[{i}]");
        let path = item_path(ctx, item.path.as_deref(), &ip, seen)?;
        let m = mode(ctx, &format!("{ip}.mode"), item.mode, default_mode)?;
        let source = ctx.exactly_one(
            &ip,
            [
                ("fieldRef", item.field_ref.as_ref().map(Ok)),
                (
                    "resourceFieldRef",
                    item.resource_field_ref.as_ref().map(Err),
                ),
            ],
        )?;
        let content = match source {
            Ok(f) => FileContent::Data(
                downward::volume_field(ctx, f, &format!("{ip}.fieldRef"))?.into_bytes(),
            ),
            // A volume item names its container.
            Err(r) => FileContent::Resource(downward::resource_ref(
                ctx,
                r,
                &format!("{ip}.resourceFieldRef"),
                None,
            )?),
        };
        files.push(VolumeFile {
            path,
            content,
            mode: m,
        });
    }
    Ok(files)
}

/// The source a projection names (exactly one).
enum RawProjection<'a> {
    ConfigMap(&'a manifest::ConfigMapProjection),
    Secret(&'a manifest::SecretProjection),
    DownwardApi(&'a manifest::DownwardApiProjection),
}

/// A `projected` volume at `vp`: its sources' files in one directory,
/// paths unique across them (Kubernetes' `validateProjectionSources`).
fn projected(ctx: &Ctx<'_>, pr: &manifest::ProjectedVolume, vp: &str) -> Result<VolumeSource> {
    let pp = format!("{vp}.projected");
    let default_mode = mode(ctx, &format!("{pp}.defaultMode"), pr.default_mode, 0o644)?;
    let mut seen = BTreeSet::new();
    let mut files = Vec::new();
    for (i, source) in pr.sources.iter().flatten().enumerate() {
        let sp = format!("{pp}.sources[{i}]");
        for (field, present, why) in [
            (
                "serviceAccountToken",
                source.service_account_token.is_some(),
                "not supported: there is no API server to issue a token",
            ),
            (
                "clusterTrustBundle",
                source.cluster_trust_bundle.is_some(),
                "not supported: there is no API server to hold ClusterTrustBundles",
            ),
            (
                "podCertificate",
                source.pod_certificate.is_some(),
                "not supported: there is no API server to sign a certificate",
            ),
        ] {
            if present {
                return Err(ctx.err(format!("{sp}.{field}"), None, why));
            }
        }
        let raw = ctx.exactly_one(
            &sp,
            [
                (
                    "configMap",
                    source.config_map.as_ref().map(RawProjection::ConfigMap),
                ),
                ("secret", source.secret.as_ref().map(RawProjection::Secret)),
                (
                    "downwardAPI",
                    source.downward_api.as_ref().map(RawProjection::DownwardApi),
                ),
            ],
        )?;
        let more = match raw {
            RawProjection::ConfigMap(cm) => key_files(
                ctx,
                &FilesRef {
                    kind: DataKind::ConfigMap,
                    field: "configMap",
                    name_key: "name",
                    name: cm.name.as_deref(),
                    items: cm.items.as_deref(),
                    default_mode: None,
                    optional: cm.optional,
                },
                default_mode,
                &format!("{sp}.configMap"),
                &mut seen,
            )?,
            RawProjection::Secret(sec) => key_files(
                ctx,
                &FilesRef {
                    kind: DataKind::Secret,
                    field: "secret",
                    name_key: "name",
                    name: sec.name.as_deref(),
                    items: sec.items.as_deref(),
                    default_mode: None,
                    optional: sec.optional,
                },
                default_mode,
                &format!("{sp}.secret"),
                &mut seen,
            )?,
            RawProjection::DownwardApi(d) => downward_files(
                ctx,
                d.items.as_deref().unwrap_or_default(),
                default_mode,
                &format!("{sp}.downwardAPI"),
                &mut seen,
            )?,
        };
        files.extend(more);
    }
    Ok(VolumeSource::Files {
        origin: FilesOrigin::Projected,
        files,
    })
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
        let sub_path = match (m.sub_path.as_deref(), m.sub_path_expr.as_deref()) {
            (Some(a), Some(b)) if !a.is_empty() && !b.is_empty() => {
                return Err(ctx.err(
                    format!("{mp}.subPathExpr"),
                    Some(b),
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            (Some(s), _) if !s.is_empty() => Some(SubPath::Path(
                clean_relative(s).map_err(|r| ctx.err(format!("{mp}.subPath"), Some(s), r))?,
            )),
            (_, Some(e)) if !e.is_empty() => {
                // Kubernetes validates the expression as a local
                // descending path before expansion, and the result again.
                let field = format!("{mp}.subPathExpr");
                if e.starts_with('/') {
                    return Err(ctx.err(field, Some(e), "must be a relative path"));
                }
                if e.split('/').any(|part| part == "..") {
                    return Err(ctx.err(field, Some(e), "must not contain '..'"));
                }
                Some(SubPath::Expr(e.to_owned()))
            }
            _ => None,
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
