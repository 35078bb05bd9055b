//! sha256 digests as the store names content: parsing and printing
//! `sha256:<64 hex>`, hashing a byte stream while it is read or written,
//! and the chain ID of a layer stack (containerd's rule). It owns no files.

use sha2::{Digest as _, Sha256};
use std::fmt;
use std::io::{self, Read, Write};

/// A digest string that is not `sha256:` and 64 lower-case hex digits.
#[derive(Debug, thiserror::Error)]
#[error("invalid digest {value:?}: expected sha256:<64 lower-case hex digits>")]
pub struct InvalidDigest {
    /// The string as found.
    pub value: String,
}

/// A sha256 digest, the only algorithm the store takes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// Parses `sha256:<hex>`.
    pub fn parse(value: &str) -> Result<Digest, InvalidDigest> {
        let invalid = || InvalidDigest {
            value: value.to_string(),
        };
        let hex = value.strip_prefix("sha256:").ok_or_else(invalid)?;
        Digest::from_hex(hex).ok_or_else(invalid)
    }

    /// Parses 64 lower-case hex digits (a file name in `blobs/sha256`).
    pub fn from_hex(hex: &str) -> Option<Digest> {
        if hex.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            let pair = &hex[2 * i..2 * i + 2];
            if pair.bytes().any(|c| c.is_ascii_uppercase()) {
                return None;
            }
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Digest(bytes))
    }

    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Digest {
        Digest(Sha256::digest(data).into())
    }

    /// The 64 hex digits without the algorithm.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The chain ID of a layer whose parent's chain ID is `parent` (none for
    /// the bottom layer) and whose diffID is `diff_id`:
    /// chainID(1) = diffID(1), chainID(n) = sha256(chainID(n-1) + " " + diffID(n)).
    pub fn chain(parent: Option<Digest>, diff_id: Digest) -> Digest {
        match parent {
            None => diff_id,
            Some(parent) => Digest::of(format!("{parent} {diff_id}").as_bytes()),
        }
    }

    /// The chain IDs of a stack of diffIDs, bottom first.
    pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
        let mut parent = None;
        diff_ids
            .iter()
            .map(|diff_id| {
                let chain = Digest::chain(parent, *diff_id);
                parent = Some(chain);
                chain
            })
            .collect()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Digest::parse(&value).map_err(serde::de::Error::custom)
    }
}

/// A reader that hashes what passes through it and counts the bytes.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Reads what is left (tar's trailing blocks, padding) so the digest
    /// covers the whole stream, then returns the digest and the byte count.
    pub fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((Digest(self.hasher.finalize().into()), self.bytes))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// A writer that hashes what passes through it and counts the bytes.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// The digest and byte count so far, and the inner writer.
    pub fn finish(self) -> (Digest, u64, W) {
        (
            Digest(self.hasher.finalize().into()),
            self.bytes,
            self.inner,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_prints_and_hashes() {
        let d = Digest::parse(EMPTY).unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(Digest::of(b""), d);
        for bad in ["sha256:E3B0", "sha512:00", "e3b0", &EMPTY.to_uppercase()] {
            assert!(Digest::parse(bad).is_err(), "{bad}");
        }
        let mut reader = HashingReader::new(&b"abc"[..]);
        let mut first = [0u8; 1];
        reader.read_exact(&mut first).unwrap();
        assert_eq!(reader.finish().unwrap(), (Digest::of(b"abc"), 3));
    }

    #[test]
    fn chain_ids_follow_containerd() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let chains = Digest::chain_ids(&[a, b]);
        assert_eq!(chains[0], a);
        assert_eq!(chains[1], Digest::of(format!("{a} {b}").as_bytes()));
    }
}
