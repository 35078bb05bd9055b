//! What the crate reads from image JSON beyond oci-spec's types: the
//! config's diffIDs and creation time, and which entry of an image index
//! is the image to run (linux/amd64, never an attestation). Shared by
//! archive loading and registry pulls; parsing whole configs for a
//! container (Entrypoint, Env, User) is not here.

use crate::digest::Digest;
use oci_spec::image::{Descriptor, ImageIndex};

/// The diffIDs and `created` of an image config.
#[derive(serde::Deserialize)]
pub(crate) struct ConfigSummary {
    pub(crate) rootfs: RootFs,
    pub(crate) created: Option<String>,
}

/// The config's `rootfs`.
#[derive(serde::Deserialize)]
pub(crate) struct RootFs {
    pub(crate) diff_ids: Vec<Digest>,
}

/// When `bytes` is an image index (or manifest list), the entry to follow:
/// linux/amd64, not an attestation; `None` when it is no index.
pub(crate) fn chosen_from_index(bytes: &[u8]) -> Result<Option<Descriptor>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    if value.get("manifests").is_none() {
        return Ok(None);
    }
    let index = ImageIndex::from_reader(bytes).map_err(|e| format!("not an image index: {e}"))?;
    index
        .manifests()
        .iter()
        .find(|d| is_linux_amd64(d))
        .cloned()
        .map(Some)
        .ok_or_else(|| "the index has no linux/amd64 image".to_string())
}

/// An index entry for linux/amd64 that is not an attestation manifest.
fn is_linux_amd64(descriptor: &Descriptor) -> bool {
    let attestation = descriptor
        .annotations()
        .as_ref()
        .and_then(|a| a.get("vnd.docker.reference.type"))
        .is_some_and(|t| t == "attestation-manifest");
    let platform = descriptor.platform().as_ref();
    !attestation
        && platform.is_some_and(|p| {
            p.os().to_string() == "linux" && p.architecture().to_string() == "amd64"
        })
}
