//! The supervisor as a CNI runtime (spec 1.0): gives the sandbox's network
//! namespace its interfaces and addresses by running CNI plugins, as kubelet's
//! container runtimes do.
//!
//! * [`config`] finds and validates the network configuration list.
//! * [`exec`] runs one plugin binary with a deadline.
//! * [`result`] types what ADD returns ([`CniResult::pod_ips`]).
//! * [`cache`] keeps each ADD result on disk for DEL, CHECK and crash recovery.
//!
//! [`Network`] ties them together: ADD runs the plugins in order, each one
//! getting the previous one's result as `prevResult`; DEL runs them in
//! reverse with the cached result; CHECK runs them in order with it. A
//! plugin's `runtimeConfig` carries the capabilities it declares and we
//! provide (`portMappings`). Loopback is a separate built-in network
//! ([`Network::loopback`], the `loopback` plugin), as containerd does it, so
//! a configured list needs no loopback entry and a pod without any CNI
//! configuration still gets `lo` up.
//!
//! Every call BLOCKS its thread while plugins run (each bounded by
//! [`Network::timeout`], default [`DEFAULT_TIMEOUT`]); the run loop calls
//! them at sandbox creation and teardown only. This module does not create
//! or delete network namespaces: the caller owns the netns it passes.

pub mod cache;
pub mod config;
pub mod exec;
pub mod result;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use cache::CacheError;
pub use config::{ConfigError, NetworkConfig, PluginConfig};
pub use exec::ExecError;
pub use result::{CniResult, Dns, Interface, IpConfig, IpNet, ResultError, Route};

/// How long one plugin may run before it is killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The interface name kubelet asks for.
pub const DEFAULT_IFNAME: &str = "eth0";
/// Name of the built-in loopback network (containerd's).
pub const LOOPBACK_NETWORK: &str = "cni-loopback";

/// The bin dirs searched when none are given: `/opt/cni/bin`, then
/// `/usr/lib/cni`.
pub fn default_bin_dirs() -> Vec<PathBuf> {
    config::DEFAULT_BIN_DIRS.iter().map(PathBuf::from).collect()
}

/// A CNI command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Attach the container to the network.
    Add,
    /// Verify the attachment is as ADD left it.
    Check,
    /// Detach and release everything ADD allocated.
    Del,
}

impl Command {
    /// The `CNI_COMMAND` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Check => "CHECK",
            Command::Del => "DEL",
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a network operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CniError {
    /// The configuration file is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A plugin named by the configuration is in none of the bin dirs.
    #[error("{}: CNI plugin {plugin:?} not found in {}", source_file.display(), search_path)]
    PluginNotFound {
        /// The configuration that names it.
        source_file: PathBuf,
        /// The plugin type.
        plugin: String,
        /// The dirs searched, `:`-separated.
        search_path: String,
    },
    /// The attachment has a field the spec does not allow.
    #[error("CNI attachment: {field} {value:?}: {problem}")]
    Attachment {
        /// Field name.
        field: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// A plugin failed; for plugin-reported errors `source` carries the
    /// plugin's own `code`, `msg` and `details`.
    #[error("network {network:?}: CNI plugin {plugin} {command} failed: {source}")]
    Plugin {
        /// The network's name.
        network: String,
        /// The plugin type.
        plugin: String,
        /// What it was asked to do.
        command: Command,
        /// How it failed.
        source: ExecError,
    },
    /// A plugin succeeded but printed an unusable result.
    #[error("network {network:?}: CNI plugin {plugin} {command}: {source}")]
    Result {
        /// The network's name.
        network: String,
        /// The plugin type.
        plugin: String,
        /// What it was asked to do.
        command: Command,
        /// What is wrong with the output.
        source: ResultError,
    },
    /// CHECK needs the ADD result and there is none cached.
    #[error(
        "network {network:?}: no cached ADD result for container {container_id} ({ifname}) to CHECK against"
    )]
    NotAttached {
        /// The network's name.
        network: String,
        /// The container id asked about.
        container_id: String,
        /// The interface asked about.
        ifname: String,
    },
    /// CHECK does not exist before spec 0.4.0.
    #[error("network {network:?}: cniVersion {version} has no CHECK command")]
    CheckUnsupported {
        /// The network's name.
        network: String,
        /// Its cniVersion.
        version: String,
    },
    /// Reading or writing the result cache failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// ADD failed and the DEL that should undo its partial work failed too.
    #[error("{add}; undoing it with DEL also failed: {del}")]
    Rollback {
        /// The ADD failure.
        add: Box<CniError>,
        /// The DEL failure.
        del: Box<CniError>,
    },
}

