//! CNI network configuration: finding it and validating it.
//!
//! Discovery follows the Kubernetes runtimes (containerd, CRI-O): in the
//! configuration directory (default [`DEFAULT_CONF_DIR`]) the files ending in
//! `.conflist`, `.conf` or `.json` are sorted by name and the first one is
//! the network. A missing or empty directory means "no CNI network", which
//! is not an error. A file that is there but broken IS an error, naming the
//! file and the field: a typo must not silently fall through to another
//! network or to no network at all.
//!
//! A single-plugin configuration (`.conf`, or `.json` without `plugins`) is
//! wrapped into a one-plugin list, as libcni's `ConfListFromConf` does.
//! This module only reads and checks; running the plugins is `super::exec`.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// Where Kubernetes runtimes look for network configurations.
pub const DEFAULT_CONF_DIR: &str = "/etc/cni/net.d";
/// Where plugin binaries are searched, in order: the upstream place, then
/// Debian's `containernetworking-plugins`.
pub const DEFAULT_BIN_DIRS: [&str; 2] = ["/opt/cni/bin", "/usr/lib/cni"];
/// File name endings that hold a network configuration, as libcni has them.
pub const CONFIG_EXTENSIONS: [&str; 3] = ["conflist", "conf", "json"];
/// CNI versions whose results this runtime parses (spec 0.3.0 onwards share
/// the `ips`/`interfaces`/`routes`/`dns` result shape).
pub const SUPPORTED_VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// A configuration that cannot be used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration directory exists but cannot be listed.
    #[error("cannot list CNI configuration directory {}: {source}", dir.display())]
    ListDir {
        /// The directory.
        dir: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A configuration file cannot be read.
    #[error("cannot read CNI configuration {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A configuration file is not valid JSON.
    #[error("{}: line {line} column {column}: invalid JSON: {message}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What serde_json says.
        message: String,
    },
    /// A field is missing or has a value the spec does not allow.
    #[error("{}: field `{field}`: {problem}", path.display())]
    Field {
        /// The file.
        path: PathBuf,
        /// JSON path of the field, e.g. `plugins[1].type`.
        field: String,
        /// What is wrong with it, with the offending value.
        problem: String,
    },
}

/// One plugin of a list: its type (the binary's name), the capabilities it
/// declares, and its configuration object exactly as written.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    /// The `type` field: file name of the plugin binary.
    pub plugin_type: String,
    /// Names from `capabilities` whose value is `true` (e.g. `portMappings`).
    pub capabilities: Vec<String>,
    /// The plugin's object as written in the file.
    pub raw: Map<String, Value>,
}

/// A validated network configuration list.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfig {
    /// `name` of the list: the network's name.
    pub name: String,
    /// `cniVersion` of the list, one of [`SUPPORTED_VERSIONS`].
    pub cni_version: String,
    /// `disableCheck`: CHECK is a no-op when true.
    pub disable_check: bool,
    /// The plugins, in ADD order.
    pub plugins: Vec<PluginConfig>,
    /// The file it came from (or a label such as `<built-in loopback>`).
    pub source: PathBuf,
}

impl NetworkConfig {
    /// Parses a configuration, list or single plugin, from `bytes`;
    /// `source` names it in errors. A document with a `plugins` array is a
    /// list; anything else is a single plugin, wrapped into a list.
    pub fn parse(source: &Path, bytes: &[u8]) -> Result<Self, ConfigError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| ConfigError::Json {
            path: source.to_owned(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        let Value::Object(top) = value else {
            return Err(field_error(source, "(top level)", "must be a JSON object"));
        };
        let name = required_string(source, &top, "name", "name")?;
        check_network_name(source, &name)?;
        let cni_version = required_string(source, &top, "cniVersion", "cniVersion")?;
        if !SUPPORTED_VERSIONS.contains(&cni_version.as_str()) {
            return Err(field_error(
                source,
                "cniVersion",
                format!(
                    "{cni_version:?} is not supported (supported: {})",
                    SUPPORTED_VERSIONS.join(", ")
                ),
            ));
        }
        let disable_check = match top.get("disableCheck") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            // libcni also accepts the strings "true"/"false".
            Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
            Some(other) => {
                return Err(field_error(
                    source,
                    "disableCheck",
                    format!("must be a boolean, found {other}"),
                ));
            }
        };
        let plugins = match top.get("plugins") {
            None => vec![plugin_config(source, "(top level)", top.clone())?],
            Some(Value::Array(list)) if list.is_empty() => {
                return Err(field_error(
                    source,
                    "plugins",
                    "must list at least one plugin",
                ));
            }
            Some(Value::Array(list)) => list
                .iter()
                .enumerate()
                .map(|(i, plugin)| {
                    let field = format!("plugins[{i}]");
                    match plugin {
                        Value::Object(map) => plugin_config(source, &field, map.clone()),
                        other => Err(field_error(
                            source,
                            &field,
                            format!("must be a JSON object, found {other}"),
                        )),
                    }
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(field_error(
                    source,
                    "plugins",
                    format!("must be an array, found {other}"),
                ));
            }
        };
        Ok(NetworkConfig {
            name,
            cni_version,
            disable_check,
            plugins,
            source: source.to_owned(),
        })
    }

    /// Reads and parses one configuration file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let bytes = fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &bytes)
    }

