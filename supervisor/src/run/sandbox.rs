//! The pod's sandbox: what every container of the pod joins or shares. The
//! pod's cgroup (and pause's beneath it), the volumes, pause in fresh
//! namespaces, the CNI attachment and the pod's /etc files, made in that
//! order, made again when pause dies, and removed at teardown; also the
//! clean-up of what a previous run of the pod left after a crash.
//!
//! It owns no container: those are `supervised`'s, and their start order
//! is the restart state machine's.

use crate::confinement::ConfinementOptions;
use crate::host;
use crate::logs::LogConfig;
use crate::network::{self, CniPaths, PodNetwork};
use crate::paths::{self, Layout, PodId};
use crate::reclaim::{self, RunRecord};
use crate::spec::{PodSpec, RuntimeValues};
use crate::supervised::{CGROUP_TIMEOUT, PodContext};
use crate::volumes::{PodVolumes, VolumeError, VolumeHost};
use container::rootfs::BindMount;
use container::{Cgroup, CgroupError, CgroupHost, Limits, Sandbox, SandboxConfig};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long pause gets to exit on SIGTERM at teardown.
const PAUSE_GRACE: Duration = Duration::from_secs(2);

/// Why the sandbox could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Host(#[from] host::HostError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Volume(#[from] VolumeError),
    #[error(transparent)]
    Pause(#[from] container::SandboxError),
    #[error(transparent)]
    Cni(#[from] crate::cni::CniError),
    #[error(transparent)]
    RunRecord(#[from] reclaim::RecordError),
    #[error("write the pod's /etc/hosts, /etc/resolv.conf and /etc/hostname in {}", dir.display())]
    PodFiles {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// The pod's sandbox, as far as it has been made.
pub(super) struct PodSandbox {
    /// `<namespace>_<name>`: the /run/netns file and the cgroup of the pod.
    name: String,
    id: PodId,
    state_dir: PathBuf,
    /// Whether this run wrote its run record (removed by a clean teardown).
    recorded: bool,
    cgroup_host: Option<CgroupHost>,
    pod_cgroup: Option<Cgroup>,
    pause_cgroup: Option<Cgroup>,
    volumes: Option<PodVolumes>,
    pause: Option<Sandbox>,
    network: Option<PodNetwork>,
    /// /etc/hosts, /etc/resolv.conf, /etc/hostname of the pod.
    pod_files: Vec<BindMount>,
    /// The node name and, once attached, the pod's IPs.
    pub runtime_values: RuntimeValues,
}

impl PodSandbox {
    pub fn new(id: &PodId, state_dir: PathBuf) -> PodSandbox {
        let node = host::node_allocatable(&state_dir);
        PodSandbox {
            name: id.key(),
            id: id.clone(),
            state_dir,
            recorded: false,
            cgroup_host: None,
            pod_cgroup: None,
            pause_cgroup: None,
            volumes: None,
            pause: None,
            network: None,
            pod_files: Vec::new(),
            runtime_values: RuntimeValues {
                node_name: nix::unistd::gethostname()
                    .map(|h| h.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                node,
                ..RuntimeValues::default()
            },
        }
    }

    /// The pod's cgroups (under `cgroup_parent`, else as `host` decides)
    /// and volumes, after cleaning up what a crashed previous run left and
    /// writing this run's record (what a reclaim needs if this process
    /// dies). The caller holds the pod's lock. Pause comes next, with
    /// `start_pause`.
    pub fn prepare(
        &mut self,
        pod: &PodSpec,
        cgroup_parent: Option<&Path>,
        cni: &CniPaths,
        claims_root: &Path,
    ) -> Result<(), SandboxError> {
        let host = CgroupHost::detect()?;
        let cgroup_parent = host::cgroup_parent(cgroup_parent, &host)?;
        self.clean_up_after_a_crash(&cgroup_parent, cni);
        RunRecord::new(&cgroup_parent, cni).write(&self.run_record_path())?;
        self.recorded = true;
        let pod_cgroup = Cgroup::create(&host, cgroup_parent.join(&self.name))?;
        self.pause_cgroup = Some(pod_cgroup.create_child(&host, "pause")?);
        self.pod_cgroup = Some(pod_cgroup);
        self.cgroup_host = Some(host);
        let volumes_dir = self.state_dir.join("volumes");
        let volume_host = VolumeHost {
            claims_root: claims_root.to_path_buf(),
            node: self.runtime_values.node,
        };
        self.volumes = Some(PodVolumes::prepare(pod, &volumes_dir, &volume_host)?);
        Ok(())
    }

    /// Start pause in fresh namespaces (in its cgroup), as 65535:65535
    /// without capabilities, under the pod's pids limit (None: unlimited).
    /// The network comes next, with `attach_network`.
    pub fn start_pause(
        &mut self,
        pod: &PodSpec,
        pause: &Path,
        pids_limit: Option<u64>,
    ) -> Result<(), SandboxError> {
        // kubelet's podPidsLimit is the pids.max of the pod's cgroup, which
        // holds the sandbox and every container (pkg/kubelet/cm/
        // pod_container_manager_linux.go, ResourceConfig.PidsLimit):
        // written before the first process of the pod, pause, starts.
        if let (Some(limit), Some(pod_cgroup)) = (pids_limit, &self.pod_cgroup) {
            pod_cgroup.apply(&Limits {
                pids_limit: Some(limit),
                ..Limits::default()
            })?;
        }
        // SandboxConfig's credentials are pause's own (65535:65535, no
        // capability, no_new_privs), as the upstream pause image runs.
        let mut config = SandboxConfig::new(self.name.clone(), pause);
        // With the host's network the UTS name stays the host's too, as
        // Kubernetes does it.
        config.hostname = Some(if pod.host_network {
            self.runtime_values.node_name.clone()
        } else {
            pod.hostname.clone()
        });
        config.host_network = pod.host_network;
        // pause is PID 1 of the sandbox's own PID namespace, as under kubelet;
        // containers join it only with shareProcessNamespace.
        config.pid_namespace = true;
        config.publish_netns = !pod.host_network;
        config.cgroup = self.pause_cgroup.clone();
        // Killed with the supervisor, like the containers; what a killed
        // supervisor leaves (address, netns file, cgroups) the next run of
        // the pod cleans up.
        config.die_with_parent = true;
        self.pause = Some(Sandbox::start(&config)?);
        Ok(())
    }

    /// CNI ADD for pause's netns; then the pod's /etc files.
    pub fn attach_network(&mut self, pod: &PodSpec, cni: &CniPaths) -> Result<(), SandboxError> {
        let mut dns = None;
        if let Some(netns) = self.netns_path() {
            match PodNetwork::load(cni)? {
                Some(network) => {
                    let (attached, result) = PodNetwork::attach(network, pod, &self.name, &netns)?;
                    let ips = result.pod_ips();
                    eprintln!(
                        "supervisor: pod {} has IP {} ({})",
                        self.id,
                        ips.iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                        attached.describe()
                    );
                    self.runtime_values.pod_ips = ips.iter().map(ToString::to_string).collect();
                    for p in &pod.service_ports {
                        eprintln!(
                            "supervisor: service {} ({}): host port {}/{} to the pod's port {}",
                            p.service,
                            p.service_type,
                            p.host_port,
                            p.protocol.as_str(),
                            p.container_port
                        );
                    }
                    dns = Some(result.dns.clone());
                    self.network = Some(attached);
                }
                None => {
                    eprintln!(
                        "supervisor: no CNI configuration in {}: the sandbox has loopback only",
                        cni.conf_dir.display()
                    );
                    if let Some(p) = pod.service_ports.first() {
                        eprintln!(
                            "supervisor: warning: without a CNI network (and its portmap plugin) the ports of service {} are not published",
                            p.service
                        );
                    }
                }
            }
        }
        if !pod.host_network {
            let ips: Vec<std::net::IpAddr> = self
                .runtime_values
                .pod_ips
                .iter()
                .filter_map(|ip| ip.parse().ok())
                .collect();
            let dir = self.state_dir.join("etc");
            self.pod_files = network::write_pod_files(pod, &ips, dns.as_ref(), &dir)
                .map_err(|source| SandboxError::PodFiles { dir, source })?;
        }
        Ok(())
    }

    /// CNI DEL: the address goes back to the pool.
    pub fn detach_network(&mut self) {
        if let Some(network) = self.network.take()
            && let Err(error) = network.detach()
        {
            eprintln!("supervisor: CNI DEL: {error}");
        }
        self.runtime_values.pod_ips.clear();
    }

    /// pause died: let go of it. Dropping the handle removes the netns
    /// file; its kill goes through the pidfd, which cannot hit a reused pid.
    pub fn forget_pause(&mut self) {
        drop(self.pause.take());
    }

    /// The pid of pause, while it runs.
    pub fn pause_pid(&self) -> Option<i32> {
        self.pause.as_ref().map(Sandbox::pid)
    }

    /// The pod's network namespace file; None with the host's network.
    pub fn netns_path(&self) -> Option<PathBuf> {
        self.pause.as_ref().and_then(Sandbox::netns_path)
    }

    /// The pod's first IP, once attached.
    pub fn pod_ip(&self) -> Option<std::net::IpAddr> {
        self.runtime_values
            .pod_ips
            .first()
            .and_then(|ip| ip.parse().ok())
    }

    /// What the containers get from the pod; None unless pause runs.
    pub fn context<'a>(
        &'a self,
        pod: &'a PodSpec,
        layout: &'a Layout,
        log: LogConfig,
        confinement: &'a ConfinementOptions,
    ) -> Option<PodContext<'a>> {
        Some(PodContext {
            pod,
            sandbox: self.pause.as_ref()?,
            volumes: self.volumes.as_ref()?,
            runtime: &self.runtime_values,
            state_dir: &self.state_dir,
            pod_files: &self.pod_files,
            cgroup_host: self.cgroup_host.as_ref()?,
            pod_cgroup: self.pod_cgroup.as_ref()?,
            layout,
            log,
            confinement,
        })
    }

    /// A previous run of this pod was killed before its teardown: release
    /// its address, kill what is left in its cgroups, unmount its volumes
    /// (`reclaim::clean_up`), where that run made them (its record) and
    /// where this one will. Runs with the pod's lock held, so what it
    /// touches is no live supervisor's.
    fn clean_up_after_a_crash(&self, cgroup_parent: &Path, cni: &CniPaths) {
        let current = RunRecord::new(cgroup_parent, cni);
        let previous = RunRecord::read(&self.run_record_path());
        if let Some(previous) = &previous {
            eprintln!(
                "supervisor: pod {}: cleaning up after the previous run (supervisor pid {}, gone without its teardown)",
                self.id, previous.pid
            );
        }
        let mut records = previous.into_iter().collect::<Vec<_>>();
        if records.iter().all(|r| {
            r.cgroup_parent != current.cgroup_parent || r.cni_cache_dir != current.cni_cache_dir
        }) {
            records.push(current);
        }
        for record in &records {
            for problem in reclaim::clean_up(&self.id, &self.state_dir, record) {
                eprintln!("supervisor: cleaning up a previous run: {problem}");
            }
        }
    }

    fn run_record_path(&self) -> PathBuf {
        self.state_dir.join(paths::RUN_RECORD_FILE)
    }

    /// Remove the sandbox: network, pause, volumes, the pod's cgroup tree,
    /// the containers' rootfs staging. The containers are gone already.
    /// Safe to call whatever `prepare` got to.
    pub fn teardown(&mut self) {
        let mut clean = true;
        if let Some(network) = self.network.take()
            && let Err(error) = network.detach()
        {
            eprintln!("supervisor: CNI DEL: {error}");
            clean = false;
        }
        self.runtime_values.pod_ips.clear();
        if let Some(pause) = self.pause.take()
            && let Err(error) = pause.stop(PAUSE_GRACE)
        {
            eprintln!("supervisor: sandbox: {error}");
        }
        if let Some(mut volumes) = self.volumes.take() {
            for error in volumes.remove() {
                eprintln!("supervisor: {error}");
                clean = false;
            }
        }
        self.pause_cgroup = None;
        if let Some(pod_cgroup) = self.pod_cgroup.take() {
            for error in pod_cgroup.remove_tree(CGROUP_TIMEOUT) {
                eprintln!("supervisor: {error}");
                clean = false;
            }
        }
        let _ = std::fs::remove_dir_all(self.state_dir.join("rootfs"));
        // Nothing left outside the state dir: no reclaim is needed. What
        // could not be removed keeps the record, for `supervisor status`
        // (or the next run) to try again.
        if self.recorded && clean {
            let _ = std::fs::remove_file(self.run_record_path());
            self.recorded = false;
        }
    }
}
