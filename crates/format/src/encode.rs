//! The allocation-free encoder the agent uses: it writes one chunk into a byte slice that the
//! caller owns, and never allocates, panics or does I/O.

use crate::{checksum, ChunkKind, CHUNK_HEADER_LEN, FORMAT_VERSION, HEADER_LEN, MAGIC};

/// The slice given to the encoder is too small for what was asked of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodeError;

/// Writes one chunk into a caller-owned buffer.
///
/// Fields are appended with the `put_*` methods; [`ChunkEncoder::finish`] fills in the length
/// and checksum. If any `put_*` ran out of room the chunk is unusable and `finish` says so.
pub struct ChunkEncoder<'a> {
    buf: &'a mut [u8],
    pos: usize,
    overflowed: bool,
}

impl<'a> ChunkEncoder<'a> {
    /// Write the 16-byte file header into `buf` and return its length.
    pub fn file_header(buf: &mut [u8]) -> Result<usize, EncodeError> {
        let header = buf.get_mut(..HEADER_LEN).ok_or(EncodeError)?;
        header[..8].copy_from_slice(&MAGIC);
        header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        header[12..16].copy_from_slice(&0u32.to_le_bytes());
        Ok(HEADER_LEN)
    }

    /// Start a chunk of `kind` at the beginning of `buf`.
    pub fn new(buf: &'a mut [u8], kind: ChunkKind) -> Self {
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
    pub fn payload_len(&self) -> usize {
        self.pos.saturating_sub(CHUNK_HEADER_LEN)
    }

    /// Bytes still free in the buffer.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Append raw bytes (no length prefix).
    pub fn put_raw(&mut self, bytes: &[u8]) {
        match self.buf.get_mut(self.pos..self.pos + bytes.len()) {
            Some(dest) if !self.overflowed => {
                dest.copy_from_slice(bytes);
                self.pos += bytes.len();
            }
            _ => self.overflowed = true,
        }
    }

    /// Append a byte.
    pub fn put_u8(&mut self, value: u8) {
        self.put_raw(&[value]);
    }
    /// Append a little-endian `u16`.
    pub fn put_u16(&mut self, value: u16) {
        self.put_raw(&value.to_le_bytes());
    }
    /// Append a little-endian `u32`.
    pub fn put_u32(&mut self, value: u32) {
        self.put_raw(&value.to_le_bytes());
    }
    /// Append a little-endian `i32`.
    pub fn put_i32(&mut self, value: i32) {
        self.put_raw(&value.to_le_bytes());
    }
    /// Append a little-endian `u64`.
    pub fn put_u64(&mut self, value: u64) {
        self.put_raw(&value.to_le_bytes());
    }
    /// Append a length-prefixed byte string.
    pub fn put_bytes(&mut self, bytes: &[u8]) {
        self.put_u32(bytes.len() as u32);
        self.put_raw(bytes);
    }

    /// Overwrite a `u32` written earlier at payload offset `offset` (for counts known only at
    /// the end).
    pub fn patch_u32(&mut self, offset: usize, value: u32) {
        let at = CHUNK_HEADER_LEN + offset;
        if let Some(dest) = self.buf.get_mut(at..at + 4) {
            dest.copy_from_slice(&value.to_le_bytes());
        }
    }

    /// Fill in the length and checksum; return the whole chunk's size in bytes.
    pub fn finish(self) -> Result<usize, EncodeError> {
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
