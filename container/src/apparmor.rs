//! AppArmor, as containerd's CRI uses it (`internal/cri/sputil/
//! apparmor_linux.go`, `contrib/apparmor/template.go`): whether the host
//! has it, whether a profile is loaded, containerd's default profile
//! (`cri-containerd.apparmor.d`, generated from containerd's template and
//! loaded with `apparmor_parser -Kr` when the kernel does not have it yet),
//! and the attribute the child writes before exec
//! ([`crate::Command::apparmor_profile`]). Which profile a container gets
//! is the caller's decision. Every path is under a root (`/`, or a fake
//! one in tests).

use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;

/// containerd's default profile name (`ProfileNameDefault`... CRI's
/// `defaultAppArmorProfile`).
pub const DEFAULT_PROFILE: &str = "cri-containerd.apparmor.d";

/// Why AppArmor cannot do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum AppArmorError {
    /// The host has no AppArmor.
    #[error(
        "AppArmor profile {profile:?} cannot be enforced: AppArmor is not enabled on this host ({} is not Y)",
        path.display()
    )]
    NotEnabled {
        /// The profile asked for.
        profile: String,
        /// The module parameter file.
        path: PathBuf,
    },
    /// A Localhost profile is not loaded in the kernel.
    #[error("AppArmor profile {profile:?} is not loaded (not in {})", path.display())]
    NotLoaded {
        /// The profile asked for.
        profile: String,
        /// The kernel's list of profiles.
        path: PathBuf,
    },
    /// A bad profile name.
    #[error("AppArmor profile name {profile:?}: {reason}")]
    Name {
        /// The name.
        profile: String,
        /// What is wrong with it.
        reason: String,
    },
    /// apparmor_parser failed.
    #[error("load AppArmor profile {profile} with apparmor_parser: {message}")]
    Load {
        /// The profile.
        profile: String,
        /// What apparmor_parser said.
        message: String,
    },
}

/// The AppArmor of a host, seen under `root`.
#[derive(Debug, Clone)]
pub struct Host {
    root: PathBuf,
}

impl Host {
    /// The real host.
    pub fn new() -> Host {
        Host::at("/")
    }

