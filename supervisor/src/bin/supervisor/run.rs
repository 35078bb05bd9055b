//! `supervisor run [OPTIONS] MANIFEST`: its flags, and the step from flags
//! to [`supervisor::run::RunOptions`].

use std::path::PathBuf;
use std::time::Duration;

use supervisor::cni;
use supervisor::confinement::{self, ConfinementOptions};
use supervisor::images::ImageOptions;
use supervisor::job::JobBackoff;
use supervisor::logs::LogConfig;
use supervisor::network::CniPaths;
use supervisor::restart::BackoffConfig;
use supervisor::run::RunOptions;

/// `supervisor run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The manifest: a Pod, or a Deployment/ReplicaSet/StatefulSet/
    /// DaemonSet/Job whose pod template runs, with the ConfigMaps and
    /// Secrets of the same file.
    pub manifest: PathBuf,
    /// The pause binary (default: `pause` beside this binary, then
    /// /usr/local/bin/pause, then PATH).
    #[arg(long, value_name = "PATH")]
    pub pause: Option<PathBuf>,
    /// State root (default $SUPERVISOR_STATE_DIR, else /run/supervisor).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Log root (default $SUPERVISOR_LOG_DIR, else /var/log/pods).
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// The cgroup under which the pod's cgroup is created, relative to the
    /// hierarchy roots. Default: `podvisor`; on cgroup v2 under systemd
    /// with `Delegate=yes`, or inside a container, the cgroup it was given
    /// (it moves itself into a `supervisor` leaf of it first).
    #[arg(long, value_name = "NAME")]
    pub cgroup_parent: Option<PathBuf>,
    /// The restart back-off after the first (immediate) restart; doubles
    /// up to --backoff-max. Kubernetes: 10s.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub backoff_initial: Duration,
    /// The cap of the restart back-off. Kubernetes: 300s.
    #[arg(long, value_name = "DURATION", default_value = "300s", value_parser = parse_duration)]
    pub backoff_max: Duration,
    /// A Job's pod failure back-off: the wait before the pod that follows
    /// a failed one (restartPolicy Never), doubling per failure up to
    /// --job-backoff-max. The Job controller: 10s.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub job_backoff_initial: Duration,
    /// The cap of a Job's pod failure back-off. The Job controller: 10m.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub job_backoff_max: Duration,
    /// The CNI configuration: the first *.conflist, *.conf or *.json by
    /// name. Without one the sandbox has loopback only.
    #[arg(long, value_name = "DIR", default_value = cni::config::DEFAULT_CONF_DIR)]
    pub cni_conf_dir: PathBuf,
    /// Where the CNI plugins are (repeatable; default /opt/cni/bin, then
    /// /usr/lib/cni).
    #[arg(long, value_name = "DIR")]
    pub cni_bin_dir: Vec<PathBuf>,
    /// Where CNI results are kept for DEL, also after a crash.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/cni/results")]
    pub cni_cache_dir: PathBuf,
    /// Size at which a container's log file is rotated, as kubelet's
    /// --container-log-max-size (a quantity: 10Mi, 500Ki, 1G).
    #[arg(long, value_name = "SIZE", default_value = "10Mi", value_parser = parse_log_size)]
    pub container_log_max_size: u64,
    /// Log files kept per container instance, the current one included, as
    /// kubelet's --container-log-max-files (at least 2).
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(2..))]
    pub container_log_max_files: u32,
    /// Append a line per container step (reaped, deciding, spawned,
    /// failed) with its CLOCK_MONOTONIC time in ns to FILE: what the
    /// restart benchmarks read.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// The image store shared by every pod on the host (default
    /// $SUPERVISOR_IMAGE_DIR, else /var/lib/supervisor/images).
    #[arg(long, value_name = "DIR")]
    pub image_dir: Option<PathBuf>,
    /// The persistentVolumeClaims' volumes, kept across runs (default
    /// $SUPERVISOR_VOLUME_DIR, else /var/lib/supervisor/volumes).
    #[arg(long, value_name = "DIR")]
    pub volume_dir: Option<PathBuf>,
    /// Registry credentials in the ~/.docker/config.json / auth.json
    /// format, tried after the pod's imagePullSecrets.
    #[arg(long, value_name = "FILE")]
    pub registry_auth_file: Option<PathBuf>,
    /// Registry hosts configuration: containerd's certs.d layout,
    /// <DIR>/<host>/hosts.toml (mirrors, plain-HTTP registries). Default
    /// $SUPERVISOR_REGISTRY_CONFIG_DIR, else /etc/supervisor/registries.d.
    #[arg(long, value_name = "DIR")]
    pub registry_config_dir: Option<PathBuf>,
    /// Where Localhost seccomp profiles are (`localhostProfile` is
    /// relative to it), as kubelet's --seccomp-profile-root.
    #[arg(long, value_name = "DIR", default_value = confinement::DEFAULT_SECCOMP_PROFILE_ROOT)]
    pub seccomp_profile_root: PathBuf,
    /// What an unset seccompProfile means: RuntimeDefault (true, kubelet's
    /// --seccomp-default) or Unconfined (--seccomp-default=false).
    #[arg(long, value_name = "BOOL", default_value_t = true, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub seccomp_default: bool,
    /// The most processes and threads of the pod (its cgroup's pids.max:
    /// pause and every container together), kubelet's --pod-max-pids
    /// (podPidsLimit); -1 = unlimited, kubelet's default. The default,
    /// 4096, is the top of what clusters commonly set (1024-4096): above
    /// any ordinary pod (threads count too), far below this host's
    /// kernel.pid_max (32768 by default), so a fork bomb in one pod cannot
    /// take every pid of the host.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_POD_PIDS_LIMIT,
        allow_negative_numbers = true,
        value_parser = parse_pids_limit
    )]
    pub pod_pids_limit: i64,
}

