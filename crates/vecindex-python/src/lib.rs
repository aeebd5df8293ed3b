//! `vecindex._native`: the PyO3 layer under the `vecindex` Python package.
//!
//! Thin by design: it moves float32/int64 numpy buffers in and out without copies, releases the
//! GIL around every call into the engine, turns `vecindex::Error` into the matching Python
//! exception and never lets a Rust panic cross into Python. Input coercion (torch tensors, other
//! dtypes, shapes) and the torch-rechub-compatible API live in the Python package above it.

mod errors;
mod index;
mod run;

use numpy::{PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;

use index::{view, Builder, Index};

/// Exact top-k (`metric` "L2" or "IP") of `queries` against `items`: the truth ANN results are
/// judged against. Returns `(ids, distances)` as numpy arrays of shape `(n_queries, k)`.
#[pyfunction]
fn exact_knn<'py>(
    py: Python<'py>,
    items: PyReadonlyArray2<'py, f32>,
    queries: PyReadonlyArray2<'py, f32>,
    metric: &str,
    k: usize,
) -> PyResult<index::QueryResult<'py>> {
    let metric = match metric.to_ascii_uppercase().as_str() {
        "L2" => vecindex::Metric::L2,
        "IP" => vecindex::Metric::InnerProduct,
        other => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "unknown metric '{other}' for exact_knn; valid: L2, IP"
            )))
        }
    };
    let (items_data, d) = (items.as_slice()?, items.shape()[1]);
    let (queries_data, qd) = (queries.as_slice()?, queries.shape()[1]);
    let result = run::detached(py, || {
        vecindex::exact_knn(view(items_data, d)?, view(queries_data, qd)?, metric, k)
    })?;
    index::to_numpy(py, result)
}

/// `topk_metrics` over integer-coded lists (the Python layer maps arbitrary item ids to codes).
/// Returns the metrics as a JSON document (`vecindex::eval::TopkMetrics` plus the original's
/// strings under `legacy`).
#[pyfunction]
fn topk_metrics_json(
    py: Python<'_>,
    truth: Vec<Vec<i64>>,
    pred: Vec<Vec<i64>>,
    ks: Vec<usize>,
) -> PyResult<String> {
    run::detached(py, || {
        let m = vecindex::eval::topk_metrics(&truth, &pred, &ks)?;
        let legacy: Vec<(String, Vec<String>)> = m
            .legacy_strings()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let doc = serde_json::json!({ "metrics": m, "legacy": legacy });
        Ok(doc.to_string())
    })
}

/// Describes a saved index of any backend (recognised by content), as JSON.
#[pyfunction]
fn inspect_json(py: Python<'_>, path: std::path::PathBuf) -> PyResult<String> {
    let info = run::detached(py, || vecindex::inspect(&path))?;
    serde_json::to_string(&info)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))
}

/// The backends this build of the engine has.
#[pyfunction]
fn available_backends() -> Vec<&'static str> {
    vecindex::available_backends()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Builder>()?;
    m.add_class::<Index>()?;
    m.add_function(wrap_pyfunction!(exact_knn, m)?)?;
    m.add_function(wrap_pyfunction!(topk_metrics_json, m)?)?;
    m.add_function(wrap_pyfunction!(inspect_json, m)?)?;
    m.add_function(wrap_pyfunction!(available_backends, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
