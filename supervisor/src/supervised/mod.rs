//! One container of the pod across its instances: its cgroup (which holds
//! the limits), its log, the instance that runs, the next one parked ahead
//! of time, and the ended instances' cgroups still to remove.
//!
//! [`SupervisedContainer`] starts an instance (the parked one when there is
//! one), runs its postStart hook, parks the next, ends an instance from its
//! reaped status (probes and hooks cancelled, output drained, cgroup
//! retired), and stops one (`stop`: preStop, stop signal, SIGKILL). It
//! decides nothing: when to start, restart or stop is the restart state
//! machine's and the pod loop's (`run`), which owns the event loop's tokens.

mod command;
mod instance;
mod retired;
pub mod stdio;
mod stop;

pub use command::CommandError;
pub use stop::{HookContext, HookDone, MINIMUM_GRACE, StopError, StopNote};

use crate::event_loop::EventLoopError;
use crate::exec::record::InstanceRecord;
use crate::hook::{HookKind, RunningHook};
use crate::images::ResolvedImage;
use crate::logs::{ContainerLog, Echo, LogConfig, LogError, Stream};
use crate::paths::Layout;
use crate::probe::{ExecIdentity, Outcome, ProbeIo};
use crate::restart::{Slot, Termination};
use crate::spec::{self, PodSpec, RuntimeValues};
use crate::volumes::PodVolumes;
use container::rootfs::BindMount;
use container::{Cgroup, CgroupError, CgroupHost, CgroupMode, Sandbox, SpawnError};
use instance::{Env, Instance, InstancePlan, ParkedInstance};
use retired::RetiredCgroups;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

/// Records what `supervisor exec` needs to run a command in the instance
/// just started, with its rights (`exec::record`); the record's path.
/// Not fatal when it fails: the container runs, and an exec into it says
/// it cannot find it.
fn write_exec_record(
    ctx: &PodContext<'_>,
    name: &str,
    restart_count: u32,
    child: &container::Child,
    cgroup: &Cgroup,
    env: &[(String, String)],
    identity: &ExecIdentity,
) -> Option<PathBuf> {
    let written = InstanceRecord::new(name, restart_count, child.pid, cgroup.name(), env, identity)
        .map_err(|e| e.to_string())
        .and_then(|record| record.write(ctx.state_dir).map_err(|e| e.to_string()));
    match written {
        Ok(path) => Some(path),
        Err(error) => {
            eprintln!("supervisor: [{name}] cannot record it for exec: {error}");
            None
        }
    }
}

/// How long the cgroup kill and removal may take before giving up.
pub const CGROUP_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an instance of a container that restarted runs before its
/// successor is parked. The parked successor is set up completely and
/// waits right before exec, so its restart costs one write and the exec:
/// measured with bench/restart.sh (one loaded run, 2026-12-02), parking at
/// once took the crash loop's median from 24.4 to 9.8 ms and "after 1.2 s"
/// from 5.0 to 2.6 ms against parking 20 ms in (which a crash loop never
/// reached). The set-up runs in the child, beside the running instance.
const PARK_DELAY: Duration = Duration::from_millis(0);

/// An instance that lived less than this, restarted without back-off, is
/// in a tight crash loop: preparing its successor at once would compete
/// for the CPU with the instance and its restart, and the successor would
/// not be ready in time anyway (its set-up takes 3 to 20 ms on cgroup v1,
/// most of it the RCU grace period of the migration). The successor is
/// then parked only once the running instance has lived this long, so an
/// instance that crashes at once is followed by one spawned at its exit.
const CRASH_LOOP_LIFETIME: Duration = Duration::from_millis(20);

/// A started instance: its process, cgroup, environment, rights and pty
/// master (when it has a terminal).
type Spawned = (
    container::Child,
    Cgroup,
    Env,
    ExecIdentity,
    Option<stdio::TerminalMaster>,
);

/// An instance that ended, between [`SupervisedContainer::end_instance`]
/// and [`SupervisedContainer::finish_instance`].
pub struct Ended {
    instance: Instance,
    termination: Termination,
}

