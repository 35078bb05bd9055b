//! A Job's pods, one after the other, as [`crate::job::JobController`]
//! decides: each pod is a whole [`PodRuntime`] (a new sandbox, so a new
//! pause, network namespace and CNI address, as a new pod of a Job gets in
//! Kubernetes), the pod failure back-off is waited for between two pods
//! with only the signalfd watched, and `job.json` holds the Job's status
//! after every change. The pod keeps the Job's name here (one state dir,
//! one lock, `supervisor status NAME`), where the Job controller would
//! name each pod `<job>-<suffix>`.

use std::time::{Instant, SystemTime};

use anyhow::Context;
use nix::sys::signal::Signal;

use super::{Config, PodOutcome, PodRuntime};
use crate::job::{JobBackoff, JobController, JobEnd, Next, PodResult};
use crate::paths::PodId;
use crate::pid1::{self, Signals};
use crate::restart::PodPhase;
use crate::spec::{JobSpec, PodSpec};
use crate::trace::Trace;

/// Runs the Job to its end (or to a stop signal); the exit status is
/// [`JobController::exit_code`] (0 after a stop signal).
pub(super) fn run(
    id: PodId,
    pod: PodSpec,
    spec: JobSpec,
    backoff: JobBackoff,
    config: Config,
    mut signals: Signals,
    mut trace: Trace,
) -> anyhow::Result<i32> {
    let job_file = config.layout.job_file(&id);
    let mut controller = JobController::new(
        spec,
        pod.restart_policy,
        backoff,
        Instant::now(),
        SystemTime::now(),
    );
    let write = |controller: &JobController| -> anyhow::Result<()> {
        let record = controller.record(id.name(), id.namespace());
        let json = serde_json::to_vec_pretty(&record).expect("a Job record serializes");
        crate::atomic_file::write_atomic(&job_file, &json)
            .with_context(|| format!("write {}", job_file.display()))
    };
    loop {
        controller.pod_started();
        write(&controller)?;
        let runtime = PodRuntime::new(
            id.clone(),
            pod.clone(),
            config.clone(),
            signals,
            trace,
            Some(controller.clone()),
        );
        let (outcome, given_back, trace_back) = runtime.run_to_end();
        (signals, trace) = (given_back, trace_back);
        let now = (Instant::now(), SystemTime::now());
        let result = match outcome {
            Ok(PodOutcome::Finished(PodPhase::Succeeded)) => PodResult::Succeeded,
            Ok(PodOutcome::Finished(_) | PodOutcome::Evicted) => PodResult::Failed,
            Ok(PodOutcome::KilledForJob(failure)) => PodResult::KilledFor(failure),
            Ok(PodOutcome::Stopped) => {
                controller.pod_stopped();
                write(&controller)?;
                return Ok(0);
            }
            Err(error) => {
                controller.pod_stopped();
                let _ = write(&controller);
                return Err(error);
            }
        };
        match controller.pod_ended(result, now.0, now.1) {
            Next::Finished => break,
            Next::NewPodAt(at) => {
                write(&controller)?;
                eprintln!(
                    "supervisor: job {id}: {} failed pod(s), backoffLimit {}: the next pod in {:.1}s",
                    controller.failed(),
                    spec.backoff_limit,
                    at.saturating_duration_since(Instant::now()).as_secs_f64()
                );
                if !wait_until(&signals, at)? {
                    eprintln!("supervisor: job {id}: stopped during the back-off");
                    return Ok(0);
                }
                if controller.deadline().is_some_and(|d| Instant::now() >= d) {
                    controller.deadline_passed(SystemTime::now());
                    break;
                }
            }
        }
    }
    write(&controller)?;
    match controller.end() {
        Some(JobEnd::Complete) => eprintln!(
            "supervisor: job {id} is Complete ({} succeeded, {} failed)",
            controller.succeeded(),
            controller.failed()
        ),
        Some(JobEnd::Failed(failure)) => eprintln!(
            "supervisor: job {id} Failed: {}: {} ({} succeeded, {} failed)",
            failure.reason(),
            failure.message(),
            controller.succeeded(),
            controller.failed()
        ),
        None => {}
    }
    Ok(controller.exit_code())
}

/// Sleeps until `at` on the signalfd: false when SIGTERM or SIGINT came
/// first (the Job is stopped). Children reaped meanwhile are leftovers of
/// the last pod.
fn wait_until(signals: &Signals, at: Instant) -> anyhow::Result<bool> {
    loop {
        let now = Instant::now();
        if now >= at {
            return Ok(true);
        }
        let Some(info) = signals.wait(Some(at - now))? else {
            return Ok(true);
        };
        match Signal::try_from(info.signal) {
            Ok(Signal::SIGTERM | Signal::SIGINT) => return Ok(false),
            Ok(Signal::SIGCHLD) => {
                pid1::reap()?;
            }
            _ => {}
        }
    }
}