    /// The configuration as a JSON list (what the result cache stores, so a
    /// later DEL runs exactly the plugins the ADD ran).
    pub fn to_json(&self) -> Value {
        let mut top = Map::new();
        top.insert("cniVersion".into(), self.cni_version.clone().into());
        top.insert("name".into(), self.name.clone().into());
        if self.disable_check {
            top.insert("disableCheck".into(), true.into());
        }
        let plugins = self.plugins.iter().map(|p| Value::Object(p.raw.clone()));
        top.insert("plugins".into(), Value::Array(plugins.collect()));
        Value::Object(top)
    }

    /// Whether this configuration's version has the CHECK command (0.4.0+).
    pub fn supports_check(&self) -> bool {
        !self.cni_version.starts_with("0.3.")
    }

    /// Whether DEL and CHECK get the cached result as `prevResult` (0.4.0+,
    /// as libcni does).
    pub(crate) fn passes_prev_result_on_del(&self) -> bool {
        self.supports_check()
    }
}

/// The configuration file a runtime would use from `dir`: the first by name
/// among `*.conflist`, `*.conf`, `*.json`. `Ok(None)` when the directory does
/// not exist or holds none.
pub fn find_config_file(dir: &Path) -> Result<Option<PathBuf>, ConfigError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConfigError::ListDir {
                dir: dir.to_owned(),
                source,
            });
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ConfigError::ListDir {
            dir: dir.to_owned(),
            source,
        })?;
        let path = entry.path();
        let wanted = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| CONFIG_EXTENSIONS.contains(&e));
        // Follows symlinks: /etc/cni/net.d entries are often links.
        if wanted && path.is_file() {
            files.push(path);
        }
    }
    // Sort by file name bytes, as Go's sort.Strings does in libcni.
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files.into_iter().next())
}

fn plugin_config(
    source: &Path,
    field: &str,
    raw: Map<String, Value>,
) -> Result<PluginConfig, ConfigError> {
    let type_field = if field == "(top level)" {
        "type".to_owned()
    } else {
        format!("{field}.type")
    };
    let plugin_type = required_string(source, &raw, "type", &type_field)?;
    if plugin_type.is_empty()
        || plugin_type == "."
        || plugin_type == ".."
        || plugin_type.contains(['/', '\0'])
    {
        return Err(field_error(
            source,
            &type_field,
            format!("{plugin_type:?} is not a plugin file name"),
        ));
    }
    let capabilities = match raw.get("capabilities") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(caps)) => caps
            .iter()
            .filter(|(_, on)| matches!(on, Value::Bool(true)))
            .map(|(name, _)| name.clone())
            .collect(),
        Some(other) => {
            let cap_field = if field == "(top level)" {
                "capabilities".to_owned()
            } else {
                format!("{field}.capabilities")
            };
            return Err(field_error(
                source,
                &cap_field,
                format!("must be an object of name: bool, found {other}"),
            ));
        }
    };
    Ok(PluginConfig {
        plugin_type,
        capabilities,
        raw,
    })
}

fn required_string(
    source: &Path,
    map: &Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<String, ConfigError> {
    match map.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        None | Some(Value::Null) => Err(field_error(source, field, "is required")),
        Some(other) => Err(field_error(
            source,
            field,
            format!("must be a string, found {other}"),
        )),
    }
}

