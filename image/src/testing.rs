//! Test support: layer tarballs built in memory with the tar crate
//! (including hostile names the crate's own path setters refuse), and the
//! rule for tests that need root (skipped without it, failed under CI).

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
