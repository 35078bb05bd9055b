//! The framed protocol on a pod's attach socket, between `supervisor
//! attach` and the supervisor running the pod.
//!
//! A frame is a kind byte, a big-endian `u32` length and that many bytes
//! of payload (at most [`MAX_PAYLOAD`]). The client opens with `Hello`
//! (which container, whether it sends input, whether it wants a
//! terminal); the server answers `Attached` (what the container has:
//! stdin, tty) or `Error` and closes. Then the client sends `Stdin`,
//! `StdinClose` and `Resize`, the server `Stdout`, `Stderr`, and once the
//! instance has ended and its output is out, `Exit` with its exit code.

use thiserror::Error;

/// The largest payload of one frame: output is sent in pieces of this.
pub const MAX_PAYLOAD: usize = 64 * 1024;

const HEADER: usize = 5;

/// What a frame carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Client: the container to attach to (empty: the default one).
    Hello {
        container: String,
        stdin: bool,
        tty: bool,
    },
    /// Client: bytes for the container's stdin.
    Stdin(Vec<u8>),
    /// Client: its input has ended.
    StdinClose,
    /// Client: its terminal's size.
    Resize { rows: u16, cols: u16 },
    /// Server: attached to `container`, which has stdin and a tty or not.
    Attached {
        container: String,
        stdin: bool,
        tty: bool,
    },
    /// Server: what the container wrote on stdout (or its terminal).
    Stdout(Vec<u8>),
    /// Server: what it wrote on stderr.
    Stderr(Vec<u8>),
    /// Server: the instance ended with this exit code (128 + signal when
    /// a signal ended it).
    Exit(i32),
    /// Server: the attach is refused or ended, and why.
    Error(String),
}

/// A frame that cannot be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("frame of kind {kind}: length {len} is over the limit of {MAX_PAYLOAD} bytes")]
    TooLong { kind: u8, len: usize },
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    #[error("frame of kind {kind}: payload of {len} bytes is malformed")]
    Malformed { kind: u8, len: usize },
}

const HELLO: u8 = 1;
const STDIN: u8 = 2;
const STDIN_CLOSE: u8 = 3;
const RESIZE: u8 = 4;
const ATTACHED: u8 = 16;
const STDOUT: u8 = 17;
const STDERR: u8 = 18;
const EXIT: u8 = 19;
const ERROR: u8 = 20;

const FLAG_STDIN: u8 = 1;
const FLAG_TTY: u8 = 2;

fn flags(stdin: bool, tty: bool) -> u8 {
    (if stdin { FLAG_STDIN } else { 0 }) | (if tty { FLAG_TTY } else { 0 })
}

impl Frame {
    /// Append this frame's bytes to `out`. Payloads over [`MAX_PAYLOAD`]
    /// (output, input) must be split by the caller; see [`Frame::chunks`].
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (kind, payload): (u8, Vec<u8>) = match self {
            Frame::Hello {
                container,
                stdin,
                tty,
            } => (HELLO, named(flags(*stdin, *tty), container)),
            Frame::Stdin(data) => (STDIN, data.clone()),
            Frame::StdinClose => (STDIN_CLOSE, Vec::new()),
            Frame::Resize { rows, cols } => {
                let mut p = rows.to_be_bytes().to_vec();
                p.extend_from_slice(&cols.to_be_bytes());
                (RESIZE, p)
            }
            Frame::Attached {
                container,
                stdin,
                tty,
            } => (ATTACHED, named(flags(*stdin, *tty), container)),
            Frame::Stdout(data) => (STDOUT, data.clone()),
            Frame::Stderr(data) => (STDERR, data.clone()),
            Frame::Exit(code) => (EXIT, code.to_be_bytes().to_vec()),
            Frame::Error(message) => (ERROR, message.as_bytes().to_vec()),
        };
        debug_assert!(payload.len() <= MAX_PAYLOAD);
        out.push(kind);
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&payload);
    }

    /// Append `data` as frames of `make`, each at most [`MAX_PAYLOAD`].
    pub fn chunks(data: &[u8], make: fn(Vec<u8>) -> Frame, out: &mut Vec<u8>) {
        for piece in data.chunks(MAX_PAYLOAD) {
            make(piece.to_vec()).encode(out);
        }
    }

    fn decode(kind: u8, payload: &[u8]) -> Result<Frame, ProtocolError> {
        let malformed = || ProtocolError::Malformed {
            kind,
            len: payload.len(),
        };
        let named = |payload: &[u8]| -> Result<(bool, bool, String), ProtocolError> {
            let (&flags, name) = payload.split_first().ok_or_else(malformed)?;
            let name = String::from_utf8(name.to_vec()).map_err(|_| malformed())?;
            Ok((flags & FLAG_STDIN != 0, flags & FLAG_TTY != 0, name))
        };
        Ok(match kind {
            HELLO => {
                let (stdin, tty, container) = named(payload)?;
                Frame::Hello {
                    container,
                    stdin,
                    tty,
                }
            }
            STDIN => Frame::Stdin(payload.to_vec()),
            STDIN_CLOSE if payload.is_empty() => Frame::StdinClose,
            RESIZE if payload.len() == 4 => Frame::Resize {
                rows: u16::from_be_bytes([payload[0], payload[1]]),
                cols: u16::from_be_bytes([payload[2], payload[3]]),
            },
            ATTACHED => {
                let (stdin, tty, container) = named(payload)?;
                Frame::Attached {
                    container,
                    stdin,
                    tty,
                }
            }
            STDOUT => Frame::Stdout(payload.to_vec()),
            STDERR => Frame::Stderr(payload.to_vec()),
            EXIT if payload.len() == 4 => Frame::Exit(i32::from_be_bytes([
                payload[0], payload[1], payload[2], payload[3],
            ])),
            ERROR => Frame::Error(String::from_utf8_lossy(payload).into_owned()),
            STDIN_CLOSE | RESIZE | EXIT => return Err(malformed()),
            other => return Err(ProtocolError::UnknownKind(other)),
        })
    }
}

