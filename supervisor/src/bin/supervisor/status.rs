//! `supervisor status [POD] [-o table|json|yaml]`: its flags, and which of
//! the status store's records go to which renderer.

use std::io::{self, Write as _};
use std::path::PathBuf;
use std::time::SystemTime;

use supervisor::paths::{self, Layout};
use supervisor::status::{
    StatusError, list_pods, read_events, read_record, render_events, render_table, to_yaml,
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

/// `supervisor status [POD] [-o json|yaml] [--state-dir DIR]`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The pod; all pods in the state dir when omitted.
    pub pod: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: Output,
    /// State root (default $SUPERVISOR_STATE_DIR, else /run/supervisor).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// Runs `supervisor status`.
pub fn main(args: StatusArgs) -> anyhow::Result<i32> {
    let layout = Layout::resolve(args.state_dir.as_deref(), None);
    let now = SystemTime::now();
    let (records, events) = match &args.pod {
        Some(pod) => {
            paths::check_name("pod", pod)?;
            let file = layout.status_file(pod);
            if !file.is_file() {
                return Err(StatusError::NoSuchPod {
                    pod: pod.clone(),
                    dir: layout.state_root().to_path_buf(),
                }
                .into());
            }
            let events = read_events(&layout.events_file(pod))?;
            (vec![read_record(&file)?], events)
        }
        None => (list_pods(&layout)?, Vec::new()),
    };
    let mut stdout = io::stdout().lock();
    match args.output {
        Output::Table => {
            if records.is_empty() {
                eprintln!("No pods found in {}.", layout.state_root().display());
                return Ok(0);
            }
            stdout.write_all(render_table(&records, now).as_bytes())?;
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
