//! A `kind: Job` as its controller runs it (kube-controller-manager's
//! `pkg/controller/job/job_controller.go`), for the one pod of
//! `completions: 1, parallelism: 1`. Pure decisions and the Job's status:
//! the pods themselves are run by [`crate::run`].
//!
//! - `restartPolicy: Never`: a failed pod is counted (`status.failed`) and
//!   a new pod (a new sandbox: new pause, new CNI ADD, so a new IP) is made
//!   after the pod failure back-off, 10 s doubling per failure since the
//!   last success, capped at 10 min (`DefaultJobPodFailureBackOff`,
//!   `MaxJobPodFailureBackOff`, `getRemainingTimeForFailuresCount` in
//!   `backoff_utils.go`). The Job fails once `failed > backoffLimit`.
//! - `restartPolicy: OnFailure`: kubelet restarts the containers in place;
//!   the Job fails once the restart counts of the active pod's containers
//!   (init ones too) add up to `backoffLimit` (any restart when it is 0),
//!   `pastBackoffLimitOnFailure`, and the pod is killed.
//! - `activeDeadlineSeconds`: counted from the Job's start; once passed,
//!   the active pod is killed and the Job fails (`pastActiveDeadline`).
//! - A pod killed for the Job counts as failed; the conditions are those
//!   of Kubernetes 1.31+: `FailureTarget` then `Failed` (reason
//!   `BackoffLimitExceeded` or `DeadlineExceeded`), or
//!   `SuccessCriteriaMet` then `Complete` (reason `CompletionsReached`).

use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::restart::RestartPolicy;
use crate::spec::JobSpec;
use crate::time::format_rfc3339;

/// The Job controller's pod failure back-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobBackoff {
    /// After the first failure (`DefaultJobPodFailureBackOff`, 10 s).
    pub initial: Duration,
    /// The cap (`MaxJobPodFailureBackOff`, 10 min).
    pub max: Duration,
}

impl Default for JobBackoff {
    fn default() -> Self {
        JobBackoff {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(600),
        }
    }
}

impl JobBackoff {
    /// The delay before the next pod after `failures` failures since the
    /// last success: `initial * 2^(failures-1)`, capped (0 for none).
    pub fn delay(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let mut delay = self.initial;
        for _ in 1..failures {
            delay = delay.saturating_mul(2);
            if delay >= self.max {
                return self.max;
            }
        }
        delay.min(self.max)
    }
}

/// Why a Job failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobFailure {
    /// Too many failed pods (Never) or container restarts (OnFailure).
    BackoffLimitExceeded,
    /// `activeDeadlineSeconds` passed.
    DeadlineExceeded,
}

impl JobFailure {
    /// The condition's `reason`.
    pub fn reason(self) -> &'static str {
        match self {
            JobFailure::BackoffLimitExceeded => "BackoffLimitExceeded",
            JobFailure::DeadlineExceeded => "DeadlineExceeded",
        }
    }

    /// The condition's `message`, as the Job controller writes it.
    pub fn message(self) -> &'static str {
        match self {
            JobFailure::BackoffLimitExceeded => "Job has reached the specified backoff limit",
            JobFailure::DeadlineExceeded => "Job was active longer than specified deadline",
        }
    }

    /// `supervisor run`'s exit status for a Job that failed so: 1 as a
    /// failed pod, 124 for the deadline (timeout(1)'s status).
    pub fn exit_code(self) -> i32 {
        match self {
            JobFailure::BackoffLimitExceeded => 1,
            JobFailure::DeadlineExceeded => 124,
        }
    }
}

/// How one pod of the Job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodResult {
    /// Phase Succeeded.
    Succeeded,
    /// Phase Failed.
    Failed,
    /// Killed because the Job failed.
    KilledFor(JobFailure),
}

/// What comes after a pod's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// A new pod at this time (after the back-off).
    NewPodAt(Instant),
    /// The Job is finished.
    Finished,
}

/// The Job's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEnd {
    /// One pod succeeded.
    Complete,
    /// The Job failed.
    Failed(JobFailure),
}

