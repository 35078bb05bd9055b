//! Pulling an image over the OCI distribution API with oci-client: the
//! tag resolved to a digest with a HEAD (an image stored under that repo
//! digest is only named, nothing downloaded), the manifest (Docker v2
//! schema 2 or OCI; an index or manifest list resolved to linux/amd64,
//! attestations skipped), the config, then up to three layers at once, each
//! blob streamed into its own unpacking thread, its digest and diffID
//! checked by the store. Endpoints (mirrors, then the server) and matching
//! credentials are tried in turn; finding them is `registry_hosts`' and
//! `registry_auth`'s. oci-client is async: it runs on a current-thread tokio
//! runtime in a thread of its own, so the caller only blocks.

use crate::digest::Digest;
use crate::manifest::{ConfigSummary, chosen_from_index};
use crate::progress::{LayerState, NoProgress, PullProgress};
use crate::reference::{ImageReference, PullPolicy};
use crate::registry_auth::RegistryAuths;
use crate::registry_hosts::Endpoint;
use crate::store::{ImageRecord, NewImage, Store, StoreError};
use futures_util::{StreamExt, TryStreamExt};
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{
    IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE,
};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use oci_spec::image::ImageManifest;
use std::io::{self, Read};
use std::time::Duration;

/// Layers downloaded at once.
const PARALLEL_LAYERS: usize = 3;
/// Chunks queued between a download and its unpacking thread.
const CHUNKS_IN_FLIGHT: usize = 16;
/// Largest manifest or config accepted.
const MAX_JSON_BYTES: usize = 16 << 20;
/// Longest wait for a connection, and for the next bytes of a response.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// A pull that failed; the message names the image and the cause.
#[derive(Debug, thiserror::Error)]
#[error("pulling {image}: {cause}")]
pub struct PullError {
    /// The reference.
    pub image: String,
    /// Why.
    pub cause: PullCause,
}

/// Why a pull failed.
#[derive(Debug, thiserror::Error)]
pub enum PullCause {
    /// An endpoint refused or failed (unknown image or tag, network).
    #[error("{endpoint}: {}", with_causes(source))]
    Registry {
        /// The endpoint's `host[:port]`.
        endpoint: String,
        /// oci-client's error.
        source: OciDistributionError,
    },
    /// The endpoint wants credentials that work.
    #[error("{}", unauthorized_message(endpoint, users))]
    Unauthorized {
        /// The endpoint's `host[:port]`.
        endpoint: String,
        /// The users whose credentials were refused (none: anonymous only).
        users: Vec<String>,
    },
    /// What the registry sent is not a usable image.
    #[error("{0}")]
    Invalid(String),
    /// Storing failed (digest or diffID mismatch, a refused layer entry, I/O).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The runtime or a thread could not be started.
    #[error("{0}")]
    Runtime(io::Error),
    /// Every endpoint failed (mirrors, then the server), each for its reason.
    #[error("{}", .0.iter().map(|c| c.to_string()).collect::<Vec<_>>().join("; "))]
    Endpoints(Vec<PullCause>),
    /// No endpoint may resolve a tag (every one lacks the `resolve` capability).
    #[error("no configured host may resolve a tag (capability \"resolve\"); pull by digest")]
    NoResolver,
    /// `imagePullPolicy: Never` and no such image is stored.
    #[error("the image is not present and the pull policy is Never")]
    NeverPull,
}

/// An error and its sources, `: `-separated (reqwest's own message
/// leaves out why a request failed, e.g. "Connection refused").
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

fn unauthorized_message(endpoint: &str, users: &[String]) -> String {
    if users.is_empty() {
        format!(
            "{endpoint}: authentication required, and no credentials match (--registry-auth-file or an imagePullSecret)"
        )
    } else {
        format!(
            "{endpoint}: credentials refused (user {})",
            users
                .iter()
                .map(|u| format!("{u:?}"))
                .collect::<Vec<_>>()
                .join(", user ")
        )
    }
}

/// Where and as whom to pull, and whom to tell.
pub struct PullOptions<'a> {
    /// Tried in order; empty: the registry itself ([`Endpoint::registry`]).
    pub endpoints: Vec<Endpoint>,
    /// Credentials, matched per endpoint.
    pub auths: RegistryAuths,
    /// Told of each layer's progress.
    pub progress: &'a dyn PullProgress,
}

