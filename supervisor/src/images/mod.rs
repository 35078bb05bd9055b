//! The pod's images, as kubelet's image manager handles them: each
//! container's image is found in the host's shared store or pulled, by its
//! pull policy (`Always` asks the registry at every container start and
//! reuses a stored copy of the digest; `IfNotPresent` pulls only what is
//! missing; `Never` never pulls: `ErrImageNeverPull`). A failed pull is
//! `ErrImagePull`, then `ImagePullBackOff` until the image's back-off
//! (10 s doubling to 300 s, as kubelet's) lets the next pull go.
//!
//! Pulls run in `supervisor-pull` processes (`pull_process`), one per
//! image at a time whatever the number of containers waiting for it; the
//! event loop never waits for one. A found image is leased in the store for
//! the pod's life, so `image prune` leaves its layers alone. Who a
//! container runs as is `user`'s. Mounting the layers is `supervised`'s.

mod pull_process;
pub mod user;

pub use pull_process::PullSettings;

use crate::restart::{BackoffConfig, WaitingReason};
use crate::spec::{ContainerImage, PodSpec};
use image::config::RunConfig;
use image::reference::{ImageReference, PullPolicy};
use image::store::{Lease, Store, StoreError};
use pull_process::PullProcess;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How long `ErrImagePull` shows before `ImagePullBackOff` (kubelet shows
/// it until its next sync of the pod).
const ERR_IMAGE_PULL_SHOWN: Duration = Duration::from_secs(2);
/// How often a container whose image is missing under `Never`, or whose
/// config cannot be made, is looked at again (kubelet's pod resync).
pub const RESYNC: Duration = Duration::from_secs(10);

/// Where images come from, as `supervisor run` was told.
#[derive(Debug, Clone, Default)]
pub struct ImageOptions {
    /// `--image-dir` (None: $SUPERVISOR_IMAGE_DIR, else the default).
    pub image_dir: Option<PathBuf>,
    /// `--registry-auth-file`: the host's credentials, after the pod's
    /// pull secrets.
    pub registry_auth_file: Option<PathBuf>,
    /// `--registry-config-dir`: mirrors and plain-HTTP registries.
    pub registry_config_dir: Option<PathBuf>,
}

/// A stored image, ready to be a container's root filesystem.
#[derive(Debug)]
pub struct ResolvedImage {
    /// The normalised reference (status `image`).
    pub name: String,
    /// Status `imageID`: the repo digest, else the image ID.
    pub image_id: String,
    /// Its unpacked layers, topmost first (the overlay's lower layers).
    pub layers_top_first: Vec<PathBuf>,
    /// Entrypoint, Cmd, Env, User, WorkingDir.
    pub config: RunConfig,
}

/// Why a container cannot start now, and when to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    pub reason: WaitingReason,
    pub message: String,
    /// None: when told (a pull ends).
    pub retry_at: Option<Instant>,
}

/// What [`PodImages::ensure`] says of a container's image.
#[derive(Debug)]
pub enum Availability {
    Ready(Rc<ResolvedImage>),
    /// A pull runs (`started`: this call started it); the container is
    /// due again when it ends.
    Pulling {
        started: bool,
    },
    Unavailable(Unavailable),
}

/// A pull that ended.
#[derive(Debug)]
pub struct PullEnded {
    /// The normalised reference.
    pub image: String,
    /// The containers (by index) that waited for it.
    pub waiting: Vec<usize>,
    pub took: Duration,
    pub succeeded: bool,
}

/// One image of the pod (by normalised reference).
#[derive(Default)]
struct ImageEntry {
    pull: Option<PullProcess>,
    /// Containers (by index) waiting for the running pull.
    waiting: Vec<usize>,
    /// The outcome of the last pull, for the containers that waited on it.
    outcomes: BTreeMap<usize, Result<(), String>>,
    /// The back-off after failed pulls: until when, and the last delay.
    backoff: Option<(Instant, Duration)>,
    last_error: String,
}

/// The images of one pod.
pub struct PodImages {
    options: ImageOptions,
    image_dir: PathBuf,
    backoff: BackoffConfig,
    /// Opened at the first image looked up.
    store: Option<Store>,
    images: BTreeMap<String, ImageEntry>,
    /// One lease per image ID in use, for the pod's life.
    leases: BTreeMap<String, Lease>,
    /// What was read of each image ID in use (its config, its layers).
    resolved: BTreeMap<String, Rc<ResolvedImage>>,
    /// The pod's pull secrets, written for the pull processes.
    auth_files: Vec<PathBuf>,
    /// Where pull results go (the pod's state dir).
    work_dir: PathBuf,
    /// Pulls started so far: each one's result file is `pull-<n>.json`.
    pulls_started: u64,
    lease_prefix: String,
}