impl Ended {
    /// How it terminated.
    pub fn termination(&self) -> &Termination {
        &self.termination
    }
}

/// Why an instance could not be started or parked.
#[derive(Debug, thiserror::Error)]
pub enum SupervisedError {
    #[error("the pod sandbox is not running")]
    SandboxNotRunning,
    #[error("container {container} has no cgroup")]
    NoCgroup { container: String },
    #[error("container {container}: its image is not ready")]
    NoImage { container: String },
    #[error("container {container}: make its output pipe non-blocking")]
    NonBlocking {
        container: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error(transparent)]
    Watch(#[from] EventLoopError),
}

/// What the pod gives every container while its sandbox runs.
pub struct PodContext<'a> {
    pub pod: &'a PodSpec,
    pub sandbox: &'a Sandbox,
    pub volumes: &'a PodVolumes,
    pub runtime: &'a RuntimeValues,
    /// The pod's state dir; each container stages its rootfs in it.
    pub state_dir: &'a Path,
    /// Files the pod mounts into every container (/etc/hosts, ...).
    pub pod_files: &'a [BindMount],
    pub cgroup_host: &'a CgroupHost,
    /// The pod's cgroup, parent of the containers' ones.
    pub pod_cgroup: &'a Cgroup,
    /// Where the containers' logs go, and how they rotate.
    pub layout: &'a Layout,
    pub log: LogConfig,
    /// Seccomp and AppArmor flags.
    pub confinement: &'a crate::confinement::ConfinementOptions,
}

/// How a container's fds get into the pod's event loop, which owns the
/// tokens: its log pipes here, its probe sockets through [`ProbeIo`].
pub trait FdWatch: ProbeIo {
    /// Watch an output pipe of the running instance.
    fn watch_output(&mut self, fd: BorrowedFd<'_>, stream: Stream) -> Result<(), EventLoopError>;
}

/// One container of the pod, across its instances.
pub struct SupervisedContainer {
    slot: Slot,
    spec: spec::Container,
    /// The image its instances start from (set before each start).
    image: Option<Rc<ResolvedImage>>,
    /// The container's cgroup, made at its first start; each instance gets
    /// a fresh one beneath it.
    cgroup: Option<Cgroup>,
    /// The next instance, forked ahead of time (see `park_next`).
    parked: Option<Box<ParkedInstance>>,
    /// When to park the next instance.
    park_at: Option<Instant>,
    /// When to arm the parked instance (see `arm_parked_from`).
    arm_at: Option<Instant>,
    /// How long the last instance ran, and the back-off before the
    /// restart after it: they say whether it is in a tight crash loop.
    last_run: Option<(Duration, Duration)>,
    /// The mount namespace of the instance that ended last, held until
    /// its successor runs: see [`Instance::mount_ns`].
    ended_mount_ns: Option<std::fs::File>,
    /// The container cgroup's OOM-kill counter when the last instance
    /// ended.
    oom_kills_at_end: Option<u64>,
    /// The container cgroup's OOM-kill counter file, open.
    oom_counter: Option<container::OomCounter>,
    instance: Option<Instance>,
    log: Option<ContainerLog>,
    retired: RetiredCgroups,
    /// The running instance's exec record (`exec::record`), removed when
    /// it ends.
    exec_record: Option<PathBuf>,
}

impl SupervisedContainer {
    pub fn new(slot: Slot, spec: spec::Container) -> SupervisedContainer {
        SupervisedContainer {
            slot,
            spec,
            image: None,
            cgroup: None,
            parked: None,
            park_at: None,
            arm_at: None,
            last_run: None,
            ended_mount_ns: None,
            oom_kills_at_end: None,
            oom_counter: None,
            instance: None,
            log: None,
            retired: RetiredCgroups::default(),
            exec_record: None,
        }
    }

    /// Its place in the pod (init container or container, and index).
    pub fn slot(&self) -> Slot {
        self.slot
    }

