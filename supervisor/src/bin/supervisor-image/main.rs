//! `supervisor-image`, what `supervisor image load|import|ls|rm|prune|pull`
//! runs: the flags, the store they open (`--image-dir`, else
//! $SUPERVISOR_IMAGE_DIR, else /var/lib/supervisor/images), and how results
//! are printed. A binary of its own so that the archive and layer code (tar,
//! gzip, zstd, oci-spec) stays out of every supervisor's memory; `pull` runs
//! `supervisor-pull` (the registry client). The rest is the `image` crate's.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use image::archive::{self, Input};
use image::import::import_rootfs;
use image::progress::human_size;
use image::reference::ImageReference;
use image::store::{self, Collected, ImageRecord, Store};

/// Container images in the supervisor's image store (`supervisor image ...`).
#[derive(Debug, clap::Parser)]
#[command(name = "supervisor image", bin_name = "supervisor image", version)]
struct ImageArgs {
    /// Image store root (default $SUPERVISOR_IMAGE_DIR, else /var/lib/supervisor/images).
    #[arg(long, value_name = "DIR", global = true)]
    image_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: ImageCommand,
}

/// Output format of `supervisor image ls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    /// A docker-like table.
    Table,
    /// The store's records as JSON.
    Json,
}

/// The image subcommands.
#[derive(Debug, clap::Subcommand)]
enum ImageCommand {
    /// Load images from a `docker save` archive or an OCI layout (dir or tar; `-` = stdin).
    Load {
        /// The archive; standard input when `-` or omitted.
        file: Option<PathBuf>,
        /// Name the archive's (single) image REF instead of the names it carries.
        #[arg(long = "ref", value_name = "REF")]
        reference: Option<String>,
    },
    /// Import a root file system (a tar, plain or compressed, or a directory) as a one-layer image.
    Import {
        /// The image's name (without one the image is nameless and `prune` removes it).
        #[arg(long = "ref", value_name = "REF")]
        reference: Option<String>,
        /// ROOTFS.tar or DIR.
        rootfs: PathBuf,
    },
    /// List stored images.
    Ls {
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
        output: Output,
    },
    /// Remove a name (the image when no name is left) or, by ID, an image.
    Rm {
        /// A reference or an image ID (prefix).
        reference: String,
    },
    /// Remove nameless images and every layer and blob no image or running container uses.
    Prune,
    /// Pull an image from its registry (runs supervisor-pull, policy Always).
    Pull {
        /// The image reference.
        reference: String,
        /// A docker config.json / auth.json to take credentials from (repeatable, tried in order).
        #[arg(long, value_name = "FILE")]
        registry_auth_file: Vec<PathBuf>,
        /// containerd hosts.toml directory (default $SUPERVISOR_REGISTRY_CONFIG_DIR, else /etc/supervisor/registries.d).
        #[arg(long, value_name = "DIR")]
        registry_config_dir: Option<PathBuf>,
    },
}

fn main() {
    let args = <ImageArgs as clap::Parser>::parse();
    match run(args) {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            eprintln!("supervisor: {error:#}");
            std::process::exit(1);
        }
    }
}

