//! The bounds-checked little-endian reader every file format goes through.
//!
//! Files are untrusted input: no size read from a file is used to index or allocate before it has
//! been checked against the bytes that are actually there.

use crate::error::{Error, Result};

/// Reads little-endian values from a byte slice, turning any overrun into a `Format` error that
/// names the field, the offset and the bytes needed vs available.
pub struct ByteReader<'a> {
    buf: &'a [u8],
    pos: usize,
    source: &'a str,
}

impl<'a> ByteReader<'a> {
    /// `source` names the file in error messages.
    pub fn new(buf: &'a [u8], source: &'a str) -> Self {
        ByteReader {
            buf,
            pos: 0,
            source,
        }
    }

    /// Current offset.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// A format error at the current offset.
    pub fn error(&self, reason: impl std::fmt::Display) -> Error {
        Error::format(
            self.source,
            format!("{reason} (at byte offset {})", self.pos),
        )
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.error(format!(
                "truncated file: {what} needs {n} bytes but only {} remain",
                self.remaining()
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Reads one byte; a `Format` error naming `what` if the input ends first.
    pub fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    /// Reads a little-endian `i32` (4 bytes); a `Format` error naming `what` if the input ends
    /// first.
    pub fn i32(&mut self, what: &str) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }

    /// Reads a little-endian `u32` (4 bytes); a `Format` error naming `what` if the input ends
    /// first.
    pub fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// Reads a little-endian `i64` (8 bytes); a `Format` error naming `what` if the input ends
    /// first.
    pub fn i64(&mut self, what: &str) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    /// Reads a little-endian `u64` (8 bytes); a `Format` error naming `what` if the input ends
    /// first.
    pub fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// Reads a little-endian `f32` (4 bytes); a `Format` error naming `what` if the input ends
    /// first.
    pub fn f32(&mut self, what: &str) -> Result<f32> {
        Ok(f32::from_le_bytes(self.array(what)?))
    }

    /// Four ASCII bytes.
    pub fn fourcc(&mut self, what: &str) -> Result<[u8; 4]> {
        self.array(what)
    }

    /// A 0/1 byte; anything else is an error (as faiss 1.15 does).
    pub fn bool(&mut self, what: &str) -> Result<bool> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(self.error(format!("invalid bool encoding 0x{b:02x} for {what}"))),
        }
    }

    /// `count` elements of `size` bytes, checked against what the file holds before any allocation.
    fn elems(&mut self, count: u64, size: usize, what: &str) -> Result<&'a [u8]> {
        let bytes = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(size))
            .filter(|&b| b <= self.remaining())
            .ok_or_else(|| {
                self.error(format!(
                    "{what} claims {count} elements of {size} bytes but only {} bytes remain",
                    self.remaining()
                ))
            })?;
        self.take(bytes, what)
    }

    /// Reads `count` little-endian `f32`s (4 bytes each), checked against the bytes left before
    /// allocating.
    pub fn f32_vec(&mut self, count: u64, what: &str) -> Result<Vec<f32>> {
        Ok(self
            .elems(count, 4, what)?
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// Reads `count` little-endian `i64`s (8 bytes each), checked against the bytes left before
    /// allocating.
    pub fn i64_vec(&mut self, count: u64, what: &str) -> Result<Vec<i64>> {
        Ok(self
            .elems(count, 8, what)?
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect())
    }

    /// Reads `count` little-endian `u64`s (8 bytes each), checked against the bytes left before
    /// allocating.
    pub fn u64_vec(&mut self, count: u64, what: &str) -> Result<Vec<u64>> {
        Ok(self
            .elems(count, 8, what)?
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect())
    }

    /// Reads `count` little-endian `i32`s (4 bytes each), checked against the bytes left before
    /// allocating.
    pub fn i32_vec(&mut self, count: u64, what: &str) -> Result<Vec<i32>> {
        Ok(self
            .elems(count, 4, what)?
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// Reads `count` bytes, checked against the bytes left before allocating.
    pub fn u8_vec(&mut self, count: u64, what: &str) -> Result<Vec<u8>> {
        Ok(self.elems(count, 1, what)?.to_vec())
    }

    /// Reads `count` little-endian `f64`s (8 bytes each), checked against the bytes left before
    /// allocating.
    pub fn f64_vec(&mut self, count: u64, what: &str) -> Result<Vec<f64>> {
        Ok(self
            .elems(count, 8, what)?
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect())
    }
}

/// Appends little-endian values to a byte buffer (the writing half of the formats).
#[derive(Default)]
pub struct ByteWriter {
    /// The bytes written so far.
    pub buf: Vec<u8>,
}

impl ByteWriter {
    /// Appends one byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    /// Appends `v` as 4 little-endian bytes.
    pub fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Appends `v` as 4 little-endian bytes.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Appends `v` as 8 little-endian bytes.
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Appends `v` as 8 little-endian bytes.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Appends `v` as 4 little-endian bytes.
    pub fn f32(&mut self, v: f32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Appends `b` as is.
    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    /// Appends each value as 4 little-endian bytes, with no length prefix.
    pub fn f32s(&mut self, v: &[f32]) {
        self.buf.reserve(v.len() * 4);
        for x in v {
            self.f32(*x);
        }
    }
    /// Appends each value as 8 little-endian bytes, with no length prefix.
    pub fn i64s(&mut self, v: &[i64]) {
        self.buf.reserve(v.len() * 8);
        for x in v {
            self.i64(*x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overruns_are_errors_with_context() {
        let b = [1u8, 0, 0, 0, 5];
        let mut r = ByteReader::new(&b, "x.bin");
        assert_eq!(r.i32("d").unwrap(), 1);
        let e = r.i32("ntotal").unwrap_err().to_string();
        assert!(
            e.contains("x.bin") && e.contains("ntotal") && e.contains("offset 4"),
            "{e}"
        );
        let mut r = ByteReader::new(&b, "x.bin");
        assert!(r.f32_vec(u64::MAX, "payload").is_err());
        assert!(r.f32_vec(1 << 62, "payload").is_err());
    }

    #[test]
    fn bool_rejects_other_bytes() {
        let mut r = ByteReader::new(&[1, 0, 2], "f");
        assert!(r.bool("a").unwrap());
        assert!(!r.bool("b").unwrap());
        assert!(r.bool("c").unwrap_err().to_string().contains("0x02"));
    }
}
