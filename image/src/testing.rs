//! Test support: layer tarballs built in memory with the tar crate
//! (including hostile names the crate's own path setters refuse), and the
//! rule for tests that need root (skipped without it, failed under CI).
//! The registry tests' registry is in `registry`.

pub mod registry;

use std::io::Write;

/// True when the test can run; false (after saying so) when it needs root
/// and is not root. Under `CI=true` a missing root fails the test instead.
pub fn have_root() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "this test needs root (mknod, chown, trusted xattrs) and CI=true"
    );
    eprintln!("skipped: needs root");
    false
}

/// Builds a layer tar in memory.
pub struct LayerTar {
    builder: tar::Builder<Vec<u8>>,
}

impl LayerTar {
    pub fn new() -> LayerTar {
        LayerTar {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: tar::EntryType, name: &str, mode: u32, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        set_raw_name(&mut header, name);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_600_000_000);
        header.set_size(size);
        header
    }

    fn append(&mut self, mut header: tar::Header, data: &[u8]) -> &mut Self {
        header.set_cksum();
        self.builder.append(&header, data).unwrap();
        self
    }

    pub fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        self.append(Self::header(tar::EntryType::Directory, name, mode, 0), &[])
    }

    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> &mut Self {
        self.append(
            Self::header(tar::EntryType::Regular, name, mode, data.len() as u64),
            data,
        )
    }

    /// A file with owner, mode and PAX xattrs.
    pub fn file_with(
        &mut self,
        name: &str,
        mode: u32,
        owner: (u64, u64),
        xattrs: &[(&str, &[u8])],
        data: &[u8],
    ) -> &mut Self {
        if !xattrs.is_empty() {
            let records: Vec<(String, &[u8])> = xattrs
                .iter()
                .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
                .collect();
            self.builder
                .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), *v)))
                .unwrap();
        }
        let mut header = Self::header(tar::EntryType::Regular, name, mode, data.len() as u64);
        header.set_uid(owner.0);
        header.set_gid(owner.1);
        self.append(header, data)
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        let mut header = Self::header(tar::EntryType::Symlink, name, 0o777, 0);
        set_raw_link(&mut header, target);
        self.append(header, &[])
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        let mut header = Self::header(tar::EntryType::Link, name, 0o644, 0);
        set_raw_link(&mut header, target);
        self.append(header, &[])
    }

    pub fn node(&mut self, name: &str, kind: tar::EntryType, major: u32, minor: u32) -> &mut Self {
        let mut header = Self::header(kind, name, 0o620, 0);
        header.set_device_major(major).unwrap();
        header.set_device_minor(minor).unwrap();
        self.append(header, &[])
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let builder = std::mem::replace(&mut self.builder, tar::Builder::new(Vec::new()));
        builder.into_inner().unwrap()
    }
}

fn set_raw_name(header: &mut tar::Header, name: &str) {
    let field = &mut header.as_old_mut().name;
    field.fill(0);
    field[..name.len()].copy_from_slice(name.as_bytes());
}

fn set_raw_link(header: &mut tar::Header, target: &str) {
    let field = &mut header.as_old_mut().linkname;
    field.fill(0);
    field[..target.len()].copy_from_slice(target.as_bytes());
}

/// `data` gzip-compressed.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// An OCI image layout written into a directory, blob by blob.
pub struct OciLayout {
    pub dir: std::path::PathBuf,
    pub index: Vec<serde_json::Value>,
}

/// An image's manifest as written: its digest and its config's.
pub struct WrittenImage {
    pub manifest: crate::digest::Digest,
    pub config: crate::digest::Digest,
    pub manifest_size: usize,
}

impl OciLayout {
    pub fn new(dir: &std::path::Path) -> OciLayout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        OciLayout {
            dir: dir.to_path_buf(),
            index: Vec::new(),
        }
    }

    pub fn blob(&self, data: &[u8]) -> crate::digest::Digest {
        let digest = crate::digest::Digest::of(data);
        std::fs::write(self.dir.join("blobs/sha256").join(digest.hex()), data).unwrap();
        digest
    }

    /// Writes layers (gzip-compressed when `gzip_layers`), a config with
    /// `config` as its `config` object, and a manifest.
    pub fn image(
        &self,
        layers: &[Vec<u8>],
        config: serde_json::Value,
        gzip_layers: bool,
    ) -> WrittenImage {
        let diff_ids: Vec<String> = layers
            .iter()
            .map(|l| crate::digest::Digest::of(l).to_string())
            .collect();
        let layer_descriptors: Vec<serde_json::Value> = layers
            .iter()
            .map(|layer| {
                let (data, media_type) = if gzip_layers {
                    (gzip(layer), "application/vnd.oci.image.layer.v1.tar+gzip")
                } else {
                    (layer.clone(), "application/vnd.oci.image.layer.v1.tar")
                };
                serde_json::json!({"mediaType": media_type, "digest": self.blob(&data).to_string(), "size": data.len()})
            })
            .collect();
        let config = serde_json::json!({
            "created": "2026-01-01T00:00:00Z", "architecture": "amd64", "os": "linux",
            "config": config, "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let config = serde_json::to_vec(&config).unwrap();
        let config_digest = self.blob(&config);
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
            "layers": layer_descriptors,
        });
        let manifest = serde_json::to_vec(&manifest).unwrap();
        WrittenImage {
            manifest: self.blob(&manifest),
            config: config_digest,
            manifest_size: manifest.len(),
        }
    }

    /// Lists `image` in index.json under the `ref.name` annotation `name`.
    pub fn list(&mut self, image: &WrittenImage, name: Option<&str>) -> &mut Self {
        let mut descriptor = serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": image.manifest.to_string(), "size": image.manifest_size,
        });
        if let Some(name) = name {
            descriptor["annotations"] =
                serde_json::json!({"org.opencontainers.image.ref.name": name});
        }
        self.index.push(descriptor);
        self
    }

    /// Writes index.json.
    pub fn finish(&self) {
        let index = serde_json::json!({"schemaVersion": 2, "manifests": self.index});
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
    }
}

/// A tar of the directory `dir`'s contents.
pub fn tar_of_dir(dir: &std::path::Path) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder.append_dir_all(".", dir).unwrap();
    builder.into_inner().unwrap()
}

/// True when the command `tool` is on PATH; false (after saying so)
/// otherwise, and under `CI=true` a missing tool fails the test instead.
pub fn have_tool(tool: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "this test needs {tool} (see .ci/install) and CI=true"
        );
        eprintln!("skipped: needs {tool}");
    }
    found
}
