//! A `kind: Job`'s controller fields: [`JobSpec`] and its validator.
//!
//! One pod runs at a time and one success completes the Job, so
//! `completions` and `parallelism` other than 1 are refused with the field
//! named, as are the policies that would decide the Job's end otherwise
//! (`podFailurePolicy`, `successPolicy`, the per-index limits) and
//! `suspend: true`; `backoffLimit` (default 6) and `activeDeadlineSeconds` are
//! validated as kube-apiserver does (`pkg/apis/batch/validation`:
//! `ValidateNonnegativeField`). What they do at run time is
//! [`crate::job`]'s.

use std::time::Duration;

use super::{DocRef, Result, invalid};
use crate::manifest::WorkloadSpec;

/// `spec.backoffLimit` when absent (`batch/v1` defaulting).
pub const DEFAULT_BACKOFF_LIMIT: u32 = 6;

/// What the Job controller needs of a Job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobSpec {
    /// Failed pods (restartPolicy Never) or container restarts
    /// (OnFailure) the Job tolerates before it fails.
    pub backoff_limit: u32,
    /// `activeDeadlineSeconds`: from the Job's start; passed, the running
    /// pod is killed and the Job fails (DeadlineExceeded).
    pub active_deadline: Option<Duration>,
}

/// The Job fields of `ws` (the spec of `kind: Job` document `doc`).
pub(super) fn job_spec(file: &str, doc: &DocRef, ws: &WorkloadSpec) -> Result<JobSpec> {
    #[rustfmt::skip]
    let unsupported = [
        (ws.pod_failure_policy.is_some(), "podFailurePolicy", "its rules would decide how the Job ends"),
        (ws.success_policy.is_some(), "successPolicy", "one pod's success completes the Job here"),
        (ws.backoff_limit_per_index.is_some(), "backoffLimitPerIndex", "Indexed Jobs of more than one pod"),
        (ws.max_failed_indexes.is_some(), "maxFailedIndexes", "Indexed Jobs of more than one pod"),
        (ws.suspend == Some(true), "suspend", "a suspended Job runs no pod"),
    ];
    if let Some((_, field, why)) = unsupported.iter().find(|(present, ..)| *present) {
        return Err(invalid(
            file,
            doc,
            format!("spec.{field}"),
            None,
            format!("not supported: {why}"),
        ));
    }
    let nonnegative = |field: &str, value: Option<i64>| -> Result<Option<u64>> {
        match value {
            None => Ok(None),
            Some(v) => u64::try_from(v).map(Some).map_err(|_| {
                invalid(
                    file,
                    doc,
                    format!("spec.{field}"),
                    Some(v.to_string()),
                    "must be >= 0",
                )
            }),
        }
    };
    for (field, value, what) in [
        (
            "completions",
            ws.completions,
            "one pod runs to one success here",
        ),
        ("parallelism", ws.parallelism, "one pod runs at a time here"),
    ] {
        match nonnegative(field, value)? {
            None | Some(1) => {}
            Some(n) => {
                return Err(invalid(
                    file,
                    doc,
                    format!("spec.{field}"),
                    Some(n.to_string()),
                    format!("not supported: only 1 ({what})"),
                ));
            }
        }
    }
    let backoff_limit = match nonnegative("backoffLimit", ws.backoff_limit)? {
        None => DEFAULT_BACKOFF_LIMIT,
        Some(n) => u32::try_from(n).map_err(|_| {
            invalid(
                file,
                doc,
                "spec.backoffLimit",
                Some(n.to_string()),
                format!("must be at most {}", u32::MAX),
            )
        })?,
    };
    let active_deadline =
        nonnegative("activeDeadlineSeconds", ws.active_deadline_seconds)?.map(Duration::from_secs);
    Ok(JobSpec {
        backoff_limit,
        active_deadline,
    })
}