impl Default for PullOptions<'_> {
    fn default() -> Self {
        PullOptions {
            endpoints: Vec::new(),
            auths: RegistryAuths::default(),
            progress: &NoProgress,
        }
    }
}

impl PullOptions<'_> {
    fn endpoints_for(&self, reference: &ImageReference) -> Vec<Endpoint> {
        if self.endpoints.is_empty() {
            vec![Endpoint::registry(reference.registry())]
        } else {
            self.endpoints.clone()
        }
    }
}

/// Whether `registry` (`host[:port]`) is on loopback, spoken to in plain HTTP.
pub fn is_loopback_registry(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or(""),
        None => registry
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(registry),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// What a pull did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// The image, recorded under the reference.
    pub record: ImageRecord,
    /// False when a stored image was used (nothing downloaded).
    pub downloaded: bool,
}

/// Makes `reference` present as `policy` says: `IfNotPresent` uses a
/// stored image of that name, `Never` only that (else [`PullCause::NeverPull`]),
/// `Always` pulls (see [`pull`]).
pub fn pull_with_policy(
    store: &Store,
    reference: &ImageReference,
    policy: PullPolicy,
    options: &PullOptions<'_>,
) -> Result<Pulled, PullError> {
    if policy != PullPolicy::Always {
        match store.find(&reference.to_string()) {
            Ok(record) => {
                return Ok(Pulled {
                    record,
                    downloaded: false,
                });
            }
            Err(StoreError::NotFound(_)) if policy == PullPolicy::Never => {
                return Err(PullError {
                    image: reference.to_string(),
                    cause: PullCause::NeverPull,
                });
            }
            Err(StoreError::NotFound(_)) => {}
            Err(error) => {
                return Err(PullError {
                    image: reference.to_string(),
                    cause: PullCause::Store(error),
                });
            }
        }
    }
    pull(store, reference, options)
}

/// Pulls `reference` into `store` and records it under that name: the tag
/// is resolved with a HEAD; when an image of that repo digest is stored it
/// is only named, else it is downloaded. Blocks until done; the protocol
/// runs in a thread of its own.
pub fn pull(
    store: &Store,
    reference: &ImageReference,
    options: &PullOptions<'_>,
) -> Result<Pulled, PullError> {
    let failed = |cause| PullError {
        image: reference.to_string(),
        cause,
    };
    // rustls needs a process-wide crypto provider; a second install is refused, harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    std::thread::scope(|scope| {
        let puller = std::thread::Builder::new()
            .name("image-pull".into())
            .spawn_scoped(scope, || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(PullCause::Runtime)?;
                runtime.block_on(pull_from_endpoints(store, scope, reference, options))
            })
            .map_err(|e| failed(PullCause::Runtime(e)))?;
        puller
            .join()
            .unwrap_or_else(|_| {
                Err(PullCause::Runtime(io::Error::other(
                    "the pull thread panicked",
                )))
            })
            .map_err(failed)
    })
}

async fn pull_from_endpoints<'scope, 'env>(
    store: &'env Store,
    scope: &'scope std::thread::Scope<'scope, 'env>,
    reference: &ImageReference,
    options: &PullOptions<'env>,
) -> Result<Pulled, PullCause> {
    let remote: Reference = reference
        .to_string()
        .parse()
        .map_err(|e: oci_client::ParseError| PullCause::Invalid(e.to_string()))?;
    let mut failures = Vec::new();
    for endpoint in options.endpoints_for(reference) {
        if reference.digest().is_none() && !endpoint.resolve {
            continue;
        }
        let attempt = async {
            let session = Session::connect(reference, &remote, &endpoint, &options.auths).await?;
            session
                .pull(store, scope, reference, options.progress)
                .await
        };
        match attempt.await {
            Ok(pulled) => return Ok(pulled),
            Err(cause) => failures.push(cause),
        }
    }
    match failures.len() {
        0 => Err(PullCause::NoResolver),
        1 => Err(failures.remove(0)),
        _ => Err(PullCause::Endpoints(failures)),
    }
}

