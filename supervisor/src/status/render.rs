//! What `supervisor status` prints: kubectl's STATUS strings
//! ([`pod_status_string`], [`container_status_string`]), the
//! `NAME READY STATUS RESTARTS AGE` table ([`render_table`]), the events
//! table ([`render_events`]) and the Pod object as YAML ([`to_yaml`], through
//! serde-saphyr). It reads [`PodRecord`]s; it neither derives nor stores them.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use super::api::{ContainerStatus, PodEvent, PodRecord};
use super::derivation::{STOPPED, SUPERVISOR_GONE, is_final};
use crate::time::{human_duration, parse_rfc3339};

/// The STATUS column of `kubectl get pod` (kubectl's `printPod`).
pub fn pod_status_string(record: &PodRecord) -> String {
    let status = &record.status;
    let mut reason = status
        .reason
        .clone()
        .unwrap_or_else(|| status.phase.clone());
    let mut initializing = false;
    let total_init = status.init_container_statuses.len();
    for (i, c) in status.init_container_statuses.iter().enumerate() {
        if let Some(t) = &c.state.terminated {
            if t.exit_code == 0 {
                continue;
            }
            reason = match (&t.reason, t.signal) {
                (Some(r), _) => format!("Init:{r}"),
                (None, Some(s)) => format!("Init:Signal:{s}"),
                (None, None) => format!("Init:ExitCode:{}", t.exit_code),
            };
        } else if let Some(r) = c
            .state
            .waiting
            .as_ref()
            .and_then(|w| w.reason.as_deref())
            .filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            reason = format!("Init:{r}");
        } else {
            reason = format!("Init:{i}/{total_init}");
        }
        initializing = true;
        break;
    }
    if !initializing {
        let mut has_running = false;
        for c in status.container_statuses.iter().rev() {
            if let Some(r) = c.state.waiting.as_ref().and_then(|w| w.reason.clone()) {
                reason = r;
            } else if let Some(t) = &c.state.terminated {
                reason = match (&t.reason, t.signal) {
                    (Some(r), _) => r.clone(),
                    (None, Some(s)) => format!("Signal:{s}"),
                    (None, None) => format!("ExitCode:{}", t.exit_code),
                };
            } else if c.ready && c.state.running.is_some() {
                has_running = true;
            }
        }
        if reason == "Completed" && has_running {
            reason = "Running".to_owned();
        }
    }
    // A pod that ended without finishing (stopped, or its supervisor gone)
    // says how, over its containers' reasons and "Terminating": it is
    // neither running nor being stopped any more.
    if let Some(end) = status
        .reason
        .as_deref()
        .filter(|r| [STOPPED, SUPERVISOR_GONE].contains(r))
    {
        return end.to_owned();
    }
    if record.metadata.deletion_timestamp.is_some() && !is_final(record) {
        reason = "Terminating".to_owned();
    }
    reason
}

/// The STATUS column of one container's line.
pub fn container_status_string(c: &ContainerStatus, terminating: bool) -> String {
    if let Some(w) = &c.state.waiting {
        return w.reason.clone().unwrap_or_else(|| "Waiting".to_owned());
    }
    if let Some(t) = &c.state.terminated {
        return match (&t.reason, t.signal) {
            (Some(r), _) => r.clone(),
            (None, Some(s)) => format!("Signal:{s}"),
            (None, None) => format!("ExitCode:{}", t.exit_code),
        };
    }
    if c.state.running.is_some() {
        return if terminating {
            "Terminating"
        } else {
            "Running"
        }
        .to_owned();
    }
    "Unknown".to_owned()
}

fn since(stamp: Option<&str>, now: SystemTime) -> Option<Duration> {
    let t = parse_rfc3339(stamp?)?;
    Some(now.duration_since(t).unwrap_or(Duration::ZERO))
}

