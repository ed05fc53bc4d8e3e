//! The allocation-free field encoder under the typed chunks of [`crate::chunks`]: it writes one
//! chunk into a byte slice that the caller owns, and never allocates, panics or does I/O. Only
//! the format crate spells out fields; everyone else encodes whole chunks.

use crate::{checksum, ChunkKind, CHUNK_HEADER_LEN, FORMAT_VERSION, HEADER_LEN, MAGIC};

/// The slice given to the encoder is too small for what was asked of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodeError;

/// What encoding a batch chunk did: the chunk's size in bytes and how many records it took
/// (the caller writes the rest in further chunks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// The whole chunk's size in bytes.
    pub len: usize,
    /// Records taken into the chunk.
    pub taken: usize,
}

/// Write the 16-byte file header (of [`FORMAT_VERSION`]) into `buf` and return its length.
pub fn encode_file_header(buf: &mut [u8]) -> Result<usize, EncodeError> {
    let header = buf.get_mut(..HEADER_LEN).ok_or(EncodeError)?;
    header[..8].copy_from_slice(&MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[12..16].copy_from_slice(&0u32.to_le_bytes());
    Ok(HEADER_LEN)
}

/// Writes one chunk into a caller-owned buffer.
///
/// Fields are appended with the `put_*` methods; [`ChunkEncoder::finish`] fills in the length
/// and checksum. If any `put_*` ran out of room the chunk is unusable and `finish` says so.
pub(crate) struct ChunkEncoder<'a> {
    buf: &'a mut [u8],
    pos: usize,
    overflowed: bool,
}

impl<'a> ChunkEncoder<'a> {
    /// Start a chunk of `kind` at the beginning of `buf`.
    pub(crate) fn new(buf: &'a mut [u8], kind: ChunkKind) -> Self {
        let mut encoder = ChunkEncoder {
            buf,
            pos: 0,
            overflowed: false,
        };
        encoder.put_u16(kind as u16);
        encoder.put_u16(0);
        encoder.put_u32(0); // length, filled in by finish
        encoder.put_u32(0); // checksum, filled in by finish
        encoder
    }

    /// Bytes of payload written so far.
    pub(crate) fn payload_len(&self) -> usize {
        self.pos.saturating_sub(CHUNK_HEADER_LEN)
    }

    /// Has a `put_*` run out of room?
    pub(crate) fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Bytes still free in the buffer.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Append raw bytes (no length prefix).
    pub(crate) fn put_raw(&mut self, bytes: &[u8]) {
        match self.buf.get_mut(self.pos..self.pos + bytes.len()) {
            Some(dest) if !self.overflowed => {
                dest.copy_from_slice(bytes);
                self.pos += bytes.len();
            }
            _ => self.overflowed = true,
        }
    }

    /// Append a byte.
    pub(crate) fn put_u8(&mut self, value: u8) {
        self.put_raw(&[value]);
    }
    /// Append a little-endian `u16`.
    pub(crate) fn put_u16(&mut self, value: u16) {
        self.put_raw(&value.to_le_bytes());
    }
    /// Append a little-endian `u32`.
    pub(crate) fn put_u32(&mut self, value: u32) {
        self.put_raw(&value.to_le_bytes());
    }
    /// Append a little-endian `i32`.
    pub(crate) fn put_i32(&mut self, value: i32) {
        self.put_raw(&value.to_le_bytes());
    }
    /// Append a little-endian `u64`.
    pub(crate) fn put_u64(&mut self, value: u64) {
        self.put_raw(&value.to_le_bytes());
    }
    /// Append a length-prefixed byte string.
    pub(crate) fn put_bytes(&mut self, bytes: &[u8]) {
        self.put_u32(bytes.len() as u32);
        self.put_raw(bytes);
    }

    /// Overwrite a `u32` written earlier at payload offset `offset` (for counts known only at
    /// the end).
    pub(crate) fn patch_u32(&mut self, offset: usize, value: u32) {
        let at = CHUNK_HEADER_LEN + offset;
        if let Some(dest) = self.buf.get_mut(at..at + 4) {
            dest.copy_from_slice(&value.to_le_bytes());
        }
    }

    /// Fill in the length and checksum; return the whole chunk's size in bytes.
    pub(crate) fn finish(self) -> Result<usize, EncodeError> {
        if self.overflowed {
            return Err(EncodeError);
        }
        let payload_len = (self.pos - CHUNK_HEADER_LEN) as u32;
        self.buf[4..8].copy_from_slice(&payload_len.to_le_bytes());
        let crc = checksum(&self.buf[..8], &self.buf[CHUNK_HEADER_LEN..self.pos]);
        self.buf[8..12].copy_from_slice(&crc.to_le_bytes());
        Ok(self.pos)
    }
}