/// One endpoint, with the credentials it took, and the digest the
/// reference resolved to there.
struct Session {
    client: Client,
    auth: RegistryAuth,
    remote: Reference,
    endpoint: String,
    top_digest: Digest,
}

impl Session {
    /// Resolves the reference at `endpoint` with a HEAD, trying each
    /// matching credential in turn (anonymous when none matches).
    async fn connect(
        reference: &ImageReference,
        remote: &Reference,
        endpoint: &Endpoint,
        auths: &RegistryAuths,
    ) -> Result<Session, PullCause> {
        let mut remote = remote.clone();
        if endpoint.host != remote.resolve_registry() {
            remote.set_mirror_registry(endpoint.host.clone());
        }
        let credential_host = if endpoint.mirror {
            endpoint.host.as_str()
        } else {
            reference.registry()
        };
        let mut tries: Vec<RegistryAuth> = auths
            .lookup(credential_host, reference.repository())
            .into_iter()
            .filter_map(|c| c.basic)
            .map(|(user, password)| RegistryAuth::Basic(user, password))
            .collect();
        if tries.is_empty() {
            tries.push(RegistryAuth::Anonymous);
        }
        let mut refused = Vec::new();
        for auth in tries {
            let registry_error = |source| PullCause::Registry {
                endpoint: endpoint.host.clone(),
                source,
            };
            let client = client_for(endpoint);
            match client.fetch_manifest_digest(&remote, &auth).await {
                Ok(digest) => {
                    let top_digest = Digest::parse(&digest)
                        .map_err(|e| PullCause::Invalid(format!("{}: {e}", endpoint.host)))?;
                    return Ok(Session {
                        client,
                        auth,
                        remote,
                        endpoint: endpoint.host.clone(),
                        top_digest,
                    });
                }
                Err(error) if is_unauthorized(&error) => {
                    if let RegistryAuth::Basic(user, _) = &auth {
                        refused.push(user.clone());
                    }
                }
                Err(error) => return Err(registry_error(error)),
            }
        }
        Err(PullCause::Unauthorized {
            endpoint: endpoint.host.clone(),
            users: refused,
        })
    }

    fn registry_error(&self, source: OciDistributionError) -> PullCause {
        PullCause::Registry {
            endpoint: self.endpoint.clone(),
            source,
        }
    }

