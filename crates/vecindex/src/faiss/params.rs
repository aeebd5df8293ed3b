//! The faiss backend's parameters: the `key=value` table, the index kinds and the storage
//! codecs they combine with, the defaults, and faiss's `index_factory` strings as a shorthand
//! for them.

use crate::config::{Kind, Param};

const INT_MAX: i64 = i32::MAX as i64;

pub(crate) const PARAMS: &[Param] = &[
    Param {
        name: "index_type",
        aliases: &["type"],
        kind: Kind::Choice(&["Flat", "HNSW", "IVF"]),
    },
    Param {
        name: "metric",
        aliases: &["metric_type"],
        kind: Kind::Choice(&["L2", "IP"]),
    },
    Param {
        name: "d",
        aliases: &["dim"],
        kind: Kind::Int {
            min: 1,
            max: 1 << 20,
        },
    },
    Param {
        name: "m",
        aliases: &[],
        kind: Kind::Int { min: 2, max: 512 },
    },
    Param {
        name: "efSearch",
        aliases: &[],
        kind: Kind::Int {
            min: 1,
            max: INT_MAX,
        },
    },
    Param {
        name: "efConstruction",
        aliases: &[],
        kind: Kind::Int {
            min: 1,
            max: INT_MAX,
        },
    },
    Param {
        name: "nlists",
        aliases: &["nlist"],
        kind: Kind::Int {
            min: 1,
            max: INT_MAX,
        },
    },
    Param {
        name: "nprobe",
        aliases: &[],
        kind: Kind::Int {
            min: 1,
            max: INT_MAX,
        },
    },
    // HNSW build threads (-1 or 0: all cores; the graph does not depend on it).
    Param {
        name: "threads",
        aliases: &["n_jobs"],
        kind: Kind::Int { min: -1, max: 4096 },
    },
    // How vectors are stored: as they are, scalar-quantized codes (faiss's SQ8 / SQfp16), or
    // product-quantized codes (PQ, IVF only).
    Param {
        name: "storage",
        aliases: &["codec"],
        kind: Kind::Choice(&["Flat", "SQ8", "SQfp16", "PQ"]),
    },
    // storage=PQ (IVF): sub-quantizers, a divisor of d (default: the largest divisor ≤ d/4).
    Param {
        name: "pq_m",
        aliases: &[],
        kind: Kind::Int {
            min: 1,
            max: 1 << 20,
        },
    },
    // storage=PQ (IVF): bits per sub-quantizer index, 2^pq_nbits centroids each (default 8).
    Param {
        name: "pq_nbits",
        aliases: &[],
        kind: Kind::Int { min: 1, max: 16 },
    },
    // Re-rank the base index's candidates with the exact vectors (faiss's RFlat).
    Param {
        name: "refine",
        aliases: &[],
        kind: Kind::Choice(&["none", "Flat"]),
    },
    // Refine: candidates asked of the base index per result wanted (query-time).
    Param {
        name: "k_factor",
        aliases: &[],
        kind: Kind::Float {
            min: 1.0,
            max: 1000.0,
        },
    },
    // faiss's index_factory string, a shorthand for index_type, m, nlists, storage and refine.
    Param {
        name: "factory",
        aliases: &["index_factory"],
        kind: Kind::Text,
    },
];

/// FAISS index kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexType {
    /// Exact search over every stored vector (`IndexFlat`).
    Flat,
    /// A hierarchical navigable small-world graph over the stored vectors (`IndexHNSWFlat`).
    Hnsw,
    /// Inverted lists around k-means centroids, `nprobe` of them scanned per query
    /// (`IndexIVFFlat`; `IndexIVFScalarQuantizer` / `IndexIVFPQ` with quantized storage).
    Ivf,
}

impl IndexType {
    /// The name `index_type` takes and `IndexInfo` reports: "Flat", "HNSW" or "IVF".
    pub fn name(self) -> &'static str {
        match self {
            IndexType::Flat => "Flat",
            IndexType::Hnsw => "HNSW",
            IndexType::Ivf => "IVF",
        }
    }

    /// The parameters that only make sense for this kind.
    pub(crate) fn own_params(self) -> &'static [&'static str] {
        match self {
            IndexType::Flat => &["storage", "refine", "k_factor"],
            IndexType::Hnsw => &[
                "m",
                "efSearch",
                "efConstruction",
                "threads",
                "storage",
                "refine",
                "k_factor",
            ],
            IndexType::Ivf => &[
                "nlists", "nprobe", "storage", "refine", "k_factor", "pq_m", "pq_nbits",
            ],
        }
    }
}

