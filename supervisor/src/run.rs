//! `supervisor run MANIFEST`: one pod on this host until it is told to stop.
//!
//! Start order: the pod's cgroup and volumes, the sandbox (pause in fresh
//! namespaces), then init containers one by one to success, then the
//! containers. One thread of control drives everything from one epoll set
//! (the signalfd, the containers' log pipes, one timer for back-off and the
//! grace period): nothing polls, and an idle pod costs no wake-ups.
//!
//! Exits are taken from SIGCHLD: every child is reaped with
//! `waitpid(-1, WNOHANG)` and matched against the containers' pids (a pid
//! cannot be reused before we reap it, so the match is race-free); anything
//! else is an orphan this PID 1 or subreaper inherited, reaped and
//! forgotten. On SIGTERM or SIGINT each container gets its stop signal, the
//! grace period runs, what is left is killed through the cgroups, and the
//! pod is torn down: nothing is left behind.

use crate::event_loop::{EventLoop, TIMER};
use crate::logs::{ContainerLog, Echo, LogConfig, Stream};
use crate::network::{self, CniPaths, PodNetwork};
use crate::notify::Notifier;
use crate::paths::Layout;
use crate::pid1::{self, Signals};
use crate::probe::{Outcome, ProbeIo, ProbeTarget, Probes};
use crate::restart::{self, BackoffConfig, Decision, Event, Slot, Stamp, Termination};
use crate::spec::{self, PodSpec, RuntimeValues};
use crate::status::{self, ContainerMeta, PodMeta, StatusStore};
use crate::trace::{Step, Trace};
use crate::volumes::PodVolumes;
use crate::workload::{self, PodContext};
use anyhow::{Context, bail};
use container::rootfs::BindMount;
use container::{Cgroup, CgroupHost, Parked, PidFd, Sandbox, SandboxConfig};
use nix::sys::signal::Signal;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// What `supervisor run` was asked to do, validated by the command line
/// (`src/bin/supervisor/run.rs`): the library holds no flag parsing.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The manifest: a Pod, or a workload whose pod template runs, with the
    /// ConfigMaps and Secrets of the same file.
    pub manifest: PathBuf,
    /// The pause binary; None: found as `find_pause` says.
    pub pause: Option<PathBuf>,
    /// State root (None: $SUPERVISOR_STATE_DIR, else /run/supervisor).
    pub state_dir: Option<PathBuf>,
    /// Log root (None: $SUPERVISOR_LOG_DIR, else /var/log/pods).
    pub log_dir: Option<PathBuf>,
    /// The cgroup under which the pod's cgroup is created, relative to the
    /// hierarchy roots; None: decided once the hierarchy is known.
    pub cgroup_parent: Option<PathBuf>,
    /// kubelet's restart back-off.
    pub backoff: BackoffConfig,
    /// Where the CNI configuration, plugins and result cache are.
    pub cni: CniPaths,
    /// Container log rotation.
    pub log: LogConfig,
    /// A file for the restart benchmarks' trace lines.
    pub trace: Option<PathBuf>,
}

/// Runs `supervisor run`: returns 0 after a stop by signal or a pod that
/// Succeeded, 1 when the pod Failed.
pub fn run(options: RunOptions) -> anyhow::Result<i32> {
    // Before anything else (and before any thread): every signal is taken
    // from the signalfd in the loop.
    let signals = Signals::block_all().context("block signals")?;
    let loaded = spec::load(&options.manifest)?;
    for warning in &loaded.warnings {
        eprintln!("supervisor: warning: {warning}");
    }
    let pause = find_pause(options.pause.as_deref())?;
    raise_fd_limit();
    if !pid1::is_pid1() {
        pid1::become_subreaper().context("become a child subreaper")?;
    }
    let config = Config {
        layout: Layout::resolve(options.state_dir.as_deref(), options.log_dir.as_deref()),
        cgroup_parent: options.cgroup_parent,
        pause,
        log: options.log,
        backoff: options.backoff,
        cni: options.cni,
    };
    let trace = match &options.trace {
        Some(path) => Trace::open(path).with_context(|| format!("--trace {}", path.display()))?,
        None => Trace::default(),
    };
    let mut runtime = PodRuntime::new(loaded.pod, config, signals, trace);
    let result = runtime.start().and_then(|()| runtime.run());
    runtime.teardown();
    result
}

/// Each container costs the supervisor four fds (two log pipes, a pidfd,
/// its log file), so the soft limit goes up to the hard one, as systemd
/// gives a service 1024 soft (the containers inherit the raised limit, as
/// under dockerd).
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(error) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        eprintln!("supervisor: warning: cannot raise the open files limit to {hard}: {error}");
    }
}

