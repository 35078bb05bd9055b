//! Which seccomp filter and AppArmor profile a container gets, as kubelet
//! and containerd's CRI decide (kubelet `pkg/kubelet/kuberuntime/
//! security_context_others.go`, containerd `internal/cri/sputil/
//! seccomp_linux.go` and `apparmor_linux.go`):
//!
//! - seccomp: the container's `seccompProfile`, else the pod's; unset
//!   means RuntimeDefault (kubelet's `--seccomp-default`; with
//!   `--seccomp-default=false`, Unconfined). RuntimeDefault is
//!   containerd's default profile, evaluated against the container's final
//!   capability set; Localhost a file under `--seccomp-profile-root`
//!   (kubelet's /var/lib/kubelet/seccomp), read at each container start as
//!   containerd reads it at each create. A profile that cannot be read,
//!   parsed or compiled is a [`ConfinementError`] (the container is
//!   `CreateContainerError`), never an unconfined container.
//! - AppArmor: on a host with AppArmor, unset or RuntimeDefault is
//!   containerd's `cri-containerd.apparmor.d` (loaded when missing),
//!   Localhost a loaded profile. On a host without it, Localhost is refused
//!   when the pod is admitted ([`admit`], kubelet's AppArmor admission
//!   check), RuntimeDefault is a warning and runs unconfined (containerd
//!   applies nothing there).

use std::path::PathBuf;
use std::sync::Mutex;

use crate::spec::{PodSpec, ProfileKind, SecurityContext};
use container::CapSet;
use container::apparmor::{self, AppArmorError};
use container::seccomp::{self, Program, SeccompError};

/// kubelet's default `--seccomp-profile-root` (`<root-dir>/seccomp`).
pub const DEFAULT_SECCOMP_PROFILE_ROOT: &str = "/var/lib/kubelet/seccomp";

/// The flags that decide confinement.
#[derive(Debug, Clone)]
pub struct ConfinementOptions {
    /// Where Localhost seccomp profiles are.
    pub seccomp_profile_root: PathBuf,
    /// An unset seccomp profile means RuntimeDefault (true) or Unconfined.
    pub seccomp_default: bool,
    /// The host's AppArmor.
    pub apparmor: apparmor::Host,
}

impl Default for ConfinementOptions {
    fn default() -> ConfinementOptions {
        ConfinementOptions {
            seccomp_profile_root: PathBuf::from(DEFAULT_SECCOMP_PROFILE_ROOT),
            seccomp_default: true,
            apparmor: apparmor::Host::new(),
        }
    }
}

/// Why a container's confinement cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum ConfinementError {
    /// The seccomp profile cannot be read, parsed or compiled.
    #[error("{field}: {source}")]
    Seccomp {
        /// The manifest field that asked for it.
        field: String,
        /// Why.
        source: SeccompError,
    },
    /// The AppArmor profile cannot be applied.
    #[error("{field}: {source}")]
    AppArmor {
        /// The manifest field that asked for it.
        field: String,
        /// Why.
        source: AppArmorError,
    },
}

/// A container's confinement, ready for `container::Command`.
#[derive(Debug, Clone, Default)]
pub struct Confinement {
    /// The filter (None: Unconfined).
    pub seccomp: Option<Program>,
    /// The AppArmor profile to exec under (None: none).
    pub apparmor: Option<String>,
    /// Things to say once (names a profile has that this architecture
    /// does not know, ...).
    pub notes: Vec<String>,
}

impl Confinement {
    /// Put it on a command.
    pub fn apply(&self, command: &mut container::Command) {
        if let Some(program) = &self.seccomp {
            command.seccomp(program.clone());
        }
        if let Some(profile) = &self.apparmor {
            command.apparmor_profile(profile);
        }
    }
}

/// The RuntimeDefault profile for `caps`, compiled once per capability set
/// and shared (its filters are behind an `Arc`): every container and every
/// instance of the pod would otherwise hold a copy of its own (about 10 kB
/// of BPF each; with 100 containers, a megabyte of the supervisor's heap)
/// and compile it again at each start.
fn runtime_default(caps: CapSet) -> Result<Program, SeccompError> {
    static COMPILED: Mutex<Vec<(CapSet, Program)>> = Mutex::new(Vec::new());
    let mut compiled = COMPILED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, program)) = compiled.iter().find(|(c, _)| *c == caps) {
        return Ok(program.clone());
    }
    let program = seccomp::runtime_default(caps).compile("RuntimeDefault")?;
    compiled.push((caps, program.clone()));
    Ok(program)
}