    pub fn spec(&self) -> &spec::Container {
        &self.spec
    }

    /// The image the next instances start from; a parked instance of
    /// another image is discarded.
    pub fn set_image(&mut self, image: Rc<ResolvedImage>) {
        let same = self.image.as_ref().is_some_and(|i| Rc::ptr_eq(i, &image));
        if !same {
            self.discard_parked();
        }
        self.image = Some(image);
    }

    /// The image of the running (or last) instance.
    pub fn image(&self) -> Option<&ResolvedImage> {
        self.image.as_deref()
    }

    /// The pid of the running instance.
    pub fn running_pid(&self) -> Option<i32> {
        self.instance.as_ref().map(|i| i.pid)
    }

    pub fn is_running(&self) -> bool {
        self.instance.is_some()
    }

    /// Start instance `restart_count`: its parked instance when there is
    /// one for that count, else a new one; its pipes go into the loop.
    pub fn start(
        &mut self,
        ctx: Option<&PodContext<'_>>,
        restart_count: u32,
        echo: &mut Echo,
        fds: &mut impl FdWatch,
    ) -> Result<(), SupervisedError> {
        let ctx = ctx.ok_or(SupervisedError::SandboxNotRunning)?;
        let name = self.spec.name.clone();
        if self.cgroup.is_none() {
            let cgroup = ctx
                .pod_cgroup
                .create_child(ctx.cgroup_host, &format!("containers/{name}"))?;
            cgroup.apply(&self.spec.resources.limits)?;
            // Before any instance cgroup exists beneath: they inherit it.
            cgroup.restrict_devices()?;
            self.oom_counter = cgroup.oom_counter().ok();
            self.cgroup = Some(cgroup);
        }
        let container_cgroup = self.cgroup.as_ref().expect("created above");
        let oom_kills_before = match (self.oom_kills_at_end.take(), &self.oom_counter) {
            (Some(count), _) => count,
            (None, Some(counter)) => counter.read().unwrap_or(0),
            (None, None) => container_cgroup.oom_kills().unwrap_or(0),
        };
        // A parked instance for another restart count is stale.
        if self
            .parked
            .as_ref()
            .is_some_and(|p| p.restart_count != restart_count)
        {
            self.discard_parked();
        }
        // The parked instance goes on to exec first: its log and the rest
        // are made while it does (its output waits in its pipes).
        if let Some(next) = &mut self.parked
            && let Err(error) = next.parked.release()
        {
            eprintln!("supervisor: [{name}] parked instance: {error}: starting a new one");
            let next = self.parked.take().expect("parked");
            self.retired.retire(next.cgroup);
        }
        let now = SystemTime::now();
        match &mut self.log {
            Some(log) => log.restart(restart_count, now, echo)?,
            None => {
                let pod = crate::paths::PodId::new(&ctx.pod.namespace, &ctx.pod.name)
                    .map_err(LogError::from)?;
                self.log = Some(ContainerLog::open(
                    ctx.layout,
                    &pod,
                    &name,
                    restart_count,
                    ctx.log,
                )?)
            }
        }
        let (mut child, cgroup, env, identity, terminal) = match self.parked.take() {
            Some(next) => match next.parked.start() {
                Ok(child) => (child, next.cgroup, next.env, next.identity, None),
                Err(error) => {
                    eprintln!("supervisor: [{name}] parked instance: {error}: starting a new one");
                    self.retired.retire(next.cgroup);
                    self.spawn_new(ctx, restart_count)?
                }
            },
            None => self.spawn_new(ctx, restart_count)?,
        };
        let stdio =
            stdio::InstanceStdio::of(&self.spec, &mut child, terminal).map_err(|source| {
                SupervisedError::NonBlocking {
                    container: name.clone(),
                    source,
                }
            })?;
        for (pipe, stream) in [
            (&stdio.stdout, Stream::Stdout),
            (&stdio.stderr, Stream::Stderr),
        ] {
            if let Some(file) = pipe {
                instance::set_nonblocking(file).map_err(|source| SupervisedError::NonBlocking {
                    container: name.clone(),
                    source,
                })?;
                fds.watch_output(std::os::fd::AsFd::as_fd(file), stream)?;
            }
        }
        self.exec_record =
            write_exec_record(ctx, &name, restart_count, &child, &cgroup, &env, &identity);
        self.instance = Some(Instance::new(
            child,
            stdio,
            cgroup,
            oom_kills_before,
            env,
            &self.spec,
            identity,
        ));
        Ok(())
    }

