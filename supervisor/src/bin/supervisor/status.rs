//! `supervisor status [POD] [-n NAMESPACE] [-o table|json|yaml]`: its flags,
//! which pods' records go to which renderer, and the reclaim of pods whose
//! supervisor is gone (`supervisor::reclaim`) before they are shown. A
//! Job's pod gets one more line, the Job's state from its `job.json`.

use std::io::{self, Write as _};
use std::path::PathBuf;
use std::time::SystemTime;

use supervisor::paths::{DEFAULT_NAMESPACE, Layout, PodId};
use supervisor::reclaim::{self, Reclaimed};
use supervisor::status::{
    PodRecord, StatusError, list_pod_ids, read_events, read_record, render_events, render_table,
    to_yaml,
};

/// Output format of `supervisor status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// kubectl-like table.
    Table,
    /// The Pod object (a `List` without POD).
    Json,
    /// Same as json, in YAML.
    Yaml,
}

/// `supervisor status [POD] [-n NAMESPACE] [-o json|yaml] [--state-dir DIR]`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The pod; every pod (of NAMESPACE with -n, else of all namespaces)
    /// when omitted.
    pub pod: Option<String>,
    /// The pod's namespace (default "default" for POD; without POD: only
    /// that namespace's pods).
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: Output,
    /// State root (default $SUPERVISOR_STATE_DIR, else /run/supervisor).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// Runs `supervisor status`. A pod whose supervisor is gone is reclaimed
/// first (its leftovers removed, its status rewritten as SupervisorGone),
/// so it is never shown as Running or Terminating.
pub fn main(args: StatusArgs) -> anyhow::Result<i32> {
    let layout = Layout::resolve(args.state_dir.as_deref(), None);
    let now = SystemTime::now();
    let ids = match &args.pod {
        Some(pod) => {
            let namespace = args.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
            let id = PodId::new(namespace, pod)?;
            if !layout.pod_state_dir(&id).is_dir() {
                return Err(no_such_pod(&layout, &id).into());
            }
            vec![id]
        }
        None => list_pod_ids(&layout)?
            .into_iter()
            .filter(|id| {
                args.namespace
                    .as_deref()
                    .is_none_or(|n| id.namespace() == n)
            })
            .collect(),
    };
    for id in &ids {
        match reclaim::reclaim(&layout, id) {
            Ok(Reclaimed::Gone { pid, problems }) => {
                let pid = pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string());
                eprintln!(
                    "supervisor: pod {id}: its supervisor (pid {pid}) is gone; cleaned up what it left"
                );
                for problem in problems {
                    eprintln!("supervisor: pod {id}: clean-up: {problem}");
                }
            }
            Ok(Reclaimed::Owned | Reclaimed::Ended) => {}
            Err(error) => eprintln!("supervisor: pod {id}: {error}"),
        }
    }
    let mut records: Vec<PodRecord> = Vec::new();
    for id in &ids {
        let file = layout.status_file(id);
        match read_record(&file) {
            Ok(record) => records.push(record),
            Err(_) if args.pod.is_none() && !file.exists() => {}
            Err(StatusError::Read { .. }) if !file.exists() => {
                return Err(no_such_pod(&layout, id).into());
            }
            Err(error) => return Err(error.into()),
        }
    }
    let events = match (&args.pod, ids.first()) {
        (Some(_), Some(id)) => read_events(&layout.events_file(id))?,
        _ => Vec::new(),
    };
    let mut stdout = io::stdout().lock();
    match args.output {
        Output::Table => {
            if records.is_empty() {
                match &args.namespace {
                    Some(namespace) => eprintln!(
                        "No pods found in namespace {namespace} in {}.",
                        layout.state_root().display()
                    ),
                    None => eprintln!("No pods found in {}.", layout.state_root().display()),
                }
                return Ok(0);
            }
            // Every namespace listed: a NAMESPACE column, as kubectl -A.
            let namespaces = args.pod.is_none() && args.namespace.is_none();
            stdout.write_all(render_table(&records, now, namespaces).as_bytes())?;
            if let (Some(_), Some(id)) = (&args.pod, ids.first())
                && let Some(line) = job_line(&layout, id)
            {
                writeln!(stdout, "\n{line}")?;
            }
            if !events.is_empty() {
                writeln!(stdout, "\nEvents:")?;
                stdout.write_all(render_events(&events, now).as_bytes())?;
            }
        }
        Output::Json | Output::Yaml => {
            let value = if args.pod.is_some() {
                serde_json::to_value(&records[0])?
            } else {
                serde_json::json!({
                    "apiVersion": "v1",
                    "kind": "List",
                    "items": records,
                    "metadata": { "resourceVersion": "" },
                })
            };
            if args.output == Output::Json {
                serde_json::to_writer_pretty(&mut stdout, &value)?;
                writeln!(stdout)?;
            } else {
                stdout.write_all(to_yaml(&value)?.as_bytes())?;
            }
        }
    }
    Ok(0)
}

/// A Job's pod: one line from its `job.json`, as `kubectl get job` sums
/// it up (`Job web: Failed (BackoffLimitExceeded), 0/1 completions, 3
/// failed, 0 active`). None for a pod of no Job.
fn job_line(layout: &Layout, id: &PodId) -> Option<String> {
    let text = std::fs::read_to_string(layout.job_file(id)).ok()?;
    let job: serde_json::Value = serde_json::from_str(&text).ok()?;
    let status = &job["status"];
    let count = |field: &str| status[field].as_u64().unwrap_or(0);
    let state = status["conditions"]
        .as_array()
        .and_then(|c| c.last())
        .map_or_else(
            || "Running".to_owned(),
            |c| {
                format!(
                    "{} ({})",
                    c["type"].as_str().unwrap_or_default(),
                    c["reason"].as_str().unwrap_or_default()
                )
            },
        );
    Some(format!(
        "Job {}: {state}, {}/1 completions, {} failed, {} active",
        id.name(),
        count("succeeded"),
        count("failed"),
        count("active")
    ))
}

fn no_such_pod(layout: &Layout, id: &PodId) -> StatusError {
    StatusError::NoSuchPod {
        pod: id.to_string(),
        dir: layout.state_root().to_path_buf(),
    }
}