/// One Job's controller state.
#[derive(Debug, Clone)]
pub struct JobController {
    spec: JobSpec,
    policy: RestartPolicy,
    backoff: JobBackoff,
    started_wall: SystemTime,
    deadline: Option<Instant>,
    active: bool,
    succeeded: u32,
    failed: u32,
    failures_since_success: u32,
    end: Option<(JobEnd, SystemTime)>,
}

impl JobController {
    /// A Job starting now (`now`, `wall`: its `status.startTime`).
    pub fn new(
        spec: JobSpec,
        policy: RestartPolicy,
        backoff: JobBackoff,
        now: Instant,
        wall: SystemTime,
    ) -> JobController {
        JobController {
            spec,
            policy,
            backoff,
            started_wall: wall,
            deadline: spec.active_deadline.map(|d| now + d),
            active: false,
            succeeded: 0,
            failed: 0,
            failures_since_success: 0,
            end: None,
        }
    }

    /// When `activeDeadlineSeconds` passes.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// How the Job ended, once it has.
    pub fn end(&self) -> Option<JobEnd> {
        self.end.map(|(end, _)| end)
    }

    /// `status.failed`.
    pub fn failed(&self) -> u32 {
        self.failed
    }

    /// `status.succeeded`.
    pub fn succeeded(&self) -> u32 {
        self.succeeded
    }

    /// A pod of the Job was created.
    pub fn pod_started(&mut self) {
        self.active = true;
    }

    /// The active pod was stopped from outside (a stop signal): it is
    /// not counted.
    pub fn pod_stopped(&mut self) {
        self.active = false;
    }

    /// Whether the active pod must be killed now: the deadline passed, or
    /// (OnFailure) its containers' `restarts` reached the back-off limit.
    pub fn check_active(&self, now: Instant, restarts: u32) -> Option<JobFailure> {
        if self.deadline.is_some_and(|d| now >= d) {
            return Some(JobFailure::DeadlineExceeded);
        }
        let limit = self.spec.backoff_limit;
        let past_limit = if limit == 0 {
            restarts > 0
        } else {
            restarts >= limit
        };
        (self.policy == RestartPolicy::OnFailure && past_limit)
            .then_some(JobFailure::BackoffLimitExceeded)
    }

    /// The active pod ended (at `now`, `wall`): count it, and say what
    /// comes next.
    pub fn pod_ended(&mut self, result: PodResult, now: Instant, wall: SystemTime) -> Next {
        self.active = false;
        match result {
            PodResult::Succeeded => {
                self.succeeded += 1;
                self.failures_since_success = 0;
                self.finish(JobEnd::Complete, wall)
            }
            PodResult::KilledFor(failure) => {
                self.failed += 1;
                self.finish(JobEnd::Failed(failure), wall)
            }
            PodResult::Failed => {
                self.failed += 1;
                self.failures_since_success += 1;
                if self.failed > self.spec.backoff_limit {
                    return self.finish(JobEnd::Failed(JobFailure::BackoffLimitExceeded), wall);
                }
                let at = now + self.backoff.delay(self.failures_since_success);
                match self.deadline {
                    // The deadline comes first: no new pod.
                    Some(d) if d <= at => Next::NewPodAt(d),
                    _ => Next::NewPodAt(at),
                }
            }
        }
    }

    /// The deadline passed with no pod running (in a back-off).
    pub fn deadline_passed(&mut self, wall: SystemTime) {
        self.finish(JobEnd::Failed(JobFailure::DeadlineExceeded), wall);
    }

    fn finish(&mut self, end: JobEnd, wall: SystemTime) -> Next {
        self.end = Some((end, wall));
        Next::Finished
    }

    /// `supervisor run`'s exit status: 0 Complete, else the failure's.
    pub fn exit_code(&self) -> i32 {
        match self.end() {
            Some(JobEnd::Complete) => 0,
            Some(JobEnd::Failed(failure)) => failure.exit_code(),
            None => 0,
        }
    }