/// Runs `supervisor image ...`.
fn run(args: ImageArgs) -> anyhow::Result<i32> {
    let open = || Store::open(&store::resolve_root(args.image_dir.as_deref()));
    let mut out = io::stdout().lock();
    match args.command {
        ImageCommand::Load { file, reference } => {
            let store = open()?;
            let name = reference
                .as_deref()
                .map(ImageReference::parse)
                .transpose()?;
            let loaded = match file.as_deref() {
                None => archive::load(
                    &store,
                    Input::Stream(&mut io::stdin().lock()),
                    name.as_ref(),
                )?,
                Some(path) if path == Path::new("-") => archive::load(
                    &store,
                    Input::Stream(&mut io::stdin().lock()),
                    name.as_ref(),
                )?,
                Some(path) => archive::load(&store, Input::Path(path), name.as_ref())?,
            };
            for image in &loaded {
                for name in &image.names {
                    writeln!(out, "Loaded image: {name}")?;
                }
            }
        }
        ImageCommand::Import { reference, rootfs } => {
            let store = open()?;
            let name = reference
                .as_deref()
                .map(ImageReference::parse)
                .transpose()?;
            let image = import_rootfs(&store, &rootfs, name.as_ref())?;
            writeln!(out, "{}", image.id)?;
        }
        ImageCommand::Ls { output } => {
            let images = open()?.images()?;
            match output {
                Output::Json => {
                    serde_json::to_writer_pretty(&mut out, &images)?;
                    writeln!(out)?;
                }
                Output::Table => print_table(&mut out, &images)?,
            }
        }
        ImageCommand::Rm { reference } => {
            let removed = open()?.remove(&reference)?;
            for name in &removed.untagged {
                writeln!(out, "Untagged: {name}")?;
            }
            if let Some(id) = removed.deleted {
                writeln!(out, "Deleted: {id}")?;
            }
            print_collected(&mut out, &removed.collected)?;
        }
        ImageCommand::Prune => {
            let collected = open()?.prune()?;
            for id in &collected.images {
                writeln!(out, "Deleted: {id}")?;
            }
            print_collected(&mut out, &collected)?;
        }
        ImageCommand::Pull {
            reference,
            registry_auth_file,
            registry_config_dir,
        } => {
            return run_pull(
                args.image_dir.as_deref(),
                &reference,
                &registry_auth_file,
                registry_config_dir.as_deref(),
            );
        }
    }
    Ok(0)
}

/// Runs `supervisor-pull --progress auto --policy Always` with the flags
/// passed through; its exit code is this command's.
fn run_pull(
    image_dir: Option<&Path>,
    reference: &str,
    auth_files: &[PathBuf],
    config_dir: Option<&Path>,
) -> anyhow::Result<i32> {
    let program = supervisor::host::find_helper("supervisor-pull")?;
    let mut command = std::process::Command::new(&program);
    command.args(["--progress", "auto", "--policy", "Always"]);
    if let Some(dir) = image_dir {
        command.arg("--image-dir").arg(dir);
    }
    for file in auth_files {
        command.arg("--registry-auth-file").arg(file);
    }
    if let Some(dir) = config_dir {
        command.arg("--registry-config-dir").arg(dir);
    }
    command.arg("--").arg(reference);
    let status = command
        .status()
        .map_err(|e| anyhow::anyhow!("run {}: {e}", program.display()))?;
    Ok(status.code().unwrap_or(1))
}

fn print_table(out: &mut impl io::Write, images: &[ImageRecord]) -> io::Result<()> {
    let mut rows = vec![[
        "REPOSITORY".to_string(),
        "TAG".to_string(),
        "IMAGE ID".to_string(),
        "LAYERS".to_string(),
        "SIZE".to_string(),
    ]];
    for image in images {
        let id = image.id.hex()[..12].to_string();
        let mut names: Vec<(String, String)> = image
            .names
            .iter()
            .map(|name| match ImageReference::parse(name) {
                Ok(r) => (r.name(), r.tag().unwrap_or("<none>").to_string()),
                Err(_) => (name.clone(), "<none>".to_string()),
            })
            .collect();
        if names.is_empty() {
            names.push(("<none>".into(), "<none>".into()));
        }
        for (repository, tag) in names {
            rows.push([
                repository,
                tag,
                id.clone(),
                image.layers.len().to_string(),
                human_size(image.size),
            ]);
        }
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        writeln!(out, "{}", line.join("   ").trim_end())?;
    }
    Ok(())
}

fn print_collected(out: &mut impl io::Write, collected: &Collected) -> io::Result<()> {
    if collected.layers.is_empty() && collected.blobs.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "Freed {} layers and {} blobs, {}",
        collected.layers.len(),
        collected.blobs.len(),
        human_size(collected.bytes)
    )
}
