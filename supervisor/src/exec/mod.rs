//! `supervisor exec`: a command in a running container of a pod run by
//! another supervisor process, with exactly the container's rights, as
//! `kubectl exec` runs one through the kubelet and containerd.
//!
//! How the pod is found: its state dir (`paths::Layout`), whose lock
//! (`pod_lock`) tells whether its supervisor is alive, and whose exec
//! records ([`record`]) the supervisor writes for every running instance.
//! A pod whose supervisor is gone, or a container that does not run, is a
//! clear [`ExecError`], never an exec into whatever process now has that
//! pid: the instance's pid is opened as a pidfd and its start time checked
//! against the record before anything joins it.
//!
//! What the command gets, the same as the container's own process (the
//! exec probes get the same, `probe::spawn_exec`), nothing more: it joins
//! the instance's mount (so its root, pivoted into, and its mounts), pid,
//! network, IPC, UTS and cgroup namespaces through the pidfd, starts in
//! the instance's cgroup (clone3 `CLONE_INTO_CGROUP`, else cgroup.procs,
//! before any namespace is joined), with its environment, working dir,
//! uid, gid, groups, capabilities (bounding set included), no_new_privs,
//! seccomp filters and AppArmor profile. It runs under a waiter in the
//! container's pid namespace (`container::Command::reaper`), which reaps
//! its tree and exits with its status. containerd's CRI does the same
//! from the container's process spec (`internal/cri/server/
//! container_execsync.go`).
//!
//! Its stdio never is one of ours: a descriptor of the caller's terminal
//! inside the container would let the container type into it (TIOCSTI).
//! Without `-t` the command gets pipes (stdin /dev/null without `-i`),
//! relayed by [`relay`]; with `-t` and `-i` a new pty, whose slave is its
//! controlling terminal in a new session, and the caller's terminal goes
//! raw. kubectl's rules (`staging/src/k8s.io/kubectl/pkg/cmd/exec/exec.go`,
//! `StreamOptions.SetupTTY`): `-t` without `-i` gets no tty; `-t` with an
//! input that is no terminal gets no tty, with kubectl's message. The exit
//! status is the command's (128 + signal when a signal ended it), as
//! `kubectl exec` returns it.

pub mod record;
mod relay;

use std::os::fd::AsFd;
use std::path::PathBuf;

use container::{Cgroup, CgroupHost, Command, Namespace, NamespaceSet, PidFd, Session, Stdio};

use crate::paths::{Layout, PodId};
use crate::pid1;
use crate::pod_lock::{self, Role};
use crate::terminal::{self, Pty, RawMode};
use record::{InstanceRecord, PodRecord, RecordError};

/// What to run, and where.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    /// The pod.
    pub pod: PodId,
    /// `-c`: the container (None: kubectl's default).
    pub container: Option<String>,
    /// The command and its arguments.
    pub argv: Vec<String>,
    /// `-i`: relay our stdin.
    pub stdin: bool,
    /// `-t`: a terminal.
    pub tty: bool,
}

