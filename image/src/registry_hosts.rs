//! Where to pull a registry's images from: containerd's `certs.d` format,
//! `<dir>/<host[:port]>/hosts.toml` (else `<dir>/_default/hosts.toml`) with
//! `server = "https://..."` and `[host."http://mirror:5000"]` tables
//! (`capabilities`, `skip_verify`, `ca`), read into endpoints in the order
//! they are tried: the mirrors as written, then the server. Without a file
//! the registry itself is the one endpoint, in plain HTTP only on loopback.
//! Speaking to the endpoints is `image::pull`'s.

use crate::pull::is_loopback_registry;
use std::path::{Path, PathBuf};

/// The directory read when neither the flag nor the environment names one.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/supervisor/registries.d";
/// The environment variable naming the directory.
pub const CONFIG_DIR_ENV: &str = "SUPERVISOR_REGISTRY_CONFIG_DIR";

/// The hosts directory: `flag` (`--registry-config-dir`), else
/// `$SUPERVISOR_REGISTRY_CONFIG_DIR`, else /etc/supervisor/registries.d.
pub fn resolve_config_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| {
            std::env::var_os(CONFIG_DIR_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_DIR))
}

/// A hosts.toml that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HostsError {
    /// The file (or a CA file it names) cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not containerd's hosts.toml.
    #[error("{}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// One place to pull from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host[:port]` spoken to.
    pub host: String,
    /// Plain HTTP (an `http://` URL, or a loopback registry by default).
    pub plain_http: bool,
    /// Accept any TLS certificate (`skip_verify`).
    pub skip_verify: bool,
    /// Extra CA certificates, PEM (`ca`).
    pub ca_pem: Vec<Vec<u8>>,
    /// May resolve a tag to a digest (`resolve` capability); every
    /// endpoint may fetch by digest (`pull`).
    pub resolve: bool,
    /// A mirror (a `[host]` table), not the registry's server.
    pub mirror: bool,
}