    /// Names a stored image of the resolved digest, or downloads it.
    async fn pull<'scope, 'env>(
        &self,
        store: &'env Store,
        scope: &'scope std::thread::Scope<'scope, 'env>,
        reference: &ImageReference,
        progress: &'env dyn PullProgress,
    ) -> Result<Pulled, PullCause> {
        let repo_digest = reference.repo_digest(&self.top_digest.to_string());
        if let Ok(stored) = store.find(&repo_digest)
            && stored.repo_digests.contains(&repo_digest)
        {
            let record = store.commit_image(
                stored.id,
                stored.manifest,
                NewImage {
                    names: vec![reference.clone()],
                    repo_digest: Some(repo_digest),
                    diff_ids: stored.layers.iter().map(|l| l.diff_id).collect(),
                    created: stored.created.clone(),
                },
            )?;
            return Ok(Pulled {
                record,
                downloaded: false,
            });
        }
        let pinned = self.remote.clone_with_digest(self.top_digest.to_string());
        let (mut manifest_bytes, mut manifest_digest) = self.fetch_manifest(&pinned).await?;
        if let Some(chosen) = chosen_from_index(&manifest_bytes).map_err(PullCause::Invalid)? {
            (manifest_bytes, manifest_digest) = self
                .fetch_manifest(&self.remote.clone_with_digest(chosen.digest().to_string()))
                .await?;
        }
        let invalid = |reason: String| PullCause::Invalid(reason);
        let manifest = ImageManifest::from_reader(&manifest_bytes[..])
            .map_err(|e| invalid(format!("not an image manifest: {e}")))?;
        let config_digest = Digest::parse(manifest.config().digest().as_ref())
            .map_err(|e| invalid(e.to_string()))?;
        let config_bytes = self.fetch_blob(&config_digest).await?;
        if Digest::of(&config_bytes) != config_digest {
            return Err(invalid(format!(
                "config digest mismatch: expected {config_digest}, got {}",
                Digest::of(&config_bytes)
            )));
        }
        let config: ConfigSummary = serde_json::from_slice(&config_bytes)
            .map_err(|e| invalid(format!("not an image config: {e}")))?;
        let diff_ids = config.rootfs.diff_ids;
        if diff_ids.len() != manifest.layers().len() {
            return Err(invalid(format!(
                "the config lists {} layers, the manifest {}",
                diff_ids.len(),
                manifest.layers().len()
            )));
        }
        let layers = manifest
            .layers()
            .iter()
            .map(|l| {
                Digest::parse(l.digest().as_ref())
                    .map(|d| (d, l.size()))
                    .map_err(|e| invalid(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let chain_ids = Digest::chain_ids(&diff_ids);
        let _lease =
            store.temporary_lease("pull", &chain_ids, &[config_digest, manifest_digest])?;

        let mut missing = Vec::new();
        for (i, chain_id) in chain_ids.iter().enumerate() {
            if store.layer(chain_id)?.is_none() {
                progress.layer(&layers[i].0, LayerState::Waiting { total: layers[i].1 });
                missing.push(i);
            } else {
                progress.layer(&layers[i].0, LayerState::Exists);
            }
        }
        let downloads = futures_util::stream::iter(missing.into_iter().map(|i| {
            self.fetch_layer(
                store,
                scope,
                progress,
                LayerToFetch {
                    parent: i.checked_sub(1).map(|p| chain_ids[p]),
                    diff_id: diff_ids[i],
                    blob: layers[i].0,
                    size: layers[i].1,
                },
            )
        }))
        .buffer_unordered(PARALLEL_LAYERS)
        .try_collect::<Vec<()>>();
        downloads.await?;

        let record = store.commit_image_with_blobs(
            &config_bytes,
            &manifest_bytes,
            NewImage {
                names: vec![reference.clone()],
                repo_digest: Some(repo_digest),
                diff_ids,
                created: config.created,
            },
        )?;
        Ok(Pulled {
            record,
            downloaded: true,
        })
    }

    /// A manifest by digest, checked against it.
    async fn fetch_manifest(&self, target: &Reference) -> Result<(Vec<u8>, Digest), PullCause> {
        let accepted = [
            OCI_IMAGE_MEDIA_TYPE,
            IMAGE_MANIFEST_MEDIA_TYPE,
            OCI_IMAGE_INDEX_MEDIA_TYPE,
            IMAGE_MANIFEST_LIST_MEDIA_TYPE,
        ];
        let (bytes, _) = self
            .client
            .pull_manifest_raw(target, &self.auth, &accepted)
            .await
            .map_err(|e| self.registry_error(e))?;
        if bytes.len() > MAX_JSON_BYTES {
            return Err(PullCause::Invalid(format!(
                "manifest larger than {MAX_JSON_BYTES} bytes"
            )));
        }
        let digest = Digest::of(&bytes);
        if let Some(expected) = target.digest()
            && expected != digest.to_string()
        {
            return Err(PullCause::Invalid(format!(
                "manifest digest mismatch: expected {expected}, got {digest}"
            )));
        }
        Ok((bytes.to_vec(), digest))
    }

    /// A blob's content as it arrives.
    async fn blob_stream(
        &self,
        digest: &Digest,
    ) -> Result<futures_util::stream::BoxStream<'static, io::Result<Vec<u8>>>, PullCause> {
        let stream = self
            .client
            .pull_blob_stream(&self.remote, digest.to_string().as_str())
            .await
            .map_err(|e| self.registry_error(e))?
            .stream;
        Ok(stream.map(|chunk| chunk.map(|c| c.to_vec())).boxed())
    }

    /// A blob read whole (a config).
    async fn fetch_blob(&self, digest: &Digest) -> Result<Vec<u8>, PullCause> {
        let mut stream = self.blob_stream(digest).await?;
        let mut data = Vec::new();
        while let Some(chunk) = stream.next().await {
            data.extend_from_slice(&chunk.map_err(|e| self.registry_error(e.into()))?);
            if data.len() > MAX_JSON_BYTES {
                return Err(PullCause::Invalid(format!(
                    "blob {digest} larger than {MAX_JSON_BYTES} bytes"
                )));
            }
        }
        Ok(data)
    }

    /// Downloads one layer blob and unpacks it as it arrives, in a thread.
    async fn fetch_layer<'scope, 'env>(
        &self,
        store: &'env Store,
        scope: &'scope std::thread::Scope<'scope, 'env>,
        progress: &'env dyn PullProgress,
        layer: LayerToFetch,
    ) -> Result<(), PullCause> {
        let mut stream = self.blob_stream(&layer.blob).await?;
        let (sender, receiver) =
            tokio::sync::mpsc::channel::<io::Result<Vec<u8>>>(CHUNKS_IN_FLIGHT);
        let (done_sender, done) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("image-unpack".into())
            .spawn_scoped(scope, move || {
                let mut reader = ChannelReader {
                    receiver,
                    chunk: Vec::new(),
                    at: 0,
                };
                let result =
                    store.add_layer(layer.parent, layer.diff_id, &mut reader, Some(layer.blob));
                let _ = done_sender.send(result);
            })
            .map_err(PullCause::Runtime)?;
        let mut received = 0u64;
        while let Some(chunk) = stream.next().await {
            if let Ok(c) = &chunk {
                received += c.len() as u64;
            }
            let failed = chunk.is_err();
            progress.layer(
                &layer.blob,
                LayerState::Downloading {
                    done: received,
                    total: layer.size,
                },
            );
            // The unpacking thread has stopped (it failed): its result says why.
            if sender.send(chunk).await.is_err() || failed {
                break;
            }
        }
        drop(sender);
        progress.layer(&layer.blob, LayerState::Extracting);
        match done.await {
            Ok(result) => {
                result?;
                progress.layer(&layer.blob, LayerState::Complete);
                Ok(())
            }
            Err(_) => Err(PullCause::Runtime(io::Error::other(
                "the unpacking thread panicked",
            ))),
        }
    }
}

/// A layer to download: its place in the stack and its blob.
struct LayerToFetch {
    parent: Option<Digest>,
    diff_id: Digest,
    blob: Digest,
    size: u64,
}

/// A client speaking to `endpoint` (plain HTTP, TLS options).
fn client_for(endpoint: &Endpoint) -> Client {
    Client::new(ClientConfig {
        protocol: if endpoint.plain_http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        accept_invalid_certificates: endpoint.skip_verify,
        extra_root_certificates: endpoint
            .ca_pem
            .iter()
            .map(|pem| Certificate {
                encoding: CertificateEncoding::Pem,
                data: pem.clone(),
            })
            .collect(),
        platform_resolver: None,
        connect_timeout: Some(CONNECT_TIMEOUT),
        read_timeout: Some(READ_TIMEOUT),
        ..ClientConfig::default()
    })
}

/// Whether the registry refused the credentials (or wants some).
fn is_unauthorized(error: &OciDistributionError) -> bool {
    match error {
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => true,
        OciDistributionError::ServerError { code, .. } => matches!(code, 401 | 403),
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)),
        _ => false,
    }
}

/// Reads the chunks a download sends, for the (blocking) unpacker.
struct ChannelReader {
    receiver: tokio::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.receiver.blocking_recv() {
                Some(chunk) => {
                    self.chunk = chunk?;
                    self.at = 0;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_are_told_apart() {
        for host in [
            "127.0.0.1:5000",
            "127.1.2.3",
            "localhost:5000",
            "localhost",
            "[::1]:5000",
        ] {
            assert!(is_loopback_registry(host), "{host}");
        }
        for host in [
            "docker.io",
            "10.0.0.1:5000",
            "registry.local:5000",
            "[fe80::1]:80",
        ] {
            assert!(!is_loopback_registry(host), "{host}");
        }
    }
}

#[cfg(test)]
mod registry_tests {
    //! Against a real registry: Debian's `docker-registry` on 127.0.0.1,
    //! started here with a config of its own and stopped by PID, seeded
    //! with `skopeo copy` from OCI layouts built here.

    use super::*;
    use crate::store::tests::temp_store;
    use crate::testing::registry::{Registry, push};
    use crate::testing::{LayerTar, OciLayout, gzip, have_root, have_tool};

    fn layer(name: &str, data: &[u8]) -> Vec<u8> {
        LayerTar::new()
            .dir("bin", 0o755)
            .file(name, 0o755, data)
            .finish()
    }

    #[test]
    fn pulls_from_a_loopback_registry_and_refuses_tampered_blobs() {
        if !have_root() || !have_tool("docker-registry") || !have_tool("skopeo") {
            return;
        }
        let (dir, store) = temp_store();
        let mut registry = Registry::start(dir.path(), None);
        let busybox = std::fs::read("/bin/busybox").expect("/bin/busybox (busybox-static)");
        let mut layout = OciLayout::new(&dir.path().join("layout"));
        let image = layout.image(
            &[
                layer("bin/busybox", &busybox),
                LayerTar::new()
                    .file("bin/.wh.busybox", 0o644, b"")
                    .file("etc/motd", 0o644, b"hi")
                    .finish(),
            ],
            serde_json::json!({"Cmd": ["sh"]}),
            true,
        );
        layout.list(&image, Some("latest"));
        let tampered = layout.image(
            &[layer("bin/tampered", b"original")],
            serde_json::json!({}),
            true,
        );
        layout.list(&tampered, Some("tampered")).finish();
        push(
            &layout.dir,
            "latest",
            &format!("{}/test/busybox:1", registry.address),
            false,
            None,
        );
        push(
            &layout.dir,
            "tampered",
            &format!("{}/test/tampered:1", registry.address),
            false,
            None,
        );

        let reference =
            ImageReference::parse(&format!("{}/test/busybox:1", registry.address)).unwrap();
        let record = pull(&store, &reference, &PullOptions::default())
            .unwrap()
            .record;
        assert_eq!(record.names, [reference.to_string()]);
        assert_eq!(record.id, image.config, "skopeo keeps the config");
        assert!(
            record.repo_digests[0]
                .starts_with(&format!("{}/test/busybox@sha256:", registry.address))
        );
        let trees = record.layer_trees(&store);
        assert_eq!(
            std::fs::read(trees[0].join("bin/busybox")).unwrap(),
            busybox
        );
        assert!(trees[1].join("etc/motd").is_file());
        let again = pull(&store, &reference, &PullOptions::default()).unwrap();
        assert_eq!(again.record, record);
        assert!(!again.downloaded, "the stored repo digest is reused");
        assert_eq!(store.find(&record.repo_digests[0]).unwrap().id, record.id);

        let unknown =
            ImageReference::parse(&format!("{}/test/busybox:nope", registry.address)).unwrap();
        let error = pull(&store, &unknown, &PullOptions::default()).unwrap_err();
        assert!(matches!(error.cause, PullCause::Registry { .. }), "{error}");
        assert!(error.to_string().contains("test/busybox:nope"), "{error}");

        // Overwrite the tampered image's layer in the registry's storage.
        let blob = Digest::of(&gzip(&layer("bin/tampered", b"original")));
        let data = registry.blob_data(&blob);
        std::fs::write(&data, gzip(&layer("bin/tampered", b"TAMPERED"))).unwrap();
        let layers_before = std::fs::read_dir(store.root().join("layers"))
            .unwrap()
            .count();
        let tampered_ref =
            ImageReference::parse(&format!("{}/test/tampered:1", registry.address)).unwrap();
        let error = pull(&store, &tampered_ref, &PullOptions::default()).unwrap_err();
        assert!(
            error.to_string().to_lowercase().contains("digest"),
            "{error}"
        );
        assert!(store.find(&tampered_ref.to_string()).is_err());
        assert_eq!(
            std::fs::read_dir(store.root().join("layers"))
                .unwrap()
                .count(),
            layers_before
        );
        assert_eq!(
            std::fs::read_dir(store.root().join("leases"))
                .unwrap()
                .count(),
            0
        );
        registry.stop();
        let error = pull(&store, &tampered_ref, &PullOptions::default()).unwrap_err();
        assert!(
            matches!(error.cause, PullCause::Registry { .. }),
            "a stopped registry: {error}"
        );
    }
}

#[cfg(test)]
mod auth_mirror_tests {
    //! Pulls against a real loopback registry: credentials (none, wrong,
    //! right) against htpasswd auth, `docker.io` through a hosts.toml
    //! mirror, a stored digest reused without a download, and a registry
    //! stopped in the middle of a layer.

    use super::*;
    use crate::registry_auth::RegistryAuths;
    use crate::registry_hosts;
    use crate::store::tests::temp_store;
    use crate::testing::registry::{Registry, push};
    use crate::testing::{LayerTar, OciLayout, have_root, have_tool};
    use std::path::Path;
    use std::sync::Mutex;

    fn can_run() -> bool {
        have_root() && have_tool("docker-registry") && have_tool("skopeo")
    }

    /// An OCI layout at `dir/layout` with one small image tagged `1`.
    fn small_layout(dir: &Path) -> std::path::PathBuf {
        let mut layout = OciLayout::new(&dir.join("layout"));
        let image = layout.image(
            &[
                LayerTar::new().file("etc/one", 0o644, b"1").finish(),
                LayerTar::new().file("etc/two", 0o644, b"2").finish(),
            ],
            serde_json::json!({"Cmd": ["sh"]}),
            true,
        );
        layout.list(&image, Some("1")).finish();
        layout.dir
    }

    fn auth_file(dir: &Path, name: &str, json: serde_json::Value) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, json.to_string()).unwrap();
        path
    }