/// The confinement of a container with `security` whose final capability
/// set is `caps`.
pub fn resolve(
    security: &SecurityContext,
    caps: CapSet,
    options: &ConfinementOptions,
) -> Result<Confinement, ConfinementError> {
    let mut notes = Vec::new();
    let seccomp_field = security
        .seccomp
        .as_ref()
        .map_or_else(|| "seccompProfile (unset)".to_string(), |p| p.field.clone());
    let seccomp_err = |source| ConfinementError::Seccomp {
        field: seccomp_field.clone(),
        source,
    };
    let kind = match &security.seccomp {
        Some(p) => p.kind.clone(),
        None if options.seccomp_default => ProfileKind::RuntimeDefault,
        None => ProfileKind::Unconfined,
    };
    let seccomp = match kind {
        ProfileKind::Unconfined => None,
        ProfileKind::RuntimeDefault => Some(runtime_default(caps).map_err(seccomp_err)?),
        ProfileKind::Localhost(relative) => {
            let path = options.seccomp_profile_root.join(&relative);
            let origin = path.display().to_string();
            let program = seccomp::Profile::from_oci_file(&path)
                .and_then(|p| p.compile(&origin))
                .map_err(seccomp_err)?;
            if !program.unknown_names.is_empty() {
                notes.push(format!(
                    "seccomp profile {origin}: system calls unknown on {} ignored (as runc does): {}",
                    std::env::consts::ARCH,
                    program.unknown_names.join(", ")
                ));
            }
            if !program.other_architectures.is_empty() {
                notes.push(format!(
                    "seccomp profile {origin}: only {} system calls are filtered; those of {} are refused (the process is killed)",
                    std::env::consts::ARCH,
                    program.other_architectures.join(", ")
                ));
            }
            Some(program)
        }
    };
    let apparmor_err = |field: &str, source| ConfinementError::AppArmor {
        field: field.to_string(),
        source,
    };
    let apparmor = match &security.apparmor {
        Some(p) => match &p.kind {
            ProfileKind::Unconfined => None,
            // Refused at admission when the host has none (see `admit`).
            ProfileKind::Localhost(name) => {
                options
                    .apparmor
                    .check(name)
                    .map_err(|e| apparmor_err(&p.field, e))?;
                Some(name.clone())
            }
            ProfileKind::RuntimeDefault => default_apparmor(options, &p.field)?,
        },
        None => default_apparmor(options, "appArmorProfile (unset)")?,
    };
    Ok(Confinement {
        seccomp,
        apparmor,
        notes,
    })
}

/// containerd's default AppArmor profile where the host has AppArmor.
fn default_apparmor(
    options: &ConfinementOptions,
    field: &str,
) -> Result<Option<String>, ConfinementError> {
    if options.apparmor.default_unavailable().is_some() {
        return Ok(None);
    }
    options
        .apparmor
        .check(apparmor::DEFAULT_PROFILE)
        .map_err(|source| ConfinementError::AppArmor {
            field: field.to_string(),
            source,
        })?;
    Ok(Some(apparmor::DEFAULT_PROFILE.to_string()))
}