    /// The Job's `status`, as the API server shows it.
    pub fn status(&self) -> JobStatus {
        let mut conditions = Vec::new();
        let mut completion_time = None;
        if let Some((end, at)) = self.end {
            let at = format_rfc3339(at);
            let (types, reason, message) = match end {
                JobEnd::Complete => {
                    completion_time = Some(at.clone());
                    (
                        ["SuccessCriteriaMet", "Complete"],
                        "CompletionsReached",
                        "Reached expected number of succeeded pods",
                    )
                }
                JobEnd::Failed(f) => (["FailureTarget", "Failed"], f.reason(), f.message()),
            };
            for type_ in types {
                conditions.push(JobCondition {
                    type_: type_.to_owned(),
                    status: "True".to_owned(),
                    reason: reason.to_owned(),
                    message: message.to_owned(),
                    last_probe_time: at.clone(),
                    last_transition_time: at.clone(),
                });
            }
        }
        JobStatus {
            start_time: format_rfc3339(self.started_wall),
            completion_time,
            active: u32::from(self.active),
            succeeded: self.succeeded,
            failed: self.failed,
            conditions,
        }
    }
}

/// `batch/v1` `JobStatus` (the fields a one-pod Job has).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    /// When the Job started.
    pub start_time: String,
    /// When it completed (Complete only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    /// Pods running.
    pub active: u32,
    /// Pods that succeeded.
    pub succeeded: u32,
    /// Pods that failed (killed ones included).
    pub failed: u32,
    /// `SuccessCriteriaMet`/`Complete` or `FailureTarget`/`Failed`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<JobCondition>,
}

/// `batch/v1` `JobCondition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobCondition {
    /// The condition.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`.
    pub status: String,
    /// Why.
    pub reason: String,
    /// The controller's message.
    pub message: String,
    /// When it was last checked.
    pub last_probe_time: String,
    /// When it became true.
    pub last_transition_time: String,
}

/// The Job object written to `job.json` beside the pod's status.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRecord {
    /// `batch/v1`.
    pub api_version: &'static str,
    /// `Job`.
    pub kind: &'static str,
    /// Name and namespace.
    pub metadata: JobMeta,
    /// The controller fields in effect.
    pub spec: JobRecordSpec,
    /// The status.
    pub status: JobStatus,
}

/// The Job's metadata.
#[derive(Debug, Clone, Serialize)]
pub struct JobMeta {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
}

/// The Job's spec fields in effect.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRecordSpec {
    /// Always 1.
    pub completions: u32,
    /// Always 1.
    pub parallelism: u32,
    /// The back-off limit.
    pub backoff_limit: u32,
    /// The deadline, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<u64>,
}

