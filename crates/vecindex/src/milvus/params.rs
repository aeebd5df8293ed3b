//! The milvus backend's parameters (`PARAMS`), its constants and limits, the parameter and input
//! checks, and the conversions of index type, metric and consistency names to the client's enums.

use crate::config::{Kind, Param, Resolved};
use crate::error::{Error, Result};
use crate::vectors::VectorsView;
use milvus::v2::prelude::{ConsistencyLevel, IndexType, MetricType};

/// The server's cap on top_k and on queries per request.
pub const MAX_TOP_K: usize = 16384;
/// Default HNSW search breadth.
pub const DEFAULT_EF: usize = 64;
/// Default HNSW build breadth (Milvus's documented example value).
pub const DEFAULT_EF_CONSTRUCTION: i64 = 200;
pub(super) const DEFAULT_URI: &str = "http://127.0.0.1:19530";
pub(super) const PRIMARY_FIELD: &str = "id";
pub(super) const VECTOR_FIELD: &str = "embedding";
/// Insert requests stay well under the proxy's 64 MiB message limit.
pub(super) const INSERT_BATCH_BYTES: usize = 32 << 20;
/// Search responses stay under the client's 4 MiB receive limit (about 16 bytes per hit).
pub(super) const MAX_HITS_PER_REQUEST: usize = 200_000;
/// Search requests stay well under the server's 64 MiB message limit.
pub(super) const SEARCH_BATCH_BYTES: usize = 16 << 20;

pub(crate) const PARAMS: &[Param] = &[
    Param {
        name: "index_type",
        aliases: &["type"],
        kind: Kind::Choice(&["FLAT", "HNSW", "IVF_FLAT"]),
    },
    Param {
        name: "metric",
        aliases: &["metric_type"],
        kind: Kind::Choice(&["L2", "IP", "COSINE"]),
    },
    Param {
        name: "d",
        aliases: &["dim"],
        kind: Kind::Int { min: 1, max: 32768 },
    },
    Param {
        name: "m",
        aliases: &[],
        kind: Kind::Int { min: 2, max: 2048 },
    },
    Param {
        name: "efConstruction",
        aliases: &["ef_construction"],
        kind: Kind::Int {
            min: 1,
            max: i32::MAX as i64,
        },
    },
    Param {
        name: "ef",
        aliases: &["efSearch", "ef_search"],
        kind: Kind::Int { min: 1, max: 32768 },
    },
    Param {
        name: "nlist",
        aliases: &["nlists"],
        kind: Kind::Int { min: 1, max: 65536 },
    },
    Param {
        name: "nprobe",
        aliases: &[],
        kind: Kind::Int { min: 1, max: 65536 },
    },
    Param {
        name: "uri",
        aliases: &[],
        kind: Kind::Text,
    },
    Param {
        name: "host",
        aliases: &[],
        kind: Kind::Text,
    },
    Param {
        name: "port",
        aliases: &[],
        kind: Kind::Int { min: 1, max: 65535 },
    },
    Param {
        name: "token",
        aliases: &[],
        kind: Kind::Text,
    },
    Param {
        name: "user",
        aliases: &["username"],
        kind: Kind::Text,
    },
    Param {
        name: "password",
        aliases: &[],
        kind: Kind::Text,
    },
    Param {
        name: "db_name",
        aliases: &["database", "db"],
        kind: Kind::Text,
    },
    Param {
        name: "collection",
        aliases: &["collection_name"],
        kind: Kind::Text,
    },
    Param {
        name: "name",
        aliases: &[],
        kind: Kind::Text,
    },
    Param {
        name: "overwrite",
        aliases: &[],
        kind: Kind::Choice(&["true", "false"]),
    },
    Param {
        name: "consistency",
        aliases: &["consistency_level"],
        kind: Kind::Choice(&["Strong", "Session", "Bounded", "Eventually"]),
    },
    Param {
        name: "connect_timeout",
        aliases: &[],
        kind: Kind::Float {
            min: 0.1,
            max: 3600.0,
        },
    },
    Param {
        name: "timeout",
        aliases: &["rpc_timeout"],
        kind: Kind::Float {
            min: 0.1,
            max: 86400.0,
        },
    },
    Param {
        name: "build_timeout",
        aliases: &[],
        kind: Kind::Float {
            min: 1.0,
            max: 604800.0,
        },
    },
    Param {
        name: "connections",
        aliases: &[],
        kind: Kind::Int { min: 1, max: 16 },
    },
];

/// Which parameters only make sense for one index type.
const TYPE_ONLY: &[(&str, &str)] = &[
    ("m", "HNSW"),
    ("efConstruction", "HNSW"),
    ("ef", "HNSW"),
    ("nlist", "IVF_FLAT"),
    ("nprobe", "IVF_FLAT"),
];

/// Parameters of one index type given for another are errors, never silently ignored.
pub(super) fn check_type_params(params: &Resolved, index_type: &str) -> Result<()> {
    for (key, only) in TYPE_ONLY {
        if params.is_set(key) && *only != index_type {
            return Err(Error::InvalidParameter {
                key: key.to_string(),
                value: params.text(key).unwrap_or_default().to_string(),
                reason: format!("applies to index_type {only}, not {index_type}"),
            });
        }
    }
    Ok(())
}

/// The default `nprobe` for `nlist` lists (same rule as the faiss backend).
pub fn default_nprobe(nlist: usize) -> usize {
    crate::config::default_nprobe(nlist)
}

/// Milvus's rule (letters, digits and underscores, not starting with a digit, at most 255),
/// with at most 200 here so that staging names made from it stay within 255.
pub(super) fn check_collection_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "'{name}' is not a valid milvus collection name: use letters, digits and \
             underscores, not starting with a digit, at most 200 characters"
        )))
    }
}

/// COSINE is undefined for a zero vector; the server would return NaN scores.
pub(super) fn check_nonzero(v: VectorsView<'_>, what: &str) -> Result<()> {
    match v.iter().position(|r| r.iter().all(|x| *x == 0.0)) {
        Some(i) => Err(Error::invalid(format!(
            "{what} row {i} is the zero vector, which has no cosine similarity"
        ))),
        None => Ok(()),
    }
}

pub(super) fn index_type_of(name: &str) -> IndexType {
    match name {
        "HNSW" => IndexType::Hnsw,
        "IVF_FLAT" => IndexType::IvfFlat,
        _ => IndexType::Flat,
    }
}

pub(super) fn metric_type_of(name: &str) -> MetricType {
    match name {
        "IP" => MetricType::Ip,
        "COSINE" => MetricType::Cosine,
        _ => MetricType::L2,
    }
}

pub(super) fn consistency_of(name: &str) -> ConsistencyLevel {
    match name {
        "Strong" => ConsistencyLevel::Strong,
        "Session" => ConsistencyLevel::Session,
        "Eventually" => ConsistencyLevel::Eventually,
        _ => ConsistencyLevel::Bounded,
    }
}