    #[test]
    fn credentials_none_wrong_and_right() {
        if !can_run() {
            return;
        }
        let (dir, store) = temp_store();
        let registry = Registry::start(dir.path(), Some(("alice", "secret")));
        push(
            &small_layout(dir.path()),
            "1",
            &format!("{}/team/app:1", registry.address),
            false,
            Some("alice:secret"),
        );
        let reference = ImageReference::parse(&format!("{}/team/app:1", registry.address)).unwrap();

        let error = pull(&store, &reference, &PullOptions::default()).unwrap_err();
        assert!(
            matches!(&error.cause, PullCause::Unauthorized { users, .. } if users.is_empty()),
            "{error}"
        );
        assert_eq!(
            error.to_string(),
            format!(
                "pulling {reference}: {}: authentication required, and no credentials match (--registry-auth-file or an imagePullSecret)",
                registry.address
            )
        );

        let wrong = auth_file(
            dir.path(),
            "wrong.json",
            serde_json::json!({"auths": {registry.address.clone(): {"username": "alice", "password": "nope"}}}),
        );
        let options = PullOptions {
            auths: RegistryAuths::load(std::slice::from_ref(&wrong)).unwrap(),
            ..PullOptions::default()
        };
        let error = pull(&store, &reference, &options).unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("credentials refused (user \"alice\")"),
            "{error}"
        );
        assert!(store.images().unwrap().is_empty());

