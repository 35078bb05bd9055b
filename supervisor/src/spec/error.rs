//! The one error type of manifest loading: every variant names the file,
//! the document (index, kind, name) and the field path, with the value and
//! the parser's line:column when there is one. `Display` is one line, e.g.
//! `pod.yaml: document 1 (Pod web): spec.containers[1].resources.limits.memory = "100Xi": unknown suffix "Xi" ...`.

use std::fmt;

use crate::quantity::QuantityError;

/// Which document of a file an error is about.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DocRef {
    /// 1-based position among the non-empty documents of the file.
    pub index: usize,
    /// `kind`, when the document has one.
    pub kind: Option<String>,
    /// `metadata.name`, when the document has one.
    pub name: Option<String>,
}

impl fmt::Display for DocRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "document {}", self.index)?;
        match (&self.kind, &self.name) {
            (Some(k), Some(n)) => write!(f, " ({} {})", clip(k), clip(n)),
            (Some(k), None) => write!(f, " ({})", clip(k)),
            (None, Some(n)) => write!(f, " ({})", clip(n)),
            (None, None) => Ok(()),
        }
    }
}

/// Why a manifest cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    // Not a `source`: the message shows it, and `{:#}` would say it twice.
    #[error("{file}: cannot read: {error}")]
    Read {
        /// The path.
        file: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The file is over [`crate::manifest::limits::MAX_MANIFEST_BYTES`] or
    /// not UTF-8.
    #[error("{file}: {reason}")]
    Limit {
        /// The path.
        file: String,
        /// What is wrong (shown in this error's message, so not its
        /// source: the message says it once).
        reason: crate::manifest::limits::ReadError,
    },
    /// More documents than [`crate::manifest::limits::MAX_DOCUMENTS`].
    #[error(
        "{file}: manifest limit exceeded: {count} documents, the limit is {limit} (one file runs one pod)"
    )]
    TooManyDocuments {
        /// The file name.
        file: String,
        /// How many non-empty documents the file has.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// YAML syntax, a wrong type or an unknown field (from the parser).
    #[error("{file}{}: {doc}: {}{}", fmt_location(.location), fmt_path(.path), clip_message(.message))]
    Parse {
        /// The file name.
        file: String,
        /// The document.
        doc: Box<DocRef>,
        /// Field path, empty at the document root.
        path: String,
        /// 1-based line and column.
        location: Option<(u32, u32)>,
        /// The parser's message.
        message: String,
    },
    /// A well-formed value that Kubernetes would refuse, or that is not
    /// supported here.
    #[error("{file}{}: {doc}: {}{}: {}", fmt_location(.location), clip(.path), fmt_value(.value), clip_message(.reason))]
    Invalid {
        /// The file name.
        file: String,
        /// The document.
        doc: Box<DocRef>,
        /// Field path, e.g. `spec.containers[1].resources.limits.memory`.
        path: String,
        /// The offending value as written, when there is one.
        value: Option<String>,
        /// 1-based line and column of the field (or of its nearest
        /// enclosing node when the field is missing).
        location: Option<(u32, u32)>,
        /// What is wrong.
        reason: String,
    },
    /// A resource quantity that does not parse or does not fit; the
    /// quantity error names the value and what is wrong with it.
    #[error("{file}{}: {doc}: {path} = {}", fmt_location(.location), clip_message(&.error.to_string()))]
    Quantity {
        /// The file name.
        file: String,
        /// The document.
        doc: Box<DocRef>,
        /// Field path, e.g. `spec.containers[1].resources.limits.memory`.
        path: String,
        /// 1-based line and column of the field.
        location: Option<(u32, u32)>,
        /// What is wrong, with the value as written.
        error: QuantityError,
    },
    /// The file has no pod to run.
    #[error("{file}: no Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet or Job found{}", fmt_ignored(.ignored))]
    NoPod {
        /// The file name.
        file: String,
        /// Kinds seen and ignored.
        ignored: Vec<String>,
    },
    /// More than one pod in the file (one supervisor runs one pod).
    #[error("{file}: {second}: a second pod (the first is {first}); one file runs one pod")]
    SecondPod {
        /// The file name.
        file: String,
        /// The first pod's document.
        first: Box<DocRef>,
        /// The second pod's document.
        second: Box<DocRef>,
    },
}

impl ManifestError {
    /// The field path of the error, if it has one.
    pub fn path(&self) -> Option<&str> {
        match self {
            ManifestError::Parse { path, .. }
            | ManifestError::Invalid { path, .. }
            | ManifestError::Quantity { path, .. } => Some(path),
            _ => None,
        }
    }

