//! A container's effective security settings: [`SecurityContext`] (pod
//! and container contexts merged field by field, container first) and
//! [`Capabilities`], with their validator (UIDs and GIDs in range,
//! runAsNonRoot checked, capability names known to Linux), and the
//! seccomp and AppArmor profiles asked for ([`Profile`]: container level,
//! then for AppArmor the older annotation, then pod level, as kubelet).
//! Applying them is `supervised::command`'s and `container::Command`'s
//! work; what an unset profile means is decided there (flags).

use super::{Ctx, Result};
use crate::manifest::{self, IgnoredFields};

/// Effective security settings of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityContext {
    /// UID (None: the supervisor's own, root).
    pub run_as_user: Option<u32>,
    /// GID (None: the primary group of the UID / root).
    pub run_as_group: Option<u32>,
    /// runAsNonRoot: a UID 0 is refused here, the image's USER at start.
    pub run_as_non_root: bool,
    /// Pod supplementalGroups plus fsGroup.
    pub supplemental_groups: Vec<u32>,
    /// false: set no_new_privs (default true, as Kubernetes).
    pub allow_privilege_escalation: bool,
    /// Capabilities to add/drop.
    pub capabilities: Capabilities,
    /// Read-only root filesystem.
    pub read_only_root_filesystem: bool,
    /// `seccompProfile` (None: unset, see `--seccomp-default`).
    pub seccomp: Option<Profile>,
    /// `appArmorProfile` (None: unset, the runtime's default on a host
    /// with AppArmor).
    pub apparmor: Option<Profile>,
}

/// A `seccompProfile` or `appArmorProfile`, with the field it came from
/// (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// What is asked for.
    pub kind: ProfileKind,
    /// Where it was set, e.g. `spec.containers[0].securityContext.seccompProfile`.
    pub field: String,
}

/// The `type` of a security profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileKind {
    /// The runtime's default profile.
    RuntimeDefault,
    /// No profile.
    Unconfined,
    /// seccomp: a file relative to the profile root (a clean relative
    /// path); AppArmor: the name of a loaded profile.
    Localhost(String),
}

/// The AppArmor annotation of container `name` (deprecated by the
/// `appArmorProfile` field, still read by kubelet).
pub const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

#[derive(Clone, Copy, PartialEq, Eq)]
enum ProfileFor {
    Seccomp,
    AppArmor,
}

fn profile(
    ctx: &Ctx<'_>,
    field: String,
    raw: &manifest::SecurityProfile,
    what: ProfileFor,
) -> Result<Profile> {
    let kind = raw.kind.as_deref();
    let lp = format!("{field}.localhostProfile");
    if kind != Some("Localhost") && raw.localhost_profile.is_some() {
        return Err(ctx.err(
            lp,
            raw.localhost_profile.as_deref(),
            "may only be set when type is Localhost",
        ));
    }
    let kind = match kind {
        Some("RuntimeDefault") => ProfileKind::RuntimeDefault,
        Some("Unconfined") => ProfileKind::Unconfined,
        Some("Localhost") => {
            let Some(p) = raw.localhost_profile.as_deref() else {
                return Err(ctx.err(lp, None, "required when type is Localhost"));
            };
            match what {
                ProfileFor::Seccomp => check_relative_path(ctx, &lp, p)?,
                ProfileFor::AppArmor => {
                    container::apparmor::check_name(p)
                        .map_err(|e| ctx.err(&lp, Some(p), e.to_string()))?;
                }
            }
            ProfileKind::Localhost(p.to_string())
        }
        Some(other) => {
            return Err(ctx.err(
                format!("{field}.type"),
                Some(other),
                "must be RuntimeDefault, Localhost or Unconfined",
            ));
        }
        None => return Err(ctx.err(format!("{field}.type"), None, "missing")),
    };
    Ok(Profile { kind, field })
}