pub(crate) const KIND_PARAMS: &[&str] = &[
    "m",
    "efSearch",
    "efConstruction",
    "nlists",
    "nprobe",
    "threads",
    "storage",
    "refine",
    "k_factor",
    "pq_m",
    "pq_nbits",
];

/// HNSW neighbours per node when `m` is not given (Torch-RecHub's default).
pub const DEFAULT_M: usize = 32;

/// HNSW build breadth when `efConstruction` is not given (faiss's default).
pub const DEFAULT_EF_CONSTRUCTION: usize = 40;

/// HNSW search breadth when `efSearch` is not given (faiss's default).
pub const DEFAULT_EF_SEARCH: usize = 16;

/// IVF lists when `nlists` is not given (the Torch-RecHub default).
pub const DEFAULT_NLISTS: usize = 100;

/// PQ bits per index when `pq_nbits` is not given (faiss's default).
pub const DEFAULT_PQ_NBITS: usize = 8;

/// PQ sub-quantizers when `pq_m` is not given: the largest divisor of `d` that is at most
/// `d / 4` (sub-vectors of about four values; 1 for d < 8).
pub fn default_pq_m(d: usize) -> usize {
    (1..=(d / 4).max(1))
        .rev()
        .find(|m| d.is_multiple_of(*m))
        .unwrap_or(1)
}

/// The factory strings [`parse_factory`] understands, for error messages.
pub const FACTORY_FORMS: &str = "Flat, SQ8, SQfp16, HNSW<M>[,Flat|,SQ8|,SQfp16], \
    IVF<nlists>,Flat|SQ8|SQfp16|PQ<m>[x<nbits>][np]; the quantized forms optionally followed \
    by ,RFlat";