fn named(flags: u8, name: &str) -> Vec<u8> {
    let mut p = vec![flags];
    p.extend_from_slice(name.as_bytes());
    p
}

/// Frames out of a byte stream read in arbitrary pieces.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    /// Add bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, if one is in; an error ends the stream (a
    /// length over the limit is refused before its payload is read).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ProtocolError> {
        if self.buf.len() < HEADER {
            return Ok(None);
        }
        let kind = self.buf[0];
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > MAX_PAYLOAD {
            return Err(ProtocolError::TooLong { kind, len });
        }
        if self.buf.len() < HEADER + len {
            return Ok(None);
        }
        let frame = Frame::decode(kind, &self.buf[HEADER..HEADER + len]);
        self.buf.drain(..HEADER + len);
        frame.map(Some)
    }

    /// Bytes held that do not make a whole frame yet.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_when_read_a_byte_at_a_time() {
        let frames = [
            Frame::Hello {
                container: "web".into(),
                stdin: true,
                tty: false,
            },
            Frame::Stdin(b"hello\n".to_vec()),
            Frame::StdinClose,
            Frame::Resize {
                rows: 40,
                cols: 132,
            },
            Frame::Attached {
                container: String::new(),
                stdin: false,
                tty: true,
            },
            Frame::Stdout(vec![0, 255, 10]),
            Frame::Stderr(Vec::new()),
            Frame::Exit(-3),
            Frame::Error("container x is not running".into()),
        ];
        let mut bytes = Vec::new();
        for frame in &frames {
            frame.encode(&mut bytes);
        }
        let mut reader = FrameReader::default();
        let mut got = Vec::new();
        for byte in bytes {
            reader.push(&[byte]);
            while let Some(frame) = reader.next_frame().unwrap() {
                got.push(frame);
            }
        }
        assert_eq!(got, frames);
        assert_eq!(reader.pending(), 0);
    }

    #[test]
    fn long_output_is_split_into_frames_within_the_limit() {
        let data = vec![7u8; MAX_PAYLOAD * 2 + 3];
        let mut bytes = Vec::new();
        Frame::chunks(&data, Frame::Stdout, &mut bytes);
        let mut reader = FrameReader::default();
        reader.push(&bytes);
        let mut total = 0;
        while let Some(Frame::Stdout(piece)) = reader.next_frame().unwrap() {
            assert!(piece.len() <= MAX_PAYLOAD);
            total += piece.len();
        }
        assert_eq!(total, data.len());
    }

    #[test]
    fn bad_frames_are_refused_naming_the_kind() {
        let mut reader = FrameReader::default();
        reader.push(&[STDOUT, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(
            reader.next_frame(),
            Err(ProtocolError::TooLong {
                kind: STDOUT,
                len: u32::MAX as usize
            })
        );
        let mut reader = FrameReader::default();
        reader.push(&[99, 0, 0, 0, 0]);
        assert_eq!(reader.next_frame(), Err(ProtocolError::UnknownKind(99)));
        let mut reader = FrameReader::default();
        reader.push(&[RESIZE, 0, 0, 0, 1, 7]);
        assert_eq!(
            reader.next_frame(),
            Err(ProtocolError::Malformed {
                kind: RESIZE,
                len: 1
            })
        );
        let mut reader = FrameReader::default();
        reader.push(&[HELLO, 0, 0, 0, 0]);
        assert!(matches!(
            reader.next_frame(),
            Err(ProtocolError::Malformed { kind: HELLO, .. })
        ));
    }
}
