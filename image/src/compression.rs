//! Layer compression, told by the stream's first bytes rather than by a
//! media type (docker-archive layers are plain tar whatever they are
//! called): gzip (flate2 with the zlib-rs backend), zstd, or none. It only
//! wraps a reader; hashing and unpacking are elsewhere.

use std::io::{self, Cursor, Read};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// How a layer stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar stream.
    None,
    /// gzip (RFC 1952).
    Gzip,
    /// Zstandard.
    Zstd,
}

/// Reads the first bytes of `reader`, tells its compression, and returns a
/// reader of the decompressed stream.
pub fn decompress<'a, R: Read + 'a>(
    mut reader: R,
) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut magic = [0u8; 4];
    let mut filled = 0;
    while filled < magic.len() {
        match reader.read(&mut magic[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    let whole = Cursor::new(magic[..filled].to_vec()).chain(reader);
    Ok(if magic[..filled].starts_with(&GZIP_MAGIC) {
        (
            Compression::Gzip,
            Box::new(flate2::read::MultiGzDecoder::new(whole)),
        )
    } else if magic[..filled] == ZSTD_MAGIC {
        (
            Compression::Zstd,
            Box::new(zstd::stream::read::Decoder::new(whole)?),
        )
    } else {
        (Compression::None, Box::new(whole))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn roundtrip(data: &[u8]) -> (Compression, Vec<u8>) {
        let (kind, mut reader) = decompress(data).unwrap();
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        (kind, out)
    }

    #[test]
    fn tells_gzip_zstd_and_plain() {
        let plain = b"hello layer".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&plain[..], 1).unwrap();
        assert_eq!(roundtrip(&gz), (Compression::Gzip, plain.clone()));
        assert_eq!(roundtrip(&zst), (Compression::Zstd, plain.clone()));
        assert_eq!(roundtrip(&plain), (Compression::None, plain.clone()));
        assert_eq!(roundtrip(b"ab"), (Compression::None, b"ab".to_vec()));
    }
}
