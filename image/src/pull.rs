//! Pulling an image over the OCI distribution API with oci-client: the
//! manifest (Docker v2 schema 2 or OCI; an index or manifest list resolved
//! to linux/amd64, attestations skipped), the config, then up to three
//! layers at once, each blob streamed into its own unpacking thread, its
//! digest and diffID checked by the store. oci-client is async: it runs on a
//! current-thread tokio runtime in a thread of its own, so the caller only
//! blocks. Plain HTTP is used for loopback registries only. Credentials come
//! from the caller; finding them (pull secrets, auth files) is not here.

use crate::digest::Digest;
use crate::manifest::{ConfigSummary, chosen_from_index};
use crate::reference::ImageReference;
use crate::store::{ImageRecord, NewImage, Store, StoreError};
use futures_util::{StreamExt, TryStreamExt};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{
    IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE,
};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use oci_spec::image::ImageManifest;
use std::io::{self, Read};

/// Layers downloaded at once.
const PARALLEL_LAYERS: usize = 3;
/// Chunks queued between a download and its unpacking thread.
const CHUNKS_IN_FLIGHT: usize = 16;
/// Largest manifest or config accepted.
const MAX_JSON_BYTES: usize = 16 << 20;

/// What went wrong pulling an image; each names the image.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The registry refused or failed (unknown image or tag, auth, network).
    #[error("pulling {image}: {source}")]
    Registry {
        /// The reference.
        image: String,
        /// oci-client's error.
        source: oci_client::errors::OciDistributionError,
    },
    /// What the registry sent is not a usable image.
    #[error("pulling {image}: {reason}")]
    Invalid {
        /// The reference.
        image: String,
        /// What is wrong.
        reason: String,
    },
    /// Storing failed (digest or diffID mismatch, a refused layer entry, I/O).
    #[error("pulling {image}: {source}")]
    Store {
        /// The reference.
        image: String,
        /// The store's error.
        source: StoreError,
    },
    /// The runtime or a thread could not be started.
    #[error("pulling {image}: {source}")]
    Runtime {
        /// The reference.
        image: String,
        /// The error.
        source: io::Error,
    },
}

/// Credentials for the registry.
#[derive(Clone, Default)]
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

/// Pulls `reference` into `store` and records it under that name.
/// Blocks until done; the protocol runs in a thread of its own.
pub fn pull(
    store: &Store,
    reference: &ImageReference,
    credentials: &Credentials,
) -> Result<ImageRecord, PullError> {
    let image = reference.to_string();
    let runtime_error = |source| PullError::Runtime {
        image: image.clone(),
        source,
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
                    .map_err(runtime_error)?;
                runtime.block_on(pull_async(store, scope, reference, credentials))
            })
            .map_err(runtime_error)?;
        puller
            .join()
            .unwrap_or_else(|_| Err(runtime_error(io::Error::other("the pull thread panicked"))))
    })
}