    /// Fork instance `restart_count` in a fresh cgroup and run it to exec.
    fn spawn_new(
        &self,
        ctx: &PodContext<'_>,
        restart_count: u32,
    ) -> Result<Spawned, SupervisedError> {
        let mut plan = self.plan(ctx, restart_count)?;
        let identity = plan.identity();
        match plan.command.spawn() {
            Ok(child) => Ok((child, plan.cgroup, plan.env, identity, plan.terminal)),
            Err(error) => {
                let _ = plan.cgroup.remove(CGROUP_TIMEOUT);
                Err(error.into())
            }
        }
    }

    /// Park the next instance [`PARK_DELAY`] from now (see `park_next`),
    /// or, in a tight crash loop, once the running instance has lived
    /// [`CRASH_LOOP_LIFETIME`].
    pub fn schedule_park(&mut self) {
        let tight = self.last_run.is_some_and(|(lived, backoff)| {
            lived < CRASH_LOOP_LIFETIME && backoff < CRASH_LOOP_LIFETIME
        });
        let delay = if tight {
            CRASH_LOOP_LIFETIME
        } else {
            PARK_DELAY
        };
        self.park_at = Some(Instant::now() + delay);
    }

    /// The back-off before the restart of the instance that ended last
    /// (see `schedule_park`).
    pub fn note_backoff(&mut self, backoff: Duration) {
        if let Some((_, last)) = &mut self.last_run {
            *last = backoff;
        }
    }

    /// When the next instance is to be parked.
    pub fn park_at(&self) -> Option<Instant> {
        self.park_at
    }

    /// Whether parking the next instance is due at `now` and still useful
    /// (none parked yet, an instance runs); it is no longer scheduled
    /// either way once due.
    pub fn take_park_due(&mut self, now: Instant) -> bool {
        if self.park_at.is_none_or(|at| at > now) {
            return false;
        }
        self.park_at = None;
        self.parked.is_none() && self.instance.is_some()
    }

    /// A container's next instance, forked while the current one runs and
    /// parked in its own fresh cgroup: its restart then costs no cgroup
    /// creation and, on cgroup v1, no migration into the cgroup (a write to
    /// cgroup.procs waits for an RCU grace period: 5 to 30 ms, measured).
    /// Only containers that have restarted once get one, so a pod of steady
    /// containers has no extra process.
    pub fn park_next(&mut self, ctx: Option<&PodContext<'_>>, restart_count: u32) {
        // A terminal or an input is the instance's own from its start, for
        // the clients attached then: such a container is not parked.
        if self.spec.tty || self.spec.stdin {
            return;
        }
        let parked = ctx
            .ok_or(SupervisedError::SandboxNotRunning)
            .and_then(|ctx| self.plan(ctx, restart_count))
            .and_then(|mut plan| {
                // After the running instance: it can be armed to go on at
                // that one's exit (`arm_parked_from`).
                let running = self.instance.as_ref().map(|i| &i.pidfd);
                match plan.command.park_after(running) {
                    Ok(parked) => Ok(ParkedInstance {
                        identity: plan.identity(),
                        restart_count,
                        cgroup: plan.cgroup,
                        parked,
                        env: plan.env,
                    }),
                    Err(error) => {
                        let _ = plan.cgroup.remove(CGROUP_TIMEOUT);
                        Err(error.into())
                    }
                }
            });
        match parked {
            Ok(parked) => self.parked = Some(Box::new(parked)),
            // Not fatal: the restart then starts a new instance.
            Err(error) => eprintln!(
                "supervisor: [{}] cannot park the next instance: {}",
                self.spec.name,
                error_chain(&error)
            ),
        }
    }