/// Why the command could not be run (its own failure is its exit status).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("pod {pod} not found in {dir}")]
    NoSuchPod { pod: PodId, dir: PathBuf },
    #[error("pod {pod} is not running: its supervisor is gone (lock {lock})")]
    SupervisorGone { pod: PodId, lock: PathBuf },
    #[error("container {container} not found in pod {pod} (containers: {names})")]
    NoSuchContainer {
        pod: PodId,
        container: String,
        names: String,
    },
    #[error("pod {pod} does not have any containers")]
    NoContainers { pod: PodId },
    #[error("container {container} of pod {pod} is not running")]
    NotRunning { pod: PodId, container: String },
    #[error("you must specify at least one command for the container")]
    NoCommand,
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("container {container} of pod {pod}: its process {pid} cannot be opened: {source}")]
    Process {
        pod: PodId,
        container: String,
        pid: i32,
        source: std::io::Error,
    },
    #[error("cgroups: {0}")]
    Cgroup(#[from] container::CgroupError),
    #[error(transparent)]
    Terminal(#[from] terminal::TerminalError),
    #[error(transparent)]
    Signals(#[from] pid1::Pid1Error),
    #[error("command {command:?} could not start in container {container}: {source}")]
    Spawn {
        container: String,
        command: String,
        source: container::SpawnError,
    },
    #[error(transparent)]
    Relay(#[from] relay::RelayError),
}

/// The state dir of `pod`, whose supervisor must be alive, and the name
/// of its container `container` (None: kubectl's default container).
pub fn find_container(
    layout: &Layout,
    pod: &PodId,
    container: Option<&str>,
) -> Result<(PathBuf, String), ExecError> {
    let state_dir = layout.pod_state_dir(pod);
    if !state_dir.is_dir() {
        return Err(ExecError::NoSuchPod {
            pod: pod.clone(),
            dir: layout.state_root().to_path_buf(),
        });
    }
    let lock = layout.lock_file(pod);
    // A reclaim holds the lock of a pod whose supervisor is gone.
    let reclaiming = pod_lock::read_holder(&lock).is_some_and(|h| h.role == Role::Reclaim);
    if !pod_lock::PodLock::is_held(&lock) || reclaiming {
        return Err(ExecError::SupervisorGone {
            pod: pod.clone(),
            lock,
        });
    }
    let containers = PodRecord::read(&state_dir)?;
    let container = match container {
        Some(name) if containers.has(name) => name.to_string(),
        Some(name) => {
            return Err(ExecError::NoSuchContainer {
                pod: pod.clone(),
                container: name.to_string(),
                names: containers.all_names(),
            });
        }
        None => {
            let (name, note) = containers
                .default_container()
                .ok_or_else(|| ExecError::NoContainers { pod: pod.clone() })?;
            if let Some(note) = note {
                eprintln!("{note}");
            }
            name.to_string()
        }
    };
    Ok((state_dir, container))
}

/// Runs the request; the command's exit status.
pub fn exec(layout: &Layout, request: &ExecRequest) -> Result<i32, ExecError> {
    if request.argv.is_empty() {
        return Err(ExecError::NoCommand);
    }
    let pod = &request.pod;
    let (state_dir, container) = find_container(layout, pod, request.container.as_deref())?;
    let not_running = || ExecError::NotRunning {
        pod: pod.clone(),
        container: container.clone(),
    };
    let instance = InstanceRecord::read(&state_dir, &container)?.ok_or_else(not_running)?;
    // The pidfd first, then the start time: a pidfd of a later process of
    // the same pid shows another start time, and once it is open the pid
    // cannot be reused under it.
    let pidfd = match PidFd::open(instance.pid) {
        Ok(pidfd) => pidfd,
        Err(_) => return Err(not_running()),
    };
    match record::start_ticks(instance.pid) {
        Ok(ticks) if ticks == instance.start_ticks => {}
        Ok(_) => return Err(not_running()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_running()),
        Err(source) => {
            return Err(ExecError::Process {
                pod: pod.clone(),
                container,
                pid: instance.pid,
                source,
            });
        }
    }
    let identity = instance.identity(&state_dir)?;
    let host = CgroupHost::detect()?;
    let cgroup = Cgroup::open(&host, &instance.cgroup)?;

    let mut command = Command::new(&request.argv[0]);
    command.args(&request.argv[1..]);
    for (key, value) in &instance.env {
        command.env(key, value);
    }
    command
        .join(
            &pidfd,
            NamespaceSet::of(&[
                Namespace::Mount,
                Namespace::Pid,
                Namespace::Net,
                Namespace::Ipc,
                Namespace::Uts,
                Namespace::Cgroup,
            ]),
        )
        .cgroup(&cgroup)
        .cwd(&identity.working_dir)
        .credentials(identity.credentials.clone())
        .reaper(true);
    identity.confinement.apply(&mut command);

    // kubectl's SetupTTY.
    let stdin_fd = std::io::stdin();
    let tty = request.tty && request.stdin && {
        let ok = terminal::is_terminal(stdin_fd.as_fd());
        if !ok {
            eprintln!("Unable to use a TTY - input is not a terminal or the right kind of file");
        }
        ok
    };
    // Every signal is read from a signalfd from here: SIGWINCH resizes,
    // the ones that end a client end the command first.
    let signals = pid1::Signals::block_all()?;
    let spawn_error = |source| ExecError::Spawn {
        container: container.clone(),
        command: request.argv.join(" "),
        source,
    };
    if tty {
        let pty = Pty::open(terminal::window_size(stdin_fd.as_fd()))?;
        let slave = || -> Result<Stdio, ExecError> {
            let fd = pty
                .slave
                .try_clone()
                .map_err(terminal::TerminalError::Duplicate)?;
            Ok(Stdio::Fd(fd))
        };
        command
            .session(Session::NewSession)
            .terminal(container::Terminal::Controlling)
            .stdin(slave()?)
            .stdout(slave()?)
            .stderr(slave()?);
        // Raw before the command starts: nothing it prints is cooked, and
        // an error from here on (ours, or its spawn) restores the terminal
        // as the guard drops.
        let raw = RawMode::enter(stdin_fd.as_fd())?;
        let child = command.spawn().map_err(spawn_error)?;
        drop(pty.slave);
        let status = relay::run_tty(&child, pty.master, &signals);
        drop(raw);
        Ok(status?)
    } else {
        command
            .session(Session::NewSession)
            .stdin(if request.stdin {
                Stdio::Piped
            } else {
                Stdio::Null
            })
            .stdout(Stdio::Piped)
            .stderr(Stdio::Piped);
        let mut child = command.spawn().map_err(spawn_error)?;
        Ok(relay::run_pipes(&mut child, &signals)?)
    }
}