impl PodImages {
    pub fn new(
        options: ImageOptions,
        backoff: BackoffConfig,
        pod: &PodSpec,
        state_dir: &Path,
    ) -> PodImages {
        let image_dir = image::store::resolve_root(options.image_dir.as_deref());
        PodImages {
            options,
            image_dir,
            backoff,
            store: None,
            images: BTreeMap::new(),
            leases: BTreeMap::new(),
            resolved: BTreeMap::new(),
            auth_files: Vec::new(),
            work_dir: state_dir.join("images"),
            pulls_started: 0,
            lease_prefix: format!("pod-{}-{}", pod.name, std::process::id()),
        }
    }

    /// Writes the pod's pull secrets (mode 0600) where its pulls read them.
    pub fn prepare(&mut self, pod: &PodSpec) -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(&self.work_dir)?;
        for secret in &pod.image_pull_secrets {
            let path = self
                .work_dir
                .join(format!("pull-secret-{}.json", secret.name));
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)?;
            std::io::Write::write_all(&mut file, &secret.docker_config_json)?;
            self.auth_files.push(path);
        }
        Ok(())
    }

    fn store(&mut self) -> Result<&Store, StoreError> {
        if self.store.is_none() {
            self.store = Some(Store::open(&self.image_dir)?);
        }
        Ok(self.store.as_ref().expect("opened above"))
    }

    /// Whether container `index` can start from `image` now, starting a
    /// pull when its policy says so.
    pub fn ensure(&mut self, index: usize, image: &ContainerImage, now: Instant) -> Availability {
        let reference = match &image.reference {
            Ok(r) => r.clone(),
            Err(invalid) => {
                return Availability::Unavailable(Unavailable {
                    reason: WaitingReason::InvalidImageName,
                    message: format!(
                        "Failed to apply default image tag {:?}: couldn't parse image name {:?}: {}",
                        invalid.value, invalid.value, invalid.reason
                    ),
                    retry_at: None,
                });
            }
        };
        let key = reference.to_string();
        // The outcome of a pull this container waited for.
        if let Some(outcome) = self
            .images
            .get_mut(&key)
            .and_then(|e| e.outcomes.remove(&index))
        {
            return match outcome.map(|()| self.lookup(&reference)) {
                Ok(Ok(Some(found))) => Availability::Ready(found),
                Ok(Ok(None)) => self.unavailable_error(
                    WaitingReason::ErrImagePull,
                    format!(
                        "pulling {key}: the pull ended but the image is not in {}",
                        self.image_dir.display()
                    ),
                    now,
                ),
                Ok(Err(error)) => self.store_error(&key, error, now),
                Err(message) => {
                    let until = self
                        .images
                        .get(&key)
                        .and_then(|e| e.backoff)
                        .map(|(at, _)| at);
                    Availability::Unavailable(Unavailable {
                        reason: WaitingReason::ErrImagePull,
                        message,
                        retry_at: Some(until.map_or(now + ERR_IMAGE_PULL_SHOWN, |at| {
                            at.min(now + ERR_IMAGE_PULL_SHOWN)
                        })),
                    })
                }
            };
        }
        if image.pull_policy != PullPolicy::Always {
            match self.lookup(&reference) {
                Ok(Some(found)) => return Availability::Ready(found),
                Ok(None) if image.pull_policy == PullPolicy::Never => {
                    return Availability::Unavailable(Unavailable {
                        reason: WaitingReason::ErrImageNeverPull,
                        message: format!(
                            "Container image {:?} is not present with pull policy of Never",
                            image.written
                        ),
                        retry_at: Some(now + RESYNC),
                    });
                }
                Ok(None) => {}
                Err(error) => return self.store_error(&key, error, now),
            }
        }
        self.pull(index, &reference, image.pull_policy, now)
    }

    /// Joins the running pull of `reference`, or starts one unless the
    /// image is in back-off.
    fn pull(
        &mut self,
        index: usize,
        reference: &ImageReference,
        policy: PullPolicy,
        now: Instant,
    ) -> Availability {
        let key = reference.to_string();
        let entry = self.images.entry(key.clone()).or_default();
        if entry.pull.is_some() {
            if !entry.waiting.contains(&index) {
                entry.waiting.push(index);
            }
            return Availability::Pulling { started: false };
        }
        if let Some((until, _)) = entry.backoff
            && until > now
        {
            return Availability::Unavailable(Unavailable {
                reason: WaitingReason::ImagePullBackOff,
                message: format!(
                    "Back-off pulling image {key:?}: ErrImagePull: {}",
                    entry.last_error
                ),
                retry_at: Some(until),
            });
        }
        let binary = match crate::host::find_helper("supervisor-pull") {
            Ok(binary) => binary,
            Err(error) => return self.failed_pull(&key, error.to_string(), now),
        };
        let settings = PullSettings {
            image_dir: self.image_dir.clone(),
            auth_files: self
                .auth_files
                .iter()
                .cloned()
                .chain(self.options.registry_auth_file.clone())
                .collect(),
            registry_config_dir: self.options.registry_config_dir.clone(),
        };
        let policy = if policy == PullPolicy::Always {
            "Always"
        } else {
            "IfNotPresent"
        };
        // Its own file: two pulls running at once never share one.
        self.pulls_started += 1;
        let result = self
            .work_dir
            .join(format!("pull-{}.json", self.pulls_started));
        match PullProcess::spawn(&binary, &key, policy, &settings, result) {
            Ok(process) => {
                eprintln!("supervisor: pulling image {key} (pid {})", process.pid);
                let entry = self.images.get_mut(&key).expect("inserted above");
                entry.pull = Some(process);
                entry.waiting = vec![index];
                Availability::Pulling { started: true }
            }
            Err(failure) => self.failed_pull(&key, failure.message, now),
        }
    }

    /// A failed pull that did not get to run: back-off, ErrImagePull.
    fn failed_pull(&mut self, key: &str, message: String, now: Instant) -> Availability {
        self.note_failure(key, &message, now);
        self.unavailable_error(WaitingReason::ErrImagePull, message, now)
    }

    fn unavailable_error(
        &self,
        reason: WaitingReason,
        message: String,
        now: Instant,
    ) -> Availability {
        Availability::Unavailable(Unavailable {
            reason,
            message,
            retry_at: Some(now + ERR_IMAGE_PULL_SHOWN),
        })
    }

    fn store_error(&mut self, key: &str, error: StoreError, now: Instant) -> Availability {
        let message = format!(
            "image {key}: store {}: {}",
            self.image_dir.display(),
            crate::supervised::error_chain(&error)
        );
        self.note_failure(key, &message, now);
        self.unavailable_error(WaitingReason::ErrImagePull, message, now)
    }

    fn note_failure(&mut self, key: &str, message: &str, now: Instant) {
        let entry = self.images.entry(key.to_string()).or_default();
        let delay = match entry.backoff {
            None => self.backoff.initial,
            Some((_, last)) => (last * 2).min(self.backoff.max),
        };
        entry.backoff = Some((now + delay, delay));
        entry.last_error = message.to_string();
    }

    /// The stored image `reference`, leased for the pod, with its config.
    fn lookup(
        &mut self,
        reference: &ImageReference,
    ) -> Result<Option<Rc<ResolvedImage>>, StoreError> {
        let lease_name = format!("{}-{}", self.lease_prefix, self.leases.len());
        self.store()?;
        let store = self.store.as_ref().expect("opened above");
        let record = match store.find(&reference.to_string()) {
            Ok(record) => record,
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(error) => return Err(error),
        };
        let id = record.id.to_string();
        if let Some(resolved) = self.resolved.get(&id)
            && resolved.name == reference.to_string()
        {
            return Ok(Some(resolved.clone()));
        }
        let chain_ids: Vec<_> = record.layers.iter().map(|l| l.chain_id).collect();
        let lease = match self.leases.remove(&id) {
            Some(lease) => lease,
            None => store.lease(&lease_name, &chain_ids, std::slice::from_ref(&record.id))?,
        };
        let mut layers_top_first = record.layer_trees(store);
        layers_top_first.reverse();
        // A prune between the lookup and the lease removed it: not there.
        if layers_top_first.iter().any(|l| !l.is_dir()) {
            return Ok(None);
        }
        let config = store.run_config(&record)?;
        let resolved = ResolvedImage {
            name: reference.to_string(),
            image_id: record.image_ref(),
            layers_top_first,
            config,
        };
        let resolved = Rc::new(resolved);
        self.leases.insert(id.clone(), lease);
        self.resolved.insert(id, resolved.clone());
        Ok(Some(resolved))
    }

    /// A reaped child: when it was a pull, its outcome is kept for the
    /// containers that waited, which are returned (to be made due).
    pub fn on_reaped(
        &mut self,
        pid: i32,
        status: &container::ExitStatus,
        now: Instant,
    ) -> Option<PullEnded> {
        let (key, entry) = self
            .images
            .iter_mut()
            .find(|(_, e)| e.pull.as_ref().is_some_and(|p| p.pid == pid))?;
        let key = key.clone();
        let process = entry.pull.take().expect("matched above");
        let waiting = std::mem::take(&mut entry.waiting);
        let outcome = process.outcome(&key, status);
        let took = now.saturating_duration_since(process.started);
        match &outcome {
            Ok(()) => {
                eprintln!("supervisor: pulled image {key} in {took:.1?}");
                let entry = self.images.get_mut(&key).expect("found above");
                entry.backoff = None;
            }
            Err(failure) => {
                eprintln!("supervisor: {}: {}", failure.reason, failure.message);
                self.note_failure(&key, &failure.message, now);
            }
        }
        let entry = self.images.get_mut(&key).expect("found above");
        for index in &waiting {
            entry
                .outcomes
                .insert(*index, outcome.clone().map_err(|f| f.message));
        }
        Some(PullEnded {
            image: key,
            waiting,
            took,
            succeeded: outcome.is_ok(),
        })
    }

    /// Whether any pull is running.
    pub fn pulling(&self) -> bool {
        self.images.values().any(|e| e.pull.is_some())
    }

    /// Stops every running pull (the pod stops); they are reaped as
    /// children.
    pub fn stop_pulls(&mut self) {
        for entry in self.images.values() {
            if let Some(pull) = &entry.pull {
                pull.terminate();
            }
        }
    }

    /// Removes the pull secrets' files and ends the leases.
    pub fn teardown(&mut self) {
        self.stop_pulls();
        self.resolved.clear();
        self.leases.clear();
        let _ = std::fs::remove_dir_all(&self.work_dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: stored\n    image: localhost/t/stored:1\n    command: [sh]\n  - name: never\n    image: localhost/t/missing:1\n    imagePullPolicy: Never\n  - name: pull\n    image: localhost/t/missing:2\n  - name: also-pull\n    image: localhost/t/missing:2\n";

    fn setup() -> (tempfile::TempDir, PodSpec, PodImages) {
        let dir = tempfile::tempdir().unwrap();
        let pod = crate::spec::load_str("p.yaml", POD).unwrap().pod;
        let options = ImageOptions {
            image_dir: Some(dir.path().join("images")),
            ..ImageOptions::default()
        };
        let mut images = PodImages::new(
            options,
            BackoffConfig::default(),
            &pod,
            &dir.path().join("state"),
        );
        images.prepare(&pod).unwrap();
        (dir, pod, images)
    }

    fn unavailable(a: Availability) -> Unavailable {
        match a {
            Availability::Unavailable(u) => u,
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    #[test]
    fn never_and_a_failed_pull_wait_as_kubelet_says_with_a_doubling_back_off() {
        let (_dir, pod, mut images) = setup();
        let now = Instant::now();
        let never = unavailable(images.ensure(1, &pod.containers[1].image, now));
        assert_eq!(never.reason, WaitingReason::ErrImageNeverPull);
        assert!(
            never
                .message
                .contains("is not present with pull policy of Never"),
            "{}",
            never.message
        );
        // No supervisor-pull beside the test binary: the pull fails at once.
        let first = unavailable(images.ensure(2, &pod.containers[2].image, now));
        assert_eq!(first.reason, WaitingReason::ErrImagePull);
        assert!(
            first.message.contains("supervisor-pull"),
            "{}",
            first.message
        );
        let backoff = unavailable(images.ensure(3, &pod.containers[3].image, now));
        assert_eq!(backoff.reason, WaitingReason::ImagePullBackOff);
        assert_eq!(backoff.retry_at, Some(now + Duration::from_secs(10)));
        assert!(
            backoff
                .message
                .starts_with("Back-off pulling image \"localhost/t/missing:2\": ErrImagePull: "),
            "{}",
            backoff.message
        );
        let later = now + Duration::from_secs(11);
        assert_eq!(
            unavailable(images.ensure(2, &pod.containers[2].image, later)).reason,
            WaitingReason::ErrImagePull
        );
        let again = unavailable(images.ensure(2, &pod.containers[2].image, later));
        assert_eq!(
            again.retry_at,
            Some(later + Duration::from_secs(20)),
            "the back-off doubles"
        );
    }

    #[test]
    fn a_stored_image_is_ready_with_its_layers_and_leased() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: importing an image needs root (chown)");
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI runs as root"
            );
            return;
        }
        let (dir, pod, mut images) = setup();
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0::/:/bin/sh\n").unwrap();
        {
            let store = Store::open(&dir.path().join("images")).unwrap();
            let name = ImageReference::parse("localhost/t/stored:1").unwrap();
            image::import::import_rootfs(&store, &rootfs, Some(&name)).unwrap();
        }
        let Availability::Ready(found) = images.ensure(0, &pod.containers[0].image, Instant::now())
        else {
            panic!("a stored image is ready");
        };
        assert_eq!(found.name, "localhost/t/stored:1");
        assert!(found.image_id.starts_with("sha256:"));
        assert_eq!(found.layers_top_first.len(), 1);
        assert!(found.layers_top_first[0].join("etc/passwd").is_file());
        let leases = std::fs::read_dir(dir.path().join("images/leases"))
            .unwrap()
            .count();
        assert_eq!(leases, 1, "the pod holds a lease on the image");
        images.teardown();
        let leases = std::fs::read_dir(dir.path().join("images/leases"))
            .unwrap()
            .count();
        assert_eq!(leases, 0);
    }
}
