//! What `supervisor exec` learns from the running supervisor, through the
//! pod's state dir:
//!
//! ```text
//! <state dir>/exec/pod.json           the pod's containers and its default-container annotation
//! <state dir>/exec/<container>.json   the running instance: pid, cgroup, environment, rights
//! ```
//!
//! The supervisor writes `pod.json` once when the run starts, and a
//! container's file (atomically, [`write_atomic`]) each time an instance
//! starts, removing it when the instance ends. The exec process reads
//! them and starts its command with exactly these rights: the ones the
//! instance was started with, recorded rather than recomputed from the
//! manifest, as containerd's CRI runs an exec from the container's stored
//! process spec (`internal/cri/server/container_execsync.go`,
//! `execInternal`: `spec.Process` with the args replaced), so a
//! `Localhost` seccomp profile changed on disk since, or another
//! `--seccomp-default`, cannot change what an exec gets. The dir is 0700
//! in the pod's 0750 state dir: only root reaches its files.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use container::seccomp::{Program, SavedProgram};
use container::{CapSet, Credentials};
use serde::{Deserialize, Serialize};

use crate::atomic_file::{AtomicWriteError, write_atomic};
use crate::confinement::Confinement;
use crate::probe::ExecIdentity;
use crate::spec::PodSpec;

/// The dir of the exec records in a pod's state dir.
pub const EXEC_DIR: &str = "exec";
/// The pod's file in [`EXEC_DIR`].
pub const POD_FILE: &str = "pod.json";
/// kubectl's annotation naming the container `exec`, `attach` and `logs`
/// pick without `-c` (KEP 2227,
/// `staging/src/k8s.io/kubectl/pkg/cmd/util/podcmd/podcmd.go`).
pub const DEFAULT_CONTAINER_ANNOTATION: &str = "kubectl.kubernetes.io/default-container";

/// Mode of [`EXEC_DIR`].
const DIR_MODE: u32 = 0o700;

/// A record cannot be written, read or understood.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("create directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Write(#[from] AtomicWriteError),
    #[error("read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("parse {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: {source}")]
    Seccomp {
        path: PathBuf,
        source: container::seccomp::SeccompError,
    },
}

/// `<state dir>/exec`.
pub fn exec_dir(state_dir: &Path) -> PathBuf {
    state_dir.join(EXEC_DIR)
}

/// `<state dir>/exec/<container>.json` (a container name is a DNS label,
/// which has no dot: no container's file is [`POD_FILE`]).
pub fn container_file(state_dir: &Path, container: &str) -> PathBuf {
    exec_dir(state_dir).join(format!("{container}.json"))
}

/// The pod's containers as kubectl's container defaulting sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodRecord {
    /// `spec.containers[*].name`, in order.
    pub containers: Vec<String>,
    /// `spec.initContainers[*].name`, in order.
    pub init_containers: Vec<String>,
    /// The value of [`DEFAULT_CONTAINER_ANNOTATION`], if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_container: Option<String>,
}

impl PodRecord {
    /// The record of `pod`.
    pub fn of(pod: &PodSpec) -> PodRecord {
        PodRecord {
            containers: pod.containers.iter().map(|c| c.name.clone()).collect(),
            init_containers: pod.init_containers.iter().map(|c| c.name.clone()).collect(),
            default_container: pod
                .annotations
                .get(DEFAULT_CONTAINER_ANNOTATION)
                .filter(|v| !v.is_empty())
                .cloned(),
        }
    }

    /// Whether the pod has a container (or init container) `name`.
    pub fn has(&self, name: &str) -> bool {
        self.containers
            .iter()
            .chain(&self.init_containers)
            .any(|c| c == name)
    }

