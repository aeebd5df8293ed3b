//! IVF-Flat against faiss 1.15.1's own files and results (tests/fixtures/faiss).

mod common;

use serde_json::Value;
use vecindex::faiss::{FaissBuilder, FaissIndex};
use vecindex::internals::write_faiss_index;
use vecindex::internals::IvfIndex;
use vecindex::{Indexer, Metric, VectorsView};

fn ivf_fixtures() -> Vec<Value> {
    common::faiss_fixtures(&["IndexIVFFlat"])
}

#[test]
fn loaded_ivf_fixtures_answer_like_faiss() {
    let mut checked = 0;
    for f in ivf_fixtures() {
        let name = f["name"].as_str().unwrap();
        let path = common::fixtures()
            .join("faiss")
            .join(f["index_file"].as_str().unwrap());
        let mut idx = FaissBuilder::new().load(&path).unwrap();
        let d = f["d"].as_u64().unwrap() as usize;
        let q = common::fixture_f32(&f, "queries");
        if f["params"]["nlist"] == 4 {
            // Untrained: searching is a clear error, as in faiss.
            let e = idx
                .query(VectorsView::new(&q, d).unwrap(), 3)
                .unwrap_err()
                .to_string();
            assert!(e.contains("not trained"), "{e}");
            continue;
        }
        for s in f["searches"].as_array().unwrap() {
            let k = s["k"].as_u64().unwrap() as usize;
            idx.set_param("nprobe", &s["nprobe"].to_string()).unwrap();
            let r = idx.query(VectorsView::new(&q, d).unwrap(), k).unwrap();
            let want_ids = common::json_rows(&s["ids"], |v| v.as_i64().unwrap());
            let want_d = common::json_rows(&s["distances"], |v| v.as_f64().unwrap() as f32);
            common::assert_same_results(&r.ids, &r.distances, &want_ids, &want_d, k, 1e-5);
            assert_eq!(r.ids, want_ids, "{name} nprobe={}", s["nprobe"]);
            checked += 1;
        }
    }
    assert!(checked >= 7, "{checked}");
}

#[test]
fn ivf_files_round_trip_byte_for_byte() {
    for f in ivf_fixtures() {
        let path = common::fixtures()
            .join("faiss")
            .join(f["index_file"].as_str().unwrap());
        let original = std::fs::read(&path).unwrap();
        let idx = FaissBuilder::new().load(&path).unwrap();
        assert_eq!(idx.to_bytes(), original, "{}", f["name"]);
    }
}

/// Training on faiss's training set and adding its base vectors gives faiss's file: same
/// k-means centroids (bit-identical for L2), same lists.
#[test]
fn training_reproduces_faiss() {
    for f in ivf_fixtures() {
        let name = f["name"].as_str().unwrap();
        if f["train"].is_null() {
            continue;
        }
        let d = f["d"].as_u64().unwrap() as usize;
        let metric = if f["metric"] == 1 {
            Metric::L2
        } else {
            Metric::InnerProduct
        };
        let nlist = f["params"]["nlist"].as_u64().unwrap() as usize;
        let train = common::fixture_f32(&f, "train");
        let base = common::fixture_f32(&f, "base");
        let ids: Vec<i64> = match f["add_ids"].as_array() {
            Some(a) => a.iter().map(|v| v.as_i64().unwrap()).collect(),
            None => (0..(base.len() / d) as i64).collect(),
        };
        let mut ivf = IvfIndex::train(
            VectorsView::new(&train, d).unwrap(),
            nlist,
            metric,
            1,
            &|_, _| {},
        )
        .unwrap();
        ivf.add(VectorsView::new(&base, d).unwrap(), &ids).unwrap();
        let ours = write_faiss_index(&FaissIndex::Ivf(ivf.clone()), None);
        let path = common::fixtures()
            .join("faiss")
            .join(f["index_file"].as_str().unwrap());
        let original = std::fs::read(&path).unwrap();
        // Spherical k-means (IP) too: the norms and assignments use faiss's kernel orders.
        assert_eq!(ours, original, "{name}: not byte-identical");
    }
}