        // The longest key matches first and is wrong; the next one works.
        let right = auth_file(
            dir.path(),
            "right.json",
            serde_json::json!({"auths": {
                format!("{}/team/app", registry.address): {"username": "bob", "password": "x"},
                format!("http://{}", registry.address): {"auth": "YWxpY2U6c2VjcmV0"},
            }}),
        );
        let options = PullOptions {
            auths: RegistryAuths::load(&[wrong, right]).unwrap(),
            ..PullOptions::default()
        };
        let pulled = pull(&store, &reference, &options).unwrap();
        assert!(pulled.downloaded);
        assert_eq!(pulled.record.names, [reference.to_string()]);
    }

    #[test]
    fn docker_io_through_a_mirror_and_a_stored_digest_reused() {
        if !can_run() {
            return;
        }
        let (dir, store) = temp_store();
        let registry = Registry::start(dir.path(), None);
        // The mirror is configured before any docker.io name is pulled, and
        // the server too points at loopback: nothing leaves the machine.
        let hosts = dir.path().join("registries.d");
        std::fs::create_dir_all(hosts.join("docker.io")).unwrap();
        std::fs::write(
            hosts.join("docker.io/hosts.toml"),
            format!(
                "server = \"http://{0}\"\n\n[host.\"http://{0}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
                registry.address
            ),
        )
        .unwrap();
        let endpoints = registry_hosts::endpoints(&hosts, "docker.io").unwrap();
        assert_eq!(endpoints.len(), 2);
        assert!(endpoints.iter().all(|e| is_loopback_registry(&e.host)));
        push(
            &small_layout(dir.path()),
            "1",
            &format!("{}/library/busybox:1", registry.address),
            false,
            None,
        );
        let reference = ImageReference::parse("busybox:1").unwrap();
        let options = PullOptions {
            endpoints,
            ..PullOptions::default()
        };
        let pulled = pull(&store, &reference, &options).unwrap();
        assert!(pulled.downloaded);
        assert_eq!(pulled.record.names, ["docker.io/library/busybox:1"]);
        assert!(pulled.record.repo_digests[0].starts_with("docker.io/library/busybox@sha256:"));

        // Always with the digest stored: a HEAD only. The registry's layer
        // blobs are gone, so any blob download would fail.
        let manifest: serde_json::Value =
            serde_json::from_slice(&store.read_blob(&pulled.record.manifest).unwrap()).unwrap();
        for layer in manifest["layers"].as_array().unwrap() {
            let digest = Digest::parse(layer["digest"].as_str().unwrap()).unwrap();
            std::fs::remove_file(registry.blob_data(&digest)).unwrap();
        }
        let again = pull_with_policy(&store, &reference, PullPolicy::Always, &options).unwrap();
        assert!(!again.downloaded);
        assert_eq!(again.record, pulled.record);
        let latest = ImageReference::parse("busybox:1").unwrap();
        let kept = pull_with_policy(&store, &latest, PullPolicy::IfNotPresent, &options).unwrap();
        assert_eq!(kept.record.id, pulled.record.id);

        let missing = ImageReference::parse("busybox:nope").unwrap();
        let error = pull_with_policy(&store, &missing, PullPolicy::Never, &options).unwrap_err();
        assert!(matches!(error.cause, PullCause::NeverPull), "{error}");
        // Both endpoints were tried and each says why.
        let error = pull(&store, &missing, &options).unwrap_err();
        assert!(
            matches!(&error.cause, PullCause::Endpoints(c) if c.len() == 2),
            "{error}"
        );
    }

