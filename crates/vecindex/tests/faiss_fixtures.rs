//! Our FAISS Flat/IDMap reader, searcher and writer against files and results written by faiss
//! 1.15.1 itself (tests/fixtures/faiss, written by make_fixtures.py there).

mod common;

use serde_json::Value;
use vecindex::faiss::FaissBuilder;
use vecindex::{Indexer, Metric, Vectors, VectorsView};

fn manifest() -> Vec<Value> {
    let m: Value = serde_json::from_slice(
        &std::fs::read(common::fixtures().join("faiss/manifest.json")).unwrap(),
    )
    .unwrap();
    m["fixtures"].as_array().unwrap().clone()
}

fn is_flat(f: &Value) -> bool {
    let kind = f["kind"].as_str().unwrap();
    kind == "IndexFlat" || (kind == "IndexIDMap" && f["name"].as_str().unwrap().contains("flat"))
}

fn load(f: &Value) -> vecindex::faiss::FaissIndexer {
    let path = common::fixtures()
        .join("faiss")
        .join(f["index_file"].as_str().unwrap());
    FaissBuilder::new().load(&path).unwrap()
}

fn matrix(f: &Value, key: &str) -> Vec<f32> {
    common::read_f32(
        &common::fixtures()
            .join("faiss")
            .join(f[key]["file"].as_str().unwrap()),
    )
}

#[test]
fn flat_fixtures_load_and_search_like_faiss() {
    let mut checked = 0;
    for f in manifest().iter().filter(|f| is_flat(f)) {
        let name = f["name"].as_str().unwrap();
        let idx = load(f);
        let d = f["d"].as_u64().unwrap() as usize;
        assert_eq!(idx.dim(), d, "{name}");
        assert_eq!(idx.len() as u64, f["ntotal"].as_u64().unwrap(), "{name}");
        let want_metric = if f["metric"].as_i64() == Some(1) {
            Metric::L2
        } else {
            Metric::InnerProduct
        };
        assert_eq!(idx.metric(), want_metric, "{name}");
        let q = matrix(f, "queries");
        for s in f["searches"].as_array().unwrap() {
            let k = s["k"].as_u64().unwrap() as usize;
            // flat_l2_blas: 'tile200' is the 5 queries repeated 200 times (faiss's sgemm path).
            let queries: Vec<f32> = if s["batch"].as_str() == Some("tile200") {
                q.iter().copied().cycle().take(q.len() * 200).collect()
            } else {
                q.clone()
            };
            let want_ids: Vec<i64> = s["ids"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_i64().unwrap()))
                .collect();
            let want_d: Vec<f32> = s["distances"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|r| {
                    r.as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_f64().unwrap() as f32)
                })
                .collect();
            let res = idx
                .query(VectorsView::new(&queries, d).unwrap(), k)
                .unwrap();
            assert_eq!(res.n_queries, queries.len() / d, "{name} k={k}");
            // The tiled batch reports its first rows only.
            let (ids, dist) = (&res.ids[..want_ids.len()], &res.distances[..want_ids.len()]);
            common::assert_same_results(ids, dist, &want_ids, &want_d, k, 1e-5);
            // Ties fixtures: ids must be identical, including the order among equal distances.
            if name.contains("ties")
                || name.starts_with("idmap")
                || name == "flat_l2"
                || name == "flat_ip"
            {
                assert_eq!(ids, &want_ids[..], "{name} k={k}: exact id order");
            }
            checked += 1;
        }
    }
    assert!(checked >= 14, "only {checked} searches checked");
}

#[test]
fn flat_files_we_write_are_byte_identical_to_faiss() {
    let mut checked = 0;
    for f in manifest().iter().filter(|f| is_flat(f)) {
        let name = f["name"].as_str().unwrap();
        let path = common::fixtures()
            .join("faiss")
            .join(f["index_file"].as_str().unwrap());
        let original = std::fs::read(&path).unwrap();
        let d = f["d"].as_u64().unwrap() as usize;
        let metric = if f["metric"].as_i64() == Some(1) {
            Metric::L2
        } else {
            Metric::InnerProduct
        };
        let b = FaissBuilder::new().metric(metric).unwrap();
        if f["ntotal"].as_u64() == Some(0) {
            // We refuse to build an empty index, but a loaded empty one round-trips.
            assert_eq!(load(f).to_bytes(), original, "{name}");
            checked += 1;
            continue;
        }
        let base = Vectors::new(matrix(f, "base"), d).unwrap();
        let ids: Option<Vec<i64>> = f["add_ids"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_i64().unwrap()).collect());
        let built = b.build(base, ids).unwrap();
        assert_eq!(
            built.to_bytes(),
            original,
            "{name}: bytes differ from faiss's file"
        );
        // And a loaded file saves back to the same bytes.
        assert_eq!(
            load(f).to_bytes(),
            original,
            "{name}: load → save changed the bytes"
        );
        checked += 1;
    }
    assert!(checked >= 7);
}

