//! The faiss 1.15 file format (docs/file-formats.md): little-endian, packed, a fourcc
//! per index record, the common header, and the records vecindex reads and writes.
//!
//! One file (over 500 lines) on purpose: the reader and the writer of each record sit side by
//! side, so a field read is visibly the field written (docs/file-formats.md follows this order).

use super::flat::FlatIndex;
use super::hnsw::{HnswGraph, HnswIndex, HnswStorage};
use super::invlists::{read_array_lists, write_array_lists};
use super::ivf::{DirectMap, IvfCodes, IvfIndex, IvfPq, ListCodec};
use super::pq::format::{read_pq_block, write_pq_block};
use super::refine::{check_k_factor, RefineIndex};
use super::sq::format::{read_sq_block, read_sq_body, write_sq, write_sq_block, SQ};
use super::FaissIndex;
use crate::error::{Error, Result};
use crate::io::bytes::{ByteReader, ByteWriter};
use crate::metric::Metric;

/// Fourcc of `IndexFlatL2` (its header metric must be L2).
pub const FLAT_L2: &[u8; 4] = b"IxF2";
/// Fourcc of `IndexFlatIP` (its header metric must be inner product).
pub const FLAT_IP: &[u8; 4] = b"IxFI";
/// Fourcc of `IndexFlat` of any metric: read, never written (saved as `IxF2` / `IxFI`).
pub const FLAT_ANY: &[u8; 4] = b"IxFl";
/// Fourcc of `IndexIDMap`: a top-level wrapper holding one 64-bit id per row.
pub const ID_MAP: &[u8; 4] = b"IxMp";
/// Fourcc of `IndexIDMap2`: the same bytes as `IxMp`, written only when the file read was one.
pub const ID_MAP2: &[u8; 4] = b"IxM2";
/// Fourcc of `IndexIVFFlat`, the IVF record vecindex reads and writes.
pub const IVF_FLAT: &[u8; 4] = b"IwFl";
/// fourcc of an `IndexIVFScalarQuantizer`.
pub const IVF_SQ: &[u8; 4] = b"IwSq";
/// The same without the `by_residual` byte (older faiss; read, never written).
pub const IVF_SQ_LEGACY: &[u8; 4] = b"IwSQ";
/// fourcc of an `IndexIVFPQ`.
pub const IVF_PQ: &[u8; 4] = b"IwPQ";
/// Fourcc of `IndexHNSWFlat` (an HNSW graph over flat storage), the only HNSW record read.
pub const HNSW_FLAT: &[u8; 4] = b"IHNf";
/// fourcc of an `IndexRefine` / `IndexRefineFlat`.
pub const REFINE_FLAT: &[u8; 4] = b"IxRF";
/// fourcc of an `IndexHNSWSQ` (HNSW over scalar-quantizer storage).
pub const HNSW_SQ: &[u8; 4] = b"IHNs";
/// Fourcc of the legacy `IndexIVFFlat` with `f32` list vectors: read only, saved as `IwFl`.
pub const IVF_FLAT_LEGACY: &[u8; 4] = b"IvFl";
/// Fourcc of the legacy `IndexIVFFlat` with list vectors stored as bytes: read only, saved as
/// `IwFl`.
pub const IVF_FLAT_LEGACY_U8: &[u8; 4] = b"IvFL";

/// faiss's `dummy` header fields: always 1<<20, ignored on read.
const DUMMY: i64 = 1 << 20;
/// faiss rejects larger dimensions on read.
const MAX_D: i32 = 1 << 20;

/// The header after every index fourcc.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Header {
    /// Vector dimension, at most 2^20.
    pub d: usize,
    /// Number of vectors the index counts (an IVF may store fewer).
    pub ntotal: usize,
    /// The trained flag; an IVF counts as trained only if its quantizer also holds all `nlist`
    /// centroids.
    pub is_trained: bool,
    /// L2 or inner product; files with other faiss metrics are refused.
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

