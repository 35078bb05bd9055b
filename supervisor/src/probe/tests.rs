//! Unit tests of the probe state machine with an injected clock: no
//! sockets, no processes. Attempts either fail at once (a `Sleep` handler
//! cannot start) or are stand-in exec attempts whose "pid" cannot exist
//! (above any `pid_max`), completed through `on_exit`.

use super::*;
use container::CgroupHost;

/// A pid no process can have (Linux caps `pid_max` at 2^22).
const NO_PID: i32 = i32::MAX - 7;

const SEC: Duration = Duration::from_secs(1);

fn container() -> spec::Container {
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: busybox:1.36\n    command: [/bin/true]\n";
    match spec::load_str("t.yaml", yaml) {
        Ok(l) => l.pod.containers[0].clone(),
        Err(e) => panic!("{e}"),
    }
}

/// A probe that can never start (immediate failure each period).
fn probe(delay: u64, period: u64, success: u32, failure: u32) -> spec::Probe {
    spec::Probe {
        handler: Handler::Sleep {
            duration: Duration::ZERO,
        },
        initial_delay: Duration::from_secs(delay),
        timeout: SEC,
        period: Duration::from_secs(period),
        success_threshold: success,
        failure_threshold: failure,
        termination_grace_period: None,
    }
}

/// Records watch calls; no socket is ever made in these tests.
#[derive(Default)]
struct NoIo {
    calls: usize,
}

impl ProbeIo for NoIo {
    fn watch(&mut self, _: BorrowedFd<'_>, _: u8, _: bool) {
        self.calls += 1;
    }
    fn unwatch(&mut self, _: BorrowedFd<'_>) {
        self.calls += 1;
    }
}

struct Fixture {
    probes: Probes,
    start: Instant,
    cgroup: Cgroup,
    io: NoIo,
}

impl Fixture {
    fn new(c: &spec::Container) -> Fixture {
        let start = Instant::now();
        Fixture {
            probes: Probes::new(c, ExecIdentity::default(), start),
            start,
            // Never touched: no exec probe starts in these tests.
            cgroup: Cgroup::open(&CgroupHost::from_mounts(None, []), "unused").unwrap(),
            io: NoIo::default(),
        }
    }

    fn at(&self, secs: u64) -> Instant {
        self.start + Duration::from_secs(secs)
    }

    fn tick(&mut self, secs: u64) -> Vec<Outcome> {
        let target = ProbeTarget {
            pid: NO_PID,
            cgroup: &self.cgroup,
            netns: None,
            pod_ip: None,
            env: &[],
        };
        let now = self.at(secs);
        self.probes.tick(now, &target, &mut self.io)
    }

    /// Put a stand-in exec attempt in flight for `kind`, due at `timeout`.
    fn in_flight(&mut self, kind: ProbeKind, timeout: u64) {
        let deadline = self.at(timeout);
        let prober = self.probes.probers[usize::from(kind.slot())]
            .as_mut()
            .expect("probe configured");
        assert!(prober.in_flight.is_none(), "one attempt at a time");
        prober.in_flight = Some(InFlight {
            deadline,
            attempt: Attempt::Exec { pid: NO_PID },
        });
    }

    /// Complete a stand-in attempt of `kind` at `secs` with `code`.
    fn finish(&mut self, kind: ProbeKind, secs: u64, code: i32) -> Vec<Outcome> {
        self.in_flight(kind, secs + 1);
        let now = self.at(secs);
        self.probes
            .on_exit(NO_PID, &ExitStatus::Exited(code), now)
            .expect("the stand-in pid is ours")
    }
}

fn failed_kind(outcomes: &[Outcome]) -> Option<(ProbeKind, String)> {
    outcomes.iter().find_map(|o| match o {
        Outcome::Failed { kind, message, .. } => Some((*kind, message.clone())),
        _ => None,
    })
}

#[test]
fn without_probes_the_container_is_started_at_once_and_nothing_is_due_after() {
    let mut f = Fixture::new(&container());
    assert!(!f.probes.has_readiness());
    assert_eq!(f.probes.next_deadline(), Some(f.start));
    assert_eq!(f.tick(0), vec![Outcome::Started]);
    assert_eq!(f.probes.next_deadline(), None);
    assert_eq!(f.tick(100), vec![]);
}

