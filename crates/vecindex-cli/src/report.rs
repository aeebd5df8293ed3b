//! What a `vecindex bench` run measures, one row per index and sweep value: the rows the table,
//! the JSON/CSV files and the chart are made from.

use serde::Serialize;

/// One measured point.
#[derive(Debug, Clone, Serialize)]
pub struct ResultRow {
    pub label: String,
    /// Items indexed (the base, or its first rows with `--sizes`).
    pub n_items: usize,
    pub backend: String,
    pub params: String,
    pub sweep: String,
    pub metric: String,
    pub k: usize,
    pub build_s: f64,
    pub index_bytes: u64,
    pub peak_rss_bytes: u64,
    pub recall: f64,
    pub qps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}
