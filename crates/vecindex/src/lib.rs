//! # vecindex
//!
//! One Builder → Indexer interface over nearest-neighbour backends, so that switching backend is
//! a change of one name. It mirrors Torch-RecHub's serving module
//! (`builder_factory(name, **config)` → `from_embeddings` / `from_index_file` → `query`, `save`)
//! and fixes its defects: unknown names and parameters are errors that list the valid choices,
//! results always have shape `(n_queries, top_k)` with id -1 and the worst score in empty slots,
//! and every index reports its metric and whether larger is better.
//!
//! ```
//! use vecindex::{builder_factory, Config, VectorsView};
//!
//! // 1,000 items and 5 users with 16-dimensional embeddings (from a two-tower model, say).
//! let d = 16;
//! let items: Vec<f32> = (0..1000 * d).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect();
//! let users: Vec<f32> = items[..5 * d].to_vec();
//!
//! let builder = builder_factory("faiss", &Config::new().set("index_type", "Flat").set("metric", "IP"))?;
//! let indexer = builder.from_embeddings(VectorsView::new(&items, d)?)?;
//! let result = indexer.query(VectorsView::new(&users, d)?, 10)?;
//! assert_eq!(result.ids_row(0).len(), 10);
//! assert!(indexer.higher_is_better()); // IP: larger first
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("items.index");
//! indexer.save(&path)?; // a faiss file: faiss.read_index(path) loads it
//! let reopened = builder.from_index_file(&path)?;
//! assert_eq!(reopened.query(VectorsView::new(&users, d)?, 10)?, result);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

/// The README's examples are compiled and run as doc tests.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub mod annoy;
pub mod api;
pub mod config;
pub mod error;
pub mod eval;
pub(crate) mod exact;
pub mod faiss;
#[doc(hidden)]
pub mod fuzzing;
#[doc(hidden)]
pub mod internals;
pub mod io;
pub(crate) mod kernels;
pub mod metric;
#[cfg(feature = "milvus")]
pub mod milvus;
pub mod synth;
pub mod vectors;

pub use api::{Builder, IndexInfo, Indexer, Neighbors, Progress};
pub use config::Config;
pub use error::{Error, Result};
pub use metric::Metric;
pub use vectors::{Vectors, VectorsView};

/// The backends `builder_factory` knows, and whether this build has them.
pub const BACKENDS: &[(&str, bool)] = &[
    ("faiss", true),
    ("annoy", true),
    ("milvus", cfg!(feature = "milvus")),
];

/// Returns the builder for `backend` ("faiss", "annoy", "milvus"; case-insensitive) configured by
/// `config` (Torch-RecHub parameter names, snake_case aliases accepted). Unknown backends,
/// parameters or values are errors that list the valid choices.
pub fn builder_factory(backend: &str, config: &Config) -> Result<Box<dyn Builder>> {
    match backend.to_ascii_lowercase().as_str() {
        "faiss" => Ok(Box::new(faiss::FaissBuilder::from_config(config)?)),
        "annoy" => Ok(Box::new(annoy::backend::AnnoyBuilder::from_config(config)?)),
        #[cfg(feature = "milvus")]
        "milvus" => Ok(Box::new(milvus::MilvusBuilder::from_config(config)?)),
        name if BACKENDS.iter().any(|(b, _)| *b == name) => Err(Error::Unsupported(format!(
            "backend '{name}' is not compiled into this build of vecindex (enable the cargo \
             feature '{name}'); available: {}",
            available_backends().join(", ")
        ))),
        _ => Err(Error::UnknownBackend {
            name: backend.to_string(),
            valid: BACKENDS.iter().map(|b| b.0).collect::<Vec<_>>().join(", "),
        }),
    }
}

/// Parameters of `config` that only shape a build (e.g. `efConstruction`, `m`, `nlists`,
/// `n_trees`), by their canonical names: they cannot change an index that is opened from a file,
/// so a command that only opens and queries reports them instead of ignoring them silently.
/// Unknown keys and bad values are errors, as in [`builder_factory`].
pub fn build_only_params(backend: &str, config: &Config) -> Result<Vec<&'static str>> {
    let (params, build_only): (&[config::Param], &[&str]) =
        match backend.to_ascii_lowercase().as_str() {
            "faiss" => (
                faiss::PARAMS,
                &[
                    "m",
                    "efConstruction",
                    "nlists",
                    "threads",
                    "storage",
                    "refine",
                    "factory",
                ],
            ),
            "annoy" => (annoy::backend::PARAMS, &["n_trees", "threads", "seed"]),
            #[cfg(feature = "milvus")]
            "milvus" => (
                milvus::PARAMS,
                &[
                    "m",
                    "efConstruction",
                    "nlist",
                    "collection",
                    "name",
                    "overwrite",
                    "build_timeout",
                ],
            ),
            _ => return builder_factory(backend, config).map(|_| Vec::new()),
        };
    let resolved = config::Resolved::new(backend, params, config)?;
    Ok(resolved
        .names()
        .filter(|n| build_only.contains(n))
        .collect())
}

/// The backends this build can use.
pub fn available_backends() -> Vec<&'static str> {
    BACKENDS.iter().filter(|b| b.1).map(|b| b.0).collect()
}

/// Describes an index file of any backend this build reads (recognised by its content).
pub fn inspect(path: &std::path::Path) -> Result<IndexInfo> {
    #[cfg(feature = "milvus")]
    if milvus::is_handle(path) {
        return milvus::inspect_handle(path);
    }
    if annoy::backend::sidecar_path(path).exists() {
        return annoy::backend::AnnoyBuilder::from_config(&Config::new())?
            .from_index_file(path)
            .map(|i| i.info());
    }
    faiss::FaissBuilder::new().load(path).map(|i| i.info())
}

/// Exact top-k of `queries` against `items` (L2 or IP), the truth ANN results are judged against.
pub fn exact_knn(
    items: VectorsView<'_>,
    queries: VectorsView<'_>,
    metric: Metric,
    k: usize,
) -> Result<Neighbors> {
    // The exact search itself, over the caller's rows (no index, no copy).
    if !matches!(metric, Metric::L2 | Metric::InnerProduct) {
        return Err(Error::invalid(format!(
            "exact_knn ranks by L2 or IP, not {metric} (valid: L2, IP; \
             eval::exact_neighbors covers annoy's metrics and cosine)"
        )));
    }
    api::check_items(items, None)?;
    api::check_query(queries, items.dim(), k)?;
    let norms = if metric == Metric::L2 {
        kernels::row_norms(items.as_slice(), items.dim())
    } else {
        Vec::new()
    };
    let raw =
        exact::ExactSearch::new(items.as_slice(), items.dim(), &norms, metric).search(queries, k);
    Ok(Neighbors {
        ids: raw.ids,
        distances: raw.distances,
        n_queries: queries.rows(),
        k,
        metric,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factory_names() {
        assert!(builder_factory("FAISS", &Config::new()).is_ok());
        let e = builder_factory("foo", &Config::new())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("unknown backend 'foo'") && e.contains("faiss, annoy, milvus"),
            "{e}"
        );
        let e = builder_factory("faiss", &Config::new().set("metric", "cosine"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("L2, IP"), "{e}");
        let e = builder_factory(
            "faiss",
            &Config::new().set("index_type", "Flat").set("efSearch", 5),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("applies to index_type HNSW"), "{e}");
    }
}