#[test]
fn initial_delay_counts_from_start_and_period_spaces_attempt_starts() {
    let mut c = container();
    c.readiness_probe = Some(Box::new(probe(5, 10, 1, 3)));
    let mut f = Fixture::new(&c);
    assert!(f.probes.has_readiness());
    assert_eq!(f.tick(0), vec![Outcome::Started]);
    assert_eq!(f.probes.next_deadline(), Some(f.at(5)));
    // Too early: nothing starts.
    assert_eq!(f.tick(4), vec![]);
    assert_eq!(f.probes.next_deadline(), Some(f.at(5)));
    assert_eq!(f.tick(5), vec![]);
    assert_eq!(f.probes.next_deadline(), Some(f.at(15)));
    assert_eq!(f.probes.probers[2].as_ref().unwrap().counters.failures, 1);
    assert_eq!(f.tick(14), vec![]);
    assert_eq!(f.probes.probers[2].as_ref().unwrap().counters.failures, 1);
    assert_eq!(f.tick(15), vec![]);
    assert_eq!(f.probes.probers[2].as_ref().unwrap().counters.failures, 2);
    // Never ready, so failures report nothing.
    assert_eq!(f.tick(25), vec![]);
    assert_eq!(f.tick(35), vec![]);
}

#[test]
fn the_startup_probe_gates_liveness_and_readiness() {
    let mut c = container();
    c.startup_probe = Some(Box::new(probe(2, 10, 1, 30)));
    c.liveness_probe = Some(Box::new(probe(3, 10, 1, 3)));
    c.readiness_probe = Some(Box::new(probe(0, 5, 1, 3)));
    let mut f = Fixture::new(&c);
    // Only the startup probe is scheduled, and nothing is started yet.
    assert_eq!(f.probes.next_deadline(), Some(f.at(2)));
    assert_eq!(f.tick(2), vec![]);
    assert_eq!(f.tick(12), vec![]);
    let liveness = f.probes.probers[1].as_ref().unwrap();
    assert_eq!((liveness.counters.failures, liveness.next_start), (0, None));
    // Startup succeeds at 20 s: liveness's delay (3 s) has passed, so it
    // is due at once; readiness too; startup runs no more.
    assert_eq!(f.finish(ProbeKind::Startup, 20, 0), vec![Outcome::Started]);
    assert_eq!(f.probes.next_deadline(), Some(f.at(20)));
    assert_eq!(f.probes.probers[0].as_ref().unwrap().next_start, None);
    assert_eq!(f.tick(20), vec![]);
    let counts = |f: &Fixture| {
        f.probes
            .probers
            .iter()
            .map(|p| p.as_ref().unwrap().counters.failures)
            .collect::<Vec<_>>()
    };
    assert_eq!(counts(&f), vec![0, 1, 1]);
    assert_eq!(f.probes.next_deadline(), Some(f.at(25)));
}

#[test]
fn gated_probes_keep_their_initial_delay_when_startup_succeeds_early() {
    let mut c = container();
    c.startup_probe = Some(Box::new(probe(0, 1, 1, 3)));
    c.liveness_probe = Some(Box::new(probe(30, 10, 1, 3)));
    let mut f = Fixture::new(&c);
    assert_eq!(f.finish(ProbeKind::Startup, 1, 0), vec![Outcome::Started]);
    assert_eq!(f.probes.next_deadline(), Some(f.at(30)));
}

#[test]
fn startup_failures_reach_the_threshold_and_stop_everything() {
    let mut c = container();
    c.startup_probe = Some(Box::new(probe(0, 10, 1, 3)));
    c.liveness_probe = Some(Box::new(probe(0, 10, 1, 3)));
    let mut f = Fixture::new(&c);
    assert_eq!(f.tick(0), vec![]);
    assert_eq!(f.tick(10), vec![]);
    let out = f.tick(20);
    let (kind, message) = failed_kind(&out).expect("failed at the third failure");
    assert_eq!(kind, ProbeKind::Startup);
    assert!(message.starts_with("Startup probe failed: "), "{message}");
    assert_eq!(f.probes.next_deadline(), None);
    assert_eq!(f.tick(30), vec![]);
}

