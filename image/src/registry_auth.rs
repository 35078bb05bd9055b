//! Registry credentials from auth files in the `~/.docker/config.json` /
//! containers `auth.json` format (`{"auths": {KEY: {"auth": base64(user:pass)}
//! | {"username", "password"}}}`), matched to an image as kubelet's
//! credentialprovider does: by registry host (docker.io's aliases are one
//! host, `*` matches one label) and path prefix, the longest first. Every
//! match is returned, in file order then longest key first, for the caller
//! to try in turn. Asking credential helpers (`credsStore`) is not here.

use base64::Engine as _;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Credentials for one registry.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// `(username, password)`; anonymous when `None`.
    pub basic: Option<(String, String)>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let user = self.basic.as_ref().map(|(u, _)| u.as_str());
        f.debug_struct("Credentials").field("user", &user).finish()
    }
}

/// An auth file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    /// The file cannot be read.
    #[error("registry auth file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not an auth file.
    #[error("registry auth file {}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong (names the key).
        reason: String,
    },
}

#[derive(serde::Deserialize)]
struct AuthFileJson {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntryJson>,
}

#[derive(serde::Deserialize)]
struct AuthEntryJson {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// One key of an auth file, parsed for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AuthKey {
    /// Host labels, lower case, docker.io's aliases as `docker.io`.
    host: String,
    /// `:port`, or empty.
    port: String,
    /// Path segments the repository must start with.
    path: Vec<String>,
}

/// The credentials of one or more auth files.
#[derive(Debug, Default, Clone)]
pub struct RegistryAuths {
    entries: Vec<(AuthKey, Credentials)>,
    /// Where each file's entries end in `entries`.
    file_ends: Vec<usize>,
}

impl RegistryAuths {
    /// Reads `files`, in the order they are to be tried.
    pub fn load(files: &[PathBuf]) -> Result<RegistryAuths, AuthFileError> {
        let mut auths = RegistryAuths::default();
        for path in files {
            let data = std::fs::read(path).map_err(|source| AuthFileError::Read {
                path: path.clone(),
                source,
            })?;
            auths.add_json(path, &data)?;
        }
        Ok(auths)
    }

    /// Adds one file's JSON (`shown` in errors).
    pub fn add_json(&mut self, shown: &Path, data: &[u8]) -> Result<(), AuthFileError> {
        let invalid = |reason: String| AuthFileError::Invalid {
            path: shown.to_path_buf(),
            reason,
        };
        let file: AuthFileJson =
            serde_json::from_slice(data).map_err(|e| invalid(e.to_string()))?;
        for (key, entry) in file.auths {
            let basic = match (entry.auth, entry.username, entry.password) {
                (Some(auth), _, _) if !auth.is_empty() => {
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(auth.trim())
                        .ok()
                        .and_then(|d| String::from_utf8(d).ok())
                        .ok_or_else(|| {
                            invalid(format!("{key:?}: \"auth\" is not base64 of user:password"))
                        })?;
                    let (user, password) = decoded.split_once(':').ok_or_else(|| {
                        invalid(format!(
                            "{key:?}: \"auth\" has no ':' between user and password"
                        ))
                    })?;
                    (user.to_string(), password.to_string())
                }
                (_, Some(user), Some(password)) => (user, password),
                // An entry without credentials (an identity token, a helper's placeholder).
                _ => continue,
            };
            let parsed = parse_key(&key).ok_or_else(|| {
                invalid(format!("{key:?}: not a registry host, host/path or URL"))
            })?;
            self.entries
                .push((parsed, Credentials { basic: Some(basic) }));
        }
        self.file_ends.push(self.entries.len());
        Ok(())
    }

    /// Every credential matching `registry` (`host[:port]`, as a
    /// reference names it) and `repository`: file by file, the longest
    /// key first. Empty: pull anonymously.
    pub fn lookup(&self, registry: &str, repository: &str) -> Vec<Credentials> {
        let Some(target) = parse_key(&format!("{registry}/{repository}")) else {
            return Vec::new();
        };
        let mut found = Vec::new();
        let mut start = 0;
        for &end in &self.file_ends {
            let mut matches: Vec<&(AuthKey, Credentials)> = self.entries[start..end]
                .iter()
                .filter(|(key, _)| key_matches(key, &target))
                .collect();
            matches.sort_by_key(|(key, _)| {
                std::cmp::Reverse((key.path.len(), !key.host.contains('*')))
            });
            for (_, credentials) in matches {
                if !found.contains(credentials) {
                    found.push(credentials.clone());
                }
            }
            start = end;
        }
        found
    }
}