fn restarts_column<'a>(
    statuses: impl Iterator<Item = &'a ContainerStatus>,
    now: SystemTime,
) -> String {
    let mut count = 0u64;
    let mut latest: Option<SystemTime> = None;
    for c in statuses {
        count += u64::from(c.restart_count);
        let finished = c
            .last_state
            .terminated
            .as_ref()
            .and_then(|t| t.finished_at.as_deref())
            .and_then(parse_rfc3339);
        latest = latest.max(finished);
    }
    match latest {
        Some(t) if count > 0 => {
            let ago = now.duration_since(t).unwrap_or(Duration::ZERO);
            format!("{count} ({} ago)", human_duration(ago))
        }
        _ => count.to_string(),
    }
}

/// `NAME READY STATUS RESTARTS AGE`, one line per pod and one indented line
/// per container (init containers as `init:<name>`), aligned like kubectl;
/// with `namespaces`, a NAMESPACE column first, as `kubectl get pods -A`.
pub fn render_table(records: &[PodRecord], now: SystemTime, namespaces: bool) -> String {
    let rows = pod_rows(records, now);
    if !namespaces {
        return align(&rows);
    }
    let namespace_of = |r: &PodRecord| {
        r.metadata
            .namespace
            .clone()
            .unwrap_or_else(|| crate::paths::DEFAULT_NAMESPACE.to_owned())
    };
    // The header, then each pod's namespace on its line (not its containers').
    let mut column = vec!["NAMESPACE".to_owned()];
    for r in records {
        column.push(namespace_of(r));
        let s = &r.status;
        column.extend(std::iter::repeat_n(
            String::new(),
            s.init_container_statuses.len() + s.container_statuses.len(),
        ));
    }
    let rows: Vec<[String; 6]> = column
        .into_iter()
        .zip(rows)
        .map(|(namespace, [a, b, c, d, e])| [namespace, a, b, c, d, e])
        .collect();
    align(&rows)
}

fn pod_rows(records: &[PodRecord], now: SystemTime) -> Vec<[String; 5]> {
    let mut rows: Vec<[String; 5]> = vec![[
        "NAME".into(),
        "READY".into(),
        "STATUS".into(),
        "RESTARTS".into(),
        "AGE".into(),
    ]];
    for r in records {
        let s = &r.status;
        let ready = s.container_statuses.iter().filter(|c| c.ready).count();
        let age = since(r.metadata.creation_timestamp.as_deref(), now)
            .map(human_duration)
            .unwrap_or_else(|| "<unknown>".into());
        rows.push([
            r.metadata.name.clone(),
            format!("{ready}/{}", s.container_statuses.len()),
            pod_status_string(r),
            restarts_column(
                s.init_container_statuses
                    .iter()
                    .chain(&s.container_statuses),
                now,
            ),
            age,
        ]);
        let terminating = r.metadata.deletion_timestamp.is_some() && !is_final(r);
        let inits = s.init_container_statuses.iter().map(|c| (c, "init:"));
        let apps = s.container_statuses.iter().map(|c| (c, ""));
        for (c, label) in inits.chain(apps) {
            let started = c
                .state
                .running
                .as_ref()
                .and_then(|r| r.started_at.as_deref())
                .or_else(|| {
                    c.state
                        .terminated
                        .as_ref()
                        .and_then(|t| t.finished_at.as_deref())
                });
            rows.push([
                format!("  {label}{}", c.name),
                format!("{}/1", u8::from(c.ready)),
                container_status_string(c, terminating),
                restarts_column(std::iter::once(c), now),
                since(started, now)
                    .map(human_duration)
                    .unwrap_or_else(|| "-".into()),
            ]);
        }
    }
    rows
}

/// kubectl's tabwriter: columns padded to the widest cell plus 3 spaces.
fn align<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}", w = widths[i] + 3);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `LAST SEEN TYPE REASON OBJECT MESSAGE`, like the end of kubectl describe.
pub fn render_events(events: &[PodEvent], now: SystemTime) -> String {
    let mut rows: Vec<[String; 5]> = vec![[
        "LAST SEEN".into(),
        "TYPE".into(),
        "REASON".into(),
        "OBJECT".into(),
        "MESSAGE".into(),
    ]];
    for e in events {
        let seen = since(e.last_timestamp.as_deref(), now)
            .map(human_duration)
            .unwrap_or_else(|| "<unknown>".into());
        let seen = if e.count > 1 {
            format!("{seen} (x{})", e.count)
        } else {
            seen
        };
        let object = if e.field_path.is_empty() {
            "pod".to_owned()
        } else {
            e.field_path.clone()
        };
        rows.push([
            seen,
            e.type_.clone(),
            e.reason.clone(),
            object,
            e.message.clone(),
        ]);
    }
    align(&rows)
}

