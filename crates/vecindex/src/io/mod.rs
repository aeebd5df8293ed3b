//! Embedding and result files, and atomic saving.
//!
//! Supported embedding files (chosen by extension): `.npy` (what `np.save(tensor.numpy())`
//! writes), `.safetensors` (what `safetensors.torch.save_file` writes; pick the tensor by name when
//! there are several) and `.fvecs`. Ids come from `.npy` integer arrays.

pub mod bytes;
pub mod npy;
mod save;

pub use save::{abandon_saves, atomic_write, sync_parent};
pub(crate) use save::{atomic_write_committing, write_uncommitted};

use crate::error::{Error, Result};
use crate::vectors::Vectors;
use std::fs::File;
use std::path::Path;

/// Reads a whole file, with the path in the error.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    check_is_file(path)?;
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// A missing path is an I/O "not found" error; a directory (or other non-file) is named as such,
/// not left to whatever the OS says when it is read.
pub fn check_is_file(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::invalid(format!(
            "{} is a directory, not a file; give the path of the index or data file",
            path.display()
        )));
    }
    Ok(())
}

/// Reads embeddings from `.npy`, `.safetensors` or `.fvecs`. `tensor` picks a tensor by name in a
/// safetensors file holding several.
pub fn read_vectors(path: &Path, tensor: Option<&str>) -> Result<Vectors> {
    let src = path.display().to_string();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    if tensor.is_some() && ext != "safetensors" {
        return Err(Error::invalid(format!(
            "--tensor applies to .safetensors files only, not {src}"
        )));
    }
    let bytes = read_file(path)?;
    match ext.as_str() {
        "npy" => npy::parse_npy(&bytes, &src)?.into_vectors(&src),
        "safetensors" => read_safetensors(&bytes, &src, tensor),
        "fvecs" => parse_fvecs(&bytes, &src),
        _ => Err(Error::invalid(format!(
            "{src}: unknown embedding file type '{ext}'; supported: .npy, .safetensors, .fvecs"
        ))),
    }
}

/// Reads 64-bit ids from a 1-D integer `.npy`.
pub fn read_ids(path: &Path) -> Result<Vec<i64>> {
    let src = path.display().to_string();
    npy::parse_npy(&read_file(path)?, &src)?.into_ids(&src)
}

/// `.fvecs`: each vector is an i32 dimension followed by that many f32 values.
pub fn parse_fvecs(bytes: &[u8], src: &str) -> Result<Vectors> {
    let mut r = bytes::ByteReader::new(bytes, src);
    let mut data = Vec::new();
    let mut dim = None;
    while r.remaining() > 0 {
        let d = r.i32("vector dimension")?;
        if d <= 0 {
            return Err(r.error(format!("invalid vector dimension {d}")));
        }
        match dim {
            None => dim = Some(d as usize),
            Some(x) if x != d as usize => {
                return Err(r.error(format!(
                    "vector {} has dimension {d}, the first had {x}",
                    data.len() / x
                )))
            }
            _ => {}
        }
        data.extend(r.f32_vec(d as u64, "vector values")?);
    }
    let dim = dim.ok_or_else(|| Error::format(src, "empty .fvecs file"))?;
    Vectors::new(data, dim)
}

/// `.fvecs` bytes of a matrix.
pub fn fvecs_bytes(v: &Vectors) -> Vec<u8> {
    let mut w = bytes::ByteWriter::default();
    for row in v.view().iter() {
        w.i32(row.len() as i32);
        w.f32s(row);
    }
    w.buf
}

fn read_safetensors(bytes: &[u8], src: &str, name: Option<&str>) -> Result<Vectors> {
    use safetensors::{Dtype, SafeTensors};
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::format(src, format!("not a valid safetensors file: {e}")))?;
    let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
    names.sort();
    let chosen = match name {
        Some(n) => n.to_string(),
        None if names.len() == 1 => names[0].clone(),
        None if names.is_empty() => return Err(Error::format(src, "the file holds no tensors")),
        None => {
            return Err(Error::invalid(format!(
                "{src} holds several tensors; pick one with --tensor NAME: {}",
                names.join(", ")
            )))
        }
    };
    let t = st.tensor(&chosen).map_err(|_| {
        Error::invalid(format!(
            "{src} has no tensor '{chosen}'; tensors: {}",
            names.join(", ")
        ))
    })?;
    let shape = t.shape().to_vec();
    let (rows, dim) = match shape.as_slice() {
        [r, d] => (*r, *d),
        [d] => (1, *d),
        s => {
            return Err(Error::format(
                src,
                format!("tensor '{chosen}' has shape {s:?}; expected 2-D embeddings"),
            ))
        }
    };
    let raw = t.data();
    let data: Vec<f32> = match t.dtype() {
        Dtype::F32 => raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F64 => raw
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
        Dtype::BF16 => raw
            .chunks_exact(2)
            .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
            .collect(),
        other => {
            return Err(Error::format(
                src,
                format!("tensor '{chosen}' has dtype {other:?}; supported: F32, F64, BF16"),
            ))
        }
    };
    if dim == 0 || data.len() != rows * dim {
        return Err(Error::format(
            src,
            format!("tensor '{chosen}' has an invalid shape {shape:?}"),
        ));
    }
    Vectors::new(data, dim)
}

/// A fast 64-bit digest (not cryptographic), fed in pieces: it tells whether a file is the one
/// its metadata was written for. Four 64-bit lanes, each a multiply-rotate of 8-byte words.
pub struct Digest64 {
    lanes: [u64; 4],
    len: u64,
}

