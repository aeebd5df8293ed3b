//! `MilvusIndexer`: a built or reopened collection, searched through the common `Indexer`
//! interface (search parameters, batching, saving the handle, dropping ephemeral collections).

use super::client::{MilvusClient, SearchSpec};
use super::handle::{handle_info, Handle};
use super::params::{
    check_nonzero, consistency_of, default_nprobe, metric_type_of, DEFAULT_EF,
    MAX_HITS_PER_REQUEST, MAX_TOP_K, PARAMS, SEARCH_BATCH_BYTES,
};
use crate::api::{check_query, IndexInfo, Indexer, Neighbors};
use crate::config::{Config, Resolved};
use crate::error::{Error, Result};
use crate::metric::Metric;
use crate::vectors::VectorsView;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A collection on a Milvus server, searchable through the common interface.
pub struct MilvusIndexer {
    client: MilvusClient,
    handle: Handle,
    /// Drop the collection with the indexer (generated names, until `save`).
    ephemeral: AtomicBool,
    /// The largest top_k that needed ef raised (0: none), for `info().warnings`.
    ef_noted: AtomicU64,
}

impl MilvusIndexer {
    pub(super) fn new(client: MilvusClient, handle: Handle, ephemeral: bool) -> Self {
        MilvusIndexer {
            client,
            handle,
            ephemeral: AtomicBool::new(ephemeral),
            ef_noted: AtomicU64::new(0),
        }
    }

    /// The collection's name on the server.
    pub fn collection(&self) -> &str {
        &self.handle.collection
    }

    fn metric_enum(&self) -> Metric {
        match self.handle.metric.as_str() {
            "IP" => Metric::InnerProduct,
            "COSINE" => Metric::Cosine,
            _ => Metric::L2,
        }
    }

    fn search_params(&self, k: usize) -> HashMap<String, String> {
        let mut p = HashMap::new();
        match self.handle.index_type.as_str() {
            "HNSW" => {
                let ef = self.handle.ef.unwrap_or(DEFAULT_EF);
                if ef < k {
                    // Reported by `info().warnings` (the library never prints).
                    self.ef_noted.fetch_max(k as u64, Ordering::Relaxed);
                }
                p.insert("ef".into(), ef.max(k).to_string());
            }
            "IVF_FLAT" => {
                let nprobe = self.handle.nprobe.unwrap_or_else(|| {
                    let nlist = self
                        .handle
                        .build_params
                        .get("nlist")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(128);
                    default_nprobe(nlist)
                });
                p.insert("nprobe".into(), nprobe.to_string());
            }
            _ => {}
        }
        p
    }
}

impl Drop for MilvusIndexer {
    fn drop(&mut self) {
        if self.ephemeral.load(Ordering::SeqCst) {
            if let Err(e) = self.client.drop_collection(&self.handle.collection) {
                // Nobody to return an error to; the next build on this server drops it anyway
                // when it was a staging collection, else it stays until dropped by name.
                log::warn!(
                    "could not drop temporary milvus collection '{}': {e}",
                    self.handle.collection
                );
            }
        }
    }
}

impl Indexer for MilvusIndexer {
    fn query(&self, queries: VectorsView<'_>, top_k: usize) -> Result<Neighbors> {
        check_query(queries, self.handle.d, top_k)?;
        if top_k > MAX_TOP_K {
            return Err(Error::invalid(format!(
                "top_k {top_k} is above Milvus's limit of {MAX_TOP_K}"
            )));
        }
        if self.handle.metric == "COSINE" {
            check_nonzero(queries, "query")?;
        }
        let nq = queries.rows();
        let d = self.handle.d;
        let per_request = (MAX_HITS_PER_REQUEST / top_k)
            .min(SEARCH_BATCH_BYTES / (4 * d))
            .clamp(1, MAX_TOP_K);
        // Enough batches to keep every connection busy, none above the request limits.
        let conns = self.client.connections();
        let per_batch = if nq >= 64 * conns {
            per_request.min(nq.div_ceil(conns))
        } else {
            per_request
        };
        let batches: Vec<Vec<Vec<f32>>> = (0..nq)
            .step_by(per_batch)
            .map(|s| {
                (s..(s + per_batch).min(nq))
                    .map(|i| queries.row(i).to_vec())
                    .collect()
            })
            .collect();
        let spec = SearchSpec {
            collection: self.handle.collection.clone(),
            vector_field: self.handle.vector_field.clone(),
            k: top_k,
            metric: metric_type_of(&self.handle.metric),
            params: self.search_params(top_k),
            consistency: consistency_of(&self.handle.consistency),
        };
        let hits = self.client.search(&spec, batches)?;
        let metric = self.metric_enum();
        let mut ids = vec![-1i64; nq * top_k];
        let mut distances = vec![metric.padding(); nq * top_k];
        for (q, h) in hits.iter().enumerate() {
            if h.ids.len() != h.scores.len() || h.ids.len() > top_k {
                return Err(Error::Server {
                    uri: self.client.uri().to_string(),
                    action: "searching".into(),
                    message: format!(
                        "query {q}: {} ids and {} scores for top_k {top_k}",
                        h.ids.len(),
                        h.scores.len()
                    ),
                });
            }
            let row = q * top_k;
            ids[row..row + h.ids.len()].copy_from_slice(&h.ids);
            distances[row..row + h.scores.len()].copy_from_slice(&h.scores);
        }
        Ok(Neighbors {
            ids,
            distances,
            n_queries: nq,
            k: top_k,
            metric,
        })
    }

    /// Makes the collection persistent and writes a handle file that `from_index_file` reopens.
    fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(&self.handle).expect("handle serialises");
        crate::io::atomic_write(path, &json)?;
        self.ephemeral.store(false, Ordering::SeqCst);
        Ok(())
    }

    fn metric(&self) -> Metric {
        self.metric_enum()
    }

    fn dim(&self) -> usize {
        self.handle.d
    }

    fn len(&self) -> usize {
        self.handle.n_items as usize
    }

    fn info(&self) -> IndexInfo {
        let mut info = handle_info(&self.handle);
        let raised_to = self.ef_noted.load(Ordering::Relaxed);
        if raised_to > 0 {
            info.warnings.push(format!(
                "ef {} < top_k {raised_to}: searched with ef = top_k (Milvus HNSW needs ef >= top_k)",
                self.handle.ef.unwrap_or(DEFAULT_EF)
            ));
        }
        info
    }

    fn set_param(&mut self, key: &str, value: &str) -> Result<()> {
        let r = Resolved::new("milvus", PARAMS, &Config::new().set(key, value))?;
        let it = self.handle.index_type.clone();
        if let Some(ef) = r.int("ef") {
            if it != "HNSW" {
                return Err(Error::invalid(format!("ef applies to HNSW, not {it}")));
            }
            self.handle.ef = Some(ef as usize);
        } else if let Some(np) = r.int("nprobe") {
            if it != "IVF_FLAT" {
                return Err(Error::invalid(format!(
                    "nprobe applies to IVF_FLAT, not {it}"
                )));
            }
            self.handle.nprobe = Some(np as usize);
        } else if let Some(c) = r.text("consistency") {
            self.handle.consistency = c.to_string();
        } else {
            return Err(Error::UnknownParameter {
                backend: "milvus".into(),
                key: key.into(),
                hint: String::new(),
                valid: "ef, nprobe, consistency (query-time parameters)".into(),
            });
        }
        Ok(())
    }
}
