//! End-to-end build/query round trips of the `vecindex` binary: same answers as the library,
//! custom ids and JSON lines, input formats, IVF and HNSW parameters, numpy reading our .npz.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use vecindex::io::npy;
use vecindex::{builder_factory, Config, VectorsView};

#[test]
fn build_query_round_trip_matches_the_library() {
    let d = data();
    for metric in ["L2", "IP"] {
        ok(&[
            "build",
            "faiss",
            "index_type=Flat",
            &format!("metric={metric}"),
            "--input",
            &p(&d, "items.npy"),
            "--output",
            &p(&d, "x.index"),
        ]);
        ok(&[
            "query",
            "faiss",
            "--index",
            &p(&d, "x.index"),
            "--queries",
            &p(&d, "queries.npy"),
            "-k",
            "7",
            "--output",
            &p(&d, "out.npz"),
        ]);
        let (ids, dist, shape) = read_npz(&d.dir.join("out.npz"));
        assert_eq!(shape, vec![NQ, 7]);
        let lib = builder_factory("faiss", &Config::new().set("metric", metric))
            .unwrap()
            .from_embeddings(VectorsView::new(&d.items, D).unwrap())
            .unwrap()
            .query(VectorsView::new(&d.queries, D).unwrap(), 7)
            .unwrap();
        assert_eq!(ids, lib.ids, "{metric}");
        assert_eq!(dist, lib.distances, "{metric}");
    }
}

#[test]
fn custom_ids_json_lines_and_padding() {
    let d = data();
    let ids: Vec<i64> = (0..N as i64).map(|i| 1_000_000 + i * 3).collect();
    std::fs::write(d.dir.join("ids.npy"), npy::npy_i64(&[N], &ids)).unwrap();
    ok(&[
        "build",
        "faiss",
        "--input",
        &p(&d, "items.npy"),
        "--ids",
        &p(&d, "ids.npy"),
        "--output",
        &p(&d, "x.index"),
    ]);
    let o = ok(&[
        "query",
        "faiss",
        "--index",
        &p(&d, "x.index"),
        "--queries",
        &p(&d, "queries.npy"),
        "-k",
        &(N + 2).to_string(),
        "--output",
        "-",
    ]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), NQ);
    let row = lines[3]["ids"].as_array().unwrap();
    assert_eq!(row.len(), N + 2);
    assert!(row[..N].iter().all(|v| ids.contains(&v.as_i64().unwrap())));
    assert_eq!(row[N].as_i64(), Some(-1));
    assert!(lines[3]["distances"][N].is_null());
    let info = ok(&["info", &p(&d, "x.index")]);
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(
        text.contains("IxMp")
            && text.contains("custom")
            && text.contains(&format!("n:         {N}")),
        "{text}"
    );
    let j = ok(&["info", "--json", &p(&d, "x.index")]);
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    assert_eq!(v["dim"].as_u64(), Some(D as u64));
    assert_eq!(v["metric"].as_str(), Some("L2"));
}

#[test]
fn other_input_formats() {
    let d = data();
    let v = vecindex::Vectors::new(d.items.clone(), D).unwrap();
    std::fs::write(d.dir.join("items.fvecs"), vecindex::io::fvecs_bytes(&v)).unwrap();
    ok(&[
        "build",
        "faiss",
        "--input",
        &p(&d, "items.fvecs"),
        "--output",
        &p(&d, "a.index"),
    ]);
    ok(&[
        "build",
        "faiss",
        "--input",
        &p(&d, "items.npy"),
        "--output",
        &p(&d, "b.index"),
    ]);
    assert_eq!(
        std::fs::read(d.dir.join("a.index")).unwrap(),
        std::fs::read(d.dir.join("b.index")).unwrap()
    );
}

#[test]
fn numpy_reads_our_npz() {
    // Uses the test venv when present (./scripts/test.sh creates it).
    let py = [
        std::env::var("VECINDEX_PYTHON").unwrap_or_default(),
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python").to_string(),
    ]
    .into_iter()
    .find(|p| !p.is_empty() && Path::new(p).exists());
    let Some(py) = py else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have the test venv"
        );
        eprintln!("NOTICE: skipping numpy check: no .venv (run ./scripts/test.sh)");
        return;
    };
    let d = data();
    ok(&[
        "build",
        "faiss",
        "--input",
        &p(&d, "items.npy"),
        "--output",
        &p(&d, "x.index"),
    ]);
    ok(&[
        "query",
        "faiss",
        "--index",
        &p(&d, "x.index"),
        "--queries",
        &p(&d, "queries.npy"),
        "-k",
        "5",
        "--output",
        &p(&d, "out.npz"),
    ]);
    let code = format!(
        "import numpy as np; z=np.load('{}'); assert z['ids'].dtype==np.int64 and z['ids'].shape==({NQ},5); assert z['distances'].dtype==np.float32; print(z['ids'][0,0])",
        p(&d, "out.npz")
    );
    let o = Command::new(py).args(["-c", &code]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (ids, _, _) = read_npz(&d.dir.join("out.npz"));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        ids[0].to_string()
    );
}

