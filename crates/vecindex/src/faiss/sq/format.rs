//! The scalar-quantizer records of faiss files: the `ScalarQuantizer` block and the
//! `IndexScalarQuantizer` record `IxSQ` (docs/file-formats.md), checked as faiss 1.15.1's reader
//! checks them, plus the bounds every allocation needs.

use super::{QType, ScalarQuantizer, SqIndex};
use crate::error::Result;
use crate::faiss::format::{read_header, write_header, Header};
use crate::io::bytes::{ByteReader, ByteWriter};

/// fourcc of an `IndexScalarQuantizer`.
pub const SQ: &[u8; 4] = b"IxSQ";

/// Reads a `ScalarQuantizer` block of an index whose header is `h`.
pub fn read_sq_block(r: &mut ByteReader<'_>, h: &Header) -> Result<ScalarQuantizer> {
    let code = r.i32("ScalarQuantizer qtype")?;
    if !(0..27).contains(&code) {
        return Err(r.error(format!("invalid ScalarQuantizer qtype {code}")));
    }
    let qtype = QType::from_code(code)?;
    let rangestat = r.i32("ScalarQuantizer rangestat")?;
    let rangestat_arg = r.f32("ScalarQuantizer rangestat_arg")?;
    let d = r.u64("ScalarQuantizer d")?;
    if d != h.d as u64 {
        return Err(r.error(format!("ScalarQuantizer d {d} != index header d {}", h.d)));
    }
    // faiss ignores the stored code size and derives it from qtype and d.
    r.u64("ScalarQuantizer code_size")?;
    let n = r.u64("ScalarQuantizer trained size")?;
    let trained = r.f32_vec(n, "ScalarQuantizer trained")?;
    let expected = qtype.trained_len(h.d);
    if trained.is_empty() && expected > 0 {
        if h.is_trained {
            return Err(r.error(format!(
                "ScalarQuantizer trained size 0 != expected {expected} for qtype {code}, d {} \
                 (index is marked as trained)",
                h.d
            )));
        }
    } else if trained.len() != expected {
        return Err(r.error(format!(
            "ScalarQuantizer trained size {} != expected {expected} for qtype {code}, d {}",
            trained.len(),
            h.d
        )));
    } else if !trained.is_empty() && !h.is_trained {
        return Err(
            r.error("ScalarQuantizer has training data but index header is_trained is false")
        );
    }
    Ok(ScalarQuantizer {
        qtype,
        d: h.d,
        rangestat,
        rangestat_arg,
        trained,
    })
}

/// Writes a `ScalarQuantizer` block.
pub fn write_sq_block(w: &mut ByteWriter, sq: &ScalarQuantizer) {
    w.i32(sq.qtype.code());
    w.i32(sq.rangestat);
    w.f32(sq.rangestat_arg);
    w.u64(sq.d as u64);
    w.u64(sq.code_size() as u64);
    w.u64(sq.trained.len() as u64);
    w.f32s(&sq.trained);
}

/// The body of an `IxSQ` record (after its fourcc).
pub fn read_sq_body(r: &mut ByteReader<'_>) -> Result<SqIndex> {
    let h = read_header(r)?;
    if h.d == 0 {
        return Err(r.error("IndexScalarQuantizer of dimension 0"));
    }
    let sq = read_sq_block(r, &h)?;
    let n = r.u64("IndexScalarQuantizer codes size")?;
    let want = (h.ntotal as u64).checked_mul(sq.code_size() as u64);
    if want != Some(n) {
        return Err(r.error(format!(
            "IndexScalarQuantizer holds {n} code bytes, but ntotal {} × code size {} = {}",
            h.ntotal,
            sq.code_size(),
            want.map_or("overflow".to_string(), |w| w.to_string())
        )));
    }
    if h.ntotal > 0 && !sq.is_trained() {
        return Err(r.error("IndexScalarQuantizer holds codes but is not trained"));
    }
    let codes = r.u8_vec(n, "IndexScalarQuantizer codes")?;
    Ok(SqIndex::from_parts(sq, h.metric, codes))
}

/// Writes an `IxSQ` record.
pub fn write_sq(w: &mut ByteWriter, idx: &SqIndex) {
    let h = Header {
        d: idx.dim(),
        ntotal: idx.len(),
        is_trained: idx.sq.is_trained(),
        metric: idx.metric(),
    };
    write_header(w, SQ, &h);
    write_sq_block(w, &idx.sq);
    w.u64(idx.codes().len() as u64);
    w.bytes(idx.codes());
}