impl Default for Digest64 {
    fn default() -> Self {
        Digest64 {
            lanes: [
                0x9e37_79b9_7f4a_7c15,
                0xc2b2_ae3d_27d4_eb4f,
                0x1656_67b1_9e37_79f9,
                0x27d4_eb2f_1656_67c5,
            ],
            len: 0,
        }
    }
}

impl Digest64 {
    const PRIME: u64 = 0x9fb2_1c65_1e98_df25;

    /// Feeds `bytes`. Every call but the last must pass a multiple of 32 bytes (the last may
    /// pass any length; it is zero-padded to a block, and the length is part of the digest).
    pub fn update(&mut self, bytes: &[u8]) {
        let mut blocks = bytes.chunks_exact(32);
        for b in &mut blocks {
            self.block(b);
        }
        let rest = blocks.remainder();
        if !rest.is_empty() {
            let mut pad = [0u8; 32];
            pad[..rest.len()].copy_from_slice(rest);
            self.block(&pad);
        }
        self.len += bytes.len() as u64;
    }

    #[inline]
    fn block(&mut self, b: &[u8]) {
        for (j, lane) in self.lanes.iter_mut().enumerate() {
            let w = u64::from_le_bytes(b[8 * j..8 * j + 8].try_into().expect("8 bytes"));
            *lane = (*lane ^ w).wrapping_mul(Self::PRIME).rotate_left(31);
        }
    }

    /// The digest of everything fed.
    pub fn finish(&self) -> u64 {
        let mut h = self.len.wrapping_mul(Self::PRIME);
        for &l in &self.lanes {
            h = (h ^ l).wrapping_mul(Self::PRIME).rotate_left(27);
        }
        h ^ (h >> 29)
    }
}

/// The digest of a byte slice.
pub fn digest64(bytes: &[u8]) -> u64 {
    let mut d = Digest64::default();
    d.update(bytes);
    d.finish()
}

/// `(size, digest)` of a file, read in 1 MiB pieces (never held whole in memory).
pub fn file_digest64(path: &Path) -> Result<(u64, u64)> {
    use std::io::Read;
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut d = Digest64::default();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        // Fill the buffer fully (short reads happen) so only the last piece is not a multiple of 32.
        let mut filled = 0;
        while filled < buf.len() {
            match f.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(k) => filled += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        d.update(&buf[..filled]);
        if filled < buf.len() {
            return Ok((d.len, d.finish()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_pieces_and_files_agree() {
        let bytes: Vec<u8> = (0..(3 << 20) + 13)
            .map(|i| (i * 7 + i / 251) as u8)
            .collect();
        let whole = digest64(&bytes);
        let mut d = Digest64::default();
        d.update(&bytes[..1 << 20]);
        d.update(&bytes[1 << 20..]);
        assert_eq!(d.finish(), whole);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(file_digest64(&p).unwrap(), (bytes.len() as u64, whole));
        // any one changed byte, or a zero appended, changes it
        let mut other = bytes.clone();
        other[2 << 20] ^= 1;
        assert_ne!(digest64(&other), whole);
        other = bytes.clone();
        other.push(0);
        assert_ne!(digest64(&other), whole);
    }

    #[test]
    fn fvecs_round_trip_and_errors() {
        let v = Vectors::new(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3).unwrap();
        let b = fvecs_bytes(&v);
        assert_eq!(parse_fvecs(&b, "t").unwrap(), v);
        for cut in 1..b.len() {
            if cut != 16 {
                assert!(parse_fvecs(&b[..cut], "t").is_err(), "{cut}");
            }
        }
        let mut bad = b.clone();
        bad[16] = 2; // second vector claims dimension 2
        assert!(parse_fvecs(&bad, "t").is_err());
    }

    #[test]
    fn safetensors_reading() {
        // Build a file by hand: header JSON + data.
        let mk = |tensors: &[(&str, &str, [usize; 2], Vec<u8>)]| {
            let mut off = 0;
            let mut parts = vec![];
            let mut data = vec![];
            for (n, dt, shape, bytes) in tensors {
                parts.push(format!(
                    "\"{n}\":{{\"dtype\":\"{dt}\",\"shape\":[{},{}],\"data_offsets\":[{off},{}]}}",
                    shape[0],
                    shape[1],
                    off + bytes.len()
                ));
                off += bytes.len();
                data.extend_from_slice(bytes);
            }
            let h = format!("{{{}}}", parts.join(","));
            let mut out = (h.len() as u64).to_le_bytes().to_vec();
            out.extend_from_slice(h.as_bytes());
            out.extend(data);
            out
        };
        let f: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let one = mk(&[("emb", "F32", [2, 2], f.clone())]);
        let v = read_safetensors(&one, "t", None).unwrap();
        assert_eq!(v.as_slice(), &[1.0, 2.0, 3.0, 4.0]);
        let two = mk(&[("a", "F32", [2, 2], f.clone()), ("b", "F32", [1, 4], f)]);
        let e = read_safetensors(&two, "t", None).unwrap_err().to_string();
        assert!(e.contains("--tensor") && e.contains("a, b"), "{e}");
        assert_eq!(read_safetensors(&two, "t", Some("b")).unwrap().dim(), 4);
        assert!(read_safetensors(&two, "t", Some("c")).is_err());
        assert!(read_safetensors(b"garbage", "t", None).is_err());
    }
}