#[test]
fn ivf_build_and_query_with_nprobe() {
    let d = data();
    let o = ok(&[
        "build",
        "faiss",
        "index_type=IVF",
        "nlists=16",
        "--input",
        &p(&d, "items.npy"),
        "--output",
        &p(&d, "ivf.index"),
    ]);
    // 500 points for 8 lists is fewer than faiss's 39 per list: a warning, not an error.
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("warning: clustering 500 points to 16 centroids"));
    let info = ok(&["info", "--json", &p(&d, "ivf.index")]);
    let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(v["index_type"], "IVF");
    assert_eq!(v["params"]["nlists"], "16");
    assert_eq!(
        v["params"]["nprobe"], "8",
        "default nprobe is max(8, nlists/6)"
    );
    // Items added without ids hold their row numbers (IVF lists always store ids); with --ids
    // they are custom.
    assert_eq!(v["custom_ids"], false, "{v}");
    let text = String::from_utf8(ok(&["info", &p(&d, "ivf.index")]).stdout).unwrap();
    assert!(text.contains("row numbers"), "{text}");
    let ids: Vec<i64> = (0..N as i64).map(|i| 10 * i + 3).collect();
    std::fs::write(d.dir.join("ids.npy"), npy::npy_i64(&[N], &ids)).unwrap();
    ok(&[
        "build",
        "faiss",
        "index_type=IVF",
        "nlists=16",
        "--input",
        &p(&d, "items.npy"),
        "--ids",
        &p(&d, "ids.npy"),
        "--output",
        &p(&d, "ivf_ids.index"),
    ]);
    let text = String::from_utf8(ok(&["info", &p(&d, "ivf_ids.index")]).stdout).unwrap();
    assert!(text.contains("custom (id map)"), "{text}");
    // nprobe at query time: all 16 lists probed = exact.
    ok(&[
        "query",
        "faiss",
        "nprobe=16",
        "--index",
        &p(&d, "ivf.index"),
        "--queries",
        &p(&d, "queries.npy"),
        "-k",
        "5",
        "--output",
        &p(&d, "ivf.npz"),
    ]);
    ok(&[
        "build",
        "faiss",
        "--input",
        &p(&d, "items.npy"),
        "--output",
        &p(&d, "flat.index"),
    ]);
    ok(&[
        "query",
        "faiss",
        "--index",
        &p(&d, "flat.index"),
        "--queries",
        &p(&d, "queries.npy"),
        "-k",
        "5",
        "--output",
        &p(&d, "flat.npz"),
    ]);
    let (ivf_ids, _, _) = read_npz(&d.dir.join("ivf.npz"));
    let (flat_ids, _, _) = read_npz(&d.dir.join("flat.npz"));
    assert_eq!(ivf_ids, flat_ids);
    fails(
        &[
            "query",
            "faiss",
            "nprobe=0",
            "--index",
            &p(&d, "ivf.index"),
            "--queries",
            &p(&d, "queries.npy"),
            "-k",
            "5",
            "--output",
            "-",
        ],
        &["nprobe"],
    );
    fails(
        &[
            "build",
            "faiss",
            "index_type=IVF",
            "nlists=1000",
            "--input",
            &p(&d, "items.npy"),
            "--output",
            &p(&d, "x.index"),
        ],
        &["500 vectors", "nlists=1000"],
    );
}

