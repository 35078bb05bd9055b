//! `docker save` archives: manifest.json lists each image's config member,
//! its `RepoTags` and its layer members, in the old layout
//! (`<id>/layer.tar`, `<config hex>.json`) and in Docker 25+'s (members under
//! `blobs/sha256/`, with index.json holding the real manifests).

use super::{ArchiveError, FoundImage, digest_in_member_name, oci, source::Source};
use crate::reference::ImageReference;
use std::path::Path;

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SavedImage {
    config: String,
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// The images manifest.json lists.
pub(super) fn images(source: &Source, path: &Path) -> Result<Vec<FoundImage>, ArchiveError> {
    let bytes = source.read_json_member("manifest.json", path)?;
    let saved: Vec<SavedImage> =
        serde_json::from_slice(&bytes).map_err(|e| ArchiveError::Invalid {
            path: path.to_path_buf(),
            member: "manifest.json".into(),
            reason: format!("not a docker save manifest: {e}"),
        })?;
    let oci_layout = source.has("index.json") && source.has("oci-layout");
    saved
        .into_iter()
        .map(|image| {
            let names = image
                .repo_tags
                .unwrap_or_default()
                .iter()
                .map(|tag| {
                    ImageReference::parse(tag).map_err(|source| ArchiveError::InvalidName {
                        path: path.to_path_buf(),
                        source,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let config_digest = digest_in_member_name(&image.config);
            let manifest = match config_digest {
                Some(config) if oci_layout => oci::manifest_with_config(source, path, config),
                _ => None,
            };
            Ok(FoundImage {
                unnamed_because: format!("manifest.json gives image {} no RepoTags", image.config),
                config_member: image.config,
                config_digest,
                manifest,
                layers: image
                    .layers
                    .into_iter()
                    .map(|layer| {
                        let digest = digest_in_member_name(&layer);
                        (layer, digest)
                    })
                    .collect(),
                names,
            })
        })
        .collect()
}