#[test]
fn liveness_failures_must_be_consecutive() {
    let mut c = container();
    // Never due in this test: attempts are the stand-in ones.
    let mut live = probe(100, 10, 1, 3);
    live.handler = Handler::Exec {
        command: vec!["check".into(), "--deep".into()],
    };
    live.termination_grace_period = Some(7 * SEC);
    c.liveness_probe = Some(Box::new(live));
    let mut f = Fixture::new(&c);
    assert_eq!(f.tick(0), vec![Outcome::Started]);
    assert_eq!(f.finish(ProbeKind::Liveness, 1, 1), vec![]);
    assert_eq!(f.finish(ProbeKind::Liveness, 2, 1), vec![]);
    // A success resets the count.
    assert_eq!(f.finish(ProbeKind::Liveness, 3, 0), vec![]);
    assert_eq!(f.finish(ProbeKind::Liveness, 4, 1), vec![]);
    assert_eq!(f.finish(ProbeKind::Liveness, 5, 2), vec![]);
    let out = f.finish(ProbeKind::Liveness, 6, 3);
    let [
        Outcome::Failed {
            kind: ProbeKind::Liveness,
            message,
            grace_period: Some(grace),
        },
    ] = out.as_slice()
    else {
        panic!("{out:?}")
    };
    assert_eq!(*grace, 7 * SEC);
    assert!(
        message == "Liveness probe failed: command \"check --deep\" failed: exit code 3",
        "{message}"
    );
}

#[test]
fn readiness_needs_consecutive_successes_then_consecutive_failures() {
    let mut c = container();
    c.readiness_probe = Some(Box::new(probe(0, 10, 2, 3)));
    let mut f = Fixture::new(&c);
    assert_eq!(f.tick(0), vec![Outcome::Started]);
    assert_eq!(f.finish(ProbeKind::Readiness, 1, 0), vec![]);
    assert_eq!(f.finish(ProbeKind::Readiness, 2, 1), vec![]);
    assert_eq!(f.finish(ProbeKind::Readiness, 3, 0), vec![]);
    assert_eq!(
        f.finish(ProbeKind::Readiness, 4, 0),
        vec![Outcome::Ready(true)]
    );
    // Reported on a change only.
    assert_eq!(f.finish(ProbeKind::Readiness, 5, 0), vec![]);
    assert_eq!(f.finish(ProbeKind::Readiness, 6, 1), vec![]);
    assert_eq!(f.finish(ProbeKind::Readiness, 7, 1), vec![]);
    assert_eq!(
        f.finish(ProbeKind::Readiness, 8, 1),
        vec![Outcome::Ready(false)]
    );
    assert_eq!(f.finish(ProbeKind::Readiness, 9, 1), vec![]);
    // Readiness failures never fail the container.
    assert!(!f.probes.halted);
}

#[test]
fn an_attempt_in_flight_times_out_once_and_its_process_is_awaited() {
    let mut c = container();
    c.liveness_probe = Some(Box::new(probe(100, 10, 1, 1)));
    let mut f = Fixture::new(&c);
    assert_eq!(f.tick(0), vec![Outcome::Started]);
    f.in_flight(ProbeKind::Liveness, 3);
    // In flight: the deadline is its timeout, not the next period.
    assert_eq!(f.probes.next_deadline(), Some(f.at(3)));
    assert_eq!(f.probes.children(), vec![NO_PID]);
    assert_eq!(f.tick(2), vec![]);
    let out = f.tick(3);
    let (kind, message) = failed_kind(&out).expect("timed out");
    assert_eq!(kind, ProbeKind::Liveness);
    assert!(message.contains("timed out"), "{message}");
    // Killed, still to be reaped: known to on_exit, reported only once.
    assert_eq!(f.probes.children(), vec![NO_PID]);
    assert_eq!(
        f.probes.on_exit(NO_PID, &ExitStatus::Exited(0), f.at(4)),
        Some(vec![])
    );
    assert!(f.probes.children().is_empty());
    assert_eq!(
        f.probes.on_exit(NO_PID, &ExitStatus::Exited(0), f.at(4)),
        None
    );
}

#[test]
fn one_attempt_at_a_time_even_when_the_period_is_shorter_than_the_timeout() {
    let mut c = container();
    c.readiness_probe = Some(Box::new(probe(0, 1, 1, 3)));
    let mut f = Fixture::new(&c);
    assert_eq!(f.tick(0), vec![Outcome::Started]);
    // tick 0 failed once (Sleep) and scheduled 1 s.
    f.in_flight(ProbeKind::Readiness, 5);
    let failures = |f: &Fixture| f.probes.probers[2].as_ref().unwrap().counters.failures;
    assert_eq!(f.tick(1), vec![]);
    assert_eq!(f.tick(2), vec![]);
    assert_eq!(failures(&f), 1, "nothing started while in flight");
    assert_eq!(f.probes.next_deadline(), Some(f.at(5)));
    assert_eq!(
        f.probes.on_exit(NO_PID, &ExitStatus::Exited(0), f.at(3)),
        Some(vec![Outcome::Ready(true)])
    );
    // The overdue start happens on the next tick.
    assert_eq!(f.probes.next_deadline(), Some(f.at(1)));
}

