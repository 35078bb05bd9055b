//! Where an archive's members are read from: a directory (an OCI layout or
//! an unpacked `docker save`) or a tar file indexed once (member name ->
//! offset and size, symlinked members such as `docker save`'s repeated
//! `layer.tar` followed inside the archive), read by offset without
//! extracting anything. Compressed input and standard input are first
//! copied to a plain file in the store's work directory.

use super::ArchiveError;
use crate::compression::{Compression, decompress};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// JSON members larger than this are refused (a manifest is kilobytes).
const MAX_JSON_BYTES: u64 = 16 << 20;

/// A tar member's data.
#[derive(Debug, Clone)]
pub(super) enum Member {
    Data { offset: u64, size: u64 },
    Symlink(String),
}

/// An archive's members.
pub(super) enum Source {
    Directory(PathBuf),
    Tar {
        file: File,
        members: HashMap<String, Member>,
    },
}

impl Source {
    /// Opens `path`: a directory, or a tar file indexed now. `plain_copy`
    /// is where a compressed file's decompressed copy may be written.
    pub(super) fn open(path: &Path, plain_copy: &Path) -> Result<Source, ArchiveError> {
        let io_error = |source| ArchiveError::Io {
            path: path.to_path_buf(),
            source,
        };
        if path.is_dir() {
            return Ok(Source::Directory(path.to_path_buf()));
        }
        let mut file = File::open(path).map_err(io_error)?;
        let (compression, mut reader) = decompress(&mut file).map_err(io_error)?;
        if compression != Compression::None {
            let mut copy = File::create(plain_copy).map_err(io_error)?;
            io::copy(&mut reader, &mut copy).map_err(io_error)?;
            drop(reader);
            return Source::index_tar(path, File::open(plain_copy).map_err(io_error)?);
        }
        drop(reader);
        file.seek(SeekFrom::Start(0)).map_err(io_error)?;
        Source::index_tar(path, file)
    }

    /// Copies `reader` (standard input, called `shown` in errors) to
    /// `copy`, decompressing it, and opens that.
    pub(super) fn spool(
        reader: &mut dyn Read,
        copy: &Path,
        shown: &Path,
    ) -> Result<Source, ArchiveError> {
        let io_error = |source| ArchiveError::Io {
            path: copy.to_path_buf(),
            source,
        };
        let (_, mut plain) = decompress(reader).map_err(io_error)?;
        let mut file = File::create(copy).map_err(io_error)?;
        io::copy(&mut plain, &mut file).map_err(io_error)?;
        Source::index_tar(shown, File::open(copy).map_err(io_error)?)
    }

    fn index_tar(path: &Path, file: File) -> Result<Source, ArchiveError> {
        let not_tar = |e: io::Error| ArchiveError::NotAnImage {
            path: path.to_path_buf(),
            reason: format!("not a tar archive ({e})"),
        };
        let mut members = HashMap::new();
        {
            let mut archive = tar::Archive::new(&file);
            for entry in archive.entries_with_seek().map_err(not_tar)? {
                let entry = entry.map_err(not_tar)?;
                let name = clean_name(&String::from_utf8_lossy(&entry.path_bytes()));
                let member = match entry.header().entry_type() {
                    tar::EntryType::Regular | tar::EntryType::Continuous => Member::Data {
                        offset: entry.raw_file_position(),
                        size: entry.size(),
                    },
                    tar::EntryType::Symlink | tar::EntryType::Link => {
                        let target = entry.link_name_bytes().unwrap_or_default();
                        let target = String::from_utf8_lossy(&target).into_owned();
                        if entry.header().entry_type() == tar::EntryType::Link {
                            Member::Symlink(format!("/{}", clean_name(&target)))
                        } else {
                            Member::Symlink(target)
                        }
                    }
                    _ => continue,
                };
                members.insert(name, member);
            }
        }
        Ok(Source::Tar { file, members })
    }

    /// Whether the member `name` is there.
    pub(super) fn has(&self, name: &str) -> bool {
        match self {
            Source::Directory(dir) => safe_join(dir, name).is_some_and(|p| p.is_file()),
            Source::Tar { members, .. } => self.resolve(members, name).is_some(),
        }
    }

    /// The member `name`'s bytes (a JSON document).
    pub(super) fn read_json_member(
        &self,
        name: &str,
        archive: &Path,
    ) -> Result<Vec<u8>, ArchiveError> {
        let mut data = Vec::new();
        let mut reader = self.reader(name, archive)?;
        reader
            .by_ref()
            .take(MAX_JSON_BYTES + 1)
            .read_to_end(&mut data)
            .map_err(|source| ArchiveError::Io {
                path: archive.join(name),
                source,
            })?;
        if data.len() as u64 > MAX_JSON_BYTES {
            return Err(ArchiveError::Invalid {
                path: archive.to_path_buf(),
                member: name.to_string(),
                reason: format!("larger than {MAX_JSON_BYTES} bytes"),
            });
        }
        Ok(data)
    }

    /// A reader of the member `name` and its size.
    pub(super) fn reader(
        &self,
        name: &str,
        archive: &Path,
    ) -> Result<Box<dyn Read + '_>, ArchiveError> {
        let missing = || ArchiveError::Invalid {
            path: archive.to_path_buf(),
            member: name.to_string(),
            reason: "no such file in the archive".into(),
        };
        match self {
            Source::Directory(dir) => {
                let path = safe_join(dir, name).ok_or_else(missing)?;
                let file = File::open(&path).map_err(|_| missing())?;
                Ok(Box::new(file))
            }
            Source::Tar { file, members } => {
                let (offset, size) = self.resolve(members, name).ok_or_else(missing)?;
                Ok(Box::new(MemberReader {
                    file,
                    position: offset,
                    end: offset + size,
                }))
            }
        }
    }

    /// The size of the member `name`.
    pub(super) fn size(&self, name: &str) -> Option<u64> {
        match self {
            Source::Directory(dir) => safe_join(dir, name)
                .and_then(|p| p.metadata().ok())
                .map(|m| m.len()),
            Source::Tar { members, .. } => self.resolve(members, name).map(|(_, size)| size),
        }
    }

    /// Follows symlinked members (at most 8) to a member with data.
    fn resolve(&self, members: &HashMap<String, Member>, name: &str) -> Option<(u64, u64)> {
        let mut name = clean_name(name);
        for _ in 0..8 {
            match members.get(&name)? {
                Member::Data { offset, size } => return Some((*offset, *size)),
                Member::Symlink(target) => {
                    name = if let Some(absolute) = target.strip_prefix('/') {
                        clean_name(absolute)
                    } else {
                        let dir = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                        clean_name(&format!("{dir}/{target}"))
                    };
                }
            }
        }
        None
    }
}

/// A member name without `./`, empty parts and `..` (resolved within the archive).
fn clean_name(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    parts.join("/")
}

/// `dir/name` when `name` stays inside `dir` (no `..`, not absolute).
fn safe_join(dir: &Path, name: &str) -> Option<PathBuf> {
    if name.starts_with('/') || name.split('/').any(|p| p == "..") {
        return None;
    }
    Some(dir.join(name))
}

/// Reads a byte range of the archive file.
struct MemberReader<'a> {
    file: &'a File,
    position: u64,
    end: u64,
}

impl Read for MemberReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = (self.end - self.position).min(buf.len() as u64) as usize;
        if left == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..left], self.position)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive member is cut short",
            ));
        }
        self.position += n as u64;
        Ok(n)
    }
}
