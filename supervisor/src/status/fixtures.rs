//! Fixtures the status tests share: a pod `demo` with one init container
//! (`setup`) and two containers (`web`, `side`), the lifecycle events that
//! drive it, and a sample of events for the store. Test-only.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use container::ExitStatus;

use super::derivation::{ContainerMeta, PodMeta};
use super::store::StatusStore;
use crate::restart::{
    BackoffConfig, Event, PodStateMachine, RestartPolicy, Slot, Stamp, Termination,
};

/// The pod as the supervisor took it at `t`: nothing has run yet.
pub(super) fn sample() -> (PodMeta, PodStateMachine, Stamp) {
    let t = Stamp {
        mono: Instant::now(),
        wall: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    };
    let backoff = BackoffConfig {
        initial: Duration::from_secs(10),
        ..BackoffConfig::default()
    };
    let pod = PodStateMachine::new(
        RestartPolicy::Always,
        backoff,
        ["setup"],
        ["web", "side"],
        t,
    );
    let image = |image: &str| ContainerMeta {
        image: image.into(),
        image_id: String::new(),
    };
    let meta = PodMeta {
        name: "demo".into(),
        namespace: Some("default".into()),
        uid: None,
        created: t.wall,
        deleting: None,
        start_time: Some(t.wall),
        host_ips: vec!["192.168.1.2".into()],
        pod_ips: vec!["10.88.0.5".into()],
        init_containers: vec![image("busybox")],
        containers: vec![image("python:3"), image("busybox")],
        ended: None,
    };
    (meta, pod, t)
}

/// The instance in `slot` started at `at` (and, with no startup probe,
/// is started at once).
pub(super) fn started(pod: &mut PodStateMachine, slot: Slot, at: Stamp, id: &str) {
    pod.handle(
        slot,
        Event::Started {
            at,
            container_id: id.into(),
        },
    )
    .unwrap();
    pod.set_started(slot, at).unwrap();
}

/// The instance in `slot` started at `at` and passes readiness.
pub(super) fn start(pod: &mut PodStateMachine, slot: Slot, at: Stamp, id: &str) {
    started(pod, slot, at, id);
    pod.get_mut(slot).unwrap().set_ready(true);
}

/// The instance in `slot` ended at `at` with `exit` (`oom_killed`: the
/// cgroup saw an OOM kill).
pub(super) fn exit(
    pod: &mut PodStateMachine,
    slot: Slot,
    at: Stamp,
    exit: ExitStatus,
    oom_killed: bool,
) {
    pod.handle(
        slot,
        Event::Exited {
            at,
            termination: Termination::classify(exit, oom_killed),
        },
    )
    .unwrap();
}

/// [`sample`] a minute on: `setup` completed after 1s, `web` and `side`
/// started at 2s, `side` was killed (signal 9) at 60s. Returns that instant.
pub(super) fn crashed_sidecar() -> (PodMeta, PodStateMachine, Stamp) {
    let (meta, mut pod, t) = sample();
    start(&mut pod, Slot::Init(0), t, "supervisor://demo/setup/0");
    let t1 = t.after(Duration::from_secs(1));
    exit(&mut pod, Slot::Init(0), t1, ExitStatus::Exited(0), false);
    let t2 = t.after(Duration::from_secs(2));
    start(&mut pod, Slot::App(0), t2, "supervisor://demo/web/0");
    start(&mut pod, Slot::App(1), t2, "supervisor://demo/side/0");
    let t60 = t.after(Duration::from_secs(60));
    exit(&mut pod, Slot::App(1), t60, ExitStatus::Signaled(9), false);
    (meta, pod, t60)
}

/// Records, at `t`, `t + 5s` and `t`: the pod's sandbox changed twice (one
/// event, counted twice) and `web` backed off (a second event).
pub(super) fn record_sample_events(store: &mut StatusStore, t: SystemTime) {
    let sandbox = "Pod sandbox changed, it will be killed and re-created.";
    let backoff = "Back-off restarting failed container";
    let events = [
        ("Normal", "SandboxChanged", "", sandbox, t),
        (
            "Normal",
            "SandboxChanged",
            "",
            sandbox,
            t + Duration::from_secs(5),
        ),
        ("Warning", "BackOff", "spec.containers{web}", backoff, t),
    ];
    for (type_, reason, field_path, message, at) in events {
        store
            .record_event(type_, reason, field_path, message, at)
            .unwrap();
    }
}

/// The fixtures' pod: `default/demo`.
pub fn demo_id() -> crate::paths::PodId {
    crate::paths::PodId::new("default", "demo").unwrap()
}