    /// Arm the parked instance from `at` on (now, or once the running
    /// instance has lived long enough for its back-off to be forgotten):
    /// it then goes on to exec by itself at the running instance's exit,
    /// which the caller still reaps and decides on as before
    /// (`release_parked` then does nothing). Only for an exit that is
    /// restarted at once whatever it is
    /// (`ContainerStateMachine::restarts_at_once_from`); everything that
    /// would not restart it throws the parked instance away first.
    pub fn arm_parked_from(&mut self, at: Instant) {
        if self.parked.as_ref().is_some_and(|p| p.parked.can_arm()) {
            self.arm_at = Some(at);
        }
    }

    /// When the parked instance is to be armed.
    pub fn arm_at(&self) -> Option<Instant> {
        self.arm_at
    }

    /// Arm the parked instance if its time has come (see `arm_parked_from`).
    pub fn arm_due(&mut self, now: Instant) {
        if self.arm_at.is_none_or(|at| at > now) {
            return;
        }
        self.arm_at = None;
        let Some(next) = self.parked.as_mut().filter(|_| self.instance.is_some()) else {
            return;
        };
        if let Err(error) = next.parked.arm() {
            eprintln!(
                "supervisor: [{}] parked instance: {error}: starting a new one at the restart",
                self.spec.name
            );
            self.discard_parked();
        }
    }

    /// The cgroup, environment and command of instance `restart_count`.
    fn plan(
        &self,
        ctx: &PodContext<'_>,
        restart_count: u32,
    ) -> Result<InstancePlan, SupervisedError> {
        let Some(container_cgroup) = &self.cgroup else {
            return Err(SupervisedError::NoCgroup {
                container: self.spec.name.clone(),
            });
        };
        let Some(image) = &self.image else {
            return Err(SupervisedError::NoImage {
                container: self.spec.name.clone(),
            });
        };
        let cgroup = container_cgroup.create_child(ctx.cgroup_host, &restart_count.to_string())?;
        // On pure cgroup v2 the instance's cgroup is the root of the
        // container's private cgroup namespace, all it sees at
        // /sys/fs/cgroup: its limit files must say what it may use, as with
        // containerd, whose container cgroup holds the limits (a JVM or Go
        // runtime sizes itself from memory.max and cpu.max there). The
        // container's cgroup above keeps them too: it bounds an ending
        // instance and the next one together.
        if ctx.cgroup_host.mode() == CgroupMode::Unified
            && let Err(error) = cgroup.apply(&self.spec.resources.limits)
        {
            let _ = cgroup.remove(CGROUP_TIMEOUT);
            return Err(error.into());
        }
        let env = command::environment(&self.spec, image, ctx);
        let planned = command::command(&self.spec, image, ctx, &cgroup, &env).and_then(
            |(mut command, confinement)| {
                let terminal = stdio::configure(&self.spec, &mut command)?;
                Ok((command, confinement, terminal))
            },
        );
        match planned {
            Ok((command, confinement, terminal)) => {
                if restart_count == 0 {
                    for note in &confinement.notes {
                        eprintln!("supervisor: [{}] warning: {note}", self.spec.name);
                    }
                }
                Ok(InstancePlan {
                    cgroup,
                    env,
                    command,
                    terminal,
                    confinement,
                })
            }
            Err(error) => {
                let _ = cgroup.remove(CGROUP_TIMEOUT);
                Err(error.into())
            }
        }
    }

    /// Kill the parked instance, if any (dropping it kills and reaps it);
    /// its cgroup goes with the retired ones.
    pub fn discard_parked(&mut self) {
        self.arm_at = None;
        if let Some(parked) = self.parked.take() {
            drop(parked.parked);
            self.retired.retire(parked.cgroup);
        }
    }

