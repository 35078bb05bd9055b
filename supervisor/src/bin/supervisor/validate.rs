//! `supervisor validate MANIFEST...`: reads and checks manifests as `run`
//! does, and starts nothing (kubectl's `--dry-run=client`). Each good file
//! prints one line, its warnings go to stderr; the first bad file exits 1
//! with the one-line error `run` would give.

use std::path::PathBuf;

use supervisor::spec;

/// `supervisor validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The manifests, each read and checked as `supervisor run` reads its
    /// one (same size cap, same YAML limits, same errors).
    #[arg(required = true)]
    pub manifests: Vec<PathBuf>,
}

/// Runs `supervisor validate`.
pub fn main(args: ValidateArgs) -> anyhow::Result<i32> {
    for path in &args.manifests {
        let loaded = spec::load(path)?;
        for warning in &loaded.warnings {
            eprintln!("supervisor: warning: {warning}");
        }
        let pod = &loaded.pod;
        println!(
            "{}: pod {}/{}: {} init container(s), {} container(s)",
            path.display(),
            pod.namespace,
            pod.name,
            pod.init_containers.len(),
            pod.containers.len()
        );
    }
    Ok(0)
}