/// A Localhost seccomp profile: relative to the profile root and staying
/// in it (kubelet refuses an absolute path; we also refuse `..` and empty
/// or `.` components, so the file is the one the path names).
fn check_relative_path(ctx: &Ctx<'_>, field: &str, p: &str) -> Result<()> {
    let bad = |reason: &str| Err(ctx.err(field, Some(p), reason.to_string()));
    if p.is_empty() {
        return bad("empty");
    }
    if p.starts_with('/') {
        return bad("must be relative to the seccomp profile root (--seccomp-profile-root)");
    }
    if p.contains('\0') {
        return bad("contains a NUL byte");
    }
    if p.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return bad("must be a clean relative path (no empty, . or .. components)");
    }
    Ok(())
}

/// The AppArmor annotation's value as a profile (`runtime/default`,
/// `localhost/<name>`, `unconfined`: kubelet's values).
fn apparmor_annotation(ctx: &Ctx<'_>, key: &str, value: &str) -> Result<Profile> {
    let field = format!("metadata.annotations[{key}]");
    let kind = match value {
        "runtime/default" => ProfileKind::RuntimeDefault,
        "unconfined" => ProfileKind::Unconfined,
        v => match v.strip_prefix("localhost/") {
            Some(name) => {
                container::apparmor::check_name(name)
                    .map_err(|e| ctx.err(&field, Some(value), e.to_string()))?;
                ProfileKind::Localhost(name.to_string())
            }
            None => {
                return Err(ctx.err(
                    field,
                    Some(value),
                    "must be runtime/default, localhost/<profile> or unconfined",
                ));
            }
        },
    };
    Ok(Profile { kind, field })
}

/// Capability changes, names normalised to `CAP_X` (or `ALL`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Added.
    pub add: Vec<String>,
    /// Dropped.
    pub drop: Vec<String>,
}

/// The number of a capability name (`CAP_X`), if Linux has it.
pub fn capability_number(name: &str) -> Option<u32> {
    container::CapSet::number(name).ok()
}

impl Capabilities {
    /// The resulting capability set as a bit mask (bit n = capability n):
    /// the container runtime default set adjusted as containerd's CRI
    /// plugin does (see [`container::CapSet::adjust`]). Names were checked
    /// when the manifest was read.
    pub fn effective_mask(&self) -> u64 {
        container::CapSet::adjust(container::CapSet::RUNTIME_DEFAULT, &self.add, &self.drop)
            .map_or(container::CapSet::RUNTIME_DEFAULT.0, |set| set.0)
    }
}

fn capability(ctx: &Ctx<'_>, path: &str, name: &str) -> Result<String> {
    let upper = name.to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(upper);
    }
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if capability_number(&full).is_none() {
        return Err(ctx.err(
            path,
            Some(name),
            "unknown capability (see capabilities(7); written without CAP_, e.g. NET_ADMIN)",
        ));
    }
    Ok(full)
}

