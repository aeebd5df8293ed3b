//! Scalar-quantized faiss indexes (IxSQ, IHNs, IxRF) against files and results written by
//! faiss-cpu 1.15.1 itself (tests/fixtures/faiss_quantized, written by make_fixtures.py there):
//! we read faiss's files and return its ids and distances bit for bit, write them back byte for
//! byte, and build the same bytes from the same data and factory string.

mod common;

use serde_json::Value;
use vecindex::{builder_factory, Config, Indexer, Vectors};

fn dir() -> std::path::PathBuf {
    common::fixtures().join("faiss_quantized")
}

fn manifest() -> Value {
    serde_json::from_slice(&std::fs::read(dir().join("manifest.json")).unwrap()).unwrap()
}

fn input(m: &Value, name: &str) -> Vectors {
    let shape = m["inputs"][name].as_array().unwrap();
    let d = shape[1].as_u64().unwrap() as usize;
    let data = common::read_f32(&dir().join("inputs").join(format!("{name}.f32")));
    assert_eq!(data.len(), shape[0].as_u64().unwrap() as usize * d);
    Vectors::new(data, d).unwrap()
}

fn fixtures(m: &Value) -> Vec<Value> {
    let all = m["fixtures"].as_array().unwrap().clone();
    assert!(all.len() >= 20, "the manifest lists {} fixtures", all.len());
    all
}