    /// A host whose files are under `root` (tests).
    pub fn at(root: impl Into<PathBuf>) -> Host {
        Host { root: root.into() }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    /// `/sys/module/apparmor/parameters/enabled`.
    pub fn enabled_file(&self) -> PathBuf {
        self.path("/sys/module/apparmor/parameters/enabled")
    }

    /// `/sys/kernel/security/apparmor/profiles`.
    pub fn profiles_file(&self) -> PathBuf {
        self.path("/sys/kernel/security/apparmor/profiles")
    }

    /// Whether AppArmor is enabled (the module parameter says `Y`), as
    /// runc's `apparmor.IsEnabled` reads it.
    pub fn enabled(&self) -> bool {
        std::fs::read(self.enabled_file()).is_ok_and(|b| b.first() == Some(&b'Y'))
    }

    /// Why containerd's default profile cannot be had on this host, None
    /// when it can. As containerd's `hostSupports` (pkg/apparmor/
    /// apparmor_linux.go): AppArmor enabled, its securityfs directory
    /// there, `apparmor_parser` installed, and not inside a container
    /// (`container` unset in the environment). Where any is missing
    /// containerd runs the container without a profile, and so do we: a
    /// Debian kernel has AppArmor on even where the apparmor package is
    /// not installed.
    pub fn default_unavailable(&self) -> Option<String> {
        if !self.enabled() {
            return Some(format!(
                "AppArmor is not enabled on this host ({} is not Y)",
                self.enabled_file().display()
            ));
        }
        let securityfs = self.path("/sys/kernel/security/apparmor");
        if !securityfs.is_dir() {
            return Some(format!("{} is missing", securityfs.display()));
        }
        if self.parser().is_none() {
            return Some("apparmor_parser is not installed (/sbin, /usr/sbin)".to_string());
        }
        if std::env::var_os("container").is_some() {
            return Some("inside a container ($container is set)".to_string());
        }
        None
    }

    /// `apparmor_parser`, where Debian and containerd look for it.
    fn parser(&self) -> Option<PathBuf> {
        ["/sbin/apparmor_parser", "/usr/sbin/apparmor_parser"]
            .iter()
            .map(|p| self.path(p))
            .find(|p| p.is_file())
    }

    /// Whether profile `name` is loaded: a line `name (mode)` of the
    /// profiles file (containerd's `isLoaded`).
    pub fn is_loaded(&self, name: &str) -> bool {
        std::fs::read_to_string(self.profiles_file()).is_ok_and(|text| {
            text.lines()
                .any(|l| l.strip_prefix(name).is_some_and(|r| r.starts_with(' ')))
        })
    }

    /// The profile this process runs under (`unconfined` when none), as
    /// containerd names the daemon profile in the template.
    pub fn own_profile(&self) -> String {
        let current =
            std::fs::read_to_string(self.path("/proc/self/attr/current")).unwrap_or_default();
        match current.split_whitespace().next() {
            Some(p) if !p.is_empty() => p.to_string(),
            _ => "unconfined".to_string(),
        }
    }

    /// containerd's default profile for this host: includes when
    /// /etc/apparmor.d has them, signals from this process's profile.
    pub fn default_profile_text(&self) -> String {
        let has = |m: &str| self.path("/etc/apparmor.d").join(m).exists();
        default_profile_text(
            DEFAULT_PROFILE,
            &self.own_profile(),
            has("tunables/global"),
            has("abstractions/base"),
        )
    }

    /// Make sure the default profile is loaded: loaded already, or
    /// generated and given to `apparmor_parser -Kr` (on its stdin).
    pub fn ensure_default(&self) -> Result<(), AppArmorError> {
        if self.is_loaded(DEFAULT_PROFILE) {
            return Ok(());
        }
        let load = |message: String| AppArmorError::Load {
            profile: DEFAULT_PROFILE.to_string(),
            message,
        };
        let parser = self
            .parser()
            .ok_or_else(|| load("apparmor_parser is not installed".to_string()))?;
        let mut child = std::process::Command::new(parser)
            .arg("-Kr")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| load(e.to_string()))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(self.default_profile_text().as_bytes())
                .map_err(|e| load(e.to_string()))?;
        }
        let out = child.wait_with_output().map_err(|e| load(e.to_string()))?;
        if !out.status.success() {
            return Err(load(format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    /// Check that `name` can be applied: AppArmor is on and the profile
    /// is loaded (the default one is loaded first when missing).
    pub fn check(&self, name: &str) -> Result<(), AppArmorError> {
        check_name(name)?;
        if !self.enabled() {
            return Err(AppArmorError::NotEnabled {
                profile: name.to_string(),
                path: self.enabled_file(),
            });
        }
        if name == DEFAULT_PROFILE {
            self.ensure_default()?;
        }
        if !self.is_loaded(name) {
            return Err(AppArmorError::NotLoaded {
                profile: name.to_string(),
                path: self.profiles_file(),
            });
        }
        Ok(())
    }
}

impl Default for Host {
    fn default() -> Host {
        Host::new()
    }
}

/// A profile name: what the kernel takes after `exec ` (no space, no
/// newline, no NUL).
pub fn check_name(name: &str) -> Result<(), AppArmorError> {
    let bad = |reason: &str| AppArmorError::Name {
        profile: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name.bytes().any(|b| b.is_ascii_whitespace() || b == 0) {
        return Err(bad("contains white space or a NUL byte"));
    }
    Ok(())
}

/// The attribute files a process writes `exec <profile>` to so that its
/// next exec changes profile: the AppArmor-specific one (Linux 5.8 and
/// later with stacked LSMs), then the generic one (runc's
/// `apparmor.setProcAttr`).
pub const EXEC_ATTR_FILES: [&str; 2] = ["/proc/self/attr/apparmor/exec", "/proc/self/attr/exec"];

/// containerd's `defaultTemplate` filled in (`contrib/apparmor/
/// template.go`, from moby's `profiles/apparmor`).
pub fn default_profile_text(name: &str, daemon: &str, tunables: bool, base: bool) -> String {
    let import = if tunables {
        "#include <tunables/global>"
    } else {
        "@{PROC}=/proc/"
    };
    let inner = if base {
        "  #include <abstractions/base>\n"
    } else {
        ""
    };
    format!(
        r#"{import}

profile {name} flags=(attach_disconnected,mediate_deleted) {{
{inner}
  network,
  capability,
  file,
  umount,
  # Host (privileged) processes may send signals to container processes.
  signal (receive) peer=unconfined,
  # Manager may send signals to container processes.
  signal (receive) peer={daemon},
  # Container processes may send signals amongst themselves.
  signal (send,receive) peer={name},

  deny @{{PROC}}/* w,   # deny write for all files directly in /proc (not in a subdir)
  # deny write to files not in /proc/<number>/** or /proc/sys/**
  deny @{{PROC}}/{{[^1-9],[^1-9][^0-9],[^1-9s][^0-9y][^0-9s],[^1-9][^0-9][^0-9][^0-9]*}}/** w,
  deny @{{PROC}}/sys/[^k]** w,  # deny /proc/sys except /proc/sys/k* (effectively /proc/sys/kernel)
  deny @{{PROC}}/sys/kernel/{{?,??,[^s][^h][^m]**}} w,  # deny everything except shm* in /proc/sys/kernel/
  deny @{{PROC}}/sysrq-trigger rwklx,
  deny @{{PROC}}/mem rwklx,
  deny @{{PROC}}/kmem rwklx,
  deny @{{PROC}}/kcore rwklx,

  deny mount,

  deny /sys/[^f]*/** wklx,
  deny /sys/f[^s]*/** wklx,
  deny /sys/fs/[^c]*/** wklx,
  deny /sys/fs/c[^g]*/** wklx,
  deny /sys/fs/cg[^r]*/** wklx,
  deny /sys/firmware/** rwklx,
  deny /sys/kernel/security/** rwklx,

  # allow processes within the container to trace each other,
  # provided all other LSM and yama setting allow it.
  ptrace (trace,tracedby,read,readby) peer={name},
}}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(enabled: Option<&str>, profiles: Option<&str>) -> (tempfile::TempDir, Host) {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::at(dir.path());
        if let Some(e) = enabled {
            let f = host.enabled_file();
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, e).unwrap();
        }
        if let Some(p) = profiles {
            let f = host.profiles_file();
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, p).unwrap();
        }
        (dir, host)
    }

    #[test]
    fn detection_reads_the_module_parameter() {
        assert!(fake(Some("Y\n"), None).1.enabled());
        assert!(!fake(Some("N\n"), None).1.enabled());
        assert!(!fake(None, None).1.enabled());
    }

    #[test]
    fn loaded_profiles_are_found_by_whole_name() {
        let (_d, host) = fake(
            Some("Y"),
            Some("cri-containerd.apparmor.d (enforce)\nmy-app-x (complain)\n"),
        );
        assert!(host.is_loaded(DEFAULT_PROFILE));
        assert!(host.is_loaded("my-app-x"));
        assert!(!host.is_loaded("my-app"), "a prefix is no match");
        assert!(host.check("my-app-x").is_ok());
        let e = host.check("other").unwrap_err();
        assert!(matches!(e, AppArmorError::NotLoaded { .. }), "{e}");
    }

    #[test]
    fn a_host_without_apparmor_refuses_every_profile() {
        let (_d, host) = fake(None, None);
        let e = host.check("my-app").unwrap_err().to_string();
        assert!(
            e.contains("not enabled") && e.contains("parameters/enabled"),
            "{e}"
        );
        assert!(check_name("two words").is_err());
        assert!(check_name("").is_err());
    }

    #[test]
    fn the_default_profile_is_containerds_template() {
        let text = default_profile_text(DEFAULT_PROFILE, "unconfined", true, true);
        assert!(text.starts_with("#include <tunables/global>\n"));
        assert!(text.contains(
            "profile cri-containerd.apparmor.d flags=(attach_disconnected,mediate_deleted) {"
        ));
        assert!(text.contains("  #include <abstractions/base>\n"));
        assert!(text.contains("signal (receive) peer=unconfined,"));
        assert!(text.contains("deny @{PROC}/sysrq-trigger rwklx,"));
        assert!(text.contains("deny @{PROC}/sys/kernel/{?,??,[^s][^h][^m]**} w,"));
        assert!(
            text.contains("ptrace (trace,tracedby,read,readby) peer=cri-containerd.apparmor.d,")
        );
        assert!(text.trim_end().ends_with('}'));
        let bare = default_profile_text(DEFAULT_PROFILE, "supervisor", false, false);
        assert!(bare.starts_with("@{PROC}=/proc/\n"));
        assert!(!bare.contains("abstractions"));
        assert!(bare.contains("peer=supervisor,"));
        // The fake root's include files are looked for.
        let (dir, host) = fake(Some("Y"), None);
        std::fs::create_dir_all(dir.path().join("etc/apparmor.d/tunables")).unwrap();
        std::fs::write(dir.path().join("etc/apparmor.d/tunables/global"), "").unwrap();
        let text = host.default_profile_text();
        assert!(
            text.starts_with("#include <tunables/global>") && !text.contains("abstractions/base")
        );
    }
}