pub(super) fn security(
    ctx: &mut Ctx<'_>,
    c: Option<&manifest::SecurityContext>,
    pod: &manifest::PodSecurityContext,
    fs_group: Option<u32>,
    cp: &str,
    name: &str,
) -> Result<SecurityContext> {
    let default = manifest::SecurityContext::default();
    let c = c.unwrap_or(&default);
    let sp = format!("{cp}.securityContext");
    c.ignored_fields(&format!("{sp}."), &mut ctx.ignored);
    if c.privileged == Some(true) {
        return Err(ctx.err(
            format!("{sp}.privileged"),
            Some("true"),
            "not supported: add the capabilities the container needs instead",
        ));
    }
    match c.proc_mount.as_deref() {
        None | Some("Default") => {}
        Some(other) => {
            return Err(ctx.err(
                format!("{sp}.procMount"),
                Some(other),
                "not supported (Default only)",
            ));
        }
    }
    // The pod's context, e.g. `spec.securityContext` for
    // `spec.containers[0]`.
    let pod_sp = format!(
        "{}.securityContext",
        cp.rsplit_once('.').map_or("spec", |(a, _)| a)
    );
    // Container level wins over pod level, field by field.
    let (uid, uid_path) = match c.run_as_user {
        Some(u) => (Some(u), format!("{sp}.runAsUser")),
        None => (pod.run_as_user, format!("{pod_sp}.runAsUser")),
    };
    let run_as_user = id(ctx, &uid_path, uid)?;
    let run_as_group = match c.run_as_group {
        Some(g) => id(ctx, &format!("{sp}.runAsGroup"), Some(g))?,
        None => id(
            ctx,
            &uid_path.replace("runAsUser", "runAsGroup"),
            pod.run_as_group,
        )?,
    };
    let run_as_non_root = c.run_as_non_root.or(pod.run_as_non_root).unwrap_or(false);
    // runAsNonRoot without runAsUser is checked against the image's USER
    // when the container is created (CreateContainerConfigError), as
    // kubelet does.
    if run_as_non_root && run_as_user == Some(0) {
        return Err(ctx.err(
            uid_path,
            Some("0"),
            "runAsNonRoot is set but the container would run as root",
        ));
    }
    let mut supplemental_groups = Vec::new();
    for (i, g) in pod.supplemental_groups.iter().enumerate() {
        let gp = format!("{pod_sp}.supplementalGroups[{i}]");
        if let Some(g) = id(ctx, &gp, Some(*g))? {
            supplemental_groups.push(g);
        }
    }
    if let Some(g) = fs_group
        && !supplemental_groups.contains(&g)
    {
        supplemental_groups.push(g);
    }
    let mut caps = Capabilities::default();
    if let Some(cap) = &c.capabilities {
        for (field, names, into) in [
            ("add", &cap.add, &mut caps.add),
            ("drop", &cap.drop, &mut caps.drop),
        ] {
            for (i, n) in names.iter().enumerate() {
                into.push(capability(
                    ctx,
                    &format!("{sp}.capabilities.{field}[{i}]"),
                    n,
                )?);
            }
        }
    }
    let allow_privilege_escalation = c.allow_privilege_escalation.unwrap_or(true);
    if !allow_privilege_escalation && caps.add.iter().any(|c| c == "CAP_SYS_ADMIN" || c == "ALL") {
        return Err(ctx.err(
            format!("{sp}.allowPrivilegeEscalation"),
            Some("false"),
            "cannot be false while adding CAP_SYS_ADMIN",
        ));
    }
    let seccomp = match (&c.seccomp_profile, &pod.seccomp_profile) {
        (Some(raw), _) => Some(profile(
            ctx,
            format!("{sp}.seccompProfile"),
            raw,
            ProfileFor::Seccomp,
        )?),
        (None, Some(raw)) => Some(profile(
            ctx,
            format!("{pod_sp}.seccompProfile"),
            raw,
            ProfileFor::Seccomp,
        )?),
        (None, None) => None,
    };
    let annotation = format!("{APPARMOR_ANNOTATION_PREFIX}{name}");
    let apparmor = match (
        &c.app_armor_profile,
        ctx.annotations.get(&annotation),
        &pod.app_armor_profile,
    ) {
        (Some(raw), _, _) => Some(profile(
            ctx,
            format!("{sp}.appArmorProfile"),
            raw,
            ProfileFor::AppArmor,
        )?),
        (None, Some(value), _) => Some(apparmor_annotation(ctx, &annotation, value)?),
        (None, None, Some(raw)) => Some(profile(
            ctx,
            format!("{pod_sp}.appArmorProfile"),
            raw,
            ProfileFor::AppArmor,
        )?),
        (None, None, None) => None,
    };
    Ok(SecurityContext {
        seccomp,
        apparmor,
        run_as_user,
        run_as_group,
        run_as_non_root,
        supplemental_groups,
        allow_privilege_escalation,
        capabilities: caps,
        read_only_root_filesystem: c.read_only_root_filesystem.unwrap_or(false),
    })
}

/// A UID/GID: 0..=2147483647 as Kubernetes validates.
pub(super) fn id(ctx: &Ctx<'_>, path: &str, v: Option<i64>) -> Result<Option<u32>> {
    match v {
        None => Ok(None),
        Some(n) if (0..=i64::from(i32::MAX)).contains(&n) => Ok(u32::try_from(n).ok()),
        Some(n) => Err(ctx.err(
            path,
            Some(&n.to_string()),
            "must be between 0 and 2147483647",
        )),
    }
}