    /// Progress that stops the registry once a layer is under way.
    struct StopOnDownload<'a> {
        registry: Mutex<&'a mut Registry>,
    }

    impl PullProgress for StopOnDownload<'_> {
        fn layer(&self, _: &Digest, state: LayerState) {
            if matches!(state, LayerState::Downloading { .. }) {
                self.registry.lock().unwrap().stop();
            }
        }
    }

    #[test]
    fn a_registry_stopped_mid_pull_leaves_nothing() {
        if !can_run() {
            return;
        }
        let (dir, store) = temp_store();
        let mut registry = Registry::start(dir.path(), None);
        // 48 MB that does not compress, uncompressed in the registry: far
        // more than the sockets buffer.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let big: Vec<u8> = (0..48 << 20)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let mut layout = OciLayout::new(&dir.path().join("layout"));
        let image = layout.image(
            &[LayerTar::new().file("big", 0o644, &big).finish()],
            serde_json::json!({}),
            false,
        );
        layout.list(&image, Some("1")).finish();
        let address = registry.address.clone();
        push(&layout.dir, "1", &format!("{address}/big:1"), false, None);
        let reference = ImageReference::parse(&format!("{address}/big:1")).unwrap();
        let progress = StopOnDownload {
            registry: Mutex::new(&mut registry),
        };
        let options = PullOptions {
            progress: &progress,
            ..PullOptions::default()
        };
        let error = pull(&store, &reference, &options).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with(&format!("pulling {reference}: ")),
            "{error}"
        );
        assert!(store.images().unwrap().is_empty());
        let root = store.root();
        assert_eq!(std::fs::read_dir(root.join("layers")).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(root.join("leases")).unwrap().count(), 0);
        // Work directories hold only their lock file.
        for work in std::fs::read_dir(root.join("tmp")).unwrap() {
            let names: Vec<_> = std::fs::read_dir(work.unwrap().path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, ["lock"], "half-written files left");
        }
    }
}
