//! NumPy `.npy` (v1–v3) reading and writing, and `.npz` (uncompressed zip of `.npy`) I/O.
//!
//! Reads what `np.save` writes: little- or big-endian f32/f64/f16 (converted to f32) for
//! embeddings and i64/i32/u32/u64 for ids, C or Fortran order (Fortran is transposed on read).

use crate::error::{Error, Result};
use crate::io::bytes::ByteReader;
use crate::vectors::Vectors;

/// An array read from a `.npy`: its shape and values, widened to f64 or kept as i64.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    /// Float values (f16, f32 or f64 in the file) as `f32`, row-major.
    Float(Vec<f32>),
    /// Integer values (i32, i64, u32 or u64 in the file) as `i64`; a `u64` above `i64::MAX` is a
    /// `Format` error.
    Int(Vec<i64>),
}

/// A parsed `.npy` array.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// The dimensions from the header, outermost first.
    pub shape: Vec<usize>,
    /// The values in row-major order (Fortran-order files are transposed on read).
    pub data: NpyData,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    F16,
    F32,
    F64,
    I32,
    I64,
    U32,
    U64,
}

fn parse_descr(descr: &str, src: &str) -> Result<(Kind, bool)> {
    let bad = || {
        Error::format(
            src,
            format!(
                "unsupported .npy dtype '{descr}': expected float32, float64 or float16 \
                 (embeddings) or int64/int32/uint32/uint64 (ids)"
            ),
        )
    };
    // The byte-order mark is one ASCII character; anything else (even a multi-byte character
    // from a hostile header) is simply not a supported dtype.
    let mut chars = descr.chars();
    let order = chars.next();
    let rest = chars.as_str();
    let big = match order {
        Some('<' | '|' | '=') => false,
        Some('>') => true,
        _ => return Err(bad()),
    };
    let kind = match rest {
        "f2" => Kind::F16,
        "f4" => Kind::F32,
        "f8" => Kind::F64,
        "i4" => Kind::I32,
        "i8" => Kind::I64,
        "u4" => Kind::U32,
        "u8" => Kind::U64,
        _ => return Err(bad()),
    };
    Ok((kind, big))
}

fn header_value<'h>(header: &'h str, key: &str) -> Option<&'h str> {
    let pat = format!("'{key}':");
    let start = header.find(&pat)? + pat.len();
    Some(header[start..].trim_start())
}

/// Parses the `.npy` header dictionary: dtype descr, fortran order, shape.
fn parse_header(h: &str, src: &str) -> Result<(String, bool, Vec<usize>)> {
    let bad = |what: &str| Error::format(src, format!("malformed .npy header ({what}): {h}"));
    let d = header_value(h, "descr").ok_or_else(|| bad("no descr"))?;
    let q = d.chars().next().ok_or_else(|| bad("descr"))?;
    if q != '\'' && q != '"' {
        return Err(bad(
            "descr is not a simple dtype string (structured arrays are not supported)",
        ));
    }
    let end = d[1..].find(q).ok_or_else(|| bad("descr"))?;
    let descr = d[1..1 + end].to_string();
    let f = header_value(h, "fortran_order").ok_or_else(|| bad("no fortran_order"))?;
    let fortran = if f.starts_with("True") {
        true
    } else if f.starts_with("False") {
        false
    } else {
        return Err(bad("fortran_order"));
    };
    let s = header_value(h, "shape").ok_or_else(|| bad("no shape"))?;
    let s = s.strip_prefix('(').ok_or_else(|| bad("shape"))?;
    let close = s.find(')').ok_or_else(|| bad("shape"))?;
    let shape = s[..close]
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| bad("shape"))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((descr, fortran, shape))
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    if exp == 0 {
        // Zero or subnormal: man · 2^-24.
        let v = man as f32 * 2f32.powi(-24);
        return if sign != 0 { -v } else { v };
    }
    let bits = if exp == 31 {
        sign | 0x7f80_0000 | (man << 13)
    } else {
        sign | ((exp + 112) << 23) | (man << 13)
    };
    f32::from_bits(bits)
}

