//! Image references normalised as Docker and kubelet do: `busybox` is
//! `docker.io/library/busybox:latest`, the first path part is a registry
//! host when it has a `.` or a `:` or is `localhost`, `name:tag@digest`
//! names the digest. Parsing is oci-spec's; this module adds what it drops
//! (whether a tag was written, which decides the default pull policy) and
//! the typed `InvalidImageName` error. It does not look anything up.

use oci_spec::distribution::Reference;
use std::fmt;
use std::str::FromStr;

/// A reference that did not parse, as kubelet's `InvalidImageName`.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("InvalidImageName: {value:?}: {reason}")]
pub struct InvalidImageName {
    /// The string as given.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A pull policy as Kubernetes spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Ask the registry every time (and reuse a stored copy of the digest).
    Always,
    /// Pull only when no image of that reference is stored.
    IfNotPresent,
    /// Never pull; a missing image is `ErrImageNeverPull`.
    Never,
}

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageReference {
    parsed: Reference,
    tag_written: bool,
}

impl ImageReference {
    /// Parses `value` as Docker does (lower-case repository, at most 255
    /// characters, tag `[\w][\w.-]{0,127}`, digest `sha256:` + 64 hex).
    pub fn parse(value: &str) -> Result<ImageReference, InvalidImageName> {
        let invalid = |reason: String| InvalidImageName {
            value: value.to_string(),
            reason,
        };
        if value.trim() != value {
            return Err(invalid("leading or trailing white space".into()));
        }
        let parsed = Reference::from_str(value).map_err(|e| invalid(e.to_string()))?;
        // oci-spec's pattern lets an upper-case first part through as a
        // registry and then files it under the repository.
        if parsed.repository().bytes().any(|c| c.is_ascii_uppercase()) {
            return Err(invalid("repository name must be lowercase".into()));
        }
        let before_digest = value.split('@').next().unwrap_or(value);
        let last_part = before_digest.rsplit('/').next().unwrap_or(before_digest);
        Ok(ImageReference {
            parsed,
            tag_written: last_part.contains(':'),
        })
    }

    /// The registry host (`docker.io` for Docker Hub), with its port if any.
    pub fn registry(&self) -> &str {
        self.parsed.registry()
    }

    /// The repository inside the registry (`library/busybox`).
    pub fn repository(&self) -> &str {
        self.parsed.repository()
    }

    /// The tag: the written one, else `latest` when there is no digest.
    pub fn tag(&self) -> Option<&str> {
        self.parsed.tag()
    }

    /// The digest (`sha256:...`) when the reference names one.
    pub fn digest(&self) -> Option<&str> {
        self.parsed.digest()
    }

    /// Whether the string had a tag of its own (`busybox` has not).
    pub fn tag_written(&self) -> bool {
        self.tag_written
    }

    /// `registry/repository`, the name a repo digest is formed from.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry(), self.repository())
    }

    /// `registry/repository@digest`, the image's repo digest for `digest`.
    pub fn repo_digest(&self, digest: &str) -> String {
        format!("{}@{digest}", self.name())
    }

    /// Kubernetes' default: `Always` for tag `latest` (written or implied),
    /// `IfNotPresent` for any other tag or a digest alone.
    pub fn default_pull_policy(&self) -> PullPolicy {
        if self.tag() == Some("latest") {
            PullPolicy::Always
        } else {
            PullPolicy::IfNotPresent
        }
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.parsed.fmt(f)
    }
}

impl FromStr for ImageReference {
    type Err = InvalidImageName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageReference::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn normal(value: &str) -> String {
        ImageReference::parse(value).unwrap().to_string()
    }

    #[test]
    fn short_names_go_to_docker_hub_library() {
        assert_eq!(normal("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(normal("alpine:3.2"), "docker.io/library/alpine:3.2");
        assert_eq!(normal("user/app:v1"), "docker.io/user/app:v1");
        assert_eq!(
            normal("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            normal("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
    }

    #[test]
    fn a_first_part_with_dot_colon_or_localhost_is_a_registry() {
        let r = ImageReference::parse("quay.io/coreos/etcd:v3").unwrap();
        assert_eq!((r.registry(), r.repository()), ("quay.io", "coreos/etcd"));
        let r = ImageReference::parse("127.0.0.1:5000/x").unwrap();
        assert_eq!((r.registry(), r.repository()), ("127.0.0.1:5000", "x"));
        let r = ImageReference::parse("localhost/x:1").unwrap();
        assert_eq!((r.registry(), r.repository()), ("localhost", "x"));
        let r = ImageReference::parse("myhost/x").unwrap();
        assert_eq!((r.registry(), r.repository()), ("docker.io", "myhost/x"));
    }

    #[test]
    fn digests_with_and_without_tag() {
        let r = ImageReference::parse(&format!("busybox@{DIGEST}")).unwrap();
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{DIGEST}"));
        assert_eq!((r.tag(), r.digest()), (None, Some(DIGEST)));
        assert_eq!(r.default_pull_policy(), PullPolicy::IfNotPresent);
        let r = ImageReference::parse(&format!("busybox:1.36@{DIGEST}")).unwrap();
        assert_eq!((r.tag(), r.digest()), (Some("1.36"), Some(DIGEST)));
        assert_eq!(
            r.repo_digest(DIGEST),
            format!("docker.io/library/busybox@{DIGEST}")
        );
    }

    #[test]
    fn pull_policy_follows_the_tag() {
        let policy = |v: &str| ImageReference::parse(v).unwrap().default_pull_policy();
        assert_eq!(policy("busybox"), PullPolicy::Always);
        assert_eq!(policy("busybox:latest"), PullPolicy::Always);
        assert_eq!(policy("busybox:1.36"), PullPolicy::IfNotPresent);
        assert_eq!(policy("localhost:5000/busybox"), PullPolicy::Always);
        assert!(
            !ImageReference::parse("localhost:5000/busybox")
                .unwrap()
                .tag_written()
        );
        assert!(
            ImageReference::parse("localhost:5000/busybox:latest")
                .unwrap()
                .tag_written()
        );
    }

    #[test]
    fn unparsable_names_are_invalid_image_name_naming_the_value() {
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "a b",
            " busybox",
            "busybox@sha256:12",
            "-x",
            "x/",
        ] {
            let error = ImageReference::parse(bad).unwrap_err();
            assert_eq!(error.value, bad);
            assert!(
                error.to_string().starts_with("InvalidImageName: "),
                "{error}"
            );
        }
        let long = "a".repeat(256);
        assert!(ImageReference::parse(&long).is_err());
    }
}
