//! `supervisor image load|import|ls|rm|prune`: the flags, the store they
//! open (`--image-dir`, else $SUPERVISOR_IMAGE_DIR, else
//! /var/lib/supervisor/images), and how results are printed. Everything
//! else is the `image` crate's.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use image::archive::{self, Input};
use image::import::import_rootfs;
use image::reference::ImageReference;
use image::store::{self, Collected, ImageRecord, Store};

/// `supervisor image ...`.
#[derive(Debug, clap::Args)]
pub struct ImageArgs {
    /// Image store root (default $SUPERVISOR_IMAGE_DIR, else /var/lib/supervisor/images).
    #[arg(long, value_name = "DIR", global = true)]
    pub image_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: ImageCommand,
}

/// Output format of `supervisor image ls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// A docker-like table.
    Table,
    /// The store's records as JSON.
    Json,
}

/// The image subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ImageCommand {
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
}

/// Runs `supervisor image ...`.
pub fn main(args: ImageArgs) -> anyhow::Result<i32> {
    let store = Store::open(&store::resolve_root(args.image_dir.as_deref()))?;
    let mut out = io::stdout().lock();
    match args.command {
        ImageCommand::Load { file, reference } => {
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
            let name = reference
                .as_deref()
                .map(ImageReference::parse)
                .transpose()?;
            let image = import_rootfs(&store, &rootfs, name.as_ref())?;
            writeln!(out, "{}", image.id)?;
        }
        ImageCommand::Ls { output } => {
            let images = store.images()?;
            match output {
                Output::Json => {
                    serde_json::to_writer_pretty(&mut out, &images)?;
                    writeln!(out)?;
                }
                Output::Table => print_table(&mut out, &images)?,
            }
        }
        ImageCommand::Rm { reference } => {
            let removed = store.remove(&reference)?;
            for name in &removed.untagged {
                writeln!(out, "Untagged: {name}")?;
            }
            if let Some(id) = removed.deleted {
                writeln!(out, "Deleted: {id}")?;
            }
            print_collected(&mut out, &removed.collected)?;
        }
        ImageCommand::Prune => {
            let collected = store.prune()?;
            for id in &collected.images {
                writeln!(out, "Deleted: {id}")?;
            }
            print_collected(&mut out, &collected)?;
        }
    }
    Ok(0)
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

/// Bytes in SI units, as `docker images` prints them.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.3}")
            .chars()
            .take(4)
            .collect::<String>()
            .trim_end_matches('.')
            .to_string()
            + UNITS[unit]
    }
}
