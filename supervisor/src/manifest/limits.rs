//! What a manifest may cost: the size of the file, the number of its
//! documents and serde-saphyr's budget for each document (nesting, nodes,
//! aliases, scalar bytes). Every limit is checked before the memory it
//! guards is spent, so reading a hostile manifest (a million `---` lines, a
//! 50 MB string, nesting 100k deep, an alias bomb) takes time and memory
//! linear in its size and ends in an error that names the file and the
//! limit.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use serde_saphyr::budget::BudgetBreach;

/// The largest manifest file read: 3 MiB.
///
/// kube-apiserver refuses a request body over 3 MiB (`MaxRequestBodyBytes`
/// = 3 * 1024 * 1024, k8s.io/apiserver `pkg/server/config.go`), and etcd an
/// object over 1.5 MiB (`--max-request-bytes` default 1572864), so no
/// object a cluster stores is bigger; a file holding a pod and its
/// ConfigMaps fits, as long as they would fit in one API request.
pub const MAX_MANIFEST_BYTES: u64 = 3 * 1024 * 1024;

/// The most non-empty documents in one file. A file runs one pod with its
/// ConfigMaps and Secrets; serde-saphyr's own default budget allows 1,024
/// documents per stream ("doc separator storms").
pub const MAX_DOCUMENTS: usize = 1024;

/// Deepest nesting of mappings and sequences in a document: serde-saphyr's
/// default. A pod's deepest paths (affinity terms, probes' exec commands)
/// are about 12 levels.
pub const MAX_DEPTH: usize = 64;

/// Most nodes (scalars, mapping and sequence starts) of a document:
/// serde-saphyr's default. A 3 MiB file of one-letter keys and values has
/// at most about 750k; any real pod has a few thousand.
pub const MAX_NODES: usize = 250_000;

/// Most alias (`*name`) uses in a document. Kubernetes objects rarely use
/// any; an alias bomb needs many. Beside it, serde-saphyr's ratio check
/// (more than 10 aliases per anchor, once 100 are used) stays on.
pub const MAX_ALIASES: usize = 10_000;

/// Most bytes of scalar text in a document, aliases replayed included:
/// four times the file cap, so an alias can repeat a value a few times but
/// a bomb cannot multiply it.
pub const MAX_SCALAR_BYTES: usize = 4 * MAX_MANIFEST_BYTES as usize;

/// serde-saphyr's budget with the limits above.
pub(super) fn budget() -> Option<serde_saphyr::Budget> {
    serde_saphyr::budget! {
        max_reader_input_bytes: Some(MAX_MANIFEST_BYTES as usize),
        max_documents: MAX_DOCUMENTS,
        max_depth: MAX_DEPTH,
        max_nodes: MAX_NODES,
        max_aliases: MAX_ALIASES,
        max_anchors: MAX_ALIASES,
        max_total_scalar_bytes: MAX_SCALAR_BYTES,
        max_recorded_anchor_bytes: MAX_SCALAR_BYTES,
    }
}

/// A budget breach in words, with the limit: "nesting deeper than 64
/// levels (the limit)".
pub(super) fn describe_breach(breach: &BudgetBreach) -> String {
    let what = match breach {
        BudgetBreach::Depth { .. } => format!("nesting deeper than {MAX_DEPTH} levels"),
        BudgetBreach::Nodes { .. } => format!("more than {MAX_NODES} YAML nodes"),
        BudgetBreach::Aliases { .. } => format!("more than {MAX_ALIASES} aliases"),
        BudgetBreach::Anchors { .. } => format!("more than {MAX_ALIASES} anchors"),
        BudgetBreach::AliasAnchorRatio { aliases, anchors } => {
            format!("{aliases} aliases for {anchors} anchors (an alias bomb?)")
        }
        BudgetBreach::ScalarBytes { .. } | BudgetBreach::RecordedAnchorBytes { .. } => {
            format!("more than {MAX_SCALAR_BYTES} bytes of values, aliases expanded")
        }
        BudgetBreach::Documents { .. } => format!("more than {MAX_DOCUMENTS} documents"),
        other => format!("{other:?}"),
    };
    format!("manifest limit exceeded: {what}")
}

/// Why [`read`] gave up.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Open or read failed.
    #[error("cannot read: {0}")]
    Io(#[from] io::Error),
    /// Over [`MAX_MANIFEST_BYTES`].
    #[error(
        "manifest limit exceeded: the file is {} bytes, the limit is {limit} (3 MiB, kube-apiserver's largest request body)",
        .size.map_or_else(|| "more than the limit of".to_owned(), |s| s.to_string())
    )]
    TooLarge {
        /// The size, when the file says it (a regular file); None: a
        /// stream that went on past the limit.
        size: Option<u64>,
        /// The limit.
        limit: u64,
    },
    /// Not UTF-8 (Kubernetes' YAML and JSON are UTF-8).
    #[error("not UTF-8: invalid byte at offset {offset}")]
    NotUtf8 {
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },
}

/// Reads a manifest file of at most `limit` bytes: a regular file's size
/// is checked before anything is read, and any file (a pipe,
/// /dev/stdin) is read through a `take` of one byte more than the limit,
/// so no more than the limit is ever held.
pub fn read(path: &Path, limit: u64) -> Result<String, ReadError> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if meta.is_file() && meta.len() > limit {
        return Err(ReadError::TooLarge {
            size: Some(meta.len()),
            limit,
        });
    }
    let capacity = if meta.is_file() { meta.len() } else { 0 };
    let mut bytes = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { size: None, limit });
    }
    String::from_utf8(bytes).map_err(|e| ReadError::NotUtf8 {
        offset: e.utf8_error().valid_up_to(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_refuses_a_file_over_the_limit_before_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.yaml");
        std::fs::write(&path, "a: b\n".repeat(10)).unwrap();
        assert_eq!(read(&path, 50).unwrap().len(), 50);
        let e = read(&path, 49).unwrap_err();
        assert!(
            matches!(
                e,
                ReadError::TooLarge {
                    size: Some(50),
                    limit: 49
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("limit is 49"), "{e}");
    }

    #[test]
    fn read_bounds_a_stream_too() {
        // /dev/zero never ends and has no size: the take stops it.
        let e = read(Path::new("/dev/zero"), 1000).unwrap_err();
        assert!(matches!(e, ReadError::TooLarge { size: None, .. }), "{e:?}");
    }

    #[test]
    fn read_refuses_invalid_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bin.yaml");
        std::fs::write(&path, b"a: \xff\n").unwrap();
        let e = read(&path, 100).unwrap_err();
        assert!(matches!(e, ReadError::NotUtf8 { offset: 3 }), "{e:?}");
    }
}