    /// Gives an error found after parsing its line and column: `locate`
    /// gets the document index and the field path.
    pub(super) fn fill_location(&mut self, locate: impl FnOnce(usize, &str) -> Option<(u32, u32)>) {
        match self {
            ManifestError::Invalid {
                doc,
                path,
                location,
                ..
            }
            | ManifestError::Quantity {
                doc,
                path,
                location,
                ..
            } if location.is_none() => *location = locate(doc.index, path),
            _ => {}
        }
    }
}

fn fmt_location(location: &Option<(u32, u32)>) -> String {
    location
        .map(|(l, c)| format!(":{l}:{c}"))
        .unwrap_or_default()
}

fn fmt_path(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{}: ", clip(path))
    }
}

fn fmt_value(value: &Option<String>) -> String {
    value
        .as_ref()
        .map(|v| match clip_at(v, MAX_SHOWN) {
            Some(head) => format!(" = {head:?}... ({} bytes)", v.len()),
            None => format!(" = {v:?}"),
        })
        .unwrap_or_default()
}

/// The most bytes of a name, value or message an error shows: an error
/// stays one readable line even when the manifest holds a 3 MiB string.
const MAX_SHOWN: usize = 256;

/// `text`, or its first [`MAX_SHOWN`] bytes (at a character boundary) and
/// its length; control characters escaped, so that the error stays one
/// line (a YAML key may hold a newline: found by the manifest fuzz
/// target).
fn clip(text: &str) -> std::borrow::Cow<'_, str> {
    clip_to(text, MAX_SHOWN)
}

fn clip_to(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    let (head, cut) = match clip_at(text, max) {
        Some(head) => (head, true),
        None => (text, false),
    };
    let mut out: std::borrow::Cow<'_, str> = if head.chars().any(char::is_control) {
        head.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_debug().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect::<String>()
            .into()
    } else {
        head.into()
    };
    if cut {
        out = format!("{out}... ({} bytes)", text.len()).into();
    }
    out
}

/// A parser's or quantity's message (which may quote the value): up to
/// four times [`MAX_SHOWN`], so the reason after a long value still shows.
fn clip_message(text: &str) -> std::borrow::Cow<'_, str> {
    clip_to(text, 4 * MAX_SHOWN)
}

/// The head of `text` cut at or before `max` bytes, when it is longer.
fn clip_at(text: &str, max: usize) -> Option<&str> {
    if text.len() <= max {
        return None;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(&text[..end])
}

fn fmt_ignored(ignored: &[String]) -> String {
    if ignored.is_empty() {
        String::new()
    } else {
        let shown: Vec<_> = ignored.iter().map(|kind| clip(kind)).collect();
        format!(" (ignored: {})", shown.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_formats() {
        let doc = DocRef {
            index: 2,
            kind: Some("Pod".into()),
            name: Some("web".into()),
        };
        let e = ManifestError::Invalid {
            file: "pod.yaml".into(),
            doc: Box::new(doc.clone()),
            path: "spec.containers[1].resources.limits.memory".into(),
            value: Some("100Xi".into()),
            location: None,
            reason: "unknown suffix".into(),
        };
        assert_eq!(
            e.to_string(),
            "pod.yaml: document 2 (Pod web): spec.containers[1].resources.limits.memory = \"100Xi\": unknown suffix"
        );
        let e = ManifestError::Parse {
            file: "pod.yaml".into(),
            doc: Box::new(doc),
            path: "spec".into(),
            location: Some((3, 5)),
            message: "unknown field `x`".into(),
        };
        assert_eq!(
            e.to_string(),
            "pod.yaml:3:5: document 2 (Pod web): spec: unknown field `x`"
        );
        assert!(!e.to_string().contains('\n'));
    }

    #[test]
    fn long_names_and_values_are_clipped() {
        let long = "é".repeat(1000);
        let e = ManifestError::Invalid {
            file: "pod.yaml".into(),
            doc: Box::new(DocRef {
                index: 1,
                kind: Some("Pod".into()),
                name: Some(long.clone()),
            }),
            path: "metadata.name".into(),
            value: Some(long.clone()),
            location: None,
            reason: "too long".into(),
        };
        let shown = e.to_string();
        assert!(shown.len() < 800, "{} bytes", shown.len());
        assert!(shown.contains("... (2000 bytes)"), "{shown}");
        assert!(shown.ends_with(": too long"), "{shown}");
    }

    #[test]
    fn control_characters_are_escaped() {
        // Found by the manifest fuzz target: a key with a newline in it.
        let e = ManifestError::Parse {
            file: "fuzz.yaml".into(),
            doc: Box::new(DocRef::default()),
            path: "metadat, labels.0comMcn\n\nstratelind.?".into(),
            location: Some((7, 1)),
            message: "unexpected character: `\u{1}'".into(),
        };
        let shown = e.to_string();
        assert!(!shown.contains('\n'), "{shown}");
        assert!(shown.contains("0comMcn\\n\\nstratelind"), "{shown}");
    }
}