#[test]
fn hnsw_build_and_query_with_ef_search() {
    let d = data();
    ok(&[
        "build",
        "faiss",
        "index_type=HNSW",
        "m=8",
        "efConstruction=40",
        "--input",
        &p(&d, "items.npy"),
        "--output",
        &p(&d, "h.index"),
    ]);
    let info = ok(&["info", "--json", &p(&d, "h.index")]);
    let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(
        (
            v["index_type"].as_str(),
            v["params"]["m"].as_str(),
            v["params"]["efSearch"].as_str()
        ),
        (Some("HNSW"), Some("8"), Some("16"))
    );
    // A large efSearch on 500 points visits everything reachable: the exact answer.
    ok(&[
        "query",
        "faiss",
        "efSearch=500",
        "--index",
        &p(&d, "h.index"),
        "--queries",
        &p(&d, "queries.npy"),
        "-k",
        "5",
        "--output",
        &p(&d, "h.npz"),
    ]);
    ok(&[
        "build",
        "faiss",
        "--input",
        &p(&d, "items.npy"),
        "--output",
        &p(&d, "flat.index"),
    ]);
    ok(&[
        "query",
        "faiss",
        "--index",
        &p(&d, "flat.index"),
        "--queries",
        &p(&d, "queries.npy"),
        "-k",
        "5",
        "--output",
        &p(&d, "flat.npz"),
    ]);
    assert_eq!(
        read_npz(&d.dir.join("h.npz")).0,
        read_npz(&d.dir.join("flat.npz")).0
    );
    fails(
        &[
            "build",
            "faiss",
            "index_type=HNSW",
            "m=1",
            "--input",
            &p(&d, "items.npy"),
            "--output",
            &p(&d, "x.index"),
        ],
        &["m", "2..=512"],
    );
    fails(
        &[
            "query",
            "faiss",
            "efSearch=0",
            "--index",
            &p(&d, "h.index"),
            "--queries",
            &p(&d, "queries.npy"),
            "-k",
            "5",
            "--output",
            "-",
        ],
        &["efSearch"],
    );
}

/// A faiss factory string builds a quantized index; `info` names its storage and memory per
/// vector (SQ8 codes: a quarter of the float rows), and `k_factor` works at query time.
#[test]
fn factory_strings_build_quantized_indexes_and_info_shows_their_memory() {
    let d = data();
    let info_of = |file: &str| -> serde_json::Value {
        serde_json::from_slice(&ok(&["info", "--json", &p(&d, file)]).stdout).unwrap()
    };
    for (file, factory) in [
        ("flat.index", "HNSW8"),
        ("sq.index", "HNSW8,SQ8"),
        ("rf.index", "HNSW8,SQ8,RFlat"),
        ("pq.index", "IVF8,PQ4np"),
    ] {
        let f = format!("factory={factory}");
        ok(&[
            "build",
            "faiss",
            &f,
            "--input",
            &p(&d, "items.npy"),
            "--output",
            &p(&d, file),
        ]);
    }
    let bytes = |v: &serde_json::Value| -> f64 {
        v["params"]["bytes_per_vector"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (flat, sq, rf) = (
        info_of("flat.index"),
        info_of("sq.index"),
        info_of("rf.index"),
    );
    assert_eq!(flat["params"]["storage"], "Flat");
    assert_eq!(sq["params"]["storage"], "SQ8");
    assert_eq!(
        (
            rf["params"]["storage"].as_str(),
            rf["params"]["refine"].as_str()
        ),
        (Some("SQ8"), Some("Flat"))
    );
    assert!(sq["format"].as_str().unwrap().contains("IHNs"), "{sq}");
    let pq = info_of("pq.index");
    assert!(pq["format"].as_str().unwrap().contains("IwPQ"), "{pq}");
    assert_eq!(
        (
            pq["params"]["storage"].as_str(),
            pq["params"]["codec"].as_str()
        ),
        (Some("PQ"), Some("PQ4x8"))
    );
    assert!(rf["format"].as_str().unwrap().contains("IxRF"), "{rf}");
    // Links are the same; the stored vector shrinks from 4·D to D bytes.
    let links = bytes(&flat) - 4.0 * D as f64;
    assert!((bytes(&sq) - (links + D as f64)).abs() < 1.0, "{flat} {sq}");
    assert!(
        (bytes(&rf) - (bytes(&sq) + 4.0 * D as f64)).abs() < 1.0,
        "{rf}"
    );
    // k_factor is a query-time parameter of the refine index, and only of it.
    let query = |file: &str, extra: &str| {
        let index = p(&d, file);
        let queries = p(&d, "queries.npy");
        run(&[
            "query",
            "faiss",
            extra,
            "--index",
            &index,
            "--queries",
            &queries,
            "-k",
            "5",
            "--output",
            "-",
        ])
    };
    assert!(query("rf.index", "k_factor=4").status.success());
    let o = query("sq.index", "k_factor=4");
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("k_factor applies to refine"));
}