fn find_pause(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = flag {
        if path.is_file() {
            return Ok(path.to_path_buf());
        }
        bail!("--pause {}: no such file", path.display());
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("pause")));
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("pause"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let candidates: Vec<PathBuf> = beside
        .into_iter()
        .chain([PathBuf::from("/usr/local/bin/pause")])
        .chain(on_path)
        .collect();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .with_context(|| {
            format!(
                "no pause binary found (looked at {}); give one with --pause",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

struct Config {
    layout: Layout,
    /// None: decided once the cgroup hierarchy is known (see
    /// `delegated_parent`).
    cgroup_parent: Option<PathBuf>,
    pause: PathBuf,
    log: LogConfig,
    backoff: BackoffConfig,
    cni: CniPaths,
}

/// The cgroup parent outside systemd's delegation.
const DEFAULT_CGROUP_PARENT: &str = "podvisor";

/// On a pure cgroup v2 host, the cgroup this process was given when that
/// cgroup is ours to divide: a systemd service with `Delegate=yes`
/// (`INVOCATION_ID` set), or the root of a container's cgroup namespace
/// (the root of a namespace is not the real root when it has
/// `cgroup.events`). This process first moves into a `supervisor` leaf of
/// it, so that the cgroup holds no process itself (the no-internal-process
/// rule) and the pod's cgroup can be made beside the leaf. None elsewhere:
/// the pod goes under `podvisor` at the root.
fn delegated_parent(host: &CgroupHost) -> anyhow::Result<Option<PathBuf>> {
    if host.mode() != container::CgroupMode::Unified {
        return Ok(None);
    }
    let Some(root) = host.unified_mount() else {
        return Ok(None);
    };
    let own = std::fs::read_to_string("/proc/self/cgroup").context("read /proc/self/cgroup")?;
    let Some(own) = own_unified_cgroup(&own) else {
        return Ok(None);
    };
    let namespace_root = own.as_os_str().is_empty() && root.join("cgroup.events").exists();
    let service = !own.as_os_str().is_empty() && std::env::var_os("INVOCATION_ID").is_some();
    if !namespace_root && !service {
        return Ok(None);
    }
    let leaf = root.join(&own).join("supervisor");
    std::fs::create_dir_all(&leaf).with_context(|| format!("create {}", leaf.display()))?;
    std::fs::write(leaf.join("cgroup.procs"), std::process::id().to_string())
        .with_context(|| format!("move the supervisor into {}", leaf.display()))?;
    Ok(Some(own))
}

/// The cgroup v2 path of this process from /proc/self/cgroup ("0::/a/b"),
/// relative to the hierarchy root.
fn own_unified_cgroup(proc_self_cgroup: &str) -> Option<PathBuf> {
    proc_self_cgroup
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(|path| PathBuf::from(path.trim_start_matches('/')))
}

/// Token of the signalfd in the event loop; containers use
/// `index * TOKENS_PER_CONTAINER + k`: k = 1 stdout, 2 stderr, and
/// PROBE_TOKEN + slot for a probe's socket.
const SIGNALS: u64 = u64::MAX - 1;
const TOKENS_PER_CONTAINER: u64 = 8;
const STDOUT_TOKEN: u64 = 1;
const STDERR_TOKEN: u64 = 2;
const PROBE_TOKEN: u64 = 4;
/// How long the cgroup kill and removal may take before giving up.
const CGROUP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long pause gets to exit on SIGTERM at teardown.
const PAUSE_GRACE: Duration = Duration::from_secs(2);

/// One container of the pod: its spec, its cgroup and, while it runs, its
/// process and log pipes.
struct Workload {
    slot: Slot,
    spec: spec::Container,
    cgroup: Option<Cgroup>,
    /// The next instance, forked ahead of time (see `park_next`).
    parked: Option<ParkedInstance>,
    /// When to park the next instance.
    park_at: Option<Instant>,
    process: Option<Process>,
    log: Option<ContainerLog>,
}

/// A container's next instance, forked while the current one runs and
/// parked in its own fresh cgroup: its restart then costs no cgroup
/// creation and, on cgroup v1, no migration into the cgroup (a write to
/// cgroup.procs waits for an RCU grace period: 5 to 30 ms, measured). Only
/// containers that have restarted once get one, so a pod of steady
/// containers has no extra process.
struct ParkedInstance {
    restart_count: u32,
    cgroup: Cgroup,
    parked: Parked,
    env: Env,
}

/// A container's environment, as its process got it.
type Env = Vec<(String, String)>;

/// One instance before it runs: its fresh cgroup, environment and command.
struct InstancePlan {
    cgroup: Cgroup,
    env: Env,
    command: container::Command,
}

/// An ended instance's cgroup: killed, removed once its processes are gone
/// (after the next instance has started, off the restart path).
struct Retired {
    container: String,
    cgroup: Cgroup,
    since: Instant,
}

/// How long an instance of a container that restarted runs before its
/// successor is parked. One that dies sooner is in a tight crash loop,
/// where a parked successor would only compete with the restart for the
/// CPU (and the cgroup migrations come back to back, which keeps them
/// fast); one that lives longer gets it, and restarts without waiting.
const PARK_DELAY: Duration = Duration::from_millis(20);

/// The least time between two drops of the idle code pages (see `run`).
const TRIM_INTERVAL: Duration = Duration::from_secs(10);

/// How often a retired cgroup that is not empty yet is looked at again.
const RETIRED_RETRY: Duration = Duration::from_millis(10);

/// A running instance.
struct Process {
    pid: i32,
    pidfd: PidFd,
    /// The instance's own cgroup beneath the container's (which holds the
    /// limits). A fresh one per instance: a cgroup that was killed through
    /// `cgroup.kill` kills whatever clone3 later starts into it on some
    /// kernels (the kill sequence check of CLONE_INTO_CGROUP), and a fresh
    /// one also leaves nothing of the previous instance behind.
    cgroup: Cgroup,
    /// The cgroup's OOM-kill counter when it started.
    oom_kills_before: u64,
    stdout: Option<File>,
    stderr: Option<File>,
    /// Its environment (exec probes run with it too).
    env: Vec<(String, String)>,
    probes: Probes,
    /// Killed by a failed probe: the message for lastState, and when the
    /// stop signal's grace period ends.
    probe_kill: Option<(String, Instant)>,
}

/// Registers probe sockets in the event loop under a container's tokens.
struct ProbeSockets<'a> {
    event_loop: &'a EventLoop,
    base: u64,
}

impl ProbeIo for ProbeSockets<'_> {
    fn watch(&mut self, fd: BorrowedFd<'_>, slot: u8, writable: bool) {
        let flags = if writable {
            nix::sys::epoll::EpollFlags::EPOLLOUT
        } else {
            nix::sys::epoll::EpollFlags::EPOLLIN
        };
        if let Err(error) =
            self.event_loop
                .watch_with(fd, self.base + PROBE_TOKEN + u64::from(slot), flags)
        {
            eprintln!("supervisor: probe socket: {error}");
        }
    }

    fn unwatch(&mut self, fd: BorrowedFd<'_>) {
        let _ = self.event_loop.unwatch(fd);
    }
}

/// How the pod is being stopped.
struct Stopping {
    /// The end of the grace period; once `killed`, how long SIGKILLed
    /// processes get to be gone.
    deadline: Instant,
    killed: bool,
}

struct PodRuntime {
    pod: PodSpec,
    config: Config,
    /// Where the pod's cgroup goes (see `Config::cgroup_parent`).
    cgroup_parent: PathBuf,
    signals: Signals,
    state_dir: PathBuf,
    event_loop: Option<EventLoop>,
    store: Option<StatusStore>,
    meta: PodMeta,
    lifecycle: restart::PodStateMachine,
    workloads: Vec<Workload>,
    cgroup_host: Option<CgroupHost>,
    pod_cgroup: Option<Cgroup>,
    pause_cgroup: Option<Cgroup>,
    volumes: Option<PodVolumes>,
    sandbox: Option<Sandbox>,
    network: Option<PodNetwork>,
    /// /etc/hosts, /etc/resolv.conf, /etc/hostname of the pod.
    pod_files: Vec<BindMount>,
    runtime_values: RuntimeValues,
    echo: Echo,
    notifier: Notifier,
    stopping: Option<Stopping>,
    /// The pod reached a terminal phase (restartPolicy Never/OnFailure).
    finished: bool,
    trace: Trace,
    retired: Vec<Retired>,
}

impl PodRuntime {
    fn new(pod: PodSpec, config: Config, signals: Signals, trace: Trace) -> PodRuntime {
        let now = Stamp::now();
        let lifecycle = restart::PodStateMachine::new(
            pod.restart_policy,
            config.backoff,
            pod.init_containers.iter().map(|c| c.name.clone()),
            pod.containers.iter().map(|c| c.name.clone()),
            now,
        );
        let workloads = pod
            .init_containers
            .iter()
            .enumerate()
            .map(|(i, c)| (Slot::Init(i), c))
            .chain(
                pod.containers
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (Slot::App(i), c)),
            )
            .map(|(slot, spec)| Workload {
                slot,
                spec: spec.clone(),
                cgroup: None,
                parked: None,
                park_at: None,
                process: None,
                log: None,
            })
            .collect();
        let image = |c: &spec::Container| ContainerMeta {
            image: c.image.clone().unwrap_or_default(),
            image_id: String::new(),
        };
        let meta = PodMeta {
            name: pod.name.clone(),
            namespace: Some(pod.namespace.clone()),
            uid: None,
            created: now.wall,
            deleting: None,
            start_time: None,
            host_ips: Vec::new(),
            pod_ips: Vec::new(),
            init_containers: pod.init_containers.iter().map(image).collect(),
            containers: pod.containers.iter().map(image).collect(),
        };
        let state_dir = config.layout.pod_state_dir(&pod.name);
        PodRuntime {
            cgroup_parent: PathBuf::from(DEFAULT_CGROUP_PARENT),
            runtime_values: RuntimeValues {
                node_name: nix::unistd::gethostname()
                    .map(|h| h.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                ..RuntimeValues::default()
            },
            pod,
            config,
            signals,
            state_dir,
            event_loop: None,
            store: None,
            meta,
            lifecycle,
            workloads,
            cgroup_host: None,
            pod_cgroup: None,
            pause_cgroup: None,
            volumes: None,
            sandbox: None,
            network: None,
            pod_files: Vec::new(),
            echo: Echo::stdout().unwrap_or_else(|_| Echo::disabled()),
            notifier: Notifier::from_env(now.mono),
            stopping: None,
            finished: false,
            trace,
            retired: Vec::new(),
        }
    }

    /// The sandbox name: the /run/netns file and the cgroup of the pod.
    fn sandbox_name(&self) -> String {
        format!("{}_{}", self.pod.namespace, self.pod.name)
    }

    /// Everything before the first container: state dir, status, cgroups,
    /// volumes, sandbox. On error, `teardown` removes what was made.
    fn start(&mut self) -> anyhow::Result<()> {
        let event_loop = EventLoop::new()?;
        event_loop.watch(self.signals.as_fd(), SIGNALS)?;
        self.event_loop = Some(event_loop);
        std::fs::create_dir_all(&self.state_dir)
            .with_context(|| format!("create the state dir {}", self.state_dir.display()))?;
        self.store = Some(StatusStore::create(&self.config.layout, &self.pod.name)?);
        self.notifier.status("starting the sandbox");

        let host = CgroupHost::detect()?;
        self.cgroup_parent = match &self.config.cgroup_parent {
            Some(parent) => parent.clone(),
            None => {
                delegated_parent(&host)?.unwrap_or_else(|| PathBuf::from(DEFAULT_CGROUP_PARENT))
            }
        };
        self.clean_up_after_a_crash(&host);
        let pod_cgroup = Cgroup::create(&host, self.cgroup_parent.join(self.sandbox_name()))?;
        self.pause_cgroup = Some(pod_cgroup.create_child(&host, "pause")?);
        self.pod_cgroup = Some(pod_cgroup);
        self.cgroup_host = Some(host);

        self.volumes = Some(PodVolumes::prepare(
            &self.pod,
            &self.state_dir.join("volumes"),
        )?);
        self.start_sandbox()?;
        eprintln!(
            "supervisor: pod {} sandbox up (pause pid {}), {} init container(s), {} container(s)",
            self.pod.name,
            self.sandbox.as_ref().map_or(0, Sandbox::pid),
            self.pod.init_containers.len(),
            self.pod.containers.len()
        );
        Ok(())
    }

    fn start_sandbox(&mut self) -> anyhow::Result<()> {
        let mut config = SandboxConfig::new(self.sandbox_name(), &self.config.pause);
        // With the host's network the UTS name stays the host's too, as
        // Kubernetes does it.
        config.hostname = Some(if self.pod.host_network {
            self.runtime_values.node_name.clone()
        } else {
            self.pod.hostname.clone()
        });
        config.host_network = self.pod.host_network;
        // pause is PID 1 of the sandbox's own PID namespace, as under kubelet;
        // containers join it only with shareProcessNamespace.
        config.pid_namespace = true;
        config.publish_netns = !self.pod.host_network;
        config.cgroup = self.pause_cgroup.clone();
        // Killed with the supervisor, like the containers; what a killed
        // supervisor leaves (address, netns file, cgroups) the next run of
        // the pod cleans up.
        config.die_with_parent = true;
        let sandbox = Sandbox::start(&config)?;
        self.meta.start_time = Some(SystemTime::now());
        let netns = sandbox.netns_path();
        self.sandbox = Some(sandbox);
        self.attach_network(netns.as_deref())
    }

    /// CNI ADD for the sandbox's netns; then the pod's /etc files.
    fn attach_network(&mut self, netns: Option<&Path>) -> anyhow::Result<()> {
        let mut dns = None;
        if let Some(netns) = netns {
            match PodNetwork::load(&self.config.cni)? {
                Some(network) => {
                    let (attached, result) =
                        PodNetwork::attach(network, &self.pod, &self.sandbox_name(), netns)?;
                    let ips = result.pod_ips();
                    eprintln!(
                        "supervisor: pod {} has IP {} ({})",
                        self.pod.name,
                        ips.iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                        attached.describe()
                    );
                    self.runtime_values.pod_ips = ips.iter().map(ToString::to_string).collect();
                    dns = Some(result.dns.clone());
                    self.network = Some(attached);
                }
                None => eprintln!(
                    "supervisor: no CNI configuration in {}: the sandbox has loopback only",
                    self.config.cni.conf_dir.display()
                ),
            }
        }
        if !self.pod.host_network {
            let ips: Vec<std::net::IpAddr> = self
                .runtime_values
                .pod_ips
                .iter()
                .filter_map(|ip| ip.parse().ok())
                .collect();
            self.pod_files = network::write_pod_files(
                &self.pod,
                &ips,
                dns.as_ref(),
                &self.state_dir.join("etc"),
            )
            .context("write the pod's /etc/hosts, /etc/resolv.conf and /etc/hostname")?;
        }
        Ok(())
    }

    /// CNI DEL: the address goes back to the pool.
    fn detach_network(&mut self) {
        if let Some(network) = self.network.take()
            && let Err(error) = network.detach()
        {
            eprintln!("supervisor: CNI DEL: {error}");
        }
        self.runtime_values.pod_ips.clear();
    }

    /// A previous run of this pod was killed before its teardown: release
    /// its address, kill what is left in its cgroups, unmount its volumes.
    fn clean_up_after_a_crash(&mut self, host: &CgroupHost) {
        for problem in network::release_leftovers(&self.config.cni, &self.sandbox_name()) {
            eprintln!("supervisor: cleaning up a previous run: {problem}");
        }
        if let Ok(pod_cgroup) = Cgroup::open(host, self.cgroup_parent.join(self.sandbox_name()))
            && pod_cgroup.dirs().iter().any(|d| d.exists())
        {
            eprintln!("supervisor: cleaning up the cgroups of a previous run");
            for error in remove_cgroup_tree(host, &pod_cgroup) {
                eprintln!("supervisor: cleaning up a previous run: {error}");
            }
        }
        for error in crate::volumes::unmount_below(&self.state_dir) {
            eprintln!("supervisor: cleaning up a previous run: {error}");
        }
        let netns = Path::new(container::sandbox::NETNS_RUN_DIR).join(self.sandbox_name());
        if netns.exists() {
            let _ = nix::mount::umount2(&netns, nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_file(&netns);
        }
        let _ = std::fs::remove_dir_all(self.state_dir.join("volumes"));
    }

    /// The event loop: start what is due, sleep until something happens,
    /// handle it; until the pod is stopped or finished.
    fn run(&mut self) -> anyhow::Result<i32> {
        // Something ran since the code pages were last dropped.
        let mut touched = true;
        let mut last_trim: Option<Instant> = None;
        loop {
            let now = Instant::now();
            self.notifier.ping_if_due(now);
            if let Some(stopping) = &self.stopping
                && now >= stopping.deadline
            {
                if !stopping.killed {
                    self.kill_all("the grace period ended");
                } else {
                    // SIGKILLed and still there (a process stuck in the
                    // kernel): the teardown tries once more and reports.
                    eprintln!(
                        "supervisor: pod {}: processes left {CGROUP_TIMEOUT:?} after SIGKILL",
                        self.pod.name
                    );
                    return Ok(0);
                }
            }
            for slot in self.lifecycle.due(now) {
                self.start_container(slot);
            }
            self.park_due(now);
            self.run_probes(now);
            self.publish_status();
            self.sweep_retired(Instant::now());
            if self.stopping.is_some() && self.nothing_runs() {
                return Ok(0);
            }
            if self.stopping.is_none() && self.lifecycle.is_done() {
                self.finished = true;
                let phase = self.lifecycle.phase();
                eprintln!("supervisor: pod {} is {}", self.pod.name, phase.as_str());
                return Ok(if phase == restart::PodPhase::Succeeded {
                    0
                } else {
                    1
                });
            }
            let deadline = [
                self.lifecycle.next_deadline(),
                self.stopping.as_ref().map(|s| s.deadline),
                self.notifier.next_ping(),
                self.probe_deadline(),
                self.workloads.iter().filter_map(|w| w.park_at).min(),
                (!self.retired.is_empty()).then(|| Instant::now() + RETIRED_RETRY),
            ]
            .into_iter()
            .flatten()
            .min();
            // Going idle with nothing scheduled: the code that ran (start-up,
            // a restart) gives its pages back (see `memory`), at most once
            // per TRIM_INTERVAL: the next event faults them in again (about
            // 1 ms), which a container restarting every second should not
            // pay each time. A trim held back is done when it is due.
            let mut trim_at = None;
            if touched && deadline.is_none() && self.nothing_pending() {
                match last_trim.map(|at| at + TRIM_INTERVAL) {
                    Some(due) if due > now => trim_at = Some(due),
                    _ => {
                        touched = false;
                        last_trim = Some(now);
                        crate::memory::drop_idle_code();
                    }
                }
            }
            let deadline = deadline.or(trim_at);
            let event_loop = self.event_loop.as_mut().expect("started");
            event_loop.set_deadline(deadline)?;
            for token in event_loop.wait()? {
                touched = true;
                match token {
                    SIGNALS => self.on_signals()?,
                    TIMER => {}
                    token => self.on_output(token),
                }
            }
        }
    }

    /// Every container has been started once (init containers done).
    fn nothing_pending(&self) -> bool {
        self.lifecycle
            .containers()
            .iter()
            .all(|c| !matches!(c.state(), restart::State::Waiting { .. }) || c.restart_count() > 0)
    }

    fn nothing_runs(&self) -> bool {
        self.workloads.iter().all(|w| w.process.is_none())
    }

    /// The earliest probe start or timeout, or end of a probe kill's grace.
    fn probe_deadline(&self) -> Option<Instant> {
        self.workloads
            .iter()
            .filter_map(|w| w.process.as_ref())
            .flat_map(|p| {
                [
                    p.probes.next_deadline(),
                    p.probe_kill.as_ref().map(|(_, at)| *at),
                ]
            })
            .flatten()
            .min()
    }

    /// Start due probes, time out late ones, and end the grace period of
    /// containers a probe failed.
    fn run_probes(&mut self, now: Instant) {
        let Some(event_loop) = self.event_loop.as_ref() else {
            return;
        };
        let netns = self.sandbox.as_ref().and_then(Sandbox::netns_path);
        let pod_ip = self
            .runtime_values
            .pod_ips
            .first()
            .and_then(|ip| ip.parse().ok());
        let mut outcomes = Vec::new();
        for (index, w) in self.workloads.iter_mut().enumerate() {
            let Some(process) = &mut w.process else {
                continue;
            };
            if let Some((_, at)) = &process.probe_kill
                && now >= *at
            {
                let _ = process.cgroup.kill_all(CGROUP_TIMEOUT);
            }
            let target = ProbeTarget {
                pid: process.pid,
                cgroup: &process.cgroup,
                netns: netns.as_deref(),
                pod_ip,
                env: &process.env,
            };
            let mut io = ProbeSockets {
                event_loop,
                base: index as u64 * TOKENS_PER_CONTAINER,
            };
            for outcome in process.probes.tick(now, &target, &mut io) {
                outcomes.push((index, outcome));
            }
        }
        for (index, outcome) in outcomes {
            self.on_probe_outcome(index, outcome);
        }
    }

    fn on_probe_outcome(&mut self, index: usize, outcome: Outcome) {
        let w = &mut self.workloads[index];
        let slot = w.slot;
        match outcome {
            Outcome::Started => {
                let has_readiness = w.process.as_ref().is_some_and(|p| p.probes.has_readiness());
                if !has_readiness && let Some(c) = self.lifecycle.get_mut(slot) {
                    c.set_ready(true);
                }
            }
            Outcome::Ready(ready) => {
                if let Some(c) = self.lifecycle.get_mut(slot) {
                    c.set_ready(ready);
                }
            }
            Outcome::Failed {
                kind,
                message,
                grace_period,
            } => {
                let Some(process) = &mut w.process else {
                    return;
                };
                if process.probe_kill.is_some() {
                    return;
                }
                eprintln!("supervisor: [{}] {message}: killing it", w.spec.name);
                if let Some(c) = self.lifecycle.get_mut(slot) {
                    c.set_ready(false);
                }
                let grace = grace_period.unwrap_or(self.pod.termination_grace_period);
                let _ = process.pidfd.send_signal(w.spec.stop_signal);
                process.probe_kill = Some((message.clone(), Instant::now() + grace));
                if let Some(store) = &mut self.store {
                    let _ = store.record_event(
                        "Warning",
                        "Unhealthy",
                        &format!("spec.containers{{{}}}", w.spec.name),
                        &format!("{message} ({kind} probe): the container will be restarted"),
                        SystemTime::now(),
                    );
                }
            }
        }
    }

    fn on_signals(&mut self) -> anyhow::Result<()> {
        while let Some(info) = self.signals.read()? {
            match Signal::try_from(info.signal) {
                Ok(Signal::SIGCHLD) => self.reap()?,
                Ok(signal @ (Signal::SIGTERM | Signal::SIGINT)) => self.on_stop_signal(signal),
                // Everything else is ignored: a PID 1 must not die of a
                // stray SIGHUP or SIGPIPE.
                _ => {}
            }
        }
        Ok(())
    }

    fn on_stop_signal(&mut self, signal: Signal) {
        if let Some(stopping) = &self.stopping {
            if signal == Signal::SIGINT && !stopping.killed {
                self.kill_all("a second SIGINT");
            }
            return;
        }
        let grace = self.pod.termination_grace_period;
        eprintln!(
            "supervisor: {signal}: stopping pod {} (grace period {}s)",
            self.pod.name,
            grace.as_secs()
        );
        self.notifier.stopping(grace);
        self.lifecycle.stop();
        self.drop_parked();
        self.meta.deleting = Some(SystemTime::now());
        for w in &self.workloads {
            if let Some(process) = &w.process
                && let Err(error) = process.pidfd.send_signal(w.spec.stop_signal)
            {
                eprintln!(
                    "supervisor: [{}] {}: {error}",
                    w.spec.name, w.spec.stop_signal
                );
            }
        }
        self.stopping = Some(Stopping {
            deadline: Instant::now() + grace,
            killed: false,
        });
    }

    /// SIGKILL every process of the pod's containers through their cgroups.
    fn kill_all(&mut self, why: &str) {
        eprintln!(
            "supervisor: {why}: killing what is left of pod {}",
            self.pod.name
        );
        // SIGKILL to every container at once, without waiting for one
        // before the next: their exits come back as SIGCHLD.
        for w in &self.workloads {
            if w.process.is_some()
                && let Some(cgroup) = &w.cgroup
                && let Err(error) = cgroup.kill()
            {
                eprintln!("supervisor: [{}] {error}", w.spec.name);
            }
        }
        if let Some(stopping) = &mut self.stopping {
            stopping.killed = true;
            stopping.deadline = Instant::now() + CGROUP_TIMEOUT;
        }
    }

    /// Reap every exited child; the containers' ones end their instance.
    fn reap(&mut self) -> anyhow::Result<()> {
        let reaped = pid1::reap()?;
        for pid1::ReapedChild { pid, status, .. } in reaped.exited {
            let pid = pid.as_raw();
            if let Some(index) = self
                .workloads
                .iter()
                .position(|w| w.process.as_ref().is_some_and(|p| p.pid == pid))
            {
                self.on_exit(index, status);
            } else if self.sandbox.as_ref().is_some_and(|s| s.pid() == pid) {
                self.on_sandbox_death(status)?;
            } else {
                // An exec probe, or an orphan (reaped: nothing else to do).
                let now = Instant::now();
                let mut outcomes = Vec::new();
                for (index, w) in self.workloads.iter_mut().enumerate() {
                    if let Some(process) = &mut w.process
                        && let Some(found) = process.probes.on_exit(pid, &status, now)
                    {
                        outcomes.extend(found.into_iter().map(|o| (index, o)));
                        break;
                    }
                }
                for (index, outcome) in outcomes {
                    self.on_probe_outcome(index, outcome);
                }
            }
        }
        Ok(())
    }

    fn on_exit(&mut self, index: usize, status: container::ExitStatus) {
        let now = Stamp::now();
        let w = &mut self.workloads[index];
        w.park_at = None;
        if let Some(c) = self.lifecycle.get(w.slot) {
            self.trace
                .record(&w.spec.name, c.restart_count(), Step::Reaped);
        }
        let mut process = w.process.take().expect("matched a running process");
        if let Some(event_loop) = &self.event_loop {
            process.probes.cancel(&mut ProbeSockets {
                event_loop,
                base: index as u64 * TOKENS_PER_CONTAINER,
            });
        }
        // cgroup v1 counts an OOM kill in the victim's own memcg (the
        // instance's, fresh for it); v2 counts it up the tree as well (the
        // container's, which holds the limit).
        let oom_killed = process.cgroup.oom_kills().is_ok_and(|n| n > 0)
            || w.cgroup
                .as_ref()
                .and_then(|c| c.oom_kills().ok())
                .is_some_and(|after| after > process.oom_kills_before);
        // The instance is over: nothing of it may outlive it (processes it
        // left in a shared PID namespace, or the rest of its own). Killed
        // and removed in `sweep_retired`, after the restart.
        let ended_cgroup = process.cgroup.clone();
        let mut termination = Termination::classify(status, oom_killed);
        if let Some((message, _)) = process.probe_kill.take() {
            termination.message = Some(message);
        }
        drain_output(
            w,
            process,
            now.wall,
            &mut self.echo,
            self.event_loop.as_ref(),
        );
        eprintln!(
            "supervisor: [{}] exited: {} (exit code {})",
            w.spec.name, termination.reason, termination.exit_code
        );
        let slot = w.slot;
        let name = w.spec.name.clone();
        self.retire(&name, ended_cgroup);
        match self.lifecycle.handle(
            slot,
            Event::Exited {
                at: now,
                termination,
            },
        ) {
            Ok(Decision::RestartAt(at)) if at > now.mono => {
                eprintln!("supervisor: [{name}] restarting in {:?}", at - now.mono)
            }
            Ok(Decision::RestartAt(_)) => {}
            // No next instance: its parked one goes.
            Ok(Decision::Finished | Decision::Nothing) => self.discard_parked(index),
            Err(error) => eprintln!("supervisor: {error}"),
        }
    }

    /// Kill what is left in ended instances' cgroups and remove them; a
    /// cgroup that does not empty within CGROUP_TIMEOUT is reported and left
    /// to the teardown.
    fn sweep_retired(&mut self, now: Instant) {
        self.retired.retain(|r| {
            let result = r.cgroup.kill().and_then(|empty| {
                if empty {
                    r.cgroup.try_remove()
                } else {
                    Ok(false)
                }
            });
            match result {
                Ok(true) => false,
                Ok(false) if now.duration_since(r.since) < CGROUP_TIMEOUT => true,
                Ok(false) => {
                    eprintln!(
                        "supervisor: [{}] {} still busy after {CGROUP_TIMEOUT:?}: left to the teardown",
                        r.container,
                        r.cgroup.name().display()
                    );
                    false
                }
                Err(error) => {
                    eprintln!("supervisor: [{}] {error}", r.container);
                    false
                }
            }
        });
    }

    /// pause died: the sandbox is gone. Kill every container, start a new
    /// sandbox; the containers come back under their restart policy.
    fn on_sandbox_death(&mut self, status: container::ExitStatus) -> anyhow::Result<()> {
        // Dropping the handle removes the netns file; its kill goes through
        // the pidfd, which cannot hit a reused pid.
        drop(self.sandbox.take());
        if self.stopping.is_some() {
            return Ok(());
        }
        eprintln!(
            "supervisor: pause of pod {} died ({status}): recreating the sandbox",
            self.pod.name
        );
        if let Some(store) = &mut self.store {
            let _ = store.record_event(
                "Warning",
                "SandboxChanged",
                "",
                &format!("Pod sandbox died ({status}), it will be killed and re-created."),
                SystemTime::now(),
            );
        }
        // Parked instances would join the dead sandbox.
        self.drop_parked();
        for w in &self.workloads {
            if w.process.is_some()
                && let Some(cgroup) = &w.cgroup
            {
                let _ = cgroup.kill_all(CGROUP_TIMEOUT);
            }
        }
        self.detach_network();
        self.start_sandbox()
    }

    /// Read what a container wrote; EOF closes that stream.
    fn on_output(&mut self, token: u64) {
        let index = (token / TOKENS_PER_CONTAINER) as usize;
        let stream = match token % TOKENS_PER_CONTAINER {
            STDOUT_TOKEN => Stream::Stdout,
            STDERR_TOKEN => Stream::Stderr,
            k if k >= PROBE_TOKEN => {
                self.on_probe_socket(index, (k - PROBE_TOKEN) as u8);
                return;
            }
            _ => return,
        };
        let Some(w) = self.workloads.get_mut(index) else {
            return;
        };
        let Some(process) = &mut w.process else {
            return;
        };
        let pipe = match stream {
            Stream::Stdout => &mut process.stdout,
            Stream::Stderr => &mut process.stderr,
        };
        let Some(file) = pipe else { return };
        let now = SystemTime::now();
        let mut buf = [0u8; 64 * 1024];
        // A bounded number of reads per wake-up, so one flooding container
        // cannot starve the others (epoll reports it again).
        for _ in 0..16 {
            match file.read(&mut buf) {
                Ok(0) => {
                    if let Some(event_loop) = &self.event_loop {
                        let _ = event_loop.unwatch(file.as_fd());
                    }
                    *pipe = None;
                    if let Some(log) = &mut w.log {
                        let _ = log.finish(stream, now, &mut self.echo);
                    }
                    return;
                }
                Ok(n) => {
                    if let Some(log) = &mut w.log
                        && let Err(error) = log.feed(stream, &buf[..n], now, &mut self.echo)
                    {
                        eprintln!("supervisor: [{}] log: {error}", w.spec.name);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return, // EAGAIN: all read
            }
        }
    }

    fn on_probe_socket(&mut self, index: usize, slot: u8) {
        let (Some(event_loop), Some(w)) = (self.event_loop.as_ref(), self.workloads.get_mut(index))
        else {
            return;
        };
        let Some(process) = &mut w.process else {
            return;
        };
        let mut io = ProbeSockets {
            event_loop,
            base: index as u64 * TOKENS_PER_CONTAINER,
        };
        let outcomes = process
            .probes
            .on_socket_ready(slot, Instant::now(), &mut io);
        for outcome in outcomes {
            self.on_probe_outcome(index, outcome);
        }
    }

    fn start_container(&mut self, slot: Slot) {
        let now = Stamp::now();
        let index = match slot {
            Slot::Init(i) => i,
            Slot::App(i) => self.pod.init_containers.len() + i,
        };
        let restart_count = self
            .lifecycle
            .get(slot)
            .map_or(0, restart::ContainerStateMachine::next_restart_count);
        let name = self.workloads[index].spec.name.clone();
        self.trace.record(&name, restart_count, Step::Deciding);
        match self.spawn(index, restart_count) {
            Ok(()) => {
                self.trace.record(&name, restart_count, Step::Spawned);
                // A container that restarted once is likely to again: its
                // next instance will wait, parked (never under
                // restartPolicy Never).
                if restart_count > 0 && self.pod.restart_policy != restart::RestartPolicy::Never {
                    self.workloads[index].park_at = Some(Instant::now() + PARK_DELAY);
                }
                // Ready once running, unless a readiness or startup probe
                // has to say so first.
                let spec = &self.workloads[index].spec;
                let gated = spec.readiness_probe.is_some() || spec.startup_probe.is_some();
                if let Some(c) = self.lifecycle.get_mut(slot) {
                    c.set_readiness_probe(gated);
                }
                let container_id = format!(
                    "supervisor://{}/{}/{}",
                    self.pod.name, self.workloads[index].spec.name, restart_count
                );
                if let Err(error) = self.lifecycle.handle(
                    slot,
                    Event::Started {
                        at: now,
                        container_id,
                    },
                ) {
                    eprintln!("supervisor: {error}");
                }
            }
            Err(error) => {
                self.trace.record(&name, restart_count, Step::Failed);
                let message = format!("{error:#}");
                eprintln!(
                    "supervisor: [{}] cannot run: {message}",
                    self.workloads[index].spec.name
                );
                if let Err(error) = self
                    .lifecycle
                    .handle(slot, Event::SpawnFailed { at: now, message })
                {
                    eprintln!("supervisor: {error}");
                }
            }
        }
    }

    /// Start one instance of container `index`: its parked instance when
    /// there is one for `restart_count`, else a new one.
    fn spawn(&mut self, index: usize, restart_count: u32) -> anyhow::Result<()> {
        let (Some(host), Some(pod_cgroup), Some(_), Some(_)) = (
            &self.cgroup_host,
            &self.pod_cgroup,
            &self.sandbox,
            &self.volumes,
        ) else {
            bail!("the pod sandbox is not running");
        };
        let w = &mut self.workloads[index];
        let name = w.spec.name.clone();
        if w.cgroup.is_none() {
            let cgroup = pod_cgroup.create_child(host, &format!("containers/{name}"))?;
            cgroup.apply(&resources(&w.spec.resources))?;
            w.cgroup = Some(cgroup);
        }
        let container_cgroup = w.cgroup.as_ref().expect("created above");
        let oom_kills_before = container_cgroup.oom_kills().unwrap_or(0);
        let now = SystemTime::now();
        match &mut w.log {
            Some(log) => log.restart(restart_count, now, &mut self.echo)?,
            None => {
                w.log = Some(ContainerLog::open(
                    &self.config.layout,
                    &self.pod.name,
                    &name,
                    restart_count,
                    self.config.log,
                )?)
            }
        }
        // A parked instance for another restart count is stale.
        if w.parked
            .as_ref()
            .is_some_and(|p| p.restart_count != restart_count)
        {
            self.discard_parked(index);
        }
        let (child, cgroup, env) = match self.workloads[index].parked.take() {
            Some(next) => match next.parked.start() {
                Ok(child) => (child, next.cgroup, next.env),
                Err(error) => {
                    eprintln!("supervisor: [{name}] parked instance: {error}: starting a new one");
                    self.retire(&name, next.cgroup);
                    self.spawn_new(index, restart_count)?
                }
            },
            None => self.spawn_new(index, restart_count)?,
        };
        let event_loop = self.event_loop.as_ref().expect("started");
        for (pipe, stream) in [(&child.stdout, STDOUT_TOKEN), (&child.stderr, STDERR_TOKEN)] {
            if let Some(file) = pipe {
                set_nonblocking(file)?;
                event_loop.watch(file.as_fd(), index as u64 * TOKENS_PER_CONTAINER + stream)?;
            }
        }
        let w = &mut self.workloads[index];
        w.process = Some(Process {
            pid: child.pid,
            pidfd: child.pidfd,
            cgroup,
            oom_kills_before,
            stdout: child.stdout,
            stderr: child.stderr,
            env,
            probes: Probes::new(&w.spec, Instant::now()),
            probe_kill: None,
        });
        Ok(())
    }

    /// Fork instance `restart_count` of container `index` in a fresh
    /// cgroup and run it to exec.
    fn spawn_new(
        &mut self,
        index: usize,
        restart_count: u32,
    ) -> anyhow::Result<(container::Child, Cgroup, Env)> {
        let mut plan = self.instance_command(index, restart_count)?;
        match plan.command.spawn() {
            Ok(child) => Ok((child, plan.cgroup, plan.env)),
            Err(error) => {
                let _ = plan.cgroup.remove(CGROUP_TIMEOUT);
                Err(error.into())
            }
        }
    }

    /// Park the next instance of every container whose time has come.
    fn park_due(&mut self, now: Instant) {
        for index in 0..self.workloads.len() {
            let w = &mut self.workloads[index];
            if w.park_at.is_none_or(|at| at > now) {
                continue;
            }
            w.park_at = None;
            if self.stopping.is_some() || w.parked.is_some() {
                continue;
            }
            if let Some(c) = self.lifecycle.get(w.slot)
                && w.process.is_some()
            {
                let next = c.restart_count() + 1;
                self.park_next(index, next);
            }
        }
    }

    /// Fork instance `restart_count` of container `index` now and park it.
    fn park_next(&mut self, index: usize, restart_count: u32) {
        let name = self.workloads[index].spec.name.clone();
        let parked = self
            .instance_command(index, restart_count)
            .and_then(|mut plan| match plan.command.park() {
                Ok(parked) => Ok(ParkedInstance {
                    restart_count,
                    cgroup: plan.cgroup,
                    parked,
                    env: plan.env,
                }),
                Err(error) => {
                    let _ = plan.cgroup.remove(CGROUP_TIMEOUT);
                    Err(error.into())
                }
            });
        match parked {
            Ok(parked) => self.workloads[index].parked = Some(parked),
            // Not fatal: the restart then starts a new instance.
            Err(error) => {
                eprintln!("supervisor: [{name}] cannot park the next instance: {error:#}")
            }
        }
    }

    /// The cgroup, environment and command of instance `restart_count`.
    fn instance_command(&self, index: usize, restart_count: u32) -> anyhow::Result<InstancePlan> {
        let (Some(host), Some(sandbox), Some(volumes)) =
            (&self.cgroup_host, &self.sandbox, &self.volumes)
        else {
            bail!("the pod sandbox is not running");
        };
        let w = &self.workloads[index];
        let Some(container_cgroup) = &w.cgroup else {
            bail!("container {} has no cgroup", w.spec.name);
        };
        let cgroup = container_cgroup.create_child(host, &restart_count.to_string())?;
        let ctx = PodContext {
            pod: &self.pod,
            sandbox,
            volumes,
            runtime: &self.runtime_values,
            state_dir: &self.state_dir,
            pod_files: &self.pod_files,
        };
        let env = workload::environment(&w.spec, &ctx);
        match workload::command(&w.spec, &ctx, &cgroup, &env) {
            Ok(command) => Ok(InstancePlan {
                cgroup,
                env,
                command,
            }),
            Err(error) => {
                let _ = cgroup.remove(CGROUP_TIMEOUT);
                Err(error.into())
            }
        }
    }

    /// An instance's cgroup is done with: `sweep_retired` kills what is
    /// left in it and removes it.
    fn retire(&mut self, container: &str, cgroup: Cgroup) {
        self.retired.push(Retired {
            container: container.to_owned(),
            cgroup,
            since: Instant::now(),
        });
    }

    /// Kill container `index`'s parked instance, if any (dropping it kills
    /// and reaps it); its cgroup goes with the retired ones.
    fn discard_parked(&mut self, index: usize) {
        if let Some(parked) = self.workloads[index].parked.take() {
            drop(parked.parked);
            let name = self.workloads[index].spec.name.clone();
            self.retire(&name, parked.cgroup);
        }
    }

    /// Kill every parked instance (the sandbox they would join is gone, or
    /// the pod stops).
    fn drop_parked(&mut self) {
        for index in 0..self.workloads.len() {
            self.discard_parked(index);
        }
    }

    /// Write the status file (when it changed) and tell systemd.
    fn publish_status(&mut self) {
        self.meta.pod_ips = self.runtime_values.pod_ips.clone();
        let Some(store) = &mut self.store else {
            return;
        };
        let record = status::build(&self.meta, &self.lifecycle, store.last(), SystemTime::now());
        if let Err(error) = store.write(&record) {
            eprintln!("supervisor: status: {error}");
        }
        let summary = crate::notify::summary(&self.lifecycle);
        let all_ready = !self.lifecycle.containers().is_empty()
            && self.lifecycle.containers().iter().all(|c| c.ready());
        if self.stopping.is_none() && all_ready {
            self.notifier.ready(&summary);
        }
        self.notifier.status(&summary);
    }

    /// Remove everything the pod made: processes, sandbox, volumes,
    /// cgroups. Safe to call whatever `start` got to.
    fn teardown(&mut self) {
        self.drop_parked();
        // Whatever still runs dies now (a failed start, or a finished pod's
        // leftovers); then reap so no zombie is left.
        for w in &self.workloads {
            if let Some(cgroup) = &w.cgroup
                && let Err(error) = cgroup.kill_all(CGROUP_TIMEOUT)
            {
                eprintln!("supervisor: [{}] {error}", w.spec.name);
            }
        }
        let _ = pid1::reap();
        for w in &mut self.workloads {
            if let Some(process) = w.process.take() {
                let _ = process.pidfd.wait();
            }
        }
        self.detach_network();
        if let Some(sandbox) = self.sandbox.take()
            && let Err(error) = sandbox.stop(PAUSE_GRACE)
        {
            eprintln!("supervisor: sandbox: {error}");
        }
        if let Some(mut volumes) = self.volumes.take() {
            for error in volumes.remove() {
                eprintln!("supervisor: {error}");
            }
        }
        for w in &mut self.workloads {
            w.cgroup = None;
        }
        self.pause_cgroup = None;
        if let (Some(host), Some(pod_cgroup)) = (&self.cgroup_host, self.pod_cgroup.take()) {
            for error in remove_cgroup_tree(host, &pod_cgroup) {
                eprintln!("supervisor: {error}");
            }
        }
        let _ = std::fs::remove_dir_all(self.state_dir.join("rootfs"));
        self.publish_status();
        let _ = pid1::reap();
    }
}

/// Kill and remove a cgroup and every cgroup beneath it, deepest first, in
/// every hierarchy (on cgroup v1 each level holds its own processes).
fn remove_cgroup_tree(host: &CgroupHost, top: &Cgroup) -> Vec<container::CgroupError> {
    fn below(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let rel = rel.join(entry.file_name());
                below(&entry.path(), &rel, out);
                out.push(rel);
            }
        }
    }
    let mut children = Vec::new();
    for dir in top.dirs() {
        below(&dir, Path::new(""), &mut children);
    }
    // Deepest first; the same child appears once per hierarchy.
    children.sort_by_key(|rel| std::cmp::Reverse(rel.components().count()));
    children.dedup();
    let mut errors = Vec::new();
    for cgroup in children
        .iter()
        .filter_map(|rel| Cgroup::open(host, top.name().join(rel)).ok())
        .chain([top.clone()])
    {
        if let Err(error) = cgroup
            .kill_all(CGROUP_TIMEOUT)
            .and_then(|()| cgroup.remove(CGROUP_TIMEOUT))
        {
            errors.push(error);
        }
    }
    errors
}

/// Read what is left in the pipes of an ended instance (every process of it
/// is dead, so this ends at EOF), and close them.
fn drain_output(
    w: &mut Workload,
    mut process: Process,
    now: SystemTime,
    echo: &mut Echo,
    event_loop: Option<&EventLoop>,
) {
    for (pipe, stream) in [
        (process.stdout.take(), Stream::Stdout),
        (process.stderr.take(), Stream::Stderr),
    ] {
        let Some(mut file) = pipe else { continue };
        if let Some(event_loop) = event_loop {
            let _ = event_loop.unwatch(file.as_fd());
        }
        let mut buf = [0u8; 64 * 1024];
        while let Ok(n) = file.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Some(log) = &mut w.log {
                let _ = log.feed(stream, &buf[..n], now, echo);
            }
        }
        if let Some(log) = &mut w.log {
            let _ = log.finish(stream, now, echo);
        }
    }
}

fn set_nonblocking(file: &File) -> std::io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = fcntl(file, FcntlArg::F_GETFL)?;
    fcntl(
        file,
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )?;
    Ok(())
}

fn resources(r: &spec::Resources) -> container::Limits {
    container::Limits {
        memory_limit_bytes: r.memory_limit,
        cpu_limit_millis: r.cpu_limit_millis,
        cpu_request_millis: r.cpu_request_millis,
        pids_limit: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unified_cgroup_is_read_from_proc_self_cgroup() {
        assert_eq!(
            own_unified_cgroup("0::/system.slice/supervisor@web.service\n"),
            Some(PathBuf::from("system.slice/supervisor@web.service"))
        );
        assert_eq!(
            own_unified_cgroup("4:memory:/x\n0::/\n"),
            Some(PathBuf::new())
        );
        assert_eq!(own_unified_cgroup("4:memory:/x\n"), None);
    }
}