/// Parses a whole `.npy` file held in memory.
pub fn parse_npy(bytes: &[u8], src: &str) -> Result<NpyArray> {
    let mut r = ByteReader::new(bytes, src);
    let magic = r.take(6, ".npy magic")?;
    if magic != b"\x93NUMPY" {
        return Err(Error::format(
            src,
            "not a .npy file (missing \\x93NUMPY magic)",
        ));
    }
    let major = r.u8("version")?;
    let _minor = r.u8("version")?;
    let hlen = match major {
        1 => u16::from_le_bytes([r.u8("header length")?, r.u8("header length")?]) as usize,
        2 | 3 => r.u32("header length")? as usize,
        v => return Err(Error::format(src, format!("unsupported .npy version {v}"))),
    };
    let header = r.take(hlen, ".npy header")?;
    let header = std::str::from_utf8(header)
        .map_err(|_| Error::format(src, "the .npy header is not text"))?;
    let (descr, fortran, shape) = parse_header(header, src)?;
    let (kind, big) = parse_descr(&descr, src)?;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &b| a.checked_mul(b))
        .ok_or_else(|| Error::format(src, "shape overflows"))?;
    let size = match kind {
        Kind::F16 => 2,
        Kind::F32 | Kind::I32 | Kind::U32 => 4,
        Kind::F64 | Kind::I64 | Kind::U64 => 8,
    };
    let nbytes = count
        .checked_mul(size)
        .ok_or_else(|| Error::format(src, "shape overflows"))?;
    let raw = r.take(nbytes, "array data")?;
    let word = |c: &[u8]| -> u64 {
        let mut b = [0u8; 8];
        if big {
            for (i, x) in c.iter().rev().enumerate() {
                b[i] = *x;
            }
        } else {
            b[..c.len()].copy_from_slice(c);
        }
        u64::from_le_bytes(b)
    };
    let chunks = raw.chunks_exact(size);
    let mut data = match kind {
        Kind::F16 => NpyData::Float(chunks.map(|c| f16_to_f32(word(c) as u16)).collect()),
        Kind::F32 => NpyData::Float(chunks.map(|c| f32::from_bits(word(c) as u32)).collect()),
        Kind::F64 => NpyData::Float(chunks.map(|c| f64::from_bits(word(c)) as f32).collect()),
        Kind::I32 => NpyData::Int(chunks.map(|c| word(c) as u32 as i32 as i64).collect()),
        Kind::I64 => NpyData::Int(chunks.map(|c| word(c) as i64).collect()),
        Kind::U32 => NpyData::Int(chunks.map(|c| word(c) as u32 as i64).collect()),
        Kind::U64 => NpyData::Int(
            chunks
                .map(|c| {
                    i64::try_from(word(c))
                        .map_err(|_| Error::format(src, "uint64 value does not fit in int64"))
                })
                .collect::<Result<Vec<_>>>()?,
        ),
    };
    if fortran && shape.len() == 2 {
        let (rows, cols) = (shape[0], shape[1]);
        fn transpose<T: Copy + Default>(v: &[T], rows: usize, cols: usize) -> Vec<T> {
            let mut out = vec![T::default(); v.len()];
            for c in 0..cols {
                for r in 0..rows {
                    out[r * cols + c] = v[c * rows + r];
                }
            }
            out
        }
        data = match data {
            NpyData::Float(v) => NpyData::Float(transpose(&v, rows, cols)),
            NpyData::Int(v) => NpyData::Int(transpose(&v, rows, cols)),
        };
    } else if fortran && shape.len() > 2 {
        return Err(Error::format(
            src,
            "Fortran-order arrays of more than 2 dimensions are not supported",
        ));
    }
    Ok(NpyArray { shape, data })
}

