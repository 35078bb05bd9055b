//! `supervisor volume ls|rm`: the persistentVolumeClaims' named volumes
//! (see `supervisor::volumes::claims`): its flags, and the table.

use std::path::PathBuf;

use supervisor::paths::DEFAULT_NAMESPACE;
use supervisor::volumes::claims::{self, ClaimPath};

/// `supervisor volume [--volume-dir DIR] ls|rm`.
#[derive(Debug, clap::Args)]
pub struct VolumeArgs {
    /// The claims' volumes (default $SUPERVISOR_VOLUME_DIR, else
    /// /var/lib/supervisor/volumes).
    #[arg(long, value_name = "DIR", global = true)]
    pub volume_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: VolumeCommand,
}

/// What to do with the volumes.
#[derive(Debug, clap::Subcommand)]
pub enum VolumeCommand {
    /// List the volumes: namespace, claim, whether a running pod holds it.
    Ls {
        /// Only this namespace's.
        #[arg(short = 'n', long, value_name = "NAMESPACE")]
        namespace: Option<String>,
    },
    /// Remove volumes and their data; refused for one a running pod holds.
    Rm {
        /// The claims' namespace.
        #[arg(short = 'n', long, value_name = "NAMESPACE", default_value = DEFAULT_NAMESPACE)]
        namespace: String,
        /// Claim names.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// Runs `supervisor volume`.
pub fn main(args: VolumeArgs) -> anyhow::Result<i32> {
    let root = claims::resolve_root(args.volume_dir.as_deref());
    match args.command {
        VolumeCommand::Ls { namespace } => {
            let volumes: Vec<ClaimPath> = claims::list(&root)?
                .into_iter()
                .filter(|c| namespace.as_deref().is_none_or(|n| c.namespace() == n))
                .collect();
            if volumes.is_empty() {
                eprintln!("No volumes found in {}.", root.display());
                return Ok(0);
            }
            let rows: Vec<[String; 3]> = volumes
                .iter()
                .map(|c| {
                    let in_use = match c.in_use() {
                        Ok(true) => "yes".to_owned(),
                        Ok(false) => "no".to_owned(),
                        Err(error) => format!("unknown ({error})"),
                    };
                    [c.namespace().to_owned(), c.claim().to_owned(), in_use]
                })
                .collect();
            print_table(&["NAMESPACE", "NAME", "IN USE"], &rows);
            Ok(0)
        }
        VolumeCommand::Rm { namespace, names } => {
            let mut code = 0;
            for name in &names {
                match ClaimPath::new(&root, &namespace, name).and_then(|c| c.remove(&root)) {
                    Ok(()) => println!("{namespace}/{name}"),
                    Err(error) => {
                        eprintln!("supervisor: {error}");
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
    }
}

/// Columns padded to their widest cell, three spaces apart (kubectl's
/// table).
fn print_table(header: &[&str; 3], rows: &[[String; 3]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: [&str; 3]| {
        format!(
            "{:<a$}   {:<b$}   {}",
            cells[0],
            cells[1],
            cells[2],
            a = widths[0],
            b = widths[1]
        )
    };
    println!("{}", line(*header).trim_end());
    for row in rows {
        println!("{}", line([&row[0], &row[1], &row[2]]).trim_end());
    }
}