/// `host[:port][/path]` or a URL, as kubelet reads an auth file key.
fn parse_key(key: &str) -> Option<AuthKey> {
    let (without_scheme, is_url) = match key.split_once("://") {
        Some((_, rest)) => (rest, true),
        None => (key, false),
    };
    let (authority, path) = without_scheme
        .split_once('/')
        .unwrap_or((without_scheme, ""));
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            (host, format!(":{port}"))
        }
        _ => (authority, String::new()),
    };
    let host = host.to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    let mut path: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    // Docker writes registries as `https://host/v1/` (or `/v2/`): the API
    // version is no repository path.
    if is_url && path.len() == 1 && (path[0] == "v1" || path[0] == "v2") {
        path.clear();
    }
    let host = match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        _ => host,
    };
    Some(AuthKey { host, port, path })
}

fn key_matches(key: &AuthKey, target: &AuthKey) -> bool {
    let key_labels: Vec<&str> = key.host.split('.').collect();
    let target_labels: Vec<&str> = target.host.split('.').collect();
    key.port == target.port
        && key_labels.len() == target_labels.len()
        && key_labels
            .iter()
            .zip(&target_labels)
            .all(|(k, t)| *k == "*" || k == t)
        && target.path.starts_with(&key.path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auths(json: &str) -> RegistryAuths {
        let mut auths = RegistryAuths::default();
        auths
            .add_json(Path::new("auth.json"), json.as_bytes())
            .unwrap();
        auths
    }

    fn users(found: Vec<Credentials>) -> Vec<String> {
        found.into_iter().map(|c| c.basic.unwrap().0).collect()
    }

    #[test]
    fn matches_by_host_and_longest_path_prefix() {
        let a = base64::engine::general_purpose::STANDARD.encode("a:pa");
        let auths = auths(&format!(
            r#"{{"auths": {{
                "registry.example.com": {{"auth": "{a}"}},
                "registry.example.com/team": {{"username": "team", "password": "pt"}},
                "registry.example.com/team/app": {{"username": "app", "password": "pp"}},
                "registry.example.com:5000": {{"username": "port", "password": "x"}},
                "*.example.org": {{"username": "wild", "password": "x"}},
                "https://index.docker.io/v1/": {{"username": "hub", "password": "x"}},
                "other.example.com": {{"identitytoken": "t"}}
            }}}}"#
        ));
        assert_eq!(
            users(auths.lookup("registry.example.com", "team/app/web")),
            ["app", "team", "a"]
        );
        assert_eq!(
            users(auths.lookup("registry.example.com", "teams/x")),
            ["a"]
        );
        assert_eq!(
            users(auths.lookup("registry.example.com:5000", "x")),
            ["port"]
        );
        assert_eq!(users(auths.lookup("eu.example.org", "x")), ["wild"]);
        assert!(auths.lookup("a.eu.example.org", "x").is_empty());
        assert_eq!(users(auths.lookup("docker.io", "library/busybox")), ["hub"]);
        assert!(auths.lookup("other.example.com", "x").is_empty());
        assert_eq!(
            auths.lookup("registry.example.com", "x")[0].basic,
            Some(("a".into(), "pa".into()))
        );
    }

    #[test]
    fn docker_io_aliases_are_one_host_and_files_keep_their_order() {
        let mut auths = RegistryAuths::default();
        for (name, key) in [
            ("first", "registry-1.docker.io"),
            ("second", "docker.io/library"),
        ] {
            let json =
                format!(r#"{{"auths": {{"{key}": {{"username": "{name}", "password": "p"}}}}}}"#);
            auths.add_json(Path::new(name), json.as_bytes()).unwrap();
        }
        assert_eq!(
            users(auths.lookup("docker.io", "library/busybox")),
            ["first", "second"]
        );
        assert_eq!(users(auths.lookup("docker.io", "me/app")), ["first"]);
    }

    #[test]
    fn refuses_bad_entries_naming_the_key() {
        let mut auths = RegistryAuths::default();
        let error = auths
            .add_json(
                Path::new("/x/auth.json"),
                br#"{"auths": {"r.example.com": {"auth": "!!"}}}"#,
            )
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "registry auth file /x/auth.json: \"r.example.com\": \"auth\" is not base64 of user:password"
        );
        let error = auths.add_json(Path::new("/x/auth.json"), b"[").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("registry auth file /x/auth.json: "),
            "{error}"
        );
    }
}