/// The `key=value` settings a faiss `index_factory` string stands for: `"HNSW32,SQ8,RFlat"`
/// gives `index_type=HNSW m=32 storage=SQ8 refine=Flat`. Unsupported strings are errors that
/// list the supported forms.
pub fn parse_factory(s: &str) -> crate::Result<Vec<(&'static str, String)>> {
    let unsupported = |why: String| {
        crate::Error::Unsupported(format!(
            "faiss factory string '{s}': {why}; supported: {FACTORY_FORMS}"
        ))
    };
    let mut parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let mut out: Vec<(&'static str, String)> = Vec::new();
    if parts.len() > 1 && parts.last() == Some(&"RFlat") {
        parts.pop();
        out.push(("refine", "Flat".into()));
    }
    let storage = |code: &str| -> Option<&'static str> {
        match code {
            "Flat" => Some("Flat"),
            "SQ8" => Some("SQ8"),
            "SQfp16" => Some("SQfp16"),
            _ => None,
        }
    };
    let number = |digits: &str, what: &str| -> crate::Result<String> {
        let (num, mult) = match digits.strip_suffix(['k', 'M']) {
            Some(n) if digits.ends_with('k') => (n, 1024u64),
            Some(n) => (n, 1024 * 1024),
            None => (digits, 1),
        };
        num.parse::<u64>()
            .ok()
            .and_then(|v| v.checked_mul(mult))
            .map(|v| v.to_string())
            .ok_or_else(|| unsupported(format!("cannot read the {what} in '{digits}'")))
    };
    match parts.as_slice() {
        [one] if storage(one).is_some() => {
            out.push(("index_type", "Flat".into()));
            out.push(("storage", storage(one).expect("checked").into()));
        }
        [hnsw, rest @ ..] if hnsw.starts_with("HNSW") && rest.len() <= 1 => {
            // "HNSW32_SQ8" is faiss's other spelling of "HNSW32,SQ8".
            let (head, code) = match hnsw.split_once('_') {
                Some((h, c)) if rest.is_empty() => (h, Some(c)),
                _ => (*hnsw, rest.first().copied()),
            };
            let m = &head["HNSW".len()..];
            out.push(("index_type", "HNSW".into()));
            out.push((
                "m",
                if m.is_empty() {
                    "32".into()
                } else {
                    number(m, "M")?
                },
            ));
            let code = code.unwrap_or("Flat");
            let st = storage(code)
                .ok_or_else(|| unsupported(format!("HNSW storage '{code}' is not supported")))?;
            out.push(("storage", st.into()));
        }
        [ivf, code] if ivf.starts_with("IVF") && code.starts_with("PQ") => {
            out.push(("index_type", "IVF".into()));
            out.push(("nlists", number(&ivf["IVF".len()..], "number of lists")?));
            out.push(("storage", "PQ".into()));
            // faiss trains `PQ<m>` without `np` with a polysemous relabelling of the centroids;
            // the search results are the same (docs/backends.md), so both spellings build here.
            let pq = code["PQ".len()..]
                .strip_suffix("np")
                .unwrap_or(&code["PQ".len()..]);
            let (m, nbits) = match pq.split_once('x') {
                Some((m, b)) => (m, Some(b)),
                None => (pq, None),
            };
            let digits = |v: &str, what: &str| {
                v.parse::<u64>()
                    .map(|v| v.to_string())
                    .map_err(|_| unsupported(format!("cannot read the {what} in '{code}'")))
            };
            out.push(("pq_m", digits(m, "number of sub-quantizers")?));
            // faiss's default is 8 bits: stated, so that a conflicting pq_nbits is an error.
            out.push((
                "pq_nbits",
                digits(nbits.unwrap_or("8"), "bits per sub-quantizer")?,
            ));
        }
        [ivf, code] if ivf.starts_with("IVF") => {
            out.push(("index_type", "IVF".into()));
            out.push(("nlists", number(&ivf["IVF".len()..], "number of lists")?));
            let st = storage(code)
                .ok_or_else(|| unsupported(format!("IVF with '{code}' codes is not supported")))?;
            out.push(("storage", st.into()));
        }
        _ => return Err(unsupported("not a form vecindex builds".into())),
    }
    if out.iter().any(|(k, _)| *k == "refine")
        && out.iter().any(|(k, v)| *k == "storage" && v == "Flat")
    {
        return Err(unsupported(
            "RFlat over flat storage re-ranks exact distances with themselves".into(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factory_strings_map_to_settings() {
        let get = |s: &str| {
            parse_factory(s)
                .unwrap()
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(get("SQ8"), "index_type=Flat storage=SQ8");
        assert_eq!(get("Flat"), "index_type=Flat storage=Flat");
        assert_eq!(
            get("HNSW32,SQ8,RFlat"),
            "refine=Flat index_type=HNSW m=32 storage=SQ8"
        );
        assert_eq!(get("HNSW16_SQfp16"), "index_type=HNSW m=16 storage=SQfp16");
        assert_eq!(get("HNSW"), "index_type=HNSW m=32 storage=Flat");
        assert_eq!(get("IVF1k,Flat"), "index_type=IVF nlists=1024 storage=Flat");
        assert_eq!(
            get("IVF256,SQ8,RFlat"),
            "refine=Flat index_type=IVF nlists=256 storage=SQ8"
        );
        assert_eq!(get("SQ8,RFlat"), "refine=Flat index_type=Flat storage=SQ8");
        assert_eq!(
            get("IVF1024,PQ32x8"),
            "index_type=IVF nlists=1024 storage=PQ pq_m=32 pq_nbits=8"
        );
        assert_eq!(
            get("IVF16,PQ4np,RFlat"),
            "refine=Flat index_type=IVF nlists=16 storage=PQ pq_m=4 pq_nbits=8"
        );
        assert_eq!(
            get("IVF16,PQ8x4np"),
            "index_type=IVF nlists=16 storage=PQ pq_m=8 pq_nbits=4"
        );
        assert_eq!(default_pq_m(384), 96);
        assert_eq!(default_pq_m(100), 25);
        assert_eq!(default_pq_m(7), 1);
        assert_eq!(default_pq_m(30), 6);
        for bad in [
            "RFlat",
            "HNSW32,PQ16",
            "IVF1024,PQx8",
            "IVF1024,PQ32x",
            "IVF1024,PQ8npnp",
            "Flat,RFlat",
            "LSH",
            "HNSWx",
        ] {
            let e = parse_factory(bad).unwrap_err().to_string();
            assert!(e.contains("supported: Flat, SQ8"), "{bad}: {e}");
        }
    }
}
