//! The `Builder` and `Index` classes: the engine's Builder → Indexer API for Python.

use crate::run::{detached, interruptible, stop_if_interrupted};
use numpy::{
    PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use vecindex::{Config, Error, Indexer, Neighbors, VectorsView};

/// `(ids, distances)` as numpy arrays of shape `(n_queries, top_k)`.
pub type QueryResult<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<f32>>);

/// A row-major matrix view of a C-contiguous float32 buffer with `d` columns.
pub fn view(data: &[f32], d: usize) -> vecindex::Result<VectorsView<'_>> {
    VectorsView::new(data, d)
}

/// Hands the result buffers to numpy without copying them.
pub fn to_numpy(py: Python<'_>, r: Neighbors) -> PyResult<QueryResult<'_>> {
    let shape = [r.n_queries, r.k];
    let ids = PyArray1::from_vec(py, r.ids).reshape(shape)?;
    let distances = PyArray1::from_vec(py, r.distances).reshape(shape)?;
    Ok((ids, distances))
}

/// A validated backend configuration; each build or load makes a fresh engine builder from it,
/// so one `Builder` serves several threads at once.
#[pyclass(module = "vecindex._native", frozen)]
pub struct Builder {
    backend: String,
    config: Config,
}

#[pymethods]
impl Builder {
    /// `backend` is "faiss", "annoy" or "milvus"; `config` holds `(key, value)` settings with
    /// the engine's names. Unknown backends, keys and values raise here.
    #[new]
    fn new(backend: &str, config: Vec<(String, String)>) -> PyResult<Self> {
        let config: Config = config.into_iter().collect();
        vecindex::builder_factory(backend, &config).map_err(crate::errors::to_py_err)?;
        Ok(Builder {
            backend: backend.to_ascii_lowercase(),
            config,
        })
    }

    /// The backend name.
    #[getter]
    fn backend(&self) -> &str {
        &self.backend
    }

    /// Builds an index over the rows of `items` (C-contiguous float32, 2-D), with optional int64
    /// `ids`. The GIL is released; Ctrl-C stops the build at its next checkpoint. `progress`, if
    /// given, is called as `progress(stage, done, total)` at each checkpoint; if it raises, the
    /// build stops and the exception propagates.
    #[pyo3(signature = (items, ids=None, progress=None))]
    fn build(
        &self,
        py: Python<'_>,
        items: PyReadonlyArray2<'_, f32>,
        ids: Option<PyReadonlyArray1<'_, i64>>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Index> {
        let data = items.as_slice()?;
        let d = items.shape()[1];
        let ids = match &ids {
            Some(a) => Some(a.as_slice()?),
            None => None,
        };
        let (backend, config) = (&self.backend, &self.config);
        let callback_error: Arc<Mutex<Option<PyErr>>> = Arc::default();
        let callback_failed = Arc::clone(&callback_error);
        let indexer = interruptible(py, |flag| {
            let mut builder = vecindex::builder_factory(backend, config)?;
            builder.set_progress(Arc::new(move |stage: &str, done, total| {
                if let Some(cb) = &progress {
                    let called = Python::attach(|py| cb.call1(py, (stage, done, total)).map(drop));
                    if let Err(e) = called {
                        callback_failed
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_or_insert(e);
                        flag.store(true, Ordering::Relaxed);
                    }
                }
                stop_if_interrupted(&flag)
            }));
            let items = view(data, d)?;
            match ids {
                Some(ids) => builder.from_embeddings_with_ids(items, ids),
                None => builder.from_embeddings(items),
            }
        });
        if let Some(e) = callback_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            return Err(e);
        }
        Ok(Index::new(indexer?))
    }

    /// Opens a saved index (a faiss or annoy file, or a Milvus handle file).
    fn load(&self, py: Python<'_>, path: PathBuf) -> PyResult<Index> {
        let (backend, config) = (&self.backend, &self.config);
        let indexer = detached(py, || {
            vecindex::builder_factory(backend, config)?.from_index_file(&path)
        })?;
        Ok(Index::new(indexer))
    }
}

/// An open index. Queries from several Python threads run in parallel (the GIL is released);
/// `close()` releases it (a temporary Milvus collection is dropped) and later calls raise.
#[pyclass(module = "vecindex._native", frozen)]
pub struct Index {
    inner: RwLock<Option<Box<dyn Indexer>>>,
}

impl Index {
    fn new(indexer: Box<dyn Indexer>) -> Self {
        Index {
            inner: RwLock::new(Some(indexer)),
        }
    }

