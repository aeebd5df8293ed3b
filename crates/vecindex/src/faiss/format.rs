//! The faiss 1.15 file format (../shared/specs/faiss-spec.md §1): little-endian, packed, a fourcc
//! per index record, the common header, and the records vecindex reads and writes.

use super::flat::FlatIndex;
use super::FaissIndex;
use crate::error::{Error, Result};
use crate::io::bytes::{ByteReader, ByteWriter};
use crate::metric::Metric;

pub const FLAT_L2: &[u8; 4] = b"IxF2";
pub const FLAT_IP: &[u8; 4] = b"IxFI";
pub const FLAT_ANY: &[u8; 4] = b"IxFl";
pub const ID_MAP: &[u8; 4] = b"IxMp";
pub const ID_MAP2: &[u8; 4] = b"IxM2";

/// faiss's `dummy` header fields: always 1<<20, ignored on read.
const DUMMY: i64 = 1 << 20;
/// faiss rejects larger dimensions on read.
const MAX_D: i32 = 1 << 20;

/// The header after every index fourcc.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Header {
    pub d: usize,
    pub ntotal: usize,
    pub is_trained: bool,
    pub metric: Metric,
}

fn metric_code(m: Metric) -> i32 {
    match m {
        Metric::InnerProduct => 0,
        Metric::L2 => 1,
        other => unreachable!("faiss indexes are L2 or IP, not {other}"),
    }
}

fn metric_name(code: i32) -> Option<&'static str> {
    Some(match code {
        0 => "INNER_PRODUCT",
        1 => "L2",
        2 => "L1",
        3 => "Linf",
        4 => "Lp",
        20 => "Canberra",
        21 => "BrayCurtis",
        22 => "JensenShannon",
        23 => "Jaccard",
        24 => "NaNEuclidean",
        25 => "ABS_INNER_PRODUCT",
        _ => return None,
    })
}

pub fn read_header(r: &mut ByteReader<'_>) -> Result<Header> {
    let d = r.i32("header d")?;
    if !(0..=MAX_D).contains(&d) {
        return Err(r.error(format!(
            "invalid dimension d = {d} (faiss allows 0..={MAX_D})"
        )));
    }
    let ntotal = r.i64("header ntotal")?;
    if ntotal < 0 {
        return Err(r.error(format!("invalid ntotal {ntotal}")));
    }
    r.i64("header dummy")?;
    r.i64("header dummy")?;
    let is_trained = r.bool("is_trained")?;
    let code = r.i32("metric_type")?;
    let name = metric_name(code).ok_or_else(|| r.error(format!("invalid metric type {code}")))?;
    if code > 1 {
        r.f32("metric_arg")?;
    }
    let metric = match code {
        0 => Metric::InnerProduct,
        1 => Metric::L2,
        _ => {
            return Err(Error::Unsupported(format!(
                "faiss metric {name} is not supported; vecindex reads L2 and INNER_PRODUCT indexes"
            )))
        }
    };
    let ntotal = usize::try_from(ntotal).map_err(|_| r.error("ntotal too large"))?;
    Ok(Header {
        d: d as usize,
        ntotal,
        is_trained,
        metric,
    })
}

pub fn write_header(w: &mut ByteWriter, fourcc: &[u8; 4], h: &Header) {
    w.bytes(fourcc);
    w.i32(h.d as i32);
    w.i64(h.ntotal as i64);
    w.i64(DUMMY);
    w.i64(DUMMY);
    w.u8(u8::from(h.is_trained));
    w.i32(metric_code(h.metric));
}

/// What a faiss file held: the index, its id map (IxMp/IxM2) and the record names read.
pub struct ReadIndex {
    pub index: FaissIndex,
    pub id_map: Option<Vec<i64>>,
    pub format: String,
}