impl NpyArray {
    /// As an embedding matrix: 2-D float (1-D is one row).
    pub fn into_vectors(self, src: &str) -> Result<Vectors> {
        let (rows, dim) = match self.shape.as_slice() {
            [r, d] => (*r, *d),
            [d] => (1, *d),
            s => {
                return Err(Error::format(
                    src,
                    format!("expected a 2-D array of embeddings, got shape {s:?}"),
                ))
            }
        };
        let data = match self.data {
            NpyData::Float(v) => v,
            NpyData::Int(_) => {
                return Err(Error::format(
                    src,
                    "expected float embeddings, got an integer array",
                ))
            }
        };
        if dim == 0 {
            return Err(Error::format(
                src,
                format!("embeddings of dimension 0 (shape {:?})", self.shape),
            ));
        }
        debug_assert_eq!(data.len(), rows * dim);
        Vectors::new(data, dim)
    }

    /// As a 1-D list of ids (an (n, 1) array is accepted too).
    pub fn into_ids(self, src: &str) -> Result<Vec<i64>> {
        match (self.shape.as_slice(), self.data) {
            ([_] | [_, 1], NpyData::Int(v)) => Ok(v),
            (_, NpyData::Float(_)) => {
                Err(Error::format(src, "ids must be an integer array (int64)"))
            }
            (s, _) => Err(Error::format(
                src,
                format!("ids must be a 1-D array, got shape {s:?}"),
            )),
        }
    }
}

