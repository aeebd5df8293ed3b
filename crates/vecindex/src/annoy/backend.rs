//! The "annoy" backend: `builder_factory("annoy", d=…, metric=…, n_trees=…, threads=…, searchk=…)`.
//!
//! Files are annoy 1.17.3 files (annoy loads them); a small JSON sidecar `<index>.vecindex.json`
//! records what annoy files cannot: d, the metric, the tree count and custom ids.

use super::build::DEFAULT_SEED;
use super::forest::AnnoyForest;
use super::index::{build, query_all, BuildParams};
use super::layout::{parse_metric, METRIC_NAMES};
use crate::api::{
    check_ids, check_items, check_query, Builder, IndexInfo, Indexer, Neighbors, Progress,
};
use crate::config::{Config, Kind, Param, Resolved};
use crate::error::{Error, Result};
use crate::metric::Metric;
use crate::vectors::VectorsView;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub(crate) const PARAMS: &[Param] = &[
    Param {
        name: "d",
        aliases: &["dim", "f"],
        kind: Kind::Int {
            min: 1,
            max: super::forest::MAX_DIM as i64,
        },
    },
    Param {
        name: "metric",
        aliases: &[],
        kind: Kind::Choice(METRIC_NAMES),
    },
    Param {
        name: "n_trees",
        aliases: &["ntrees"],
        kind: Kind::Int {
            min: -1,
            max: 1 << 20,
        },
    },
    Param {
        name: "threads",
        aliases: &["n_jobs"],
        kind: Kind::Int { min: -1, max: 4096 },
    },
    Param {
        name: "searchk",
        aliases: &["search_k"],
        kind: Kind::Int {
            min: -1,
            max: i64::MAX,
        },
    },
    Param {
        name: "seed",
        aliases: &[],
        kind: Kind::Int {
            min: 0,
            max: i64::MAX,
        },
    },
];

/// What the sidecar file records.
#[derive(Debug, Serialize, Deserialize)]
struct Sidecar {
    format: String,
    version: u32,
    d: usize,
    metric: String,
    n_items: usize,
    n_trees: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ids: Option<Vec<i64>>,
    /// Size and digest (`io::digest64`, hex) of the forest file this sidecar belongs to; absent in
    /// sidecars written before version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    forest_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    forest_digest: Option<String>,
}

const SIDECAR_FORMAT: &str = "vecindex-annoy";

/// Where `save` puts the new forest before the new sidecar commits it (see [`AnnoyIndexer::save`]).
fn pending_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.pending"))
}

/// Checks that the forest at `path` is the one `s` was written for. After a save interrupted
/// between its commit (the sidecar) and the final rename, the new forest is still waiting at
/// [`pending_path`]: it is moved into place (the save's last step, finished now).
fn check_pair(path: &Path, side: &Path, s: &Sidecar) -> Result<()> {
    let (Some(bytes), Some(digest)) = (s.forest_bytes, &s.forest_digest) else {
        return Ok(()); // a version-1 sidecar: only its counts are checked, once the forest opens
    };
    let matches = |p: &Path| -> Result<bool> {
        let len = match std::fs::metadata(p) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io(p, e)),
        };
        Ok(len == bytes && format!("{:016x}", crate::io::file_digest64(p)?.1) == *digest)
    };
    if matches(path)? {
        return Ok(());
    }
    let pending = pending_path(path);
    if matches(&pending)? {
        std::fs::rename(&pending, path).map_err(|e| Error::io(path, e))?;
        crate::io::sync_parent(path);
        return Ok(());
    }
    Err(Error::format(
        path.display(),
        format!(
            "the forest does not match its sidecar {} (size or digest differ: an interrupted \
             save, or one of the two files replaced); rebuild the index or restore both files",
            side.display()
        ),
    ))
}

/// The sidecar path for an index path.
pub fn sidecar_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".vecindex.json");
    PathBuf::from(s)
}

/// Builder for the annoy backend.
#[derive(Clone)]
pub struct AnnoyBuilder {
    explicit: Resolved,
    progress: Option<Progress>,
}

impl AnnoyBuilder {
    /// Checks `config` against the annoy parameters; unknown keys, invalid values and `n_trees = 0`
    /// are errors.
    pub fn from_config(config: &Config) -> Result<Self> {
        let explicit = Resolved::new("annoy", PARAMS, config)?;
        if explicit.int("n_trees") == Some(0) {
            return Err(Error::InvalidParameter {
                key: "n_trees".into(),
                value: "0".into(),
                reason: "must be -1 (annoy's automatic count) or at least 1".into(),
            });
        }
        Ok(AnnoyBuilder {
            explicit,
            progress: None,
        })
    }

    fn metric(&self) -> Result<Metric> {
        parse_metric(self.explicit.text("metric").unwrap_or("angular"))
    }

    fn search_k(&self) -> Option<usize> {
        self.explicit
            .int("searchk")
            .filter(|&v| v >= 0)
            .map(|v| v as usize)
    }