/// Reads a whole faiss index file.
pub fn read_index_file(bytes: &[u8], src: &str) -> Result<ReadIndex> {
    let mut r = ByteReader::new(bytes, src);
    let fourcc = r.fourcc("index fourcc")?;
    if &fourcc == ID_MAP || &fourcc == ID_MAP2 {
        let outer = read_header(&mut r)?;
        let inner_cc = r.fourcc("wrapped index fourcc")?;
        let index = read_record(&mut r, inner_cc)?;
        let n = r.u64("id_map length")?;
        if n != outer.ntotal as u64 {
            return Err(r.error(format!(
                "IndexIDMap id_map size ({n}) does not match ntotal ({})",
                outer.ntotal
            )));
        }
        let ids = r.i64_vec(n, "id_map")?;
        if index.len() != outer.ntotal || index.dim() != outer.d || index.metric() != outer.metric {
            return Err(r.error(format!(
                "IndexIDMap header (d={}, ntotal={}, {}) disagrees with the wrapped index (d={}, ntotal={}, {})",
                outer.d,
                outer.ntotal,
                outer.metric,
                index.dim(),
                index.len(),
                index.metric()
            )));
        }
        Ok(ReadIndex {
            index,
            id_map: Some(ids),
            format: format!("faiss {}({})", cc_str(&fourcc), cc_str(&inner_cc)),
        })
    } else {
        let index = read_record(&mut r, fourcc)?;
        Ok(ReadIndex {
            index,
            id_map: None,
            format: format!("faiss {}", cc_str(&fourcc)),
        })
    }
}

fn cc_str(cc: &[u8; 4]) -> String {
    String::from_utf8_lossy(cc).to_string()
}

/// Reads one index record whose fourcc was just read.
fn read_record(r: &mut ByteReader<'_>, fourcc: [u8; 4]) -> Result<FaissIndex> {
    match &fourcc {
        FLAT_L2 | FLAT_IP | FLAT_ANY => Ok(FaissIndex::Flat(read_flat_body(r, &fourcc)?)),
        b"IHNf" | b"IwFl" | b"IvFl" | b"IvFL" => Err(Error::Unsupported(format!(
            "faiss index type '{}' is not supported by this version of vecindex (Flat only)",
            cc_str(&fourcc)
        ))),
        ID_MAP | ID_MAP2 => Err(r.error("nested IndexIDMap records are not supported")),
        _ => {
            let v = u32::from_le_bytes(fourcc);
            let printable = fourcc.iter().all(|b| b.is_ascii_graphic());
            Err(r.error(if printable {
                format!("not a faiss index this version reads: index type 0x{v:08x} (\"{}\") not recognized", cc_str(&fourcc))
            } else {
                format!("not a faiss index: index type 0x{v:08x} not recognized")
            }))
        }
    }
}

/// IndexFlat body: header, then u64 nfloats and the vectors.
pub fn read_flat_body(r: &mut ByteReader<'_>, fourcc: &[u8; 4]) -> Result<FlatIndex> {
    let h = read_header(r)?;
    let expected = if h.metric == Metric::L2 {
        FLAT_L2
    } else {
        FLAT_IP
    };
    if fourcc != FLAT_ANY && fourcc != expected {
        return Err(r.error(format!(
            "record {} carries metric {}, which does not match its type",
            cc_str(fourcc),
            h.metric
        )));
    }
    let nfloats = r.u64("flat codes size")?;
    let want = (h.ntotal as u64).checked_mul(h.d as u64);
    if want != Some(nfloats) {
        return Err(r.error(format!(
            "flat payload holds {nfloats} floats but ntotal × d = {} × {}",
            h.ntotal, h.d
        )));
    }
    if h.d == 0 {
        return Err(r.error("flat index of dimension 0"));
    }
    let data = r.f32_vec(nfloats, "flat vectors")?;
    Ok(FlatIndex::from_parts(data, h.d, h.metric))
}

pub fn write_flat(w: &mut ByteWriter, f: &FlatIndex) {
    let h = Header {
        d: f.dim(),
        ntotal: f.len(),
        is_trained: true,
        metric: f.metric(),
    };
    let cc = if f.metric() == Metric::L2 {
        FLAT_L2
    } else {
        FLAT_IP
    };
    write_header(w, cc, &h);
    w.u64(f.data().len() as u64);
    w.f32s(f.data());
}

/// Serialises an index, wrapped in IxMp when it has custom ids.
pub fn write_index(index: &FaissIndex, id_map: Option<&[i64]>) -> Vec<u8> {
    let mut w = ByteWriter::default();
    if let Some(ids) = id_map {
        let h = Header {
            d: index.dim(),
            ntotal: index.len(),
            is_trained: true,
            metric: index.metric(),
        };
        write_header(&mut w, ID_MAP, &h);
        write_record(&mut w, index);
        w.u64(ids.len() as u64);
        w.i64s(ids);
    } else {
        write_record(&mut w, index);
    }
    w.buf
}

fn write_record(w: &mut ByteWriter, index: &FaissIndex) {
    match index {
        FaissIndex::Flat(f) => write_flat(w, f),
    }
}