async fn pull_async<'scope, 'env>(
    store: &'env Store,
    scope: &'scope std::thread::Scope<'scope, 'env>,
    reference: &ImageReference,
    credentials: &Credentials,
) -> Result<ImageRecord, PullError> {
    let image = reference.to_string();
    let invalid = |reason: String| PullError::Invalid {
        image: image.clone(),
        reason,
    };
    let registry_error = |source| PullError::Registry {
        image: image.clone(),
        source,
    };
    let stored = |source| PullError::Store {
        image: image.clone(),
        source,
    };
    let protocol = if is_loopback_registry(reference.registry()) {
        ClientProtocol::Http
    } else {
        ClientProtocol::Https
    };
    let client = Client::new(ClientConfig {
        protocol,
        platform_resolver: None,
        ..ClientConfig::default()
    });
    let auth = match &credentials.basic {
        Some((user, password)) => RegistryAuth::Basic(user.clone(), password.clone()),
        None => RegistryAuth::Anonymous,
    };
    let remote: Reference = image
        .parse()
        .map_err(|e: oci_client::ParseError| invalid(e.to_string()))?;
    let accepted = [
        OCI_IMAGE_MEDIA_TYPE,
        IMAGE_MANIFEST_MEDIA_TYPE,
        OCI_IMAGE_INDEX_MEDIA_TYPE,
        IMAGE_MANIFEST_LIST_MEDIA_TYPE,
    ];
    let fetch_manifest = |target: Reference| {
        let (client, auth) = (&client, &auth);
        async move {
            let (bytes, _) = client
                .pull_manifest_raw(&target, auth, &accepted)
                .await
                .map_err(registry_error)?;
            if bytes.len() > MAX_JSON_BYTES {
                return Err(invalid(format!(
                    "manifest larger than {MAX_JSON_BYTES} bytes"
                )));
            }
            let digest = Digest::of(&bytes);
            if let Some(expected) = target.digest()
                && expected != digest.to_string()
            {
                return Err(invalid(format!(
                    "manifest digest mismatch: expected {expected}, got {digest}"
                )));
            }
            Ok::<_, PullError>((bytes.to_vec(), digest))
        }
    };
    let (mut manifest_bytes, mut manifest_digest) = fetch_manifest(remote.clone()).await?;
    let top_digest = manifest_digest;
    if let Some(chosen) = chosen_from_index(&manifest_bytes).map_err(invalid)? {
        (manifest_bytes, manifest_digest) =
            fetch_manifest(remote.clone_with_digest(chosen.digest().to_string())).await?;
    }
    let manifest = ImageManifest::from_reader(&manifest_bytes[..])
        .map_err(|e| invalid(format!("not an image manifest: {e}")))?;
    let config_digest =
        Digest::parse(manifest.config().digest().as_ref()).map_err(|e| invalid(e.to_string()))?;
    let config_bytes = fetch_blob(&client, &remote, &config_digest)
        .await
        .map_err(registry_error)?;
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
    let layer_digests = manifest
        .layers()
        .iter()
        .map(|l| Digest::parse(l.digest().as_ref()).map_err(|e| invalid(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let chain_ids = Digest::chain_ids(&diff_ids);
    let _lease = store
        .temporary_lease("pull", &chain_ids, &[config_digest, manifest_digest])
        .map_err(stored)?;

    let mut missing = Vec::new();
    for (i, chain_id) in chain_ids.iter().enumerate() {
        if store.layer(chain_id).map_err(stored)?.is_none() {
            missing.push(i);
        }
    }
    let downloads = futures_util::stream::iter(missing.into_iter().map(|i| {
        let parent = i.checked_sub(1).map(|p| chain_ids[p]);
        fetch_layer(
            store,
            scope,
            &client,
            &remote,
            parent,
            diff_ids[i],
            layer_digests[i],
        )
    }))
    .buffer_unordered(PARALLEL_LAYERS)
    .try_collect::<Vec<()>>();
    downloads.await.map_err(|e| match e {
        LayerError::Registry(source) => registry_error(source),
        LayerError::Store(source) => stored(source),
        LayerError::Thread(source) => PullError::Runtime {
            image: image.clone(),
            source,
        },
    })?;

    store
        .commit_image_with_blobs(
            &config_bytes,
            &manifest_bytes,
            NewImage {
                names: vec![reference.clone()],
                repo_digest: Some(reference.repo_digest(&top_digest.to_string())),
                diff_ids,
                created: config.created,
            },
        )
        .map_err(stored)
}

/// A blob read whole (a config).
async fn fetch_blob(
    client: &Client,
    remote: &Reference,
    digest: &Digest,
) -> Result<Vec<u8>, oci_client::errors::OciDistributionError> {
    let digest = digest.to_string();
    let mut stream = client
        .pull_blob_stream(remote, digest.as_str())
        .await?
        .stream;
    let mut data = Vec::new();
    while let Some(chunk) = stream.next().await {
        data.extend_from_slice(&chunk?);
        if data.len() > MAX_JSON_BYTES {
            return Err(oci_client::errors::OciDistributionError::GenericError(
                Some(format!("blob {digest} larger than {MAX_JSON_BYTES} bytes")),
            ));
        }
    }
    Ok(data)
}

/// Why one layer failed.
enum LayerError {
    Registry(oci_client::errors::OciDistributionError),
    Store(StoreError),
    Thread(io::Error),
}

/// Downloads one layer blob and unpacks it as it arrives, in a thread.
async fn fetch_layer<'scope, 'env>(
    store: &'env Store,
    scope: &'scope std::thread::Scope<'scope, 'env>,
    client: &Client,
    remote: &Reference,
    parent: Option<Digest>,
    diff_id: Digest,
    blob_digest: Digest,
) -> Result<(), LayerError> {
    let digest = blob_digest.to_string();
    let mut stream = client
        .pull_blob_stream(remote, digest.as_str())
        .await
        .map_err(LayerError::Registry)?
        .stream;
    let (sender, receiver) = tokio::sync::mpsc::channel::<io::Result<Vec<u8>>>(CHUNKS_IN_FLIGHT);
    let (done_sender, done) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("image-unpack".into())
        .spawn_scoped(scope, move || {
            let mut reader = ChannelReader {
                receiver,
                chunk: Vec::new(),
                at: 0,
            };
            let result = store.add_layer(parent, diff_id, &mut reader, Some(blob_digest));
            let _ = done_sender.send(result);
        })
        .map_err(LayerError::Thread)?;
    while let Some(chunk) = stream.next().await {
        let failed = chunk.is_err();
        // The unpacking thread has stopped (it failed): its result says why.
        if sender.send(chunk.map(|c| c.to_vec())).await.is_err() || failed {
            break;
        }
    }
    drop(sender);
    match done.await {
        Ok(result) => result.map(drop).map_err(LayerError::Store),
        Err(_) => Err(LayerError::Thread(io::Error::other(
            "the unpacking thread panicked",
        ))),
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
    use crate::testing::{LayerTar, OciLayout, gzip, have_root, have_tool};
    use std::path::Path;
    use std::process::{Child, Command};

    /// A running registry; killed (by its PID) when dropped.
    struct Registry {
        child: Child,
        address: String,
        storage: std::path::PathBuf,
    }

    impl Drop for Registry {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn start_registry(dir: &Path) -> Registry {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        let storage = dir.join("registry");
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\n",
                storage.display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let registry = Registry {
            child,
            address,
            storage,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(&registry.address).is_ok() {
                return registry;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("docker-registry did not listen on {}", registry.address);
    }

    fn push(layout: &Path, tag: &str, destination: &str, all: bool) {
        let mut command = Command::new("skopeo");
        command.args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
        ]);
        if all {
            command.arg("--all");
        }
        let output = command
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{destination}"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "skopeo: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

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
        let registry = start_registry(dir.path());
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
        );
        push(
            &layout.dir,
            "tampered",
            &format!("{}/test/tampered:1", registry.address),
            false,
        );

        let reference =
            ImageReference::parse(&format!("{}/test/busybox:1", registry.address)).unwrap();
        let record = pull(&store, &reference, &Credentials::default()).unwrap();
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
        let again = pull(&store, &reference, &Credentials::default()).unwrap();
        assert_eq!(again, record);
        assert_eq!(store.find(&record.repo_digests[0]).unwrap().id, record.id);

        let unknown =
            ImageReference::parse(&format!("{}/test/busybox:nope", registry.address)).unwrap();
        let error = pull(&store, &unknown, &Credentials::default()).unwrap_err();
        assert!(matches!(error, PullError::Registry { .. }), "{error}");
        assert!(error.to_string().contains("test/busybox:nope"), "{error}");

        // Overwrite the tampered image's layer in the registry's storage.
        let blob = Digest::of(&gzip(&layer("bin/tampered", b"original")));
        let data = registry
            .storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&blob.hex()[..2])
            .join(blob.hex())
            .join("data");
        std::fs::write(&data, gzip(&layer("bin/tampered", b"TAMPERED"))).unwrap();
        let layers_before = std::fs::read_dir(store.root().join("layers"))
            .unwrap()
            .count();
        let tampered_ref =
            ImageReference::parse(&format!("{}/test/tampered:1", registry.address)).unwrap();
        let error = pull(&store, &tampered_ref, &Credentials::default()).unwrap_err();
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
        drop(registry);
        let error = pull(&store, &tampered_ref, &Credentials::default()).unwrap_err();
        assert!(
            matches!(error, PullError::Registry { .. }),
            "a stopped registry: {error}"
        );
    }
}