    fn build(&self, items: VectorsView<'_>, ids: Option<Vec<i64>>) -> Result<AnnoyIndexer> {
        check_items(items, self.explicit.int("d").map(|d| d as usize))?;
        if let Some(ids) = &ids {
            check_ids(ids, items.rows())?;
        }
        let metric = self.metric()?;
        let threads = match self.explicit.int("threads") {
            Some(t) if t > 0 => t as usize,
            _ => rayon::current_num_threads(),
        };
        let n_trees = match self.explicit.int("n_trees") {
            Some(-1) => None,
            Some(t) => Some(t as usize),
            None => Some(10),
        };
        let seed = self
            .explicit
            .int("seed")
            .map(|s| s as u64)
            .unwrap_or(DEFAULT_SEED);
        let params = BuildParams {
            n_trees,
            threads,
            seed,
            ..BuildParams::default()
        };
        let report = |done: u64, total: u64| {
            if let Some(p) = &self.progress {
                p("annoy build", done, total)
            }
        };
        let forest = build(items, metric, params, &report)?;
        Ok(AnnoyIndexer::new(forest, metric, self.search_k(), ids))
    }

    fn load(&self, path: &Path) -> Result<AnnoyIndexer> {
        let src = path.display().to_string();
        let side = sidecar_path(path);
        // A first save interrupted after its commit leaves the forest at the pending path, and
        // the sidecar check below finishes that save: only without a sidecar is a missing
        // forest an error right away.
        if path.exists() || !side.exists() {
            crate::io::check_is_file(path)?;
        }
        let sidecar: Option<Sidecar> = match std::fs::read(&side) {
            Ok(b) => Some(
                serde_json::from_slice(&b)
                    .map_err(|e| Error::format(side.display(), format!("invalid sidecar: {e}")))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(&side, e)),
        };
        let recorded_items = sidecar.as_ref().map(|s| s.n_items);
        let (d, metric, ids) = match sidecar {
            Some(s) => {
                if s.format != SIDECAR_FORMAT {
                    return Err(Error::format(
                        side.display(),
                        format!("not a vecindex annoy sidecar (format '{}')", s.format),
                    ));
                }
                if !(1..=2).contains(&s.version) {
                    return Err(Error::format(
                        side.display(),
                        format!(
                            "sidecar version {} (this vecindex reads 1 and 2)",
                            s.version
                        ),
                    ));
                }
                if s.d == 0 || s.d > super::forest::MAX_DIM {
                    return Err(Error::format(
                        side.display(),
                        format!("d = {} (valid: 1 to {})", s.d, super::forest::MAX_DIM),
                    ));
                }
                check_pair(path, &side, &s)?;
                let m = parse_metric(&s.metric)?;
                if let Some(d) = self.explicit.int("d") {
                    if d as usize != s.d {
                        return Err(Error::invalid(format!(
                            "{src} was built with d={}, but d={d} was given",
                            s.d
                        )));
                    }
                }
                if self.explicit.is_set("metric") && self.metric()? != m {
                    return Err(Error::invalid(format!(
                        "{src} was built with metric {}, but metric={} was given",
                        s.metric,
                        self.explicit.text("metric").unwrap_or("")
                    )));
                }
                (s.d, m, s.ids)
            }
            None => {
                let d = self.explicit.int("d").ok_or_else(|| {
                    Error::invalid(format!(
                        "{src}: annoy files do not record their dimension and there is no sidecar; pass d=… (and metric=…, default angular)"
                    ))
                })?;
                (d as usize, self.metric()?, None)
            }
        };
        let forest = AnnoyForest::open(path, d, metric)?;
        if let Some(n) = recorded_items {
            if n != forest.n_items {
                return Err(Error::format(
                    side.display(),
                    format!("records {n} items, the forest holds {}", forest.n_items),
                ));
            }
        }
        if let Some(ids) = &ids {
            if ids.len() != forest.n_items {
                return Err(Error::format(
                    side.display(),
                    format!("{} ids for {} items", ids.len(), forest.n_items),
                ));
            }
            check_ids(ids, forest.n_items)
                .map_err(|e| Error::format(side.display(), e.to_string()))?;
        }
        Ok(AnnoyIndexer::new(forest, metric, self.search_k(), ids))
    }
}

impl Builder for AnnoyBuilder {
    fn backend(&self) -> &'static str {
        "annoy"
    }

    fn from_embeddings(&self, items: VectorsView<'_>) -> Result<Box<dyn Indexer>> {
        Ok(Box::new(self.build(items, None)?))
    }

    fn from_embeddings_with_ids(
        &self,
        items: VectorsView<'_>,
        ids: &[i64],
    ) -> Result<Box<dyn Indexer>> {
        Ok(Box::new(self.build(items, Some(ids.to_vec()))?))
    }

    fn from_index_file(&self, path: &Path) -> Result<Box<dyn Indexer>> {
        Ok(Box::new(self.load(path)?))
    }

    fn set_progress(&mut self, progress: Progress) {
        self.progress = Some(progress);
    }
}

