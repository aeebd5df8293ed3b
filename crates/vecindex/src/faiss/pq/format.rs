//! The `ProductQuantizer` block of faiss files (inside `IwPQ`): `d`, `M`, `nbits` as u64 and the
//! centroids as a float vector of exactly `d · 2^nbits` values (docs/file-formats.md), checked
//! as faiss 1.15.1's reader checks them before anything is allocated.

use super::{ProductQuantizer, MAX_NBITS};
use crate::error::Result;
use crate::io::bytes::{ByteReader, ByteWriter};

/// Reads a `ProductQuantizer` block of an index of dimension `d`.
pub fn read_pq_block(r: &mut ByteReader<'_>, d: usize) -> Result<ProductQuantizer> {
    let pd = r.u64("ProductQuantizer d")?;
    let m = r.u64("ProductQuantizer M")?;
    let nbits = r.u64("ProductQuantizer nbits")?;
    if pd != d as u64 {
        return Err(r.error(format!("ProductQuantizer d {pd} != index header d {d}")));
    }
    if m == 0 {
        return Err(r.error("invalid ProductQuantizer M=0 (must be > 0)"));
    }
    if nbits == 0 || nbits > MAX_NBITS as u64 {
        return Err(r.error(format!(
            "invalid ProductQuantizer nbits={nbits} (must be in [1, {MAX_NBITS}])"
        )));
    }
    if pd % m != 0 {
        return Err(r.error(format!(
            "ProductQuantizer d {pd} is not a multiple of M {m}"
        )));
    }
    let n = r.u64("ProductQuantizer centroids size")?;
    let want = (d as u64) << nbits;
    if n != want {
        return Err(r.error(format!(
            "ProductQuantizer centroids size {n} != d * ksub ({d} * {})",
            1u64 << nbits
        )));
    }
    let centroids = r.f32_vec(n, "ProductQuantizer centroids")?;
    Ok(ProductQuantizer::new(d, m as usize, nbits as usize)?.with_centroids(centroids))
}

/// Writes a `ProductQuantizer` block (an untrained quantizer writes zero centroids, as faiss).
pub fn write_pq_block(w: &mut ByteWriter, pq: &ProductQuantizer) {
    w.u64(pq.d as u64);
    w.u64(pq.m() as u64);
    w.u64(pq.shape.nbits as u64);
    let n = pq.d * pq.ksub();
    w.u64(n as u64);
    if pq.centroids.len() == n {
        w.f32s(&pq.centroids);
    } else {
        w.f32s(&vec![0.0; n]);
    }
}