impl JobController {
    /// The whole Job object for `job.json`.
    pub fn record(&self, name: &str, namespace: &str) -> JobRecord {
        JobRecord {
            api_version: "batch/v1",
            kind: "Job",
            metadata: JobMeta {
                name: name.to_owned(),
                namespace: namespace.to_owned(),
            },
            spec: JobRecordSpec {
                completions: 1,
                parallelism: 1,
                backoff_limit: self.spec.backoff_limit,
                active_deadline_seconds: self.spec.active_deadline.map(|d| d.as_secs()),
            },
            status: self.status(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(limit: u32, deadline: Option<u64>, policy: RestartPolicy) -> (JobController, Instant) {
        let now = Instant::now();
        let spec = JobSpec {
            backoff_limit: limit,
            active_deadline: deadline.map(Duration::from_secs),
        };
        let c = JobController::new(spec, policy, JobBackoff::default(), now, SystemTime::now());
        (c, now)
    }

    #[test]
    fn the_pod_failure_back_off_doubles_from_10s_to_10_minutes() {
        let b = JobBackoff::default();
        let secs: Vec<u64> = (0..=8).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(secs, [0, 10, 20, 40, 80, 160, 320, 600, 600]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(600));
    }

    #[test]
    fn never_fails_the_job_once_failed_pods_exceed_the_limit() {
        let (mut c, now) = job(2, None, RestartPolicy::Never);
        let wall = SystemTime::now();
        c.pod_started();
        assert_eq!(
            c.pod_ended(PodResult::Failed, now, wall),
            Next::NewPodAt(now + Duration::from_secs(10))
        );
        c.pod_started();
        assert_eq!(
            c.pod_ended(PodResult::Failed, now, wall),
            Next::NewPodAt(now + Duration::from_secs(20))
        );
        c.pod_started();
        assert_eq!(c.pod_ended(PodResult::Failed, now, wall), Next::Finished);
        assert_eq!(
            c.end(),
            Some(JobEnd::Failed(JobFailure::BackoffLimitExceeded))
        );
        let status = c.status();
        assert_eq!((status.failed, status.succeeded, status.active), (3, 0, 0));
        let types: Vec<&str> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["FailureTarget", "Failed"]);
        assert_eq!(status.conditions[1].reason, "BackoffLimitExceeded");
        assert_eq!(c.exit_code(), 1);
    }

    #[test]
    fn a_success_completes_the_job() {
        let (mut c, now) = job(6, None, RestartPolicy::Never);
        let wall = SystemTime::now();
        c.pod_started();
        assert!(matches!(
            c.pod_ended(PodResult::Failed, now, wall),
            Next::NewPodAt(_)
        ));
        c.pod_started();
        assert_eq!(c.pod_ended(PodResult::Succeeded, now, wall), Next::Finished);
        let status = c.status();
        assert_eq!((status.failed, status.succeeded), (1, 1));
        assert_eq!(status.conditions[1].type_, "Complete");
        assert_eq!(status.conditions[1].reason, "CompletionsReached");
        assert!(status.completion_time.is_some());
        assert_eq!(c.exit_code(), 0);
    }

    #[test]
    fn on_failure_counts_container_restarts_against_the_limit() {
        let (c, now) = job(2, None, RestartPolicy::OnFailure);
        assert_eq!(c.check_active(now, 1), None);
        assert_eq!(
            c.check_active(now, 2),
            Some(JobFailure::BackoffLimitExceeded)
        );
        let (zero, now) = job(0, None, RestartPolicy::OnFailure);
        assert_eq!(zero.check_active(now, 0), None);
        assert_eq!(
            zero.check_active(now, 1),
            Some(JobFailure::BackoffLimitExceeded)
        );
        // With Never, restarts never happen and never count.
        let (never, now) = job(0, None, RestartPolicy::Never);
        assert_eq!(never.check_active(now, 5), None);
    }

    #[test]
    fn the_deadline_kills_the_active_pod_and_cuts_a_back_off_short() {
        let (mut c, now) = job(6, Some(15), RestartPolicy::Never);
        assert_eq!(c.check_active(now, 0), None);
        assert_eq!(
            c.check_active(now + Duration::from_secs(15), 0),
            Some(JobFailure::DeadlineExceeded)
        );
        let wall = SystemTime::now();
        c.pod_started();
        let at = now + Duration::from_secs(10);
        // The next pod would come at 20 s, after the deadline.
        assert_eq!(
            c.pod_ended(PodResult::Failed, at, wall),
            Next::NewPodAt(now + Duration::from_secs(15))
        );
        c.deadline_passed(wall);
        assert_eq!(c.end(), Some(JobEnd::Failed(JobFailure::DeadlineExceeded)));
        assert_eq!(c.exit_code(), 124);
        let killed = {
            let (mut k, now) = job(6, Some(1), RestartPolicy::OnFailure);
            k.pod_started();
            k.pod_ended(
                PodResult::KilledFor(JobFailure::DeadlineExceeded),
                now,
                wall,
            );
            k.status()
        };
        assert_eq!(killed.failed, 1);
        assert_eq!(killed.conditions[1].reason, "DeadlineExceeded");
        assert_eq!(
            killed.conditions[1].message,
            "Job was active longer than specified deadline"
        );
    }
}
