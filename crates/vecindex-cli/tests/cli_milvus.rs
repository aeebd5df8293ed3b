//! `vecindex build/query/info/collections` against the Milvus server `./scripts/test.sh` starts
//! (skipped with a notice without it, except under CI / VECINDEX_REQUIRE_PEERS).
#![cfg(feature = "milvus")]

mod common;

use common::*;
use vecindex::{builder_factory, Config, VectorsView};

/// The Milvus server `./scripts/test.sh` started, or None (with a notice) outside it.
#[cfg(feature = "milvus")]
fn milvus_uri() -> Option<String> {
    if let Ok(u) = std::env::var("VECINDEX_MILVUS_URI") {
        return Some(u);
    }
    let required = std::env::var_os("VECINDEX_NO_MILVUS").is_none()
        && (std::env::var_os("CI").is_some()
            || std::env::var_os("VECINDEX_REQUIRE_PEERS").is_some());
    assert!(
        !required,
        "VECINDEX_MILVUS_URI is not set: run ./scripts/test.sh"
    );
    eprintln!("NOTICE: skipping Milvus CLI test: VECINDEX_MILVUS_URI not set");
    None
}

#[cfg(feature = "milvus")]
#[test]
fn milvus_build_query_info_collections() {
    let Some(uri) = milvus_uri() else { return };
    let d = data();
    let name = format!("vecindex_cli_test_{}", std::process::id());
    let uri_kv = format!("uri={uri}");
    ok(&[
        "build",
        "milvus",
        "metric=IP",
        &uri_kv,
        &format!("collection={name}"),
        "--input",
        &p(&d, "items.npy"),
        "--output",
        &p(&d, "h.json"),
    ]);
    let listed = String::from_utf8_lossy(&ok(&["collections", &uri_kv]).stdout).to_string();
    assert!(listed.lines().any(|l| l == name), "{listed}");
    let info =
        String::from_utf8_lossy(&ok(&["info", &p(&d, "h.json"), "--json"]).stdout).to_string();
    let v: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(v["backend"], "milvus");
    assert_eq!(v["n"], N);
    assert_eq!(v["params"]["collection"], name.as_str());
    // The handle reopens the collection: same answer as exact search (FLAT).
    ok(&[
        "query",
        "milvus",
        "--index",
        &p(&d, "h.json"),
        "--queries",
        &p(&d, "queries.npy"),
        "-k",
        "5",
        "--output",
        &p(&d, "out.npz"),
    ]);
    let (ids, dist, shape) = read_npz(&d.dir.join("out.npz"));
    assert_eq!(shape, vec![NQ, 5]);
    let exact = builder_factory("faiss", &Config::new().set("metric", "IP"))
        .unwrap()
        .from_embeddings(VectorsView::new(&d.items, D).unwrap())
        .unwrap()
        .query(VectorsView::new(&d.queries, D).unwrap(), 5)
        .unwrap();
    assert_eq!(ids, exact.ids);
    for (a, b) in dist.iter().zip(&exact.distances) {
        assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{a} vs {b}");
    }
    fails(
        &[
            "query",
            "milvus",
            "ef=8",
            "--index",
            &p(&d, "h.json"),
            "--queries",
            &p(&d, "queries.npy"),
            "-k",
            "5",
            "--output",
            "-",
        ],
        &["ef", "HNSW"],
    );
    ok(&["collections", &uri_kv, "--drop", &name]);
    let listed = String::from_utf8_lossy(&ok(&["collections", &uri_kv]).stdout).to_string();
    assert!(!listed.lines().any(|l| l == name), "{listed}");
    fails(
        &[
            "query",
            "milvus",
            "--index",
            &p(&d, "h.json"),
            "--queries",
            &p(&d, "queries.npy"),
            "-k",
            "5",
            "--output",
            "-",
        ],
        &["does not exist", &name],
    );
    fails(
        &[
            "build",
            "milvus",
            "uri=http://127.0.0.1:1",
            "connect_timeout=1",
            "--input",
            &p(&d, "items.npy"),
            "--output",
            &p(&d, "h2.json"),
        ],
        &["http://127.0.0.1:1", "connecting"],
    );
}