fn npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let shape_s = match shape {
        [n] => format!("({n},)"),
        s => format!(
            "({})",
            s.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_s}, }}");
    // Pad with spaces so that data starts at a multiple of 64 bytes, newline-terminated.
    let total = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat(total.div_ceil(64) * 64 - total));
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// `.npy` bytes of a row-major f32 array with the given shape.
pub fn npy_f32(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let mut out = npy_header("<f4", shape);
    out.reserve(data.len() * 4);
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// `.npy` bytes of a row-major i64 array with the given shape.
pub fn npy_i64(shape: &[usize], data: &[i64]) -> Vec<u8> {
    let mut out = npy_header("<i8", shape);
    out.reserve(data.len() * 8);
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let t = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *e = c;
        }
        t
    });
    let mut c = !0u32;
    for b in data {
        c = t[((c ^ *b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// An uncompressed `.npz` (zip, method "stored") holding the named `.npy` members.
pub fn npz_bytes(members: &[(&str, Vec<u8>)]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in members {
        let name = format!("{name}.npy");
        let size = u32::try_from(data.len())
            .map_err(|_| Error::invalid("result array too large for a .npz (over 4 GiB)"))?;
        let offset = u32::try_from(out.len())
            .map_err(|_| Error::invalid("result too large for a .npz (over 4 GiB in all)"))?;
        let crc = crc32(data);
        let fields = |w: &mut Vec<u8>| {
            w.extend_from_slice(&20u16.to_le_bytes()); // version needed
            w.extend_from_slice(&0u16.to_le_bytes()); // flags
            w.extend_from_slice(&0u16.to_le_bytes()); // method: stored
            w.extend_from_slice(&0u16.to_le_bytes()); // time
            w.extend_from_slice(&0x21u16.to_le_bytes()); // date 1980-01-01
            w.extend_from_slice(&crc.to_le_bytes());
            w.extend_from_slice(&size.to_le_bytes());
            w.extend_from_slice(&size.to_le_bytes());
            w.extend_from_slice(&(name.len() as u16).to_le_bytes());
            w.extend_from_slice(&0u16.to_le_bytes()); // extra length
        };
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        fields(&mut out);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);

        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes()); // version made by
        fields(&mut central);
        central.extend_from_slice(&0u16.to_le_bytes()); // comment length
        central.extend_from_slice(&0u16.to_le_bytes()); // disk number
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    // Each member fits in 4 GiB, but together they may not: the zip's offsets are 32-bit.
    let cd_offset = u32::try_from(out.len()).map_err(|_| {
        Error::invalid(
            "result too large for a .npz (over 4 GiB in all): query in parts, or write JSON \
             lines (--output -)",
        )
    })?;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    Ok(out)
}

/// The compressed size from a zip64 extended-information extra field, if present.
fn zip64_compressed_size(mut extra: &[u8]) -> Option<u64> {
    while extra.len() >= 4 {
        let id = u16::from_le_bytes([extra[0], extra[1]]);
        let len = u16::from_le_bytes([extra[2], extra[3]]) as usize;
        let body = extra.get(4..4 + len)?;
        if id == 1 && len >= 16 {
            return Some(u64::from_le_bytes(body[8..16].try_into().ok()?));
        }
        extra = &extra[4 + len..];
    }
    None
}

/// Reads the members of an uncompressed `.npz` (as written by `npz_bytes` or `np.savez`).
pub fn parse_npz(bytes: &[u8], src: &str) -> Result<Vec<(String, NpyArray)>> {
    let mut r = ByteReader::new(bytes, src);
    let mut out = Vec::new();
    while r.remaining() >= 4 {
        let sig = r.u32("zip signature")?;
        if sig != 0x0403_4b50 {
            break;
        }
        let _ver = r.take(2, "zip version")?;
        let flags = u16::from_le_bytes(r.take(2, "zip flags")?.try_into().expect("2"));
        let method = u16::from_le_bytes(r.take(2, "zip method")?.try_into().expect("2"));
        r.take(4, "zip time")?;
        r.u32("crc")?;
        let csize = r.u32("compressed size")? as usize;
        let _usize = r.u32("size")?;
        let nlen = u16::from_le_bytes(r.take(2, "name length")?.try_into().expect("2")) as usize;
        let xlen = u16::from_le_bytes(r.take(2, "extra length")?.try_into().expect("2")) as usize;
        if method != 0 || flags & 8 != 0 {
            return Err(Error::format(
                src,
                "compressed .npz members are not supported (use np.savez, not savez_compressed)",
            ));
        }
        let name = String::from_utf8_lossy(r.take(nlen, "member name")?).to_string();
        let extra = r.take(xlen, "extra field")?;
        let mut csize = csize as u64;
        if csize == 0xFFFF_FFFF {
            // Zip64 (numpy's savez forces it): the sizes live in extra field 0x0001.
            csize = zip64_compressed_size(extra)
                .ok_or_else(|| Error::format(src, "zip64 member without a size field"))?;
        }
        let csize = usize::try_from(csize).map_err(|_| Error::format(src, "member too large"))?;
        let data = r.take(csize, "member data")?;
        let name = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        out.push((name.clone(), parse_npy(data, &format!("{src}:{name}"))?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_f32_and_i64() {
        let data = [1.5f32, -2.0, 3.25, 4.0, 5.0, 6.0];
        let a = parse_npy(&npy_f32(&[2, 3], &data), "t").unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        let v = a.into_vectors("t").unwrap();
        assert_eq!(v.as_slice(), &data);
        let ids = [7i64, -1, 1 << 40];
        let b = parse_npy(&npy_i64(&[3], &ids), "t").unwrap();
        assert_eq!(b.into_ids("t").unwrap(), ids.to_vec());
    }

    #[test]
    fn header_is_64_byte_aligned() {
        let b = npy_f32(&[1000, 384], &vec![0.0; 384_000]);
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
    }

    #[test]
    fn f16_conversion() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert!(f16_to_f32(0x7c00).is_infinite());
    }

    #[test]
    fn truncated_and_foreign_files_are_errors() {
        let b = npy_f32(&[2, 3], &[0.0; 6]);
        for cut in 0..b.len() {
            assert!(parse_npy(&b[..cut], "t").is_err(), "cut at {cut}");
        }
        assert!(parse_npy(b"PK\x03\x04 not npy at all", "t").is_err());
    }

    #[test]
    fn npz_round_trip_and_crc() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        let z = npz_bytes(&[
            ("ids", npy_i64(&[1, 2], &[3, 4])),
            ("distances", npy_f32(&[1, 2], &[0.5, 1.5])),
        ])
        .unwrap();
        let m = parse_npz(&z, "t").unwrap();
        assert_eq!(m[0].0, "ids");
        assert_eq!(m[1].1.data, NpyData::Float(vec![0.5, 1.5]));
    }
}