/// An annoy forest ready to query (a read-only mmap when loaded from a file).
pub struct AnnoyIndexer {
    forest: AnnoyForest,
    metric: Metric,
    search_k: Option<usize>,
    id_map: Option<Vec<i64>>,
    n_trees: usize,
    format: String,
}

impl AnnoyIndexer {
    fn new(
        forest: AnnoyForest,
        metric: Metric,
        search_k: Option<usize>,
        id_map: Option<Vec<i64>>,
    ) -> Self {
        let n_trees = forest.roots.len();
        AnnoyIndexer {
            forest,
            metric,
            search_k,
            id_map,
            n_trees,
            format: "annoy 1.17.3".into(),
        }
    }

    /// The validated node array this index searches (layout, item count, roots).
    pub fn forest(&self) -> &AnnoyForest {
        &self.forest
    }
}

impl Indexer for AnnoyIndexer {
    fn query(&self, queries: VectorsView<'_>, top_k: usize) -> Result<Neighbors> {
        check_query(queries, self.forest.layout.f, top_k)?;
        let metric = self.metric;
        let pad = metric.padding();
        let rows = query_all(&self.forest, queries, top_k, self.search_k);
        let nq = rows.len();
        let mut ids = vec![-1i64; nq * top_k];
        let mut distances = vec![pad; nq * top_k];
        for (q, row) in rows.into_iter().enumerate() {
            for (j, (id, d)) in row.into_iter().enumerate() {
                ids[q * top_k + j] = match &self.id_map {
                    Some(m) => m[id as usize],
                    None => id,
                };
                distances[q * top_k + j] = d;
            }
        }
        Ok(Neighbors {
            ids,
            distances,
            n_queries: nq,
            k: top_k,
            metric,
        })
    }

    /// Saves the pair so that a crash at any point leaves the old pair or the new one:
    /// 1. the new forest goes to `.NAME.pending` (written and synced through a temp file);
    /// 2. the new sidecar, which records the new forest's size and digest, replaces the old one
    ///    atomically — the commit point;
    /// 3. the pending forest is renamed over the old one.
    ///
    /// A crash before 2 leaves the old pair (and a pending file the next save replaces); a crash
    /// between 2 and 3 is finished by the next load (see `check_pair`).
    fn save(&self, path: &Path) -> Result<()> {
        let bytes = self.forest.as_bytes();
        let side = Sidecar {
            format: SIDECAR_FORMAT.into(),
            version: 2,
            d: self.forest.layout.f,
            metric: self.metric.name().into(),
            n_items: self.forest.n_items,
            n_trees: self.n_trees,
            ids: self.id_map.clone(),
            forest_bytes: Some(bytes.len() as u64),
            forest_digest: Some(format!("{:016x}", crate::io::digest64(bytes))),
        };
        let json = serde_json::to_vec_pretty(&side).map_err(|e| Error::invalid(e.to_string()))?;
        let pending = pending_path(path);
        // Removed again if the commit fails or the program is stopped before it.
        let uncommitted = crate::io::write_uncommitted(&pending, bytes)?;
        crate::io::atomic_write_committing(&sidecar_path(path), &json, Some(uncommitted))?;
        std::fs::rename(&pending, path).map_err(|e| Error::io(path, e))?;
        crate::io::sync_parent(path);
        Ok(())
    }

    fn metric(&self) -> Metric {
        self.metric
    }

    fn dim(&self) -> usize {
        self.forest.layout.f
    }

    fn len(&self) -> usize {
        self.forest.n_items
    }

    fn info(&self) -> IndexInfo {
        let mut params = BTreeMap::new();
        params.insert("n_trees".to_string(), self.n_trees.to_string());
        params.insert(
            "searchk".to_string(),
            self.search_k
                .map(|v| v.to_string())
                .unwrap_or_else(|| "-1".into()),
        );
        IndexInfo {
            backend: "annoy".into(),
            format: self.format.clone(),
            index_type: "forest".into(),
            metric: self.metric,
            higher_is_better: self.metric.higher_is_better(),
            dim: self.forest.layout.f,
            n: self.forest.n_items,
            custom_ids: self.id_map.is_some(),
            params,
            warnings: Vec::new(),
        }
    }

    fn set_param(&mut self, key: &str, value: &str) -> Result<()> {
        let r = Resolved::new("annoy", PARAMS, &Config::new().set(key, value))?;
        let name = r.names().next();
        match name {
            Some("searchk") => {
                self.search_k = r.int("searchk").filter(|&v| v >= 0).map(|v| v as usize);
                Ok(())
            }
            Some(name) => Err(Error::InvalidParameter {
                key: name.into(),
                value: value.into(),
                reason: "not a query-time parameter of an annoy index (searchk is)".into(),
            }),
            None => unreachable!("one key"),
        }
    }
}