#[test]
fn corrupted_ivf_files_are_errors_never_panics() {
    let path = common::fixtures().join("faiss/ivf_l2.index");
    let good = std::fs::read(&path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.index");
    let mut s = 99u64;
    for _ in 0..2000 {
        let mut b = good.clone();
        for _ in 0..2 {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let pos = (s >> 33) as usize % b.len();
            b[pos] = (s >> 13) as u8;
        }
        std::fs::write(&p, &b).unwrap();
        if let Ok(idx) = FaissBuilder::new().load(&p) {
            let q = vec![0.25f32; idx.dim()];
            let _ = idx.query(VectorsView::new(&q, idx.dim()).unwrap(), 5);
        }
    }
    // Targeted: list sizes that exceed ntotal, nlist that the file cannot hold.
    let mut b = good.clone();
    b[0x35 + 37 + 8 + 16 * 8 * 4 + 1 + 8 + 4 + 8 + 8 + 4 + 8] = 0xff; // first list size
    std::fs::write(&p, &b).unwrap();
    assert!(FaissBuilder::new().load(&p).is_err());
    let mut b = good;
    b[0x25 + 7] = 0x7f; // nlist high byte
    std::fs::write(&p, &b).unwrap();
    let e = FaissBuilder::new().load(&p).err().unwrap().to_string();
    assert!(e.contains("nlist"), "{e}");
}

#[test]
fn ivf_recall_on_clustered_data_and_parameters() {
    use vecindex::{builder_factory, Config};
    let (base, _) = vecindex::synth::clustered(20_000, 32, 60, 3);
    let (queries, _) = vecindex::synth::clustered(200, 32, 60, 3_000);
    for metric in ["L2", "IP"] {
        let exact = vecindex::exact_knn(
            base.view(),
            queries.view(),
            if metric == "L2" {
                Metric::L2
            } else {
                Metric::InnerProduct
            },
            10,
        )
        .unwrap();
        let b = builder_factory(
            "faiss",
            &Config::new()
                .set("index_type", "ivf")
                .set("metric", metric)
                .set("nlists", 100),
        )
        .unwrap();
        let mut idx = b.from_vectors(base.clone()).unwrap();
        let recall = |idx: &dyn Indexer| {
            let r = idx.query(queries.view(), 10).unwrap();
            let hit: usize = (0..r.n_queries)
                .map(|q| {
                    r.ids_row(q)
                        .iter()
                        .filter(|i| exact.ids_row(q).contains(i))
                        .count()
                })
                .sum();
            hit as f64 / (r.n_queries * 10) as f64
        };
        let r_default = recall(idx.as_ref());
        idx.set_param("nprobe", "1").unwrap();
        let r1 = recall(idx.as_ref());
        idx.set_param("nprobe", "100").unwrap();
        let r_all = recall(idx.as_ref());
        println!("clustered {metric}: nprobe 1 {r1:.3}, default {r_default:.3}, all {r_all:.3}");
        assert!(
            r1 < r_default && r_default >= 0.9 && r_all >= 0.995,
            "{metric}: {r1} {r_default} {r_all}"
        );
    }
}

#[test]
fn ivf_errors_and_warnings() {
    use vecindex::{builder_factory, Config};
    let small = vecindex::synth::gaussian(50, 8, 1);
    let b = builder_factory("faiss", &Config::new().set("index_type", "IVF")).unwrap();
    let e = b.from_vectors(small.clone()).err().unwrap().to_string();
    assert!(
        e.contains("50 vectors") && e.contains("nlists=100") && e.contains("4·sqrt(n)"),
        "{e}"
    );
    let e = builder_factory(
        "faiss",
        &Config::new().set("index_type", "IVF").set("nprobe", 0),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("nprobe") && e.contains("1..="), "{e}");
    let b = builder_factory(
        "faiss",
        &Config::new()
            .set("index_type", "IVF")
            .set("nlists", 4)
            .set("nprobe", 1),
    )
    .unwrap();
    let idx = b.from_vectors(small).unwrap();
    assert_eq!(
        idx.info().params["nprobe"],
        "1",
        "explicit nprobe=1 is honoured"
    );
    assert!(
        idx.info().warnings[0].contains("at least 156 training points"),
        "{:?}",
        idx.info().warnings
    );
    // nprobe is a query-time parameter; Flat has none.
    let flat = builder_factory("faiss", &Config::new())
        .unwrap()
        .from_vectors(vecindex::synth::gaussian(10, 8, 1))
        .unwrap();
    let mut flat = flat;
    assert!(flat.set_param("nprobe", "3").is_err());
    // Loading with an explicit nprobe overrides what the file stored.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ivf.index");
    idx.save(&p).unwrap();
    let re = builder_factory("faiss", &Config::new().set("nprobe", 3))
        .unwrap()
        .from_index_file(&p)
        .unwrap();
    assert_eq!(re.info().params["nprobe"], "3");
    let re = builder_factory("faiss", &Config::new())
        .unwrap()
        .from_index_file(&p)
        .unwrap();
    assert_eq!(re.info().params["nprobe"], "1");
}

/// The legacy `IvFl` layout (faiss before 2018: per-list id vectors, the direct map, then per-list
/// float vectors) holds the same index; we rebuild one from a current file and read it.
#[test]
fn legacy_ivfl_layout_reads_like_iwfl() {
    let path = common::fixtures().join("faiss/ivf_l2.index");
    let current = FaissBuilder::new().load(&path).unwrap();
    let FaissIndex::Ivf(ivf) = current.index() else {
        panic!()
    };
    let bytes = std::fs::read(&path).unwrap();
    // Header (37 bytes incl. fourcc), nlist and nprobe (16), the quantizer record (37 + 8 + 4·nlist·d).
    let q_end = 37 + 16 + 37 + 8 + 4 * ivf.nlist() * ivf.dim();
    let mut legacy = b"IvFl".to_vec();
    legacy.extend_from_slice(&bytes[4..q_end]);
    let lists: Vec<(Vec<f32>, Vec<i64>)> = (0..ivf.nlist()).map(|l| list(ivf, l)).collect();
    for (_, ids) in &lists {
        legacy.extend_from_slice(&(ids.len() as u64).to_le_bytes());
        ids.iter()
            .for_each(|i| legacy.extend_from_slice(&i.to_le_bytes()));
    }
    legacy.push(0); // direct map: none
    legacy.extend_from_slice(&0u64.to_le_bytes());
    for (codes, _) in &lists {
        legacy.extend_from_slice(&(codes.len() as u64).to_le_bytes());
        codes
            .iter()
            .for_each(|v| legacy.extend_from_slice(&v.to_le_bytes()));
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("legacy.index");
    std::fs::write(&p, &legacy).unwrap();
    let old = FaissBuilder::new().load(&p).unwrap();
    assert_eq!(old.info().format, "faiss IvFl");
    // Saved again, it is the current format, byte for byte.
    assert_eq!(old.to_bytes(), bytes);
    // Truncations of the legacy file are errors.
    for cut in (0..legacy.len()).step_by(97) {
        std::fs::write(&p, &legacy[..cut]).unwrap();
        assert!(FaissBuilder::new().load(&p).is_err(), "cut {cut}");
    }
}

/// The vectors and ids of list `l`, read back through search-free accessors.
fn list(ivf: &IvfIndex, l: usize) -> (Vec<f32>, Vec<i64>) {
    let (codes, ids) = ivf.list(l);
    (codes.to_vec(), ids.to_vec())
}

/// An IVF file whose lists repeat an id is refused on load, as faiss refuses it in an IxMp map.
#[test]
fn repeated_list_ids_are_refused() {
    use vecindex::{builder_factory, Config};
    let (n, d) = (500, 8);
    let items = vecindex::synth::gaussian(n, d, 4);
    let ids: Vec<i64> = (0..n as i64).map(|i| 7_000_000_000 + i).collect();
    let b = builder_factory(
        "faiss",
        &Config::new().set("index_type", "IVF").set("nlists", 5),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ivf.index");
    b.from_embeddings_with_ids(items.view(), &ids)
        .unwrap()
        .save(&path)
        .unwrap();
    assert!(b.from_index_file(&path).is_ok());
    let mut bytes = std::fs::read(&path).unwrap();
    let find = |v: i64, bytes: &[u8]| bytes.windows(8).position(|w| w == v.to_le_bytes()).unwrap();
    let at = find(ids[10], &bytes);
    bytes[at..at + 8].copy_from_slice(&ids[20].to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let e = b.from_index_file(&path).err().unwrap().to_string();
    assert!(
        e.contains(&format!("id {} is stored twice", ids[20])),
        "{e}"
    );
    // Row-number ids take the bit-set path.
    let plain = dir.path().join("rows.index");
    b.from_embeddings(items.view())
        .unwrap()
        .save(&plain)
        .unwrap();
    let mut bytes = std::fs::read(&plain).unwrap();
    // the last list's ids end the file before the direct-map byte and trailer: find id n-1 and
    // rewrite it as n-2
    let at = bytes
        .windows(8)
        .rposition(|w| w == (n as i64 - 1).to_le_bytes())
        .unwrap();
    bytes[at..at + 8].copy_from_slice(&(n as i64 - 2).to_le_bytes());
    std::fs::write(&plain, &bytes).unwrap();
    let e = b.from_index_file(&plain).err().unwrap().to_string();
    assert!(e.contains("stored twice"), "{e}");
}