/// The Pod object (or `List`) as block YAML, kubectl style: keys in the
/// JSON value's (sorted) order, sequence items at their key's indent, `{}`
/// and `[]` for empty collections. Strings that YAML could read as anything
/// but a string (numbers, booleans, null, timestamps, addresses) are quoted;
/// strings with line breaks stay on one line, double-quoted with escapes,
/// as are long messages (no folded or literal block scalars).
pub fn to_yaml(value: &serde_json::Value) -> Result<String, serde_saphyr::SerializeError> {
    let options = serde_saphyr::ser_options! { prefer_block_scalars: false };
    serde_saphyr::to_string_with_options(value, options)
}

#[cfg(test)]
mod tests {
    use container::ExitStatus;

    use super::*;
    use crate::paths::Layout;
    use crate::restart::Slot;
    use crate::status::fixtures::demo_id;
    use crate::status::fixtures::{
        crashed_sidecar, exit, record_sample_events, sample, start, started,
    };
    use crate::status::{StatusStore, build};

    #[test]
    fn table_is_kubectl_shaped() {
        let (meta, pod, t) = sample();
        let r = build(&meta, &pod, None, t.wall);
        assert_eq!(pod_status_string(&r), "Init:0/1");
        let (meta, pod, t) = crashed_sidecar();
        let r = build(&meta, &pod, None, t.wall);
        let table = render_table(std::slice::from_ref(&r), t.wall, false);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        );
        assert!(lines[1].starts_with("demo "), "{table}");
        assert!(lines[1].contains(" 1/2 "), "{table}");
        assert!(lines[1].contains(" ContainerCreating "), "{table}");
        assert!(lines[1].ends_with("60s"), "{table}");
        assert!(
            lines[2].contains("init:setup") && lines[2].contains("Completed"),
            "{table}"
        );
        assert!(
            lines[3].contains("web") && lines[3].contains("Running"),
            "{table}"
        );
        let table = render_table(std::slice::from_ref(&r), t.wall, true);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        );
        assert!(lines[1].starts_with("default "), "{table}");
        assert!(lines[1].contains(" demo "), "{table}");
        assert!(lines[3].trim_start().starts_with("web "), "{table}");
    }

    #[test]
    fn a_stopped_or_gone_pod_is_neither_running_nor_terminating() {
        let (mut meta, mut pod, t) = crashed_sidecar();
        let running = build(&meta, &pod, None, t.wall);
        let gone = crate::status::supervisor_gone(&running, Some(7), t.wall);
        assert_eq!(pod_status_string(&gone), "SupervisorGone");
        let table = render_table(std::slice::from_ref(&gone), t.wall, false);
        assert!(
            !table.contains("Running") && !table.contains("Terminating"),
            "{table}"
        );
        assert!(table.contains("ContainerStatusUnknown"), "{table}");
        pod.stop();
        meta.deleting = Some(t.wall);
        meta.ended = Some(crate::status::PodEnd {
            reason: STOPPED.into(),
            message: "stopped".into(),
        });
        let stopped = build(&meta, &pod, None, t.wall);
        assert_eq!(pod_status_string(&stopped), "Stopped");
        let table = render_table(std::slice::from_ref(&stopped), t.wall, false);
        assert!(
            !table.contains("Running") && !table.contains("Terminating"),
            "{table}"
        );
    }

    #[test]
    fn kubectl_status_strings() {
        let (meta, mut pod, t) = sample();
        for id in ["i", "i2"] {
            start(&mut pod, Slot::Init(0), t, id);
            exit(&mut pod, Slot::Init(0), t, ExitStatus::Exited(1), false);
        }
        let r = build(&meta, &pod, None, t.wall);
        assert_eq!(pod_status_string(&r), "Init:CrashLoopBackOff");
        started(&mut pod, Slot::Init(0), t, "i3");
        exit(&mut pod, Slot::Init(0), t, ExitStatus::Exited(0), false);
        start(&mut pod, Slot::App(0), t, "w");
        start(&mut pod, Slot::App(1), t, "s");
        let r = build(&meta, &pod, None, t.wall);
        assert_eq!(pod_status_string(&r), "Running");
        assert_eq!(r.status.conditions[1].status, "True");
        exit(&mut pod, Slot::App(0), t, ExitStatus::Signaled(9), true);
        start(&mut pod, Slot::App(0), t, "w2");
        exit(&mut pod, Slot::App(0), t, ExitStatus::Signaled(9), true);
        let r = build(&meta, &pod, None, t.wall);
        assert_eq!(pod_status_string(&r), "CrashLoopBackOff");
        let web = &r.status.container_statuses[0];
        assert_eq!(container_status_string(web, false), "CrashLoopBackOff");
        assert_eq!(
            web.last_state
                .terminated
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("OOMKilled")
        );
        let mut deleting = meta.clone();
        deleting.deleting = Some(t.wall);
        pod.stop();
        let r = build(&deleting, &pod, None, t.wall);
        assert_eq!(pod_status_string(&r), "Terminating");
    }

    #[test]
    fn events_table_counts_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path(), dir.path().join("logs"));
        let mut store = StatusStore::create(&layout, &demo_id()).unwrap();
        let t = sample().2.wall;
        record_sample_events(&mut store, t);
        let shown = render_events(store.events(), t + Duration::from_secs(10));
        assert!(
            shown.contains("5s (x2)") && shown.contains("spec.containers{web}"),
            "{shown}"
        );
    }

    #[test]
    fn yaml_is_kubectl_shaped_and_quotes_ambiguous_strings() {
        let v = serde_json::json!({
            "apiVersion": "v1",
            "status": {
                "phase": "Running",
                "podIPs": [{"ip": "10.0.0.1"}],
                "startTime": "2026-11-29T04:39:30Z",
                "containerStatuses": [{"name": "web", "ready": true, "restartCount": 2,
                    "lastState": {}, "state": {"running": {"startedAt": "2026-11-29T04:39:30Z"}}}],
                "words": ["yes", "plain", "a: b", ""],
                "none": null
            }
        });
        let yaml = to_yaml(&v).unwrap();
        let want = "\
apiVersion: v1
status:
  containerStatuses:
  - lastState: {}
    name: web
    ready: true
    restartCount: 2
    state:
      running:
        startedAt: \"2026-11-29T04:39:30Z\"
  none: null
  phase: Running
  podIPs:
  - ip: \"10.0.0.1\"
  startTime: \"2026-11-29T04:39:30Z\"
  words:
  - \"yes\"
  - plain
  - \"a: b\"
  - \"\"
";
        assert_eq!(yaml, want);
    }

    /// What `status -o yaml` prints reads back as the JSON `-o json` prints:
    /// the Pod (with a multi-line, a long and number-like messages) and the
    /// `List` of all pods.
    #[test]
    fn yaml_reads_back_as_the_json_value() {
        let (meta, pod, t) = crashed_sidecar();
        let mut r = build(&meta, &pod, None, t.wall);
        let side = &mut r.status.container_statuses[1];
        let ended = side.last_state.terminated.as_mut().unwrap();
        ended.message = Some("panic: boom\n  at main.go:12\n".into());
        side.image = "1.0".into();
        r.status.message = Some(format!("{} true ~ null 0x1F", "long ".repeat(30)));
        let pod_value = serde_json::to_value(&r).unwrap();
        let list = serde_json::json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": [&r],
            "metadata": { "resourceVersion": "" },
        });
        for value in [pod_value, list] {
            let yaml = to_yaml(&value).unwrap();
            let back: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
            assert_eq!(back, value, "{yaml}");
        }
    }
}