fn open(f: &Value) -> Box<dyn Indexer> {
    let path = dir().join(format!("{}.index", f["name"].as_str().unwrap()));
    builder_factory("faiss", &Config::new())
        .unwrap()
        .from_index_file(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", f["name"]))
}

/// Every search faiss ran on its file gives the same ids and the same f32 distances (bit for
/// bit) on ours, and saving writes faiss's bytes back unchanged.
#[test]
fn faiss_files_search_identically_and_round_trip() {
    let m = manifest();
    let mut searches = 0;
    for f in fixtures(&m) {
        let name = f["name"].as_str().unwrap();
        let idx = open(&f);
        let bytes = std::fs::read(dir().join(format!("{name}.index"))).unwrap();
        let out = tempfile::tempdir().unwrap();
        idx.save(&out.path().join("x.index")).unwrap();
        assert!(
            std::fs::read(out.path().join("x.index")).unwrap() == bytes,
            "{name}: our save of faiss's file differs from it"
        );
        if f["data"].is_null() {
            let e = idx
                .query(Vectors::new(vec![0.0; 4], 4).unwrap().view(), 1)
                .unwrap_err();
            assert!(e.to_string().contains("untrained"), "{name}: {e}");
            continue;
        }
        searches += searches_match(&m, &f, idx);
    }
    assert!(searches >= 20, "only {searches} searches compared");
}

/// Built from the same data with the same factory string, our index is faiss's file byte for
/// byte: same ranges, same codes and (HNSW) the same graph.
#[test]
fn builds_from_factory_strings_are_faiss_bytes() {
    let m = manifest();
    let mut built = 0;
    for f in fixtures(&m) {
        let name = f["name"].as_str().unwrap();
        let Some(data) = f["data"].as_str() else {
            continue;
        };
        if f["params"].get("rangestat_arg").is_some() || f["params"].get("by_residual").is_some() {
            continue; // training options faiss has and our parameters do not expose
        }
        let mut cfg = Config::new()
            .set("factory", f["factory"].as_str().unwrap())
            .set("metric", f["metric"].as_str().unwrap());
        if let Some(kf) = f["params"].get("k_factor") {
            cfg = cfg.set("k_factor", kf);
        }
        if f["factory"].as_str().unwrap().starts_with("IVF") {
            cfg = cfg.set("nprobe", 1); // what faiss stores; ours defaults higher
        }
        let base = input(&m, &format!("{data}.base"));
        let idx = builder_factory("faiss", &cfg)
            .unwrap()
            .from_embeddings(base.view())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if polysemous(&f) {
            // faiss relabels these codes (polysemous training, which we do not run): same
            // search results, other code bytes.
            searches_match(&m, &f, idx);
            built += 1;
            continue;
        }
        let out = tempfile::tempdir().unwrap();
        idx.save(&out.path().join("x.index")).unwrap();
        let ours = std::fs::read(out.path().join("x.index")).unwrap();
        let theirs = std::fs::read(dir().join(format!("{name}.index"))).unwrap();
        assert_eq!(ours.len(), theirs.len(), "{name}: size");
        let first = ours.iter().zip(&theirs).position(|(a, b)| a != b);
        assert!(first.is_none(), "{name}: first differing byte at {first:?}");
        built += 1;
    }
    assert!(built >= 15, "only {built} builds compared");
}

/// With `k_factor` large enough for every vector to be a candidate, the refine step re-ranks
/// them all with the exact vectors: the result is the exact top-k, and the candidate count is
/// capped at the index size (a k_factor of 1000 allocates nothing more).
#[test]
fn refine_with_every_vector_as_candidate_is_exact() {
    let m = manifest();
    let base = input(&m, "d16.base");
    let queries = input(&m, "d16.queries");
    for metric in ["L2", "IP"] {
        let idx = builder_factory(
            "faiss",
            &Config::new()
                .set("factory", "SQ8,RFlat")
                .set("metric", metric)
                .set("k_factor", 1000),
        )
        .unwrap()
        .from_embeddings(base.view())
        .unwrap();
        let got = idx.query(queries.view(), 10).unwrap();
        let want = vecindex::exact_knn(base.view(), queries.view(), idx.metric(), 10).unwrap();
        assert_eq!(got.ids, want.ids, "{metric}");
        // k beyond n: padded, never out of range.
        let all = idx.query(queries.view(), 400).unwrap();
        assert_eq!(all.ids.iter().filter(|&&i| i >= 0).count(), 5 * 300);
    }
}

/// Custom ids on a refined IVF: the lists keep row numbers (the exact rows are found by them)
/// and an id map wraps the whole index, as faiss's IndexIDMap would; the answers are those of
/// the same index without ids, mapped, also after a save and reopen.
#[test]
fn custom_ids_on_a_refined_ivf_go_in_an_id_map() {
    let m = manifest();
    let base = input(&m, "d16.base");
    let queries = input(&m, "d16.queries");
    let cfg = Config::new()
        .set("factory", "IVF16,SQ8,RFlat")
        .set("nprobe", 4)
        .set("k_factor", 3);
    let b = builder_factory("faiss", &cfg).unwrap();
    let plain = b.from_embeddings(base.view()).unwrap();
    let ids: Vec<i64> = (0..base.rows() as i64).map(|i| i * 7 + 3).collect();
    let with_ids = b.from_embeddings_with_ids(base.view(), &ids).unwrap();
    assert!(
        with_ids.info().format.contains("IxMp(IxRF)"),
        "{}",
        with_ids.info().format
    );
    let (a, r) = (
        plain.query(queries.view(), 10).unwrap(),
        with_ids.query(queries.view(), 10).unwrap(),
    );
    let mapped: Vec<i64> = a
        .ids
        .iter()
        .map(|&i| if i < 0 { -1 } else { ids[i as usize] })
        .collect();
    assert_eq!(r.ids, mapped);
    assert_eq!(r.distances, a.distances);
    let dir = tempfile::tempdir().unwrap();
    with_ids.save(&dir.path().join("x.index")).unwrap();
    let back = builder_factory("faiss", &Config::new())
        .unwrap()
        .from_index_file(&dir.path().join("x.index"))
        .unwrap();
    assert_eq!(back.query(queries.view(), 10).unwrap(), r);
}

/// A factory PQ string without `np`: faiss trains it with a polysemous relabelling.
fn polysemous(f: &Value) -> bool {
    f["factory"]
        .as_str()
        .unwrap()
        .split(',')
        .any(|t| t.starts_with("PQ") && !t.ends_with("np"))
}

/// Runs every search faiss ran on fixture `f` on `idx` and asserts the same ids and the same
/// f32 distances bit for bit; returns the number of searches.
fn searches_match(m: &Value, f: &Value, mut idx: Box<dyn Indexer>) -> usize {
    let name = f["name"].as_str().unwrap();
    let data = f["data"].as_str().unwrap();
    let queries = input(m, &format!("{data}.queries"));
    let mut searches = 0;
    for s in f["searches"].as_array().unwrap() {
        let k = s["k"].as_u64().unwrap() as usize;
        if let Some(ef) = s.get("efSearch") {
            idx.set_param("efSearch", &ef.to_string()).unwrap();
        }
        if let Some(np) = s.get("nprobe") {
            idx.set_param("nprobe", &np.to_string()).unwrap();
        }
        let r = idx.query(queries.view(), k).unwrap();
        let want_ids: Vec<i64> = s["ids"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_i64().unwrap()))
            .collect();
        let want_bits: Vec<u32> = s["distances_f32_hex"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| {
                row.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| u32::from_str_radix(v.as_str().unwrap(), 16).unwrap())
            })
            .collect();
        assert_eq!(r.ids, want_ids, "{name} k={k}: ids");
        // faiss pads with ±FLT_MAX, we with ±inf (docs/algorithms.md): compare the rest.
        for (i, (got, want)) in r.distances.iter().zip(&want_bits).enumerate() {
            if r.ids[i] >= 0 {
                assert_eq!(got.to_bits(), *want, "{name} k={k} slot {i}: {got}");
            }
        }
        searches += 1;
    }
    searches
}