/// `--pod-pids-limit` when not given.
pub const DEFAULT_POD_PIDS_LIMIT: i64 = 4096;

impl RunArgs {
    /// The second stage: flags to the options the library runs with.
    fn into_options(self) -> RunOptions {
        RunOptions {
            manifest: self.manifest,
            pause: self.pause,
            state_dir: self.state_dir,
            log_dir: self.log_dir,
            cgroup_parent: self.cgroup_parent,
            backoff: BackoffConfig {
                initial: self.backoff_initial,
                max: self.backoff_max.max(self.backoff_initial),
                ..BackoffConfig::default()
            },
            cni: CniPaths {
                conf_dir: self.cni_conf_dir,
                bin_dirs: if self.cni_bin_dir.is_empty() {
                    cni::default_bin_dirs()
                } else {
                    self.cni_bin_dir
                },
                cache_dir: self.cni_cache_dir,
            },
            log: LogConfig {
                max_file_size: self.container_log_max_size,
                max_files: self.container_log_max_files as usize,
                ..LogConfig::default()
            },
            trace: self.trace,
            images: ImageOptions {
                image_dir: self.image_dir,
                registry_auth_file: self.registry_auth_file,
                registry_config_dir: self.registry_config_dir,
            },
            confinement: ConfinementOptions {
                seccomp_profile_root: self.seccomp_profile_root,
                seccomp_default: self.seccomp_default,
                ..ConfinementOptions::default()
            },
            pod_pids_limit: u64::try_from(self.pod_pids_limit).ok(),
            volume_dir: self.volume_dir,
            job_backoff: JobBackoff {
                initial: self.job_backoff_initial,
                max: self.job_backoff_max.max(self.job_backoff_initial),
            },
        }
    }
}

/// Runs `supervisor run`.
pub fn main(args: RunArgs) -> anyhow::Result<i32> {
    supervisor::run::run(args.into_options())
}

/// A log file size: a Kubernetes quantity of bytes, at least 1Ki.
fn parse_log_size(text: &str) -> Result<u64, String> {
    match supervisor::quantity::parse_bytes(text) {
        Ok(bytes) if bytes >= 1024 => Ok(bytes),
        Ok(_) => Err(format!("{text:?} is below the smallest log file size, 1Ki")),
        Err(error) => Err(error.to_string()),
    }
}

/// A pids limit: -1 (unlimited) or at least 1 (kubelet takes a value
/// above 0 as the limit; 0 would let nothing run).
fn parse_pids_limit(text: &str) -> Result<i64, String> {
    match text.parse::<i64>() {
        Ok(n) if n == -1 || n >= 1 => Ok(n),
        _ => Err(format!(
            "invalid pids limit {text:?}: -1 (unlimited) or a number of tasks, at least 1"
        )),
    }
}

/// Parse `10s`, `100ms`, `5m`, `1h` or a plain number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?} (examples: 0, 100ms, 10s, 5m)");
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_the_flags_document() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn pids_limits_are_minus_one_or_positive() {
        assert_eq!(parse_pids_limit("-1"), Ok(-1));
        assert_eq!(parse_pids_limit("1"), Ok(1));
        assert_eq!(parse_pids_limit("4096"), Ok(4096));
        for bad in ["0", "-2", "many", ""] {
            assert!(parse_pids_limit(bad).is_err(), "{bad}");
        }
    }
}
