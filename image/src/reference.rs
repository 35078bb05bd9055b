//! Image references normalised as Docker and kubelet do: `busybox` is
//! `docker.io/library/busybox:latest`, the first path part is a registry
//! host when it has a `.` or a `:` or is `localhost`, `name:tag@digest`
//! names the digest. The grammar is distribution/reference's (the one
//! oci-spec's parser encodes as a regex), checked here by hand: oci-spec's
//! regex compiles to about 7 MB of heap the first time it is used, which
//! every supervisor process would keep; the value is then oci-spec's
//! `Reference`, and tests check the two parsers agree. This module adds what
//! oci-spec drops (whether a tag was written, which decides the default
//! pull policy) and the typed `InvalidImageName` error. It looks nothing up.

use oci_spec::distribution::ParseError;
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
        let parsed = parse_reference(value).map_err(|e| invalid(e.to_string()))?;
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

/// Docker Hub's names.
const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_LEGACY: &str = "index.docker.io";
const OFFICIAL_REPOSITORIES: &str = "library";
/// The longest repository name.
const NAME_MAX: usize = 255;

/// `value` parsed as distribution/reference's grammar:
/// `[domain/]path[:tag][@digest]`, then normalised as Docker does.
fn parse_reference(value: &str) -> Result<Reference, ParseError> {
    if value.is_empty() {
        return Err(ParseError::NameEmpty);
    }
    let (rest, digest) = match value.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (value, None),
    };
    let (name, tag) = match rest.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
        _ => (rest, None),
    };
    let grammatical =
        is_name(name) && tag.is_none_or(is_tag) && digest.is_none_or(is_digest_syntax);
    if !grammatical {
        // Docker's hint: the same name in lower case would be one.
        let lower = name.to_ascii_lowercase();
        if lower != name && is_name(&lower) {
            return Err(ParseError::NameContainsUppercase);
        }
        return Err(ParseError::ReferenceInvalidFormat);
    }
    let (registry, repository) = split_domain(name);
    // The grammar lets an upper-case first part through as a domain; one
    // that is no registry (no `.`, `:`, not localhost) is repository.
    if repository.bytes().any(|c| c.is_ascii_uppercase()) {
        return Err(ParseError::NameContainsUppercase);
    }
    if repository.len() > NAME_MAX {
        return Err(ParseError::NameTooLong);
    }
    if let Some(digest) = digest {
        let expected = match digest.split_once(':') {
            Some(("sha256", _)) => 64,
            Some(("sha384", _)) => 96,
            Some(("sha512", _)) => 128,
            Some(_) => return Err(ParseError::DigestUnsupported),
            None => return Err(ParseError::DigestInvalidFormat),
        };
        if digest.len() - digest.find(':').unwrap_or(0) - 1 != expected {
            return Err(ParseError::DigestInvalidLength);
        }
    }
    Ok(match (tag, digest) {
        (Some(tag), Some(digest)) => {
            Reference::with_tag_and_digest(registry, repository, tag.into(), digest.into())
        }
        (None, Some(digest)) => Reference::with_digest(registry, repository, digest.into()),
        (tag, None) => Reference::with_tag(registry, repository, tag.unwrap_or("latest").into()),
    })
}

/// `[domain/]path-component(/path-component)*`.
fn is_name(name: &str) -> bool {
    let mut parts = name.split('/');
    let first = parts.next().unwrap_or("");
    let rest: Vec<&str> = parts.collect();
    let remote_ok = rest.iter().all(|p| is_path_component(p));
    (is_path_component(first) && remote_ok) || (!rest.is_empty() && is_domain(first) && remote_ok)
}

/// `[a-z0-9]+` joined by separators `.`, `_`, `__` or any run of `-`.
fn is_path_component(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !bytes.first().is_some_and(|c| alnum(*c)) || !bytes.last().is_some_and(|c| alnum(*c)) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &part[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `label(.label)*[:port]`, a label being `[a-zA-Z0-9]` or
/// `[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`.
fn is_domain(domain: &str) -> bool {
    let (host, port) = match domain.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    };
    let label_ok = |label: &str| {
        let b = label.as_bytes();
        !b.is_empty()
            && b.first().is_some_and(u8::is_ascii_alphanumeric)
            && b.last().is_some_and(u8::is_ascii_alphanumeric)
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    };
    host.split('.').all(label_ok)
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
}

/// `[\w][\w.-]{0,127}` (ASCII word characters).
fn is_tag(tag: &str) -> bool {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let b = tag.as_bytes();
    b.first().is_some_and(|c| word(*c))
        && b.len() <= 128
        && b.iter().all(|c| word(*c) || *c == b'.' || *c == b'-')
}

/// `algorithm:hex{32,}`, algorithm `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*`.
fn is_digest_syntax(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let algorithm_ok = algorithm.split(['-', '_', '+', '.']).all(|part| {
        part.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
            && part.bytes().all(|c| c.is_ascii_alphanumeric())
    });
    algorithm_ok && hex.len() >= 32 && hex.bytes().all(|c| c.is_ascii_hexdigit())
}

/// The registry and repository of a name, as Docker splits them.
fn split_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.split_once('/') {
        Some((left, right)) if left.contains(['.', ':']) || left == "localhost" => {
            (left.to_string(), right.to_string())
        }
        _ => (DOCKER_HUB.to_string(), name.to_string()),
    };
    if domain == DOCKER_HUB_LEGACY {
        domain = DOCKER_HUB.to_string();
    }
    if domain == DOCKER_HUB && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPOSITORIES}/{remainder}");
    }
    (domain, remainder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grammar_agrees_with_oci_spec_s_parser() {
        let digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let cases = [
            "busybox",
            "busybox:1.36",
            "library/busybox",
            "docker.io/busybox",
            "index.docker.io/x/y:z",
            "quay.io/coreos/etcd:v3.5",
            "127.0.0.1:5000/x/y",
            "localhost/x",
            "localhost:5000/x:1",
            "my-host.example.com/a/b/c:tag_1.2-3",
            "a__b",
            "a---b",
            "a.b.c",
            "a_b",
            "a___b",
            "a..b",
            "a-",
            "-a",
            "A/b",
            "Busybox",
            "UPPER/Case:1",
            "x/Y",
            "x:",
            "x:-tag",
            "x:_tag",
            "x:tag.with.dots",
            "host:/x",
            "host:port/x",
            "ho_st.io/x",
            "ho-st.io/x",
            "-host.io/x",
            "x/",
            "/x",
            "x//y",
            "a b",
            "x@sha256:12",
            "x@md5:0123456789abcdef0123456789abcdef",
            "x@sha512:0123",
            "nginx:latest",
            "a/b:c@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ];
        for case in cases.iter().map(|c| c.to_string()).chain([
            format!("x@{digest}"),
            format!("x:1@{digest}"),
            "a".repeat(256),
            format!("x:{}", "t".repeat(129)),
        ]) {
            let ours = parse_reference(&case);
            let theirs = Reference::from_str(&case);
            match (&ours, &theirs) {
                (Ok(a), Ok(b)) => assert_eq!(a.whole(), b.whole(), "{case}"),
                (Err(_), Err(_)) => {}
                // oci-spec files an upper-case first part that is no
                // registry under the repository; Docker and this parser
                // refuse it.
                (Err(ParseError::NameContainsUppercase), Ok(b))
                    if b.repository().bytes().any(|c| c.is_ascii_uppercase()) => {}
                _ => panic!("{case}: ours {ours:?}, oci-spec {theirs:?}"),
            }
        }
    }

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
            "UPPER/x",
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