impl Endpoint {
    /// The registry itself, as used without configuration: HTTPS, plain
    /// HTTP on loopback.
    pub fn registry(registry: &str) -> Endpoint {
        let host = if registry == "docker.io" {
            "index.docker.io"
        } else {
            registry
        };
        Endpoint {
            host: host.to_string(),
            plain_http: is_loopback_registry(registry),
            skip_verify: false,
            ca_pem: Vec::new(),
            resolve: true,
            mirror: false,
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HostsToml {
    server: Option<String>,
    #[serde(default)]
    capabilities: Option<Vec<String>>,
    #[serde(default)]
    skip_verify: bool,
    ca: Option<OneOrMany>,
    #[serde(default)]
    host: toml::Table,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HostToml {
    capabilities: Option<Vec<String>>,
    #[serde(default)]
    skip_verify: bool,
    ca: Option<OneOrMany>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// The endpoints for `registry` (`host[:port]` as a reference names it)
/// under `dir`, in the order they are tried; only those that can pull.
pub fn endpoints(dir: &Path, registry: &str) -> Result<Vec<Endpoint>, HostsError> {
    let own = dir.join(registry).join("hosts.toml");
    let path = if own.is_file() {
        own
    } else {
        dir.join("_default").join("hosts.toml")
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(vec![Endpoint::registry(registry)]);
        }
        Err(source) => return Err(HostsError::Read { path, source }),
    };
    parse(&path, &text, registry)
}

fn parse(path: &Path, text: &str, registry: &str) -> Result<Vec<Endpoint>, HostsError> {
    let invalid = |reason: String| HostsError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let file: HostsToml = toml::from_str(text).map_err(|e| invalid(e.message().to_string()))?;
    let base = path.parent().unwrap_or(Path::new("/"));
    let mut found = Vec::new();
    for (url, table) in file.host {
        let host: HostToml = table
            .try_into()
            .map_err(|e: toml::de::Error| invalid(format!("host {url:?}: {}", e.message())))?;
        let capabilities =
            Capabilities::parse(host.capabilities.as_deref(), &url).map_err(&invalid)?;
        if !capabilities.pull {
            continue;
        }
        found.push(endpoint(
            &url,
            capabilities,
            host.skip_verify,
            host.ca,
            true,
            base,
            path,
        )?);
    }
    let server = match &file.server {
        Some(url) => {
            let capabilities =
                Capabilities::parse(file.capabilities.as_deref(), url).map_err(&invalid)?;
            endpoint(
                url,
                capabilities,
                file.skip_verify,
                file.ca,
                false,
                base,
                path,
            )?
        }
        None => Endpoint {
            skip_verify: file.skip_verify,
            ca_pem: read_cas(file.ca, base)?,
            ..Endpoint::registry(registry)
        },
    };
    found.push(server);
    Ok(found)
}

/// What an endpoint may do.
struct Capabilities {
    pull: bool,
    resolve: bool,
}

impl Capabilities {
    /// containerd's default is every capability.
    fn parse(list: Option<&[String]>, url: &str) -> Result<Capabilities, String> {
        let Some(list) = list else {
            return Ok(Capabilities {
                pull: true,
                resolve: true,
            });
        };
        let mut capabilities = Capabilities {
            pull: false,
            resolve: false,
        };
        for capability in list {
            match capability.as_str() {
                "pull" => capabilities.pull = true,
                "resolve" => capabilities.resolve = true,
                "push" => {}
                other => {
                    return Err(format!(
                        "host {url:?}: unknown capability {other:?}: expected \"pull\", \"resolve\" or \"push\""
                    ));
                }
            }
        }
        Ok(capabilities)
    }
}

fn endpoint(
    url: &str,
    capabilities: Capabilities,
    skip_verify: bool,
    ca: Option<OneOrMany>,
    mirror: bool,
    base: &Path,
    path: &Path,
) -> Result<Endpoint, HostsError> {
    let invalid = |reason: String| HostsError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let (plain_http, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (false, rest)
    } else if url.contains("://") {
        return Err(invalid(format!(
            "{url:?}: expected an http:// or https:// URL"
        )));
    } else {
        (false, url)
    };
    let (host, url_path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() {
        return Err(invalid(format!("{url:?}: no host")));
    }
    if !matches!(url_path.trim_end_matches('/'), "" | "v2") {
        return Err(invalid(format!(
            "{url:?}: a path other than /v2 is not supported"
        )));
    }
    Ok(Endpoint {
        host: host.to_string(),
        plain_http,
        skip_verify,
        ca_pem: read_cas(ca, base)?,
        resolve: capabilities.resolve,
        mirror,
    })
}

/// Reads the `ca` files (relative to the hosts.toml's directory).
fn read_cas(ca: Option<OneOrMany>, base: &Path) -> Result<Vec<Vec<u8>>, HostsError> {
    let files = match ca {
        None => Vec::new(),
        Some(OneOrMany::One(file)) => vec![file],
        Some(OneOrMany::Many(files)) => files,
    };
    files
        .iter()
        .map(|file| {
            let path = base.join(file);
            std::fs::read(&path).map_err(|source| HostsError::Read { path, source })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_in_order_then_the_server() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("docker.io")).unwrap();
        std::fs::write(dir.path().join("docker.io/ca.pem"), "PEM").unwrap();
        std::fs::write(
            dir.path().join("docker.io/hosts.toml"),
            r#"server = "https://registry-1.docker.io"

[host."http://127.0.0.1:5000"]
  capabilities = ["pull", "resolve"]

[host."https://mirror.example.com/v2"]
  capabilities = ["pull"]
  skip_verify = true
  ca = "ca.pem"

[host."https://push.example.com"]
  capabilities = ["push"]
"#,
        )
        .unwrap();
        let found = endpoints(dir.path(), "docker.io").unwrap();
        let hosts: Vec<(&str, bool, bool, bool)> = found
            .iter()
            .map(|e| (e.host.as_str(), e.plain_http, e.resolve, e.mirror))
            .collect();
        assert_eq!(
            hosts,
            [
                ("127.0.0.1:5000", true, true, true),
                ("mirror.example.com", false, false, true),
                ("registry-1.docker.io", false, true, false),
            ]
        );
        assert!(found[1].skip_verify);
        assert_eq!(found[1].ca_pem, [b"PEM".to_vec()]);

        // No file for the registry and no _default: the registry itself.
        assert_eq!(
            endpoints(dir.path(), "127.0.0.1:6000").unwrap(),
            [Endpoint::registry("127.0.0.1:6000")]
        );
        assert!(endpoints(dir.path(), "127.0.0.1:6000").unwrap()[0].plain_http);
        assert!(!endpoints(dir.path(), "quay.io").unwrap()[0].plain_http);
        assert_eq!(
            endpoints(Path::new("/nonexistent"), "docker.io").unwrap()[0].host,
            "index.docker.io"
        );

        std::fs::create_dir_all(dir.path().join("_default")).unwrap();
        std::fs::write(
            dir.path().join("_default/hosts.toml"),
            "[host.\"http://10.0.0.1:5000\"]\n",
        )
        .unwrap();
        let found = endpoints(dir.path(), "quay.io").unwrap();
        assert_eq!(found[0].host, "10.0.0.1:5000");
        assert!(found[0].plain_http && found[0].resolve);
        assert_eq!(found[1], Endpoint::registry("quay.io"));
    }

    #[test]
    fn refuses_what_it_does_not_know_naming_the_file() {
        let path = Path::new("/etc/x/hosts.toml");
        for (text, expected) in [
            ("servr = \"x\"\n", "unknown field `servr`"),
            (
                "[host.\"ftp://x\"]\n",
                "\"ftp://x\": expected an http:// or https:// URL",
            ),
            (
                "[host.\"https://x/prefix\"]\n",
                "\"https://x/prefix\": a path other than /v2 is not supported",
            ),
            (
                "[host.\"https://x\"]\ncapabilities = [\"pul\"]\n",
                "unknown capability \"pul\"",
            ),
        ] {
            let error = parse(path, text, "docker.io").unwrap_err().to_string();
            assert!(error.starts_with("/etc/x/hosts.toml: "), "{error}");
            assert!(error.contains(expected), "{error}");
        }
    }
}
