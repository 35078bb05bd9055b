//! The shapes of names and paths Kubernetes validates, shared by the
//! validators: DNS-1123 labels (pod, container, volume names) and clean
//! absolute or relative paths (mounts, working directories, volume items).
//! Port names and variable names live with ports and env.

use std::path::{Component, Path, PathBuf};

use super::{DocRef, Result, invalid};

/// DNS-1123 label: at most 63 of `[a-z0-9-]`, alphanumeric at both ends.
pub(super) fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A name that must be a DNS-1123 label.
pub(super) fn check_label(file: &str, doc: &DocRef, path: &str, value: &str) -> Result<()> {
    check_name(
        file,
        doc,
        path,
        value,
        is_dns_label,
        "must be a DNS-1123 label: at most 63 lower-case letters, digits or '-', starting and ending with a letter or digit",
    )
}

/// DNS-1123 subdomain: at most 253 characters, dot-separated DNS labels
/// (what a PersistentVolumeClaim's name must be).
pub(super) fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// A name that must be a DNS-1123 subdomain.
pub(super) fn check_subdomain(file: &str, doc: &DocRef, path: &str, value: &str) -> Result<()> {
    check_name(
        file,
        doc,
        path,
        value,
        is_dns_subdomain,
        "must be a DNS-1123 subdomain: at most 253 lower-case letters, digits, '-' or '.', each dot-separated part starting and ending with a letter or digit",
    )
}

/// `value` at `path` when `valid` accepts it, else the error `reason`.
pub(super) fn check_name(
    file: &str,
    doc: &DocRef,
    path: &str,
    value: &str,
    valid: fn(&str) -> bool,
    reason: &str,
) -> Result<()> {
    if valid(value) {
        Ok(())
    } else {
        Err(invalid(file, doc, path, Some(value.to_owned()), reason))
    }
}

/// An absolute path without `.`, `..` or empty components; a trailing
/// `/` is dropped. Returns the clean path or why it is not one.
pub(super) fn clean_absolute(s: &str) -> std::result::Result<PathBuf, &'static str> {
    if !s.starts_with('/') {
        return Err("must be an absolute path");
    }
    let trimmed = s.strip_suffix('/').unwrap_or(s);
    if trimmed.is_empty() {
        return Err("must not be /");
    }
    if s.contains('\0') {
        return Err("must not contain NUL");
    }
    for part in trimmed[1..].split('/') {
        match part {
            "" => return Err("must not contain '//'"),
            "." | ".." => return Err("must not contain '.' or '..' components"),
            _ => {}
        }
    }
    Ok(PathBuf::from(trimmed))
}

/// A relative path without `..`, `.` or empty components.
pub(super) fn clean_relative(s: &str) -> std::result::Result<PathBuf, &'static str> {
    if s.is_empty() {
        return Err("must not be empty");
    }
    if s.starts_with('/') {
        return Err("must be a relative path");
    }
    if s.contains('\0') {
        return Err("must not contain NUL");
    }
    for part in s.split('/') {
        match part {
            "" => return Err("must not contain '//' or end with '/'"),
            "." | ".." => return Err("must not contain '.' or '..' components"),
            _ => {}
        }
    }
    debug_assert!(
        Path::new(s)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
    );
    Ok(PathBuf::from(s))
}