impl CniError {
    /// The error that started it: for [`CniError::Rollback`], the ADD
    /// failure (recursively); any other error is its own cause.
    pub fn root_cause(&self) -> &CniError {
        match self {
            CniError::Rollback { add, .. } => add.root_cause(),
            other => other,
        }
    }
}

/// Transport protocol of a port mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

/// One `ports[].hostPort` of the pod, as the portmap plugin takes it in
/// `runtimeConfig.portMappings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// Port on the host.
    pub host_port: u16,
    /// Port in the pod.
    pub container_port: u16,
    /// Protocol (written in lower case, as kubelet passes it).
    pub protocol: Protocol,
    /// Host address to bind to; all addresses when absent.
    #[serde(rename = "hostIP", default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<IpAddr>,
}

/// Who is attached to the network, and where: one sandbox's interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    /// `CNI_CONTAINERID`: unique on the host; alphanumerics, `_`, `.`, `-`,
    /// starting with an alphanumeric (e.g. the sandbox id in hex).
    pub container_id: String,
    /// `CNI_NETNS`: the sandbox's netns (`/run/netns/NAME`,
    /// `/proc/PID/ns/net`). DEL tolerates a netns that is already gone.
    pub netns: PathBuf,
    /// `CNI_IFNAME`, normally [`DEFAULT_IFNAME`].
    pub ifname: String,
    /// `K8S_POD_NAME` in `CNI_ARGS`.
    pub pod_name: String,
    /// `K8S_POD_NAMESPACE` in `CNI_ARGS`.
    pub pod_namespace: String,
    /// `K8S_POD_UID` in `CNI_ARGS`, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    /// Host ports, for plugins declaring the `portMappings` capability.
    #[serde(default)]
    pub port_mappings: Vec<PortMapping>,
}

impl Attachment {
    /// `CNI_ARGS` as kubelet writes it.
    pub fn cni_args(&self) -> String {
        let mut args = format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={}",
            self.pod_namespace, self.pod_name, self.container_id
        );
        if let Some(uid) = &self.pod_uid {
            args.push_str(";K8S_POD_UID=");
            args.push_str(uid);
        }
        args
    }

    /// Checks the fields against the spec and against `CNI_ARGS` syntax.
    pub fn validate(&self) -> Result<(), CniError> {
        let bad = |field, value: &str, problem| {
            Err(CniError::Attachment {
                field,
                value: value.to_owned(),
                problem,
            })
        };
        let id = &self.container_id;
        let id_ok = id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !id_ok {
            return bad(
                "container_id",
                id,
                "must start with an alphanumeric, then alphanumerics, '_', '.', '-'",
            );
        }
        let ifname = &self.ifname;
        if ifname.is_empty()
            || ifname.len() > 15
            || ifname == "."
            || ifname == ".."
            || ifname.contains(|c: char| c == '/' || c == ':' || c.is_whitespace() || c == '\0')
        {
            return bad(
                "ifname",
                ifname,
                "must be 1-15 bytes without '/', ':', whitespace, and not '.' or '..'",
            );
        }
        if !self.netns.is_absolute() {
            return bad(
                "netns",
                &self.netns.to_string_lossy(),
                "must be an absolute path",
            );
        }
        let args = [
            ("pod_name", &self.pod_name),
            ("pod_namespace", &self.pod_namespace),
        ];
        for (field, value) in args {
            if value.contains([';', '=', '\0']) {
                return bad(
                    field,
                    value,
                    "cannot contain ';', '=' or NUL (CNI_ARGS syntax)",
                );
            }
        }
        if let Some(uid) = &self.pod_uid
            && uid.contains([';', '=', '\0'])
        {
            return bad(
                "pod_uid",
                uid,
                "cannot contain ';', '=' or NUL (CNI_ARGS syntax)",
            );
        }
        Ok(())
    }
}