    /// kubectl's `AllContainerNames`: `a, b, setup (init)`.
    pub fn all_names(&self) -> String {
        self.containers
            .iter()
            .cloned()
            .chain(self.init_containers.iter().map(|c| format!("{c} (init)")))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The container kubectl picks without `-c`
    /// (`podcmd.FindOrDefaultContainerByName`): the annotation's when the
    /// pod has it, else the first container; with the note kubectl prints
    /// when it took the first of several.
    pub fn default_container(&self) -> Option<(&str, Option<String>)> {
        if let Some(name) = &self.default_container
            && self.has(name)
        {
            return Some((name, None));
        }
        let first = self.containers.first()?;
        let note = (self.containers.len() > 1 || !self.init_containers.is_empty())
            .then(|| format!("Defaulted container {first:?} out of: {}", self.all_names()));
        Some((first, note))
    }

    /// Writes `<state dir>/exec/pod.json` (and makes the dir).
    pub fn write(&self, state_dir: &Path) -> Result<(), RecordError> {
        let dir = exec_dir(state_dir);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(&dir)
            .map_err(|source| RecordError::CreateDir {
                path: dir.clone(),
                source,
            })?;
        write_json(&dir.join(POD_FILE), self)
    }

    /// Reads `<state dir>/exec/pod.json`.
    pub fn read(state_dir: &Path) -> Result<PodRecord, RecordError> {
        read_json(&exec_dir(state_dir).join(POD_FILE))
    }
}

/// One running container instance: where it is and what it runs as.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstanceRecord {
    /// The container.
    pub container: String,
    /// Its restart count (which instance).
    pub restart_count: u32,
    /// Its main process, as the host sees it.
    pub pid: i32,
    /// That process's start time (`/proc/<pid>/stat` field 22, clock
    /// ticks since boot): tells it from a later process of the same pid.
    pub start_ticks: u64,
    /// Its cgroup, relative to the hierarchy roots.
    pub cgroup: PathBuf,
    /// Its environment.
    pub env: Vec<(String, String)>,
    /// Its working directory.
    pub working_dir: PathBuf,
    /// uid (None: root, the supervisor's).
    pub uid: Option<u32>,
    /// gid.
    pub gid: Option<u32>,
    /// Supplementary groups.
    pub groups: Option<Vec<u32>>,
    /// The capability set (bit N = capability N).
    pub capabilities: Option<u64>,
    /// no_new_privs.
    pub no_new_privs: bool,
    /// The seccomp filters it runs under (None: Unconfined).
    pub seccomp: Option<SavedProgram>,
    /// Its AppArmor profile.
    pub apparmor: Option<String>,
}

impl InstanceRecord {
    /// The record of an instance of `container` started with `identity`.
    pub fn new(
        container: &str,
        restart_count: u32,
        pid: i32,
        cgroup: &Path,
        env: &[(String, String)],
        identity: &ExecIdentity,
    ) -> io::Result<InstanceRecord> {
        let c = &identity.credentials;
        Ok(InstanceRecord {
            container: container.to_string(),
            restart_count,
            pid,
            start_ticks: start_ticks(pid)?,
            cgroup: cgroup.to_path_buf(),
            env: env.to_vec(),
            working_dir: identity.working_dir.clone(),
            uid: c.uid,
            gid: c.gid,
            groups: c.groups.clone(),
            capabilities: c.caps.map(|caps| caps.0),
            no_new_privs: c.no_new_privs,
            seccomp: identity.confinement.seccomp.as_ref().map(Program::to_saved),
            apparmor: identity.confinement.apparmor.clone(),
        })
    }

    /// Writes it to `<state dir>/exec/<container>.json`.
    pub fn write(&self, state_dir: &Path) -> Result<PathBuf, RecordError> {
        let path = container_file(state_dir, &self.container);
        write_json(&path, self)?;
        Ok(path)
    }

    /// Reads `<state dir>/exec/<container>.json`; `None` when there is
    /// none (the container does not run).
    pub fn read(state_dir: &Path, container: &str) -> Result<Option<InstanceRecord>, RecordError> {
        match read_json(&container_file(state_dir, container)) {
            Ok(record) => Ok(Some(record)),
            Err(RecordError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The rights the instance runs with, for the exec's command.
    pub fn identity(&self, state_dir: &Path) -> Result<ExecIdentity, RecordError> {
        let seccomp = self
            .seccomp
            .as_ref()
            .map(Program::from_saved)
            .transpose()
            .map_err(|source| RecordError::Seccomp {
                path: container_file(state_dir, &self.container),
                source,
            })?;
        Ok(ExecIdentity {
            working_dir: self.working_dir.clone(),
            credentials: Credentials {
                uid: self.uid,
                gid: self.gid,
                groups: self.groups.clone(),
                caps: self.capabilities.map(CapSet),
                no_new_privs: self.no_new_privs,
            },
            confinement: Confinement {
                seccomp,
                apparmor: self.apparmor.clone(),
                notes: Vec::new(),
            },
        })
    }
}

/// The start time of process `pid` (`/proc/<pid>/stat` field 22).
pub fn start_ticks(pid: i32) -> io::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path)?;
    parse_start_ticks(&stat).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{path}: no start time in {stat:?}"),
        )
    })
}