#[test]
fn truncated_fixture_files_are_errors_never_panics() {
    for f in manifest() {
        let path = common::fixtures()
            .join("faiss")
            .join(f["index_file"].as_str().unwrap());
        let bytes = std::fs::read(&path).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cut.index");
        // Every prefix for small files, a spread of prefixes for larger ones.
        let step = (bytes.len() / 400).max(1);
        for cut in (0..bytes.len()).step_by(step) {
            std::fs::write(&p, &bytes[..cut]).unwrap();
            let r = FaissBuilder::new().load(&p);
            assert!(r.is_err(), "{}: prefix of {cut} bytes loaded", f["name"]);
        }
    }
}

#[test]
fn corrupted_files_are_errors_or_valid_never_panics() {
    let mut s = 12345u64;
    for f in manifest().iter().filter(|f| is_flat(f)) {
        let path = common::fixtures()
            .join("faiss")
            .join(f["index_file"].as_str().unwrap());
        let bytes = std::fs::read(&path).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.index");
        for _ in 0..300 {
            let mut b = bytes.clone();
            for _ in 0..3 {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                // Concentrate on the headers, where sizes live.
                let limit = b.len().min(120);
                let pos = (s >> 33) as usize % limit;
                b[pos] = (s >> 17) as u8;
            }
            std::fs::write(&p, &b).unwrap();
            if let Ok(idx) = FaissBuilder::new().load(&p) {
                let q = vec![0.5f32; idx.dim()];
                let _ = idx.query(VectorsView::new(&q, idx.dim()).unwrap(), 3);
            }
        }
    }
}

#[test]
fn foreign_and_odd_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.index");
    let cases: &[(&[u8], &str)] = &[
        (b"", "truncated"),
        (b"ABCD", "not recognized"),
        (b"\x93NUMPY\x01\x00", "not a faiss index"),
    ];
    for (bytes, msg) in cases {
        std::fs::write(&p, bytes).unwrap();
        let e = FaissBuilder::new().load(&p).err().unwrap().to_string();
        assert!(e.contains(msg) && e.contains("x.index"), "{e}");
    }
    let e = FaissBuilder::new()
        .load(&dir.path().join("missing.index"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("missing.index"), "{e}");
    // Bad metric and bad bool, from a valid file.
    let good = std::fs::read(common::fixtures().join("faiss/flat_l2.index")).unwrap();
    let mut bad = good.clone();
    bad[33] = 7; // metric_type
    std::fs::write(&p, &bad).unwrap();
    let e = FaissBuilder::new().load(&p).err().unwrap().to_string();
    assert!(e.contains("invalid metric type 7"), "{e}");
    let mut bad = good.clone();
    bad[32] = 2; // is_trained
    std::fs::write(&p, &bad).unwrap();
    let e = FaissBuilder::new().load(&p).err().unwrap().to_string();
    assert!(e.contains("invalid bool encoding 0x02"), "{e}");
    // Trailing bytes are ignored, as faiss does.
    let mut long = good.clone();
    long.extend_from_slice(b"xyz");
    std::fs::write(&p, &long).unwrap();
    assert!(FaissBuilder::new().load(&p).is_ok());
}

#[test]
fn builder_settings_must_agree_with_the_file() {
    let path = common::fixtures().join("faiss/flat_ip.index");
    let ok =
        vecindex::builder_factory("faiss", &vecindex::Config::new().set("metric", "IP")).unwrap();
    assert!(ok.from_index_file(&path).is_ok());
    let l2 =
        vecindex::builder_factory("faiss", &vecindex::Config::new().set("metric", "L2")).unwrap();
    let e = l2.from_index_file(&path).err().unwrap().to_string();
    assert!(
        e.contains("holds an index with metric IP, but metric=L2 was given"),
        "{e}"
    );
    let d = vecindex::builder_factory("faiss", &vecindex::Config::new().set("d", 9)).unwrap();
    assert!(d.from_index_file(&path).is_err());
}