    /// The running instance was reaped with `exit`: how it terminated
    /// (OOM-killed or not, the message of its stop), its probes and hooks
    /// cancelled. Only what the restart decision needs: the rest is
    /// [`SupervisedContainer::finish_instance`], after the successor may
    /// have been let go ([`SupervisedContainer::release_parked`]). Call
    /// only while an instance runs.
    pub fn end_instance(&mut self, exit: container::ExitStatus, fds: &mut impl FdWatch) -> Ended {
        self.park_at = None;
        self.arm_at = None;
        let mut instance = self.instance.take().expect("matched a running instance");
        instance.probes.cancel(fds);
        instance.cancel_hooks(fds);
        let (oom_killed, oom_kills) = instance.oom_killed(self.oom_counter.as_ref());
        // Nothing of the container runs until its successor: the count now
        // is the successor's starting point.
        self.oom_kills_at_end = oom_kills;
        self.last_run = Some((instance.started.elapsed(), Duration::ZERO));
        // Its mounts go when the successor runs (`sweep_retired`), not on
        // the way to its exit status.
        self.ended_mount_ns = instance.mount_ns.take();
        let mut termination = Termination::classify(exit, oom_killed);
        if let Some(message) = instance.stop.take().and_then(|s| s.message) {
            termination.message = Some(message);
        }
        Ended {
            instance,
            termination,
        }
    }

    /// Let the parked instance for `restart_count` go on to exec now, the
    /// restart being decided and due: its start
    /// ([`SupervisedContainer::start`]) then finds it running. One that
    /// exited meanwhile is dropped (the start spawns a new one).
    pub fn release_parked(&mut self, restart_count: u32) {
        let Some(next) = self
            .parked
            .as_mut()
            .filter(|p| p.restart_count == restart_count)
        else {
            return;
        };
        if let Err(error) = next.parked.release() {
            eprintln!(
                "supervisor: [{}] parked instance: {error}: starting a new one",
                self.spec.name
            );
            let next = self.parked.take().expect("parked");
            self.retired.retire(next.cgroup);
        }
    }

    /// The rest of an instance's end ([`SupervisedContainer::end_instance`]):
    /// drain its output into its log (and `tap`: attached clients), retire
    /// its cgroup (nothing of it may outlive it: processes it left in a
    /// shared PID namespace, or the rest of its own; killed and removed by
    /// `sweep_retired`, after the restart). Returns how it terminated.
    pub fn finish_instance(
        &mut self,
        ended: Ended,
        now: SystemTime,
        echo: &mut Echo,
        fds: &mut impl FdWatch,
        tap: &mut dyn FnMut(Stream, &[u8]),
    ) -> Termination {
        let Ended {
            instance,
            termination,
        } = ended;
        if let Some(path) = self.exec_record.take() {
            let _ = std::fs::remove_file(path);
        }
        let ended_cgroup = instance.cgroup.clone();
        instance.drain(self.log.as_mut(), now, echo, fds, tap);
        // One write: stderr is unbuffered.
        let line = format!(
            "supervisor: [{}] exited: {} (exit code {})\n",
            self.spec.name, termination.reason, termination.exit_code
        );
        let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
        self.retired.retire(ended_cgroup);
        termination
    }

    /// Kill what is left in ended instances' cgroups and remove them.
    pub fn sweep_retired(&mut self, now: Instant) {
        self.ended_mount_ns = None;
        self.retired.sweep(&self.spec.name, now);
    }

    /// Whether ended instances' cgroups are still to be removed.
    pub fn has_retired(&self) -> bool {
        !self.retired.is_empty()
    }

    /// Read what the running instance wrote on `stream`.
    /// Read what the running instance wrote on `stream`; `tap` gets it
    /// too (attached clients).
    pub fn read_output(
        &mut self,
        stream: Stream,
        echo: &mut Echo,
        fds: &mut impl FdWatch,
        tap: &mut dyn FnMut(Stream, &[u8]),
    ) {
        if let Some(instance) = &mut self.instance {
            instance.read(stream, &self.spec.name, self.log.as_mut(), echo, fds, tap);
        }
    }