#[test]
fn cancel_stops_everything_and_keeps_awaiting_killed_processes() {
    let mut c = container();
    c.liveness_probe = Some(Box::new(probe(0, 10, 1, 3)));
    c.readiness_probe = Some(Box::new(probe(0, 10, 1, 3)));
    let mut f = Fixture::new(&c);
    assert_eq!(f.tick(0), vec![Outcome::Started]);
    f.in_flight(ProbeKind::Liveness, 5);
    f.probes.cancel(&mut f.io);
    assert_eq!(f.probes.next_deadline(), None);
    assert_eq!(f.tick(50), vec![]);
    assert_eq!(f.probes.children(), vec![NO_PID]);
    assert_eq!(
        f.probes.on_exit(NO_PID, &ExitStatus::Signaled(9), f.at(51)),
        Some(vec![])
    );
    assert_eq!(f.io.calls, 0, "no socket was involved");
}

#[test]
fn unknown_pids_are_not_ours() {
    let mut c = container();
    c.liveness_probe = Some(Box::new(probe(0, 10, 1, 3)));
    let mut f = Fixture::new(&c);
    f.in_flight(ProbeKind::Liveness, 5);
    assert_eq!(f.probes.on_exit(1, &ExitStatus::Exited(0), f.at(1)), None);
    assert_eq!(f.probes.children(), vec![NO_PID]);
}

#[test]
fn status_lines_are_parsed_only_when_complete_and_well_formed() {
    assert_eq!(status_code(b"HTTP/1.1 200 OK\r\n"), Some(200));
    assert_eq!(status_code(b"HTTP/1.0 404 Not Found\r\nX: y"), Some(404));
    assert_eq!(status_code(b"HTTP/1.1 503\r\n"), Some(503));
    assert_eq!(status_code(b"HTTP/1.1 200 OK"), None);
    assert_eq!(status_code(b"HTTP/2 200 OK\r\n"), None);
    assert_eq!(status_code(b"HTTP/1.1 2000 OK\r\n"), None);
    assert_eq!(status_code(b"HTTP/1.1 abc OK\r\n"), None);
    assert_eq!(status_code(b"garbage\n"), None);
    assert_eq!(judge(200), Ok(()));
    assert_eq!(judge(399), Ok(()));
    assert_eq!(
        judge(500),
        Err("HTTP probe failed with statuscode: 500".to_string())
    );
    assert!(judge(199).is_err() && judge(400).is_err());
}

#[test]
fn the_request_is_the_kubelets_and_headers_cannot_break_lines() {
    let addr: SocketAddr = "10.1.2.3:8080".parse().unwrap();
    let headers = vec![
        ("X-Custom".to_string(), "a\r\nEvil: 1".to_string()),
        ("Accept".to_string(), "application/json".to_string()),
    ];
    let req = String::from_utf8(http_request(
        None,
        addr,
        "/healthz?x=1",
        &headers,
        USER_AGENT,
    ))
    .unwrap();
    assert_eq!(
        req,
        "GET /healthz?x=1 HTTP/1.1\r\nHost: 10.1.2.3:8080\r\nUser-Agent: kube-probe/1.33\r\n\
         Connection: close\r\nX-Custom: a  Evil: 1\r\nAccept: application/json\r\n\r\n"
    );
    let req = String::from_utf8(http_request(
        Some("example.test"),
        addr,
        "/",
        &[],
        USER_AGENT,
    ))
    .unwrap();
    assert!(req.contains("Host: example.test:8080\r\n"), "{req}");
    assert!(req.contains("Accept: */*\r\n"), "{req}");
}

#[test]
fn addresses_default_to_the_pod_ip_then_loopback_and_never_resolve_names() {
    let pod: IpAddr = "10.0.0.9".parse().unwrap();
    assert_eq!(
        address(None, 80, Some(pod)),
        Ok("10.0.0.9:80".parse().unwrap())
    );
    assert_eq!(address(None, 80, None), Ok("127.0.0.1:80".parse().unwrap()));
    assert_eq!(
        address(Some("localhost"), 81, Some(pod)),
        Ok("127.0.0.1:81".parse().unwrap())
    );
    assert_eq!(
        address(Some("[::1]"), 82, None),
        Ok("[::1]:82".parse().unwrap())
    );
    assert!(address(Some("db.example"), 80, None).is_err());
}

#[test]
fn slots_round_trip() {
    for kind in ProbeKind::ALL {
        assert_eq!(ProbeKind::from_slot(kind.slot()), Some(kind));
    }
    assert_eq!(ProbeKind::from_slot(3), None);
}