/// The spec: a network name starts with an alphanumeric character, then
/// alphanumerics, `_`, `.` or `-`. It also becomes part of a cache file name
/// and of host-local's store path, so this matters.
fn check_network_name(source: &Path, name: &str) -> Result<(), ConfigError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err(field_error(
            source,
            "name",
            format!(
                "{name:?} is not a valid network name (alphanumeric first, then alphanumerics, '_', '.', '-')"
            ),
        ))
    }
}

fn field_error(source: &Path, field: &str, problem: impl fmt::Display) -> ConfigError {
    ConfigError::Field {
        path: source.to_owned(),
        field: field.to_owned(),
        problem: problem.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<NetworkConfig, ConfigError> {
        NetworkConfig::parse(Path::new("/x/10-test.conflist"), text.as_bytes())
    }

    #[test]
    fn list_keeps_plugins_in_order_with_capabilities() {
        let net = parse(
            r#"{"cniVersion":"1.0.0","name":"pods","plugins":[
                {"type":"bridge","bridge":"br0"},
                {"type":"portmap","capabilities":{"portMappings":true,"bandwidth":false}}]}"#,
        )
        .unwrap();
        assert_eq!(net.name, "pods");
        assert_eq!(net.cni_version, "1.0.0");
        assert!(!net.disable_check);
        let types: Vec<_> = net.plugins.iter().map(|p| p.plugin_type.as_str()).collect();
        assert_eq!(types, ["bridge", "portmap"]);
        assert!(net.plugins[0].capabilities.is_empty());
        assert_eq!(net.plugins[1].capabilities, ["portMappings"]);
        assert_eq!(net.plugins[0].raw["bridge"], "br0");
    }

    #[test]
    fn single_plugin_conf_is_wrapped_into_a_list() {
        let net = parse(r#"{"cniVersion":"0.4.0","name":"lo","type":"loopback"}"#).unwrap();
        assert_eq!(net.plugins.len(), 1);
        assert_eq!(net.plugins[0].plugin_type, "loopback");
        assert!(net.supports_check());
        let reparsed = NetworkConfig::parse(Path::new("x"), net.to_json().to_string().as_bytes());
        assert_eq!(reparsed.unwrap().plugins[0].plugin_type, "loopback");
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        let cases = [
            (
                r#"{"cniVersion":"1.0.0","plugins":[{"type":"x"}]}"#,
                "`name`: is required",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"-bad","type":"x"}"#,
                "`name`:",
            ),
            (
                r#"{"cniVersion":"0.2.0","name":"n","type":"x"}"#,
                "`cniVersion`: \"0.2.0\"",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[]}"#,
                "`plugins`: must list",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a"},{"mtu":1}]}"#,
                "`plugins[1].type`: is required",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../sh"}]}"#,
                "`plugins[0].type`: \"../sh\" is not a plugin file name",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a","capabilities":[1]}]}"#,
                "`plugins[0].capabilities`",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","type":"a","disableCheck":3}"#,
                "`disableCheck`",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.starts_with("/x/10-test.conflist: "), "{err}");
            assert!(err.contains(expected), "{text}: {err} lacks {expected}");
        }
        let err = parse("{\n  \"name\": ,\n}").unwrap_err();
        assert!(matches!(err, ConfigError::Json { line: 2, .. }), "{err:?}");
    }

    #[test]
    fn discovery_takes_the_first_config_by_name_and_ignores_others() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(find_config_file(&dir.path().join("absent")).unwrap(), None);
        assert_eq!(find_config_file(dir.path()).unwrap(), None);
        fs::write(dir.path().join("README"), "not a config").unwrap();
        fs::write(dir.path().join("99-z.conflist"), "{}").unwrap();
        fs::create_dir(dir.path().join("00-dir.conf")).unwrap();
        assert_eq!(
            find_config_file(dir.path()).unwrap(),
            Some(dir.path().join("99-z.conflist"))
        );
        fs::write(dir.path().join("20-b.json"), "{}").unwrap();
        fs::write(dir.path().join("10-a.conf"), "{}").unwrap();
        assert_eq!(
            find_config_file(dir.path()).unwrap(),
            Some(dir.path().join("10-a.conf"))
        );
    }
}