/// Field 22 of a `/proc/<pid>/stat` line (the fields after the command
/// name, which is in parentheses and may hold anything).
fn parse_start_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // rest starts at field 3 (state); field 22 is the 20th from there.
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), RecordError> {
    let mut bytes = serde_json::to_vec(value).expect("plain data");
    bytes.push(b'\n');
    write_atomic(path, &bytes)?;
    Ok(())
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, RecordError> {
    let bytes = fs::read(path).map_err(|source| RecordError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| RecordError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(containers: &[&str], init: &[&str], default: Option<&str>) -> PodRecord {
        PodRecord {
            containers: containers.iter().map(|s| s.to_string()).collect(),
            init_containers: init.iter().map(|s| s.to_string()).collect(),
            default_container: default.map(str::to_string),
        }
    }

    #[test]
    fn the_default_container_is_kubectls() {
        assert_eq!(
            pod(&["a"], &[], None).default_container(),
            Some(("a", None))
        );
        assert_eq!(
            pod(&["a", "b"], &["setup"], None).default_container(),
            Some((
                "a",
                Some("Defaulted container \"a\" out of: a, b, setup (init)".to_string())
            ))
        );
        assert_eq!(
            pod(&["a", "b"], &[], Some("b")).default_container(),
            Some(("b", None))
        );
        // An annotation naming no container of the pod: the first one.
        assert_eq!(
            pod(&["a", "b"], &[], Some("zz"))
                .default_container()
                .unwrap()
                .0,
            "a"
        );
        assert_eq!(pod(&[], &[], None).default_container(), None);
    }

    #[test]
    fn records_round_trip_through_the_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        let p = pod(&["web", "side"], &["init"], Some("side"));
        p.write(dir.path()).unwrap();
        assert_eq!(PodRecord::read(dir.path()).unwrap(), p);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(exec_dir(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);

        let program = container::seccomp::runtime_default(CapSet::RUNTIME_DEFAULT)
            .compile("RuntimeDefault")
            .unwrap();
        let identity = ExecIdentity {
            working_dir: PathBuf::from("/srv"),
            credentials: Credentials {
                uid: Some(1000),
                gid: Some(2000),
                groups: Some(vec![3000]),
                caps: Some(CapSet(1 << 10)),
                no_new_privs: true,
            },
            confinement: Confinement {
                seccomp: Some(program),
                apparmor: Some("cri-containerd.apparmor.d".into()),
                notes: vec![],
            },
        };
        let pid = std::process::id() as i32;
        let env = vec![("PATH".to_string(), "/bin".to_string())];
        let record = InstanceRecord::new(
            "web",
            2,
            pid,
            Path::new("podvisor/x/containers/web/2"),
            &env,
            &identity,
        )
        .unwrap();
        assert_eq!(record.start_ticks, start_ticks(pid).unwrap());
        record.write(dir.path()).unwrap();
        let back = InstanceRecord::read(dir.path(), "web").unwrap().unwrap();
        let again = back.identity(dir.path()).unwrap();
        assert_eq!(again.credentials, identity.credentials);
        assert_eq!(again.working_dir, identity.working_dir);
        assert_eq!(again.confinement.apparmor, identity.confinement.apparmor);
        assert_eq!(
            again.confinement.seccomp.unwrap().to_saved(),
            identity.confinement.seccomp.unwrap().to_saved()
        );
        assert_eq!(back.env, env);
        assert!(InstanceRecord::read(dir.path(), "side").unwrap().is_none());
    }

    #[test]
    fn the_start_time_is_field_22_whatever_the_command_name() {
        let line = "42 (a) b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_start_ticks(line), Some(987654));
        assert_eq!(parse_start_ticks("42 (x"), None);
    }
}