/// Reads the header that follows a fourcc; a bad dimension, count or bool is a `Format` error, a
/// metric other than L2/IP `Unsupported`.
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

/// Writes `fourcc` and the header `h` (the two unused fields as faiss writes them, 2^20).
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
    /// The index record (the wrapped one when there is an id map).
    pub index: FaissIndex,
    /// The id of each row from an `IxMp` / `IxM2` wrapper; `None` when the file has none.
    pub id_map: Option<Vec<i64>>,
    /// The record fourccs for display, e.g. `"faiss IxMp(IHNf)"`.
    pub format: String,
    /// True when the id map was an `IxM2` (IndexIDMap2) record: same bytes, kept on save.
    pub idmap2: bool,
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
        let lists = match &index {
            FaissIndex::Ivf(ivf) => Some(ivf),
            FaissIndex::Refine(rf) => match &rf.base {
                FaissIndex::Ivf(ivf) => Some(ivf),
                _ => None,
            },
            _ => None,
        };
        if let Some(ivf) = lists {
            // Behind an id map the lists hold row numbers.
            if let Some(bad) = ivf
                .ids
                .iter()
                .flatten()
                .find(|&&i| i < 0 || i as usize >= outer.ntotal)
            {
                return Err(r.error(format!(
                    "IVF list id {bad} out of range [0, {}) under IndexIDMap",
                    outer.ntotal
                )));
            }
        }
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
            idmap2: &fourcc == ID_MAP2,
        })
    } else {
        let index = read_record(&mut r, fourcc)?;
        Ok(ReadIndex {
            index,
            id_map: None,
            format: format!("faiss {}", cc_str(&fourcc)),
            idmap2: false,
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
        IVF_FLAT | IVF_FLAT_LEGACY | IVF_FLAT_LEGACY_U8 | IVF_SQ | IVF_SQ_LEGACY | IVF_PQ => {
            Ok(FaissIndex::Ivf(read_ivf_body(r, &fourcc)?))
        }
        HNSW_FLAT | HNSW_SQ => Ok(FaissIndex::Hnsw(read_hnsw_body(r)?)),
        SQ => Ok(FaissIndex::Sq(read_sq_body(r)?)),
        REFINE_FLAT => Ok(FaissIndex::Refine(Box::new(read_refine_body(r)?))),
        b"IHNp" | b"IHN2" | b"IHNc" | b"IHc2" | b"IHfP" | b"IH00" => Err(Error::Unsupported(format!(
            "faiss index type '{}' is not supported (vecindex reads HNSW over flat or scalar-quantizer storage, 'IHNf' / 'IHNs')",
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

/// Writes `f` as an `IxF2` (L2) or `IxFI` (inner product) record.
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
    write_index_as(index, id_map, false)
}

/// Like [`write_index`]; `idmap2` writes the id map as `IxM2` (faiss's IndexIDMap2).
pub fn write_index_as(index: &FaissIndex, id_map: Option<&[i64]>, idmap2: bool) -> Vec<u8> {
    let mut w = ByteWriter::default();
    if let Some(ids) = id_map {
        let h = Header {
            d: index.dim(),
            ntotal: index.len(),
            is_trained: true,
            metric: index.metric(),
        };
        write_header(&mut w, if idmap2 { ID_MAP2 } else { ID_MAP }, &h);
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
        FaissIndex::Sq(s) => write_sq(w, s),
        FaissIndex::Refine(rf) => write_refine(w, rf),
        FaissIndex::Ivf(ivf) => write_ivf(w, ivf),
        FaissIndex::Hnsw(h) => write_hnsw(w, h),
    }
}

/// IndexRefine body: header, the base record, a flat refine record, `k_factor`. The base may
/// be any record we read except another wrapper (which also bounds the recursion).
fn read_refine_body(r: &mut ByteReader<'_>) -> Result<RefineIndex> {
    read_header(r)?;
    let cc = r.fourcc("refine base fourcc")?;
    if &cc == REFINE_FLAT || &cc == ID_MAP || &cc == ID_MAP2 {
        return Err(r.error(format!(
            "an IndexRefine over '{}' is not supported (nested wrappers)",
            cc_str(&cc)
        )));
    }
    let base = read_record(r, cc)?;
    let cc = r.fourcc("refine index fourcc")?;
    if &cc != FLAT_L2 && &cc != FLAT_IP && &cc != FLAT_ANY {
        return Err(Error::Unsupported(format!(
            "IndexRefine with a '{}' refine index is not supported (flat refine indexes only, \
             IndexRefineFlat)",
            cc_str(&cc)
        )));
    }
    let refine = read_flat_body(r, &cc)?;
    let k_factor = r.f32("k_factor")?;
    check_k_factor(k_factor).map_err(|e| r.error(e))?;
    RefineIndex::new(base, refine, k_factor).map_err(|e| r.error(e))
}

fn write_refine(w: &mut ByteWriter, rf: &RefineIndex) {
    let h = Header {
        d: rf.dim(),
        ntotal: rf.len(),
        is_trained: rf.base.is_trained(),
        metric: rf.metric(),
    };
    write_header(w, REFINE_FLAT, &h);
    write_record(w, &rf.base);
    write_flat(w, &rf.refine);
    w.f32(rf.k_factor);
}

fn read_hnsw_body(r: &mut ByteReader<'_>) -> Result<HnswIndex> {
    let h = read_header(r)?;
    let n = r.u64("assign_probas size")?;
    let assign_probas = r.f64_vec(n, "assign_probas")?;
    let n = r.u64("cum_nneighbor_per_level size")?;
    let cum = r.i32_vec(n, "cum_nneighbor_per_level")?;
    let n = r.u64("levels size")?;
    let levels = r.i32_vec(n, "levels")?;
    let n = r.u64("offsets size")?;
    let offsets = r.u64_vec(n, "offsets")?;
    let n = r.u64("neighbors size")?;
    let neighbors = r.i32_vec(n, "neighbors")?;
    let entry_point = r.i32("entry_point")?;
    let max_level = r.i32("max_level")?;
    let ef_construction = r.i32("efConstruction")?;
    let ef_search = r.i32("efSearch")?;
    let _upper_beam = r.i32("upper_beam")?;
    if ef_search < 1 || ef_construction < 1 {
        return Err(r.error(format!(
            "invalid HNSW efSearch {ef_search} / efConstruction {ef_construction}"
        )));
    }
    let graph = HnswGraph {
        assign_probas,
        cum,
        levels,
        offsets,
        neighbors,
        entry_point,
        max_level,
        ef_construction: ef_construction as usize,
        ef_search: ef_search as usize,
    };
    graph.validate(h.ntotal).map_err(|e| r.error(e))?;
    let cc = r.fourcc("HNSW storage fourcc")?;
    if &cc == b"null" {
        return Err(Error::Unsupported(
            "HNSW file written without its storage (IO_FLAG_SKIP_STORAGE): no vectors to search"
                .into(),
        ));
    }
    // faiss does not check the storage against the outer fourcc (an IHNs relabelled IHNf
    // searches the same); neither do we.
    let storage = match &cc {
        FLAT_L2 | FLAT_IP | FLAT_ANY => HnswStorage::Flat(read_flat_body(r, &cc)?),
        SQ => HnswStorage::Sq(read_sq_body(r)?),
        _ => {
            return Err(Error::Unsupported(format!(
                "HNSW storage of type '{}' is not supported (flat or scalar-quantizer storage)",
                cc_str(&cc)
            )))
        }
    };
    if storage.len() != h.ntotal || storage.dim() != h.d || storage.metric() != h.metric {
        return Err(r.error(format!(
            "HNSW storage (n={}, d={}, {}) disagrees with the header (n={}, d={}, {})",
            storage.len(),
            storage.dim(),
            storage.metric(),
            h.ntotal,
            h.d,
            h.metric
        )));
    }
    Ok(HnswIndex::from_parts(graph, storage))
}

fn write_hnsw(w: &mut ByteWriter, idx: &HnswIndex) {
    let g = &idx.graph;
    let h = Header {
        d: idx.dim(),
        ntotal: idx.len(),
        is_trained: match &idx.storage {
            HnswStorage::Flat(_) => true,
            HnswStorage::Sq(s) => s.sq.is_trained(),
        },
        metric: idx.metric(),
    };
    let cc = match &idx.storage {
        HnswStorage::Flat(_) => HNSW_FLAT,
        HnswStorage::Sq(_) => HNSW_SQ,
    };
    write_header(w, cc, &h);
    w.u64(g.assign_probas.len() as u64);
    for p in &g.assign_probas {
        w.bytes(&p.to_le_bytes());
    }
    w.u64(g.cum.len() as u64);
    g.cum.iter().for_each(|v| w.i32(*v));
    w.u64(g.levels.len() as u64);
    g.levels.iter().for_each(|v| w.i32(*v));
    w.u64(g.offsets.len() as u64);
    g.offsets.iter().for_each(|v| w.u64(*v));
    w.u64(g.neighbors.len() as u64);
    g.neighbors.iter().for_each(|v| w.i32(*v));
    w.i32(g.entry_point);
    w.i32(g.max_level);
    w.i32(g.ef_construction as i32);
    w.i32(g.ef_search as i32);
    w.i32(1); // upper_beam, deprecated, always 1
    match &idx.storage {
        HnswStorage::Flat(f) => write_flat(w, f),
        HnswStorage::Sq(s) => write_sq(w, s),
    }
}

/// A count that is also a loop bound: it must fit what is left of the file at `min_bytes` each.
fn bounded_count(r: &ByteReader<'_>, n: u64, min_bytes: usize, what: &str) -> Result<usize> {
    usize::try_from(n)
        .ok()
        .filter(|&c| c.saturating_mul(min_bytes) <= r.remaining())
        .ok_or_else(|| r.error(format!("{what} = {n} is more than the file can hold")))
}

fn read_direct_map(r: &mut ByteReader<'_>) -> Result<DirectMap> {
    let kind = r.u8("direct map type")?;
    if kind > 2 {
        return Err(r.error(format!("invalid direct map type {kind}")));
    }
    let n = r.u64("direct map size")?;
    let array = r.i64_vec(n, "direct map")?;
    let mut hashtable = Vec::new();
    if kind == 2 {
        let m = r.u64("direct map hashtable size")?;
        let flat = r.i64_vec(
            m.checked_mul(2)
                .ok_or_else(|| r.error("hashtable size overflows"))?,
            "direct map hashtable",
        )?;
        hashtable = flat.chunks_exact(2).map(|c| (c[0], c[1])).collect();
    }
    Ok(DirectMap {
        kind,
        array,
        hashtable,
    })
}

fn read_quantizer(r: &mut ByteReader<'_>, d: usize, metric: Metric) -> Result<FlatIndex> {
    let cc = r.fourcc("quantizer fourcc")?;
    if &cc != FLAT_L2 && &cc != FLAT_IP && &cc != FLAT_ANY {
        return Err(Error::Unsupported(format!(
            "IVF quantizer of type '{}' is not supported (flat quantizers only)",
            cc_str(&cc)
        )));
    }
    let q = read_flat_body(r, &cc)?;
    if q.dim() != d {
        return Err(r.error(format!(
            "quantizer dimension {} differs from the IVF's {d}",
            q.dim()
        )));
    }
    if q.metric() != metric {
        return Err(r.error(format!(
            "quantizer metric {} differs from the IVF's {metric}",
            q.metric()
        )));
    }
    Ok(q)
}

/// IVF body: `IwFl` (or the legacy `IvFl`/`IvFL` layouts), `IwSq` (or the legacy `IwSQ`) and
/// `IwPQ`.
fn read_ivf_body(r: &mut ByteReader<'_>, fourcc: &[u8; 4]) -> Result<IvfIndex> {
    let h = read_header(r)?;
    if h.d == 0 {
        return Err(r.error("IVF index of dimension 0"));
    }
    let nlist_raw = r.u64("nlist")?;
    let nprobe = r.u64("nprobe")?;
    let quantizer = read_quantizer(r, h.d, h.metric)?;
    // nlist bounds allocations below: the legacy layout spends 16 bytes per list, the current one
    // at least a byte per list in any sane file (a trained index also has nlist centroids).
    let per_list = if [IVF_FLAT, IVF_SQ, IVF_SQ_LEGACY, IVF_PQ].contains(&fourcc) {
        1
    } else {
        16
    };
    let nlist = bounded_count(r, nlist_raw, per_list, "nlist")?;
    if nlist == 0 {
        return Err(r.error("IVF index with nlist = 0"));
    }
    if !quantizer.is_empty() && quantizer.len() != nlist {
        return Err(r.error(format!(
            "quantizer holds {} centroids for nlist = {nlist}",
            quantizer.len()
        )));
    }
    let code_size = h.d * 4;
    let mut codes: Vec<Vec<f32>>;
    let mut ids: Vec<Vec<i64>>;
    let direct_map;
    let mut coded = None;
    if fourcc == IVF_SQ || fourcc == IVF_SQ_LEGACY {
        direct_map = read_direct_map(r)?;
        let sq = read_sq_block(r, &h)?;
        let cs = r.u64("IndexIVFScalarQuantizer code_size")?;
        if cs != sq.code_size() as u64 {
            return Err(r.error(format!(
                "IndexIVFScalarQuantizer code_size mismatch: stored {cs} vs derived {}",
                sq.code_size()
            )));
        }
        // The legacy record has no by_residual byte: residuals, as faiss assumes.
        let by_residual = fourcc == IVF_SQ_LEGACY || r.bool("by_residual")?;
        let (bytes, list_ids) = read_array_lists(r, nlist, sq.code_size(), h.ntotal)?;
        if !sq.is_trained() && list_ids.iter().any(|l| !l.is_empty()) {
            return Err(r.error("an IVF index with an untrained scalar quantizer holds vectors"));
        }
        codes = vec![Vec::new(); nlist];
        ids = list_ids;
        coded = Some(IvfCodes {
            codec: ListCodec::Sq(sq),
            by_residual,
            codes: bytes,
        });
    } else if fourcc == IVF_PQ {
        direct_map = read_direct_map(r)?;
        let by_residual = r.bool("by_residual")?;
        let cs = r.u64("IndexIVFPQ code_size")?;
        let pq = read_pq_block(r, h.d)?;
        if cs != pq.code_size() as u64 {
            return Err(r.error(format!(
                "IndexIVFPQ code_size {cs} differs from its product quantizer's {}",
                pq.code_size()
            )));
        }
        let (bytes, list_ids) = read_array_lists(r, nlist, pq.code_size(), h.ntotal)?;
        codes = vec![Vec::new(); nlist];
        ids = list_ids;
        // faiss rebuilds the L2 tables on load; they need the centroids (a trained index).
        let tables_from = if h.is_trained && quantizer.len() == nlist {
            &quantizer
        } else {
            &FlatIndex::from_parts(Vec::new(), h.d, h.metric)
        };
        coded = Some(IvfCodes {
            codec: ListCodec::Pq(IvfPq::new(pq, tables_from, by_residual)),
            by_residual,
            codes: bytes,
        });
    } else if fourcc == IVF_FLAT {
        direct_map = read_direct_map(r)?;
        let (bytes, list_ids) = read_array_lists(r, nlist, code_size, h.ntotal)?;
        codes = bytes
            .iter()
            .map(|b| {
                b.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            })
            .collect();
        ids = list_ids;
    } else {
        // Legacy: nlist id vectors, the direct map, then nlist code vectors.
        ids = Vec::with_capacity(nlist);
        for l in 0..nlist {
            let n = r.u64("list ids count")?;
            ids.push(r.i64_vec(n, &format!("ids of list {l}"))?);
        }
        direct_map = read_direct_map(r)?;
        codes = Vec::with_capacity(nlist);
        for (l, lid) in ids.iter().enumerate() {
            let n = r.u64("list codes count")?;
            let c = if fourcc == IVF_FLAT_LEGACY {
                r.f32_vec(n, &format!("codes of list {l}"))?
            } else {
                let bytes = r.take(
                    usize::try_from(n).map_err(|_| r.error("list too large"))?,
                    "codes",
                )?;
                if bytes.len() % 4 != 0 {
                    return Err(r.error(format!("list {l} codes are not whole floats")));
                }
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            };
            if c.len() != lid.len() * h.d {
                return Err(r.error(format!(
                    "list {l}: {} values for {} ids of dimension {}",
                    c.len(),
                    lid.len(),
                    h.d
                )));
            }
            codes.push(c);
        }
        let stored: usize = ids.iter().map(Vec::len).sum();
        if stored > h.ntotal {
            return Err(r.error(format!(
                "lists hold {stored} vectors but ntotal is {}",
                h.ntotal
            )));
        }
    }
    if let Some(l) = ids.iter().position(|l| l.contains(&-1)) {
        return Err(r.error(format!(
            "list {l} holds id -1, which marks empty result slots"
        )));
    }
    if let Some(id) = crate::api::repeated_id(ids.iter().flatten().copied()) {
        return Err(r.error(format!(
            "id {id} is stored twice in the inverted lists; ids must be unique"
        )));
    }
    let is_trained = h.is_trained && quantizer.len() == nlist;
    if !is_trained && ids.iter().any(|l| !l.is_empty()) {
        return Err(r.error("an untrained IVF index holds vectors"));
    }
    let norms = super::ivf::list_norms(&codes, h.d, h.metric);
    Ok(IvfIndex {
        norms,
        dim: h.d,
        metric: h.metric,
        nprobe: usize::try_from(nprobe).unwrap_or(usize::MAX).max(1),
        quantizer,
        nlist,
        is_trained,
        ntotal: h.ntotal,
        codes,
        ids,
        direct_map,
        coded,
    })
}

fn write_ivf(w: &mut ByteWriter, ivf: &IvfIndex) {
    let h = Header {
        d: ivf.dim,
        ntotal: ivf.ntotal,
        is_trained: ivf.is_trained,
        metric: ivf.metric,
    };
    let fourcc = match ivf.coded.as_ref().map(|c| &c.codec) {
        None => IVF_FLAT,
        Some(ListCodec::Sq(_)) => IVF_SQ,
        Some(ListCodec::Pq(_)) => IVF_PQ,
    };
    write_header(w, fourcc, &h);
    w.u64(ivf.nlist as u64);
    w.u64(ivf.nprobe as u64);
    write_flat(w, &ivf.quantizer);
    let dm = &ivf.direct_map;
    w.u8(dm.kind);
    w.u64(dm.array.len() as u64);
    w.i64s(&dm.array);
    if dm.kind == 2 {
        w.u64(dm.hashtable.len() as u64);
        for (a, b) in &dm.hashtable {
            w.i64(*a);
            w.i64(*b);
        }
    }
    if let Some(coded) = &ivf.coded {
        let cs = coded.codec.code_size();
        match &coded.codec {
            ListCodec::Sq(sq) => {
                write_sq_block(w, sq);
                w.u64(cs as u64);
                w.u8(u8::from(coded.by_residual));
            }
            ListCodec::Pq(p) => {
                w.u8(u8::from(coded.by_residual));
                w.u64(cs as u64);
                write_pq_block(w, &p.pq);
            }
        }
        write_array_lists(w, cs, &ivf.ids, |l| &coded.codes[l]);
        return;
    }
    let bytes: Vec<Vec<u8>> = ivf
        .codes
        .iter()
        .map(|c| c.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    write_array_lists(w, ivf.dim * 4, &ivf.ids, |l| &bytes[l]);
}