/// A network the supervisor can attach sandboxes to: a validated
/// configuration list with its plugin binaries resolved.
#[derive(Debug, Clone)]
pub struct Network {
    config: NetworkConfig,
    plugin_paths: Vec<PathBuf>,
    bin_dirs: Vec<PathBuf>,
    cache_dir: PathBuf,
    timeout: Duration,
    /// The loopback network always uses `lo`, whatever the caller asks.
    fixed_ifname: Option<&'static str>,
}

impl Network {
    /// Finds the network configuration in `conf_dir` (first `*.conflist`,
    /// `*.conf`, `*.json` by name) and resolves its plugins in `bin_dirs`.
    /// `Ok(None)` when there is no configuration: the caller runs a
    /// loopback-only sandbox. ADD results are cached in `cache_dir`.
    pub fn load(
        conf_dir: &Path,
        bin_dirs: &[PathBuf],
        cache_dir: &Path,
    ) -> Result<Option<Network>, CniError> {
        let Some(file) = config::find_config_file(conf_dir)? else {
            return Ok(None);
        };
        let config = NetworkConfig::from_file(&file)?;
        Network::new(config, bin_dirs, cache_dir).map(Some)
    }

    /// A network from an already parsed configuration.
    pub fn new(
        config: NetworkConfig,
        bin_dirs: &[PathBuf],
        cache_dir: &Path,
    ) -> Result<Network, CniError> {
        let plugin_paths = config
            .plugins
            .iter()
            .map(|p| {
                find_plugin(&p.plugin_type, bin_dirs).ok_or_else(|| CniError::PluginNotFound {
                    source_file: config.source.clone(),
                    plugin: p.plugin_type.clone(),
                    search_path: search_path(bin_dirs),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Network {
            config,
            plugin_paths,
            bin_dirs: bin_dirs.to_vec(),
            cache_dir: cache_dir.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            fixed_ifname: None,
        })
    }

    /// The built-in loopback network (`{"type": "loopback"}`, named
    /// [`LOOPBACK_NETWORK`]): brings `lo` up in the sandbox. Attach it
    /// before the configured network and detach it after; it always uses
    /// the interface `lo`, whatever the attachment says.
    pub fn loopback(bin_dirs: &[PathBuf], cache_dir: &Path) -> Result<Network, CniError> {
        let text = format!(
            r#"{{"cniVersion":"1.0.0","name":"{LOOPBACK_NETWORK}","plugins":[{{"type":"loopback"}}]}}"#
        );
        let config = NetworkConfig::parse(Path::new("<built-in loopback>"), text.as_bytes())?;
        let mut network = Network::new(config, bin_dirs, cache_dir)?;
        network.fixed_ifname = Some("lo");
        Ok(network)
    }

    /// The network recorded in a cache entry, to tear down exactly what an
    /// earlier run (possibly killed) set up.
    pub fn from_cache(
        entry: &cache::Entry,
        bin_dirs: &[PathBuf],
        cache_dir: &Path,
    ) -> Result<Network, CniError> {
        let label = cache::entry_path(
            cache_dir,
            &entry.network_name,
            &entry.attachment.container_id,
            &entry.attachment.ifname,
        );
        let config = NetworkConfig::parse(&label, entry.config.to_string().as_bytes())?;
        let mut network = Network::new(config, bin_dirs, cache_dir)?;
        if network.config.name == LOOPBACK_NETWORK {
            network.fixed_ifname = Some("lo");
        }
        Ok(network)
    }

    /// Sets the deadline of each plugin run.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The deadline of each plugin run.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The network's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The configuration list.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// Where each plugin's binary was found, in list order.
    pub fn plugin_paths(&self) -> &[PathBuf] {
        &self.plugin_paths
    }

    /// Path of the cache entry for `attachment`.
    pub fn cache_path(&self, attachment: &Attachment) -> PathBuf {
        cache::entry_path(
            &self.cache_dir,
            &self.config.name,
            &attachment.container_id,
            self.ifname(attachment),
        )
    }

    /// The ADD result cached for `attachment`, if it is attached.
    pub fn cached_result(&self, attachment: &Attachment) -> Result<Option<CniResult>, CniError> {
        let Some(entry) = cache::read(&self.cache_path(attachment))? else {
            return Ok(None);
        };
        let result = CniResult::from_value(entry.result).map_err(|source| CniError::Result {
            network: self.config.name.clone(),
            plugin: "(cache)".into(),
            command: Command::Add,
            source,
        })?;
        Ok(Some(result))
    }

    /// ADD: runs every plugin in order, chaining `prevResult`, caches and
    /// returns the last result. When a plugin fails, a DEL of the whole list
    /// undoes what the earlier ones did (plugins tolerate DEL of things they
    /// never added), and the plugin's error is returned.
    pub fn add(&self, attachment: &Attachment) -> Result<CniResult, CniError> {
        attachment.validate()?;
        match self.try_add(attachment) {
            Ok(result) => Ok(result),
            Err(add) => match self.del(attachment) {
                Ok(()) => Err(add),
                Err(del) => Err(CniError::Rollback {
                    add: Box::new(add),
                    del: Box::new(del),
                }),
            },
        }
    }

    fn try_add(&self, attachment: &Attachment) -> Result<CniResult, CniError> {
        let mut prev: Option<CniResult> = None;
        for index in 0..self.config.plugins.len() {
            let stdout = self.invoke(
                Command::Add,
                index,
                attachment,
                prev.as_ref().map(|r| &r.raw),
            )?;
            let plugin = &self.config.plugins[index].plugin_type;
            let result = CniResult::parse(&stdout).map_err(|source| CniError::Result {
                network: self.config.name.clone(),
                plugin: plugin.clone(),
                command: Command::Add,
                source,
            })?;
            prev = Some(result);
        }
        let result = prev.expect("a validated list has at least one plugin");
        let entry = cache::Entry {
            kind: cache::KIND.into(),
            network_name: self.config.name.clone(),
            attachment: Attachment {
                ifname: self.ifname(attachment).to_owned(),
                ..attachment.clone()
            },
            config: self.config.to_json(),
            result: result.raw.clone(),
        };
        cache::write(&self.cache_path(attachment), &entry)?;
        Ok(result)
    }

    /// CHECK: runs every plugin in order against the cached ADD result. A
    /// no-op when the configuration sets `disableCheck`.
    pub fn check(&self, attachment: &Attachment) -> Result<(), CniError> {
        attachment.validate()?;
        if self.config.disable_check {
            return Ok(());
        }
        if !self.config.supports_check() {
            return Err(CniError::CheckUnsupported {
                network: self.config.name.clone(),
                version: self.config.cni_version.clone(),
            });
        }
        let Some(cached) = self.cached_result(attachment)? else {
            return Err(CniError::NotAttached {
                network: self.config.name.clone(),
                container_id: attachment.container_id.clone(),
                ifname: self.ifname(attachment).to_owned(),
            });
        };
        for index in 0..self.config.plugins.len() {
            self.invoke(Command::Check, index, attachment, Some(&cached.raw))?;
        }
        Ok(())
    }

    /// DEL: runs every plugin in reverse order with the cached ADD result
    /// (when there is one), then drops the cache entry. Safe to repeat; on
    /// failure the entry stays so that a later DEL can retry. It runs THIS
    /// network's plugins; to undo an attachment made by an earlier run whose
    /// configuration may have changed, use [`Network::from_cache`] first.
    pub fn del(&self, attachment: &Attachment) -> Result<(), CniError> {
        attachment.validate()?;
        let cache_path = self.cache_path(attachment);
        let cached = match cache::read(&cache_path)? {
            Some(entry) if self.config.passes_prev_result_on_del() => Some(entry.result),
            _ => None,
        };
        for index in (0..self.config.plugins.len()).rev() {
            self.invoke(Command::Del, index, attachment, cached.as_ref())?;
        }
        cache::remove(&cache_path)?;
        Ok(())
    }

    fn ifname<'a>(&self, attachment: &'a Attachment) -> &'a str {
        self.fixed_ifname.unwrap_or(&attachment.ifname)
    }

    /// Runs plugin `index` once; returns its stdout.
    fn invoke(
        &self,
        command: Command,
        index: usize,
        attachment: &Attachment,
        prev_result: Option<&Value>,
    ) -> Result<Vec<u8>, CniError> {
        let plugin = &self.config.plugins[index];
        let stdin = self.plugin_stdin(plugin, attachment, prev_result);
        let env = [
            ("CNI_COMMAND", command.as_str().to_owned()),
            ("CNI_CONTAINERID", attachment.container_id.clone()),
            ("CNI_NETNS", attachment.netns.to_string_lossy().into_owned()),
            ("CNI_IFNAME", self.ifname(attachment).to_owned()),
            ("CNI_ARGS", attachment.cni_args()),
            ("CNI_PATH", search_path(&self.bin_dirs)),
        ];
        exec::run(&self.plugin_paths[index], &env, &stdin, self.timeout).map_err(|source| {
            CniError::Plugin {
                network: self.config.name.clone(),
                plugin: plugin.plugin_type.clone(),
                command,
                source,
            }
        })
    }

    /// The plugin's configuration as it goes on stdin: its own object plus
    /// `name` and `cniVersion` of the list, `prevResult`, and
    /// `runtimeConfig` for the capabilities it declares.
    fn plugin_stdin(
        &self,
        plugin: &PluginConfig,
        attachment: &Attachment,
        prev_result: Option<&Value>,
    ) -> Vec<u8> {
        let mut object: Map<String, Value> = plugin.raw.clone();
        object.insert("name".into(), self.config.name.clone().into());
        object.insert("cniVersion".into(), self.config.cni_version.clone().into());
        if let Some(prev) = prev_result {
            object.insert("prevResult".into(), prev.clone());
        }
        let runtime_config = runtime_config(plugin, attachment);
        if !runtime_config.is_empty() {
            object.insert(
                "runtimeConfig".into(),
                Value::Object(runtime_config.into_iter().collect()),
            );
        }
        serde_json::to_vec(&Value::Object(object)).expect("a JSON value always serializes")
    }
}

/// One line for logs: `network "podvisor" from /etc/cni/net.d/10-podvisor.conflist
/// (bridge, portmap)`.
impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let types: Vec<&str> = self
            .config
            .plugins
            .iter()
            .map(|p| p.plugin_type.as_str())
            .collect();
        write!(
            f,
            "network {:?} from {} ({})",
            self.config.name,
            self.config.source.display(),
            types.join(", ")
        )
    }
}

/// The capability arguments this runtime provides, filtered by what the
/// plugin declares (libcni's `injectRuntimeConfig`).
fn runtime_config(plugin: &PluginConfig, attachment: &Attachment) -> BTreeMap<String, Value> {
    let mut provided = BTreeMap::new();
    if plugin.capabilities.iter().any(|c| c == "portMappings") {
        let mappings = serde_json::to_value(&attachment.port_mappings)
            .expect("port mappings always serialize");
        provided.insert("portMappings".to_owned(), mappings);
    }
    provided
}

/// The first executable file named `plugin_type` in `bin_dirs`.
pub fn find_plugin(plugin_type: &str, bin_dirs: &[PathBuf]) -> Option<PathBuf> {
    bin_dirs
        .iter()
        .map(|dir| dir.join(plugin_type))
        .find(|path| {
            path.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn search_path(bin_dirs: &[PathBuf]) -> String {
    let dirs: Vec<_> = bin_dirs.iter().map(|d| d.to_string_lossy()).collect();
    dirs.join(":")
}

#[cfg(test)]
mod tests;
