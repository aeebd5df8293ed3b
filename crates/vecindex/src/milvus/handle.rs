//! The handle file `save` writes and `from_index_file` reopens: its format, reading and
//! validation, and its description for `info` and `inspect`.

use super::params::check_collection_name;
use crate::api::IndexInfo;
use crate::error::{Error, Result};
use crate::metric::Metric;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub(super) const HANDLE_FORMAT: &str = "vecindex-milvus";
pub(super) const HANDLE_VERSION: u32 = 1;

/// The handle file `save` writes: where the collection lives and how it was built. Never holds
/// credentials.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Handle {
    pub(super) format: String,
    pub(super) version: u32,
    pub(super) uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) db_name: Option<String>,
    pub(super) collection: String,
    pub(super) d: usize,
    pub(super) metric: String,
    pub(super) index_type: String,
    pub(super) n_items: u64,
    pub(super) custom_ids: bool,
    pub(super) primary_field: String,
    pub(super) vector_field: String,
    /// Build parameters as sent to the server (e.g. `M`, `efConstruction`, `nlist`).
    pub(super) build_params: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) ef: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) nprobe: Option<usize>,
    pub(super) consistency: String,
}

pub(super) fn handle_info(h: &Handle) -> IndexInfo {
    let metric = match h.metric.as_str() {
        "IP" => Metric::InnerProduct,
        "COSINE" => Metric::Cosine,
        _ => Metric::L2,
    };
    let mut params: BTreeMap<String, String> = h.build_params.clone();
    params.insert("uri".into(), h.uri.clone());
    params.insert("collection".into(), h.collection.clone());
    if let Some(db) = &h.db_name {
        params.insert("db_name".into(), db.clone());
    }
    if let Some(ef) = h.ef {
        params.insert("ef".into(), ef.to_string());
    }
    if let Some(np) = h.nprobe {
        params.insert("nprobe".into(), np.to_string());
    }
    params.insert("consistency".into(), h.consistency.clone());
    IndexInfo {
        backend: "milvus".into(),
        format: "milvus collection handle".into(),
        index_type: h.index_type.clone(),
        metric,
        higher_is_better: metric.higher_is_better(),
        dim: h.d,
        n: h.n_items as usize,
        custom_ids: h.custom_ids,
        params,
        warnings: Vec::new(),
    }
}

/// True when `path` is a Milvus handle file (for `inspect`).
pub(crate) fn is_handle(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 256];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let n = f.read(&mut head).unwrap_or(0);
    let s = String::from_utf8_lossy(&head[..n]);
    s.trim_start().starts_with('{') && s.contains(HANDLE_FORMAT)
}

/// Describes a handle file without contacting the server.
pub(crate) fn inspect_handle(path: &Path) -> Result<IndexInfo> {
    read_handle(path).map(|h| handle_info(&h))
}

pub(super) fn read_handle(path: &Path) -> Result<Handle> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.len() > 1 << 20 {
        return Err(Error::format(
            path.display(),
            "not a vecindex milvus handle (larger than 1 MiB)",
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let h: Handle = serde_json::from_slice(&bytes).map_err(|e| {
        Error::format(
            path.display(),
            format!("not a vecindex milvus handle file: {e}"),
        )
    })?;
    let bad = |why: String| Err(Error::format(path.display(), why));
    if h.format != HANDLE_FORMAT {
        return bad(format!(
            "format is '{}', expected '{HANDLE_FORMAT}'",
            h.format
        ));
    }
    if h.version != HANDLE_VERSION {
        return bad(format!(
            "handle version {} is not supported (this vecindex reads {HANDLE_VERSION})",
            h.version
        ));
    }
    if !["L2", "IP", "COSINE"].contains(&h.metric.as_str()) {
        return bad(format!("unknown metric '{}'", h.metric));
    }
    if !["FLAT", "HNSW", "IVF_FLAT"].contains(&h.index_type.as_str()) {
        return bad(format!("unknown index_type '{}'", h.index_type));
    }
    if h.d == 0 || h.d > 32768 {
        return bad(format!("dimension {} out of range", h.d));
    }
    if let Err(e) = check_collection_name(&h.collection) {
        return bad(e.to_string());
    }
    if !["Strong", "Session", "Bounded", "Eventually"].contains(&h.consistency.as_str()) {
        return bad(format!("unknown consistency '{}'", h.consistency));
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::milvus::params::DEFAULT_URI;

    #[test]
    fn handle_files_are_validated() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.json");
        std::fs::write(&p, b"{\"format\":\"vecindex-milvus\"}").unwrap();
        assert!(read_handle(&p).is_err());
        std::fs::write(&p, b"\x00\x01garbage").unwrap();
        assert!(read_handle(&p)
            .unwrap_err()
            .to_string()
            .contains("not a vecindex milvus handle"));
        let h = Handle {
            format: HANDLE_FORMAT.into(),
            version: HANDLE_VERSION,
            uri: DEFAULT_URI.into(),
            db_name: None,
            collection: "c1".into(),
            d: 8,
            metric: "IP".into(),
            index_type: "HNSW".into(),
            n_items: 5,
            custom_ids: false,
            primary_field: "id".into(),
            vector_field: "embedding".into(),
            build_params: BTreeMap::from([("M".to_string(), "16".to_string())]),
            ef: Some(32),
            nprobe: None,
            consistency: "Bounded".into(),
        };
        std::fs::write(&p, serde_json::to_vec(&h).unwrap()).unwrap();
        assert!(is_handle(&p));
        let info = inspect_handle(&p).unwrap();
        assert_eq!(
            (info.dim, info.n, info.metric),
            (8, 5, Metric::InnerProduct)
        );
        let mut bad = h.clone();
        bad.metric = "angular".into();
        std::fs::write(&p, serde_json::to_vec(&bad).unwrap()).unwrap();
        assert!(read_handle(&p)
            .unwrap_err()
            .to_string()
            .contains("unknown metric"));
    }
}