/// What the host says about the pod before anything starts, as kubelet's
/// AppArmor admission does: an error for a Localhost AppArmor profile on a
/// host without AppArmor (kubelet rejects the pod: "Cannot enforce
/// AppArmor: AppArmor is not enabled on the host"), and warnings (an
/// explicit RuntimeDefault AppArmor profile on such a host runs without
/// one).
pub fn admit(pod: &PodSpec, options: &ConfinementOptions) -> Result<Vec<String>, ConfinementError> {
    let mut warnings = Vec::new();
    let enabled = options.apparmor.enabled();
    let default_unavailable = options.apparmor.default_unavailable();
    if enabled && default_unavailable.is_none() {
        return Ok(warnings);
    }
    let mut runtime_default = Vec::new();
    for c in pod.init_containers.iter().chain(&pod.containers) {
        let Some(p) = &c.security.apparmor else {
            continue;
        };
        match &p.kind {
            ProfileKind::Localhost(_) if enabled => {}
            ProfileKind::Localhost(name) => {
                return Err(ConfinementError::AppArmor {
                    field: p.field.clone(),
                    source: AppArmorError::NotEnabled {
                        profile: name.clone(),
                        path: options.apparmor.enabled_file(),
                    },
                });
            }
            ProfileKind::RuntimeDefault => runtime_default.push(p.field.clone()),
            ProfileKind::Unconfined => {}
        }
    }
    if let Some(why) = default_unavailable
        && !runtime_default.is_empty()
    {
        warnings.push(format!(
            "{}: RuntimeDefault AppArmor profile not applied: {why}",
            runtime_default.join(", "),
        ));
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Profile;

    fn options(root: &std::path::Path, apparmor: &std::path::Path) -> ConfinementOptions {
        ConfinementOptions {
            seccomp_profile_root: root.to_path_buf(),
            seccomp_default: true,
            apparmor: apparmor::Host::at(apparmor),
        }
    }

    #[test]
    fn runtime_default_is_compiled_once_per_capability_set() {
        let a = runtime_default(CapSet(1 << 21)).unwrap();
        let b = runtime_default(CapSet(1 << 21)).unwrap();
        let other = runtime_default(CapSet(0)).unwrap();
        assert!(a.shares_filters(&b));
        assert!(!a.shares_filters(&other));
        // CAP_SYS_ADMIN opens system calls the default refuses: the sets
        // must not share one program.
        assert_ne!(a.to_saved(), other.to_saved());
    }

    fn with(seccomp: Option<ProfileKind>, apparmor: Option<ProfileKind>) -> SecurityContext {
        SecurityContext {
            seccomp: seccomp.map(|kind| Profile {
                kind,
                field: "spec.containers[0].securityContext.seccompProfile".into(),
            }),
            apparmor: apparmor.map(|kind| Profile {
                kind,
                field: "spec.containers[0].securityContext.appArmorProfile".into(),
            }),
            ..SecurityContext::default()
        }
    }

    #[test]
    fn unset_is_runtime_default_unless_the_flag_says_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = options(dir.path(), dir.path());
        let c = resolve(&with(None, None), CapSet::RUNTIME_DEFAULT, &o).unwrap();
        assert_eq!(c.seccomp.map(|p| p.filter_count()), Some(2));
        assert_eq!(c.apparmor, None, "no AppArmor on the fake host");
        o.seccomp_default = false;
        let c = resolve(&with(None, None), CapSet::RUNTIME_DEFAULT, &o).unwrap();
        assert!(c.seccomp.is_none());
        let c = resolve(
            &with(Some(ProfileKind::RuntimeDefault), None),
            CapSet::RUNTIME_DEFAULT,
            &o,
        )
        .unwrap();
        assert!(c.seccomp.is_some(), "an explicit RuntimeDefault stays");
        let c = resolve(
            &with(Some(ProfileKind::Unconfined), None),
            CapSet::RUNTIME_DEFAULT,
            &o,
        )
        .unwrap();
        assert!(c.seccomp.is_none());
    }

    #[test]
    fn localhost_profiles_are_read_under_the_root_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let o = options(dir.path(), dir.path());
        std::fs::write(
            dir.path().join("deny-mkdir.json"),
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat", "frobnicate"], "action": "SCMP_ACT_ERRNO"}]}"#,
        )
        .unwrap();
        let c = resolve(
            &with(Some(ProfileKind::Localhost("deny-mkdir.json".into())), None),
            CapSet::RUNTIME_DEFAULT,
            &o,
        )
        .unwrap();
        assert_eq!(c.seccomp.map(|p| p.filter_count()), Some(1));
        assert!(c.notes[0].contains("frobnicate"), "{:?}", c.notes);
        let e = resolve(
            &with(Some(ProfileKind::Localhost("missing.json".into())), None),
            CapSet::RUNTIME_DEFAULT,
            &o,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("seccompProfile") && e.contains("missing.json"),
            "{e}"
        );
    }

    #[test]
    fn apparmor_localhost_is_refused_at_admission_without_apparmor() {
        let dir = tempfile::tempdir().unwrap();
        let o = options(dir.path(), dir.path());
        let e = resolve(
            &with(None, Some(ProfileKind::Localhost("my-profile".into()))),
            CapSet::RUNTIME_DEFAULT,
            &o,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("appArmorProfile") && e.contains("not enabled"),
            "{e}"
        );
        let c = resolve(
            &with(None, Some(ProfileKind::RuntimeDefault)),
            CapSet::RUNTIME_DEFAULT,
            &o,
        )
        .unwrap();
        assert_eq!(c.apparmor, None);
    }

    #[test]
    fn apparmor_on_a_host_with_it_uses_loaded_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let host = apparmor::Host::at(dir.path());
        for (file, text) in [
            (host.enabled_file(), "Y\n"),
            (
                host.profiles_file(),
                "cri-containerd.apparmor.d (enforce)\nmine (enforce)\n",
            ),
        ] {
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        }
        let o = options(dir.path(), dir.path());
        // AppArmor on in the kernel but no apparmor_parser (a Debian kernel
        // without the apparmor package): as containerd, no default profile,
        // while a loaded Localhost one still applies.
        let c = resolve(&with(None, None), CapSet::RUNTIME_DEFAULT, &o).unwrap();
        assert_eq!(c.apparmor, None);
        let c = resolve(
            &with(None, Some(ProfileKind::Localhost("mine".into()))),
            CapSet::RUNTIME_DEFAULT,
            &o,
        )
        .unwrap();
        assert_eq!(c.apparmor.as_deref(), Some("mine"));
        for sub in ["sys/kernel/security/apparmor", "sbin"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        std::fs::write(dir.path().join("sbin/apparmor_parser"), "").unwrap();
        let c = resolve(&with(None, None), CapSet::RUNTIME_DEFAULT, &o).unwrap();
        assert_eq!(c.apparmor.as_deref(), Some(apparmor::DEFAULT_PROFILE));
        let c = resolve(
            &with(None, Some(ProfileKind::Localhost("mine".into()))),
            CapSet::RUNTIME_DEFAULT,
            &o,
        )
        .unwrap();
        assert_eq!(c.apparmor.as_deref(), Some("mine"));
        let e = resolve(
            &with(None, Some(ProfileKind::Localhost("other".into()))),
            CapSet::RUNTIME_DEFAULT,
            &o,
        )
        .unwrap_err();
        assert!(e.to_string().contains("not loaded"), "{e}");
        let c = resolve(
            &with(None, Some(ProfileKind::Unconfined)),
            CapSet::RUNTIME_DEFAULT,
            &o,
        )
        .unwrap();
        assert_eq!(c.apparmor, None);
    }
}
