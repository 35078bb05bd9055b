//! One pod's status on disk: [`StatusStore`] writes `<state root>/<namespace>_<pod>/status.json`
//! (only when its bytes changed) and `events.json` (coalescing repeats),
//! both through [`write_atomic`]; [`read_record`], [`read_events`] and
//! [`list_pods`] read them back for `supervisor status`. The paths come from
//! [`Layout`]; the JSON shape from [`super::api`]. [`create_pod_dir`] makes
//! the pod's state dir 0750 (and the state root, when it makes it), as
//! kubelet keeps /var/lib/kubelet/pods: other users of the host cannot list
//! or open anything of a pod (volumes, secrets, status).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::api::{PodEvent, PodRecord};
use crate::atomic_file::{AtomicWriteError, write_atomic};
use crate::paths::{self, Layout, PodId};
use crate::time::format_rfc3339;

/// Errors of the status files and the `status` command.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// Creating the pod's state dir failed.
    #[error("create directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Replacing `status.json` or `events.json` failed.
    #[error(transparent)]
    AtomicWrite(#[from] AtomicWriteError),
    /// Serializing a file's JSON or removing a file failed.
    #[error("write {path}: {source}")]
    Write {
        /// The target file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Reading failed.
    #[error("read {path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The file is not the JSON we write.
    #[error("parse {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// A name that cannot be a path component.
    #[error(transparent)]
    Name(#[from] paths::NameError),
    /// No status for this pod.
    #[error("pod {pod} not found in {dir}")]
    NoSuchPod {
        /// The pod asked for, `namespace/name`.
        pod: String,
        /// The state root searched.
        dir: PathBuf,
    },
}

/// Reads one `status.json`.
pub fn read_record(path: &Path) -> Result<PodRecord, StatusError> {
    let bytes = fs::read(path).map_err(|source| StatusError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| StatusError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads one `events.json` (missing file: no events).
pub fn read_events(path: &Path) -> Result<Vec<PodEvent>, StatusError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| StatusError::Parse {
            path: path.to_path_buf(),
            source,
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(StatusError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Mode of the pod dirs and of a state root the supervisor creates.
pub const POD_DIR_MODE: u32 = 0o750;

/// Creates the pod's state dir with mode 0750 (set even when it existed),
/// and the state root as 0750 when it is missing. An existing root keeps
/// its mode unless it is a plain one that others may read (no sticky bit,
/// as /tmp has): then it becomes 0750 too.
pub fn create_pod_dir(layout: &Layout, pod: &PodId) -> Result<PathBuf, StatusError> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    let root = layout.state_root();
    let create = |path: &Path| -> Result<(), StatusError> {
        match fs::DirBuilder::new()
            .recursive(true)
            .mode(POD_DIR_MODE)
            .create(path)
        {
            Ok(()) => Ok(()),
            Err(source) => Err(StatusError::CreateDir {
                path: path.to_path_buf(),
                source,
            }),
        }
    };
    let chmod = |path: &Path, mode: u32| {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|source| {
            StatusError::CreateDir {
                path: path.to_path_buf(),
                source,
            }
        })
    };
    create(root)?;
    if let Ok(meta) = fs::metadata(root) {
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o1000 == 0 && mode & 0o027 != 0 {
            chmod(root, mode & POD_DIR_MODE)?;
        }
    }
    let dir = layout.pod_state_dir(pod);
    create(&dir)?;
    chmod(&dir, POD_DIR_MODE)?;
    Ok(dir)
}

/// The pods that have a state dir under the state root, by namespace and
/// name.
pub fn list_pod_ids(layout: &Layout) -> Result<Vec<PodId>, StatusError> {
    let root = layout.state_root();
    let entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(StatusError::Read {
                path: root.to_path_buf(),
                source,
            });
        }
    };
    let mut ids: Vec<PodId> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| PodId::from_dir_name(e.file_name().to_str()?))
        .collect();
    ids.sort();
    Ok(ids)
}

/// Every pod with a `status.json` under the state root, sorted by
/// namespace and name.
pub fn list_pods(layout: &Layout) -> Result<Vec<PodRecord>, StatusError> {
    let mut records = Vec::new();
    for id in list_pod_ids(layout)? {
        let file = layout.status_file(&id);
        if file.is_file() {
            records.push(read_record(&file)?);
        }
    }
    records.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    Ok(records)
}

/// Events kept per pod (oldest dropped first).
pub const MAX_EVENTS: usize = 100;

/// Owns one pod's `status.json` and `events.json`.
#[derive(Debug)]
pub struct StatusStore {
    dir: PathBuf,
    last_written: Option<Vec<u8>>,
    last_record: Option<PodRecord>,
    events: Vec<PodEvent>,
}

impl StatusStore {
    /// Creates `<state root>/<namespace>_<pod>` ([`create_pod_dir`]).
    pub fn create(layout: &Layout, pod: &PodId) -> Result<Self, StatusError> {
        let dir = create_pod_dir(layout, pod)?;
        Ok(StatusStore {
            dir,
            last_written: None,
            last_record: None,
            events: Vec::new(),
        })
    }

    /// The pod's state dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The record last written (pass it to [`super::build`] as `previous`).
    pub fn last(&self) -> Option<&PodRecord> {
        self.last_record.as_ref()
    }

    /// Writes the record atomically if its JSON differs from the last one
    /// written. Returns whether it wrote.
    pub fn write(&mut self, record: &PodRecord) -> Result<bool, StatusError> {
        let path = self.dir.join(paths::STATUS_FILE);
        let mut bytes = serde_json::to_vec_pretty(record).map_err(|e| StatusError::Write {
            path: path.clone(),
            source: io::Error::other(e),
        })?;
        bytes.push(b'\n');
        if self.last_written.as_deref() == Some(&bytes) {
            return Ok(false);
        }
        write_atomic(&path, &bytes)?;
        self.last_written = Some(bytes);
        self.last_record = Some(record.clone());
        Ok(true)
    }

    /// Records an event (coalescing a repeat of the latest one with the same
    /// type, reason, object and message) and rewrites `events.json`.
    pub fn record_event(
        &mut self,
        type_: &str,
        reason: &str,
        field_path: &str,
        message: &str,
        at: SystemTime,
    ) -> Result<(), StatusError> {
        let stamp = format_rfc3339(at);
        let repeat = self.events.iter_mut().rev().find(|e| {
            e.type_ == type_
                && e.reason == reason
                && e.field_path == field_path
                && e.message == message
        });
        match repeat {
            Some(event) => {
                event.count += 1;
                event.last_timestamp = Some(stamp);
            }
            None => {
                if self.events.len() >= MAX_EVENTS {
                    self.events.remove(0);
                }
                self.events.push(PodEvent {
                    type_: type_.to_owned(),
                    reason: reason.to_owned(),
                    message: message.to_owned(),
                    field_path: field_path.to_owned(),
                    first_timestamp: Some(stamp.clone()),
                    last_timestamp: Some(stamp),
                    count: 1,
                });
            }
        }
        let path = self.dir.join(paths::EVENTS_FILE);
        let mut bytes =
            serde_json::to_vec_pretty(&self.events).map_err(|e| StatusError::Write {
                path: path.clone(),
                source: io::Error::other(e),
            })?;
        bytes.push(b'\n');
        Ok(write_atomic(&path, &bytes)?)
    }

    /// The events recorded so far, oldest first.
    pub fn events(&self) -> &[PodEvent] {
        &self.events
    }

    /// The pod is gone: removes its status, events and (if then empty) dir.
    pub fn remove(self) -> Result<(), StatusError> {
        for name in [paths::STATUS_FILE, paths::EVENTS_FILE] {
            let path = self.dir.join(name);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(StatusError::Write { path, source }),
            }
        }
        // Other modules may still keep state there; only an empty dir goes.
        let _ = fs::remove_dir(&self.dir);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::build;
    use crate::status::fixtures::{demo_id, record_sample_events, sample};

    #[test]
    fn store_writes_atomically_and_only_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path(), dir.path().join("logs"));
        let (meta, pod, t) = sample();
        let id = demo_id();
        let mut store = StatusStore::create(&layout, &id).unwrap();
        let r = build(&meta, &pod, None, t.wall);
        assert!(store.write(&r).unwrap());
        assert!(
            !store.write(&r).unwrap(),
            "unchanged record is not rewritten"
        );
        assert_eq!(read_record(&layout.status_file(&id)).unwrap(), r);
        let leftovers: Vec<_> = fs::read_dir(store.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(leftovers, ["status.json"]);
        record_sample_events(&mut store, t.wall);
        let events = read_events(&layout.events_file(&id)).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].count, 2);
        assert_eq!(
            events[0].last_timestamp.as_deref(),
            Some("2027-01-15T08:00:05Z")
        );
        assert_eq!(events, store.events());
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(store.dir()), 0o750);
        assert_eq!(list_pod_ids(&layout).unwrap(), std::slice::from_ref(&id));
        let listed = list_pods(&layout).unwrap();
        assert_eq!(listed, [r]);
        store.remove().unwrap();
        assert!(!layout.pod_state_dir(&id).exists());
        assert!(list_pods(&layout).unwrap().is_empty());
    }
}