    /// The running instance's stdin and pty master, for attached clients.
    pub fn attach_ends(&mut self) -> Option<(Option<&mut stdio::Input>, Option<&std::fs::File>)> {
        let instance = self.instance.as_mut()?;
        Some((instance.input.as_mut(), instance.terminal.as_ref()))
    }

    /// The earliest probe start or timeout of the running instance, a
    /// postStart sleep's end, or the next step of its stop. Probes wait
    /// for the postStart hook: kubelet's prober sees the container only
    /// once its start returned.
    pub fn probe_deadline(&self) -> Option<Instant> {
        let instance = self.instance.as_ref()?;
        let probes = match &instance.post_start {
            Some(hook) => hook.deadline(),
            None if instance.stop.is_some() => None,
            None => instance.probes.next_deadline(),
        };
        [probes, self.stop_deadline()].into_iter().flatten().min()
    }

    /// Start due probes and time out late ones (none while the postStart
    /// hook runs or the instance is being stopped).
    pub fn tick_probes(
        &mut self,
        now: Instant,
        hooks: HookContext<'_>,
        fds: &mut impl FdWatch,
    ) -> Vec<Outcome> {
        let Some(instance) = &mut self.instance else {
            return Vec::new();
        };
        if instance.post_start.is_some() || instance.stop.is_some() {
            return Vec::new();
        }
        let target = crate::probe::ProbeTarget {
            pid: instance.pid,
            cgroup: &instance.cgroup,
            netns: hooks.netns,
            pod_ip: hooks.pod_ip,
            env: &instance.env,
        };
        instance.probes.tick(now, &target, fds)
    }

    /// Start the running instance's postStart hook; `Err` is a failure at
    /// once. Its end comes back as a [`HookDone`] (socket, exit) or from
    /// [`SupervisedContainer::tick_post_start`] (sleep).
    pub fn begin_post_start(
        &mut self,
        hooks: HookContext<'_>,
        fds: &mut impl FdWatch,
    ) -> Result<(), String> {
        let Some(handler) = self.spec.post_start.clone() else {
            return Ok(());
        };
        let Some(instance) = &mut self.instance else {
            return Ok(());
        };
        let target = instance.target(hooks);
        let hook = RunningHook::start(
            HookKind::PostStart,
            &handler,
            &target,
            &instance.identity,
            fds,
            Instant::now(),
        )?;
        instance.post_start = Some(Box::new(hook));
        Ok(())
    }

    /// Whether the running instance's postStart hook runs.
    pub fn in_post_start(&self) -> bool {
        self.instance
            .as_ref()
            .is_some_and(|i| i.post_start.is_some())
    }

    /// A postStart sleep that is over.
    pub fn tick_post_start(&mut self, now: Instant) -> Option<HookDone> {
        let instance = self.instance.as_mut()?;
        let result = instance.post_start.as_ref()?.tick(now)?;
        let hook = instance.post_start.take()?;
        Some(HookDone {
            kind: HookKind::PostStart,
            handler: hook.handler().clone(),
            result,
        })
    }

    /// A probe socket of the running instance is ready.
    pub fn on_probe_socket(
        &mut self,
        slot: u8,
        now: Instant,
        fds: &mut impl FdWatch,
    ) -> Vec<Outcome> {
        match &mut self.instance {
            Some(instance) => instance.probes.on_socket_ready(slot, now, fds),
            None => Vec::new(),
        }
    }

    /// A reaped child that may be one of the running instance's exec
    /// probes: `Some` when it was.
    pub fn on_probe_exit(
        &mut self,
        pid: i32,
        status: &container::ExitStatus,
        now: Instant,
    ) -> Option<Vec<Outcome>> {
        self.instance.as_mut()?.probes.on_exit(pid, status, now)
    }

    /// Whether the running instance has a readiness probe.
    pub fn has_readiness_probe(&self) -> bool {
        self.instance
            .as_ref()
            .is_some_and(|i| i.probes.has_readiness())
    }
}

/// An error and its sources, joined by ": " (what anyhow's `{:#}` shows).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