    /// Runs `f` on the open indexer (shared: concurrent queries do not wait for each other).
    fn with<T>(&self, f: impl FnOnce(&dyn Indexer) -> vecindex::Result<T>) -> vecindex::Result<T> {
        let guard = self.inner.read().unwrap_or_else(|e| e.into_inner());
        match guard.as_deref() {
            Some(indexer) => f(indexer),
            None => Err(closed()),
        }
    }

    /// Runs `f` on the open indexer exclusively (parameter changes).
    fn with_mut<T>(
        &self,
        f: impl FnOnce(&mut dyn Indexer) -> vecindex::Result<T>,
    ) -> vecindex::Result<T> {
        let mut guard = self.inner.write().unwrap_or_else(|e| e.into_inner());
        match guard.as_deref_mut() {
            Some(indexer) => f(indexer),
            None => Err(closed()),
        }
    }
}

fn closed() -> Error {
    Error::InvalidArgument("operation on a closed index".into())
}

#[pymethods]
impl Index {
    /// The `top_k` best items for each row of `queries`, best first: `(ids, distances)`, numpy
    /// int64 and float32 arrays of shape `(n, top_k)`. Empty slots hold id -1 and ±inf.
    fn query<'py>(
        &self,
        py: Python<'py>,
        queries: PyReadonlyArray2<'py, f32>,
        top_k: usize,
    ) -> PyResult<QueryResult<'py>> {
        let data = queries.as_slice()?;
        let d = queries.shape()[1];
        let result = detached(py, || self.with(|ix| ix.query(view(data, d)?, top_k)))?;
        to_numpy(py, result)
    }

    /// For benchmarks: the engine's own query timed in Rust (no Python in the loop), so the
    /// Python call's overhead can be measured beside it. Returns the best of `repeat` runs, in
    /// seconds, of one batch call over all rows, or (`per_row`) of one call per row in turn.
    fn _bench_query(
        &self,
        py: Python<'_>,
        queries: PyReadonlyArray2<'_, f32>,
        top_k: usize,
        repeat: usize,
        per_row: bool,
    ) -> PyResult<f64> {
        let data = queries.as_slice()?;
        let d = queries.shape()[1];
        detached(py, || {
            self.with(|ix| {
                let q = view(data, d)?;
                let mut best = f64::INFINITY;
                for _ in 0..repeat.max(1) {
                    let t = std::time::Instant::now();
                    if per_row {
                        for i in 0..q.rows() {
                            std::hint::black_box(ix.query(q.slice_rows(i, i + 1), top_k)?);
                        }
                    } else {
                        std::hint::black_box(ix.query(q, top_k)?);
                    }
                    best = best.min(t.elapsed().as_secs_f64());
                }
                Ok(best)
            })
        })
    }

    /// Writes the index atomically in its backend's format (faiss/annoy file, Milvus handle).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        detached(py, || self.with(|ix| ix.save(&path)))
    }

    /// Changes a query-time parameter (`efSearch`, `nprobe`, `searchk`, `ef`, ...).
    fn set_param(&self, py: Python<'_>, key: &str, value: &str) -> PyResult<()> {
        detached(py, || self.with_mut(|ix| ix.set_param(key, value)))
    }

    /// Format, type, metric, sizes and parameters, as JSON.
    fn info_json(&self, py: Python<'_>) -> PyResult<String> {
        let info = detached(py, || self.with(|ix| Ok(ix.info())))?;
        serde_json::to_string(&info)
            .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))
    }

    /// The metric's name ("L2", "IP", "COSINE", "angular", ...).
    #[getter]
    fn metric(&self, py: Python<'_>) -> PyResult<&'static str> {
        detached(py, || self.with(|ix| Ok(ix.metric().name())))
    }

    /// True when larger scores are better (similarities).
    #[getter]
    fn higher_is_better(&self, py: Python<'_>) -> PyResult<bool> {
        detached(py, || self.with(|ix| Ok(ix.higher_is_better())))
    }

    /// The vector dimension.
    #[getter]
    fn dim(&self, py: Python<'_>) -> PyResult<usize> {
        detached(py, || self.with(|ix| Ok(ix.dim())))
    }

    /// The number of items indexed.
    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        detached(py, || self.with(|ix| Ok(ix.len())))
    }

    /// True once `close()` has run.
    #[getter]
    fn closed(&self) -> bool {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }

    /// Releases the index (waits for running queries). Closing twice is harmless.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        detached(py, || {
            let taken = self.inner.write().unwrap_or_else(|e| e.into_inner()).take();
            drop(taken);
            Ok(())
        })
    }
}
