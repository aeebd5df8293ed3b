//! End-to-end tests of the `vecindex` binary: files in, files out, errors as one line + exit 1.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use vecindex::io::npy;
use vecindex::{builder_factory, Config, VectorsView};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vecindex"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run vecindex")
}

fn ok(args: &[&str]) -> Output {
    let o = run(args);
    assert!(
        o.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Asserts failure with exit code 1 and a single-line message containing every `needle`.
fn fails(args: &[&str], needles: &[&str]) {
    let o = run(args);
    assert_eq!(o.status.code(), Some(1), "{args:?} should fail with 1");
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: '{n}' not in: {err}");
    }
}

fn write_npy(path: &Path, rows: usize, d: usize, data: &[f32]) {
    std::fs::write(path, npy::npy_f32(&[rows, d], data)).unwrap();
}

fn read_npz(path: &Path) -> (Vec<i64>, Vec<f32>, Vec<usize>) {
    let mut ids = vec![];
    let mut dist = vec![];
    let mut shape = vec![];
    for (name, a) in npy::parse_npz(&std::fs::read(path).unwrap(), "out").unwrap() {
        match (name.as_str(), a.data) {
            ("ids", npy::NpyData::Int(v)) => {
                ids = v;
                shape = a.shape;
            }
            ("distances", npy::NpyData::Float(v)) => dist = v,
            other => panic!("unexpected member {}", other.0),
        }
    }
    (ids, dist, shape)
}

struct Data {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    items: Vec<f32>,
    queries: Vec<f32>,
}

const N: usize = 500;
const NQ: usize = 12;
const D: usize = 16;

fn data() -> Data {
    let dir = tempfile::tempdir().unwrap();
    let items = vecindex::synth::gaussian(N, D, 1).into_vec();
    let queries = vecindex::synth::gaussian(NQ, D, 2).into_vec();
    write_npy(&dir.path().join("items.npy"), N, D, &items);
    write_npy(&dir.path().join("queries.npy"), NQ, D, &queries);
    Data {
        dir: dir.path().to_path_buf(),
        _dir: dir,
        items,
        queries,
    }
}

fn p(d: &Data, name: &str) -> String {
    d.dir.join(name).to_str().unwrap().to_string()
}

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
fn errors_are_one_line_and_exit_1() {
    let d = data();
    let (items, q) = (p(&d, "items.npy"), p(&d, "queries.npy"));
    let out = p(&d, "x.index");
    fails(
        &["build", "annoyy", "--input", &items, "--output", &out],
        &["unknown backend 'annoyy'", "faiss, annoy, milvus"],
    );
    fails(
        &[
            "build",
            "faiss",
            "index_type=HNWS",
            "--input",
            &items,
            "--output",
            &out,
        ],
        &["Flat, HNSW, IVF"],
    );
    fails(
        &[
            "build", "faiss", "metrc=L2", "--input", &items, "--output", &out,
        ],
        &["did you mean 'metric'"],
    );
    fails(
        &[
            "build",
            "faiss",
            "metric=cosine",
            "--input",
            &items,
            "--output",
            &out,
        ],
        &["L2, IP"],
    );
    fails(
        &[
            "build", "faiss", "d=17", "--input", &items, "--output", &out,
        ],
        &["expected 17, got 16"],
    );
    fails(
        &[
            "build",
            "faiss",
            "--input",
            &p(&d, "missing.npy"),
            "--output",
            &out,
        ],
        &["missing.npy"],
    );
    let mut bad = d.items.clone();
    bad[5 * D + 3] = f32::NAN;
    write_npy(&d.dir.join("nan.npy"), N, D, &bad);
    fails(
        &[
            "build",
            "faiss",
            "--input",
            &p(&d, "nan.npy"),
            "--output",
            &out,
        ],
        &["row 5, column 3"],
    );
    ok(&["build", "faiss", "--input", &items, "--output", &out]);
    fails(
        &[
            "query",
            "faiss",
            "--index",
            &out,
            "--queries",
            &q,
            "-k",
            "0",
            "--output",
            "-",
        ],
        &["top_k"],
    );
    write_npy(&d.dir.join("q8.npy"), 2, 8, &[0.0; 16]);
    fails(
        &[
            "query",
            "faiss",
            "--index",
            &out,
            "--queries",
            &p(&d, "q8.npy"),
            "-k",
            "3",
            "--output",
            "-",
        ],
        &["expected 16, got 8"],
    );
    fails(
        &[
            "query",
            "faiss",
            "efSearch=64",
            "--index",
            &out,
            "--queries",
            &q,
            "-k",
            "3",
            "--output",
            "-",
        ],
        &["efSearch", "HNSW"],
    );
    std::fs::write(d.dir.join("junk.index"), b"not an index at all").unwrap();
    fails(
        &["info", &p(&d, "junk.index")],
        &["junk.index", "not recognized"],
    );
    fails(
        &[
            "query",
            "faiss",
            "--index",
            &p(&d, "junk.index"),
            "--queries",
            &q,
            "-k",
            "3",
            "--output",
            "-",
        ],
        &["junk.index"],
    );
}

#[test]
fn demo_runs() {
    let o = ok(&[
        "--threads",
        "2",
        "demo",
        "--items",
        "3000",
        "--users",
        "50",
        "--dim",
        "16",
    ]);
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.contains("build:") && s.contains("query:") && s.contains("user 0:"),
        "{s}"
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

/// A recommender set with a known answer: user u is a copy of "near" item u and also liked "far"
/// item 200 + u, which lives in a cluster 100 units away. Exact L2 top-10 always finds the near
/// item at rank 1 and never a far one, so recall@10 = 0.5, precision@10 = 0.1, MRR = 1,
/// hit rate = 1, NDCG@10 = 1 / (1 + 1/log2 3).
#[test]
fn eval_reaches_the_analytic_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let d = 16;
    let near = vecindex::synth::gaussian(200, d, 11).into_vec();
    let far: Vec<f32> = vecindex::synth::gaussian(200, d, 12)
        .into_vec()
        .iter()
        .map(|x| x + 100.0)
        .collect();
    let items: Vec<f32> = near.iter().chain(&far).copied().collect();
    let users: Vec<f32> = near[..100 * d].to_vec();
    write_npy(&dir.path().join("items.npy"), 400, d, &items);
    write_npy(&dir.path().join("users.npy"), 100, d, &users);
    let mut csv = String::from("user,item\n");
    for u in 0..100 {
        csv += &format!("{u},{u}\n{u},{}\n", 200 + u);
    }
    std::fs::write(dir.path().join("truth.csv"), csv).unwrap();
    let pp = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let run_eval = |params: &[&str]| -> serde_json::Value {
        let mut args = vec!["eval", "faiss"];
        args.extend_from_slice(params);
        let (u, i, t) = (pp("users.npy"), pp("items.npy"), pp("truth.csv"));
        args.extend_from_slice(&[
            "--users", &u, "--items", &i, "--truth", &t, "-k", "1,10", "--json",
        ]);
        serde_json::from_slice(&ok(&args).stdout).unwrap()
    };
    let v = run_eval(&[]);
    let e = &v["exact"];
    let near = |a: &serde_json::Value, b: f64| (a.as_f64().unwrap() - b).abs() < 1e-9;
    assert!(near(&e["recall@10"], 0.5), "{v}");
    assert!(near(&e["precision@10"], 0.1));
    assert!(near(&e["mrr@10"], 1.0));
    assert!(near(&e["hit_rate@10"], 1.0));
    assert!(near(&e["pooled_recall@10"], 0.5));
    assert!(near(&e["ndcg@10"], 1.0 / (1.0 + 1.0 / 3f64.log2())));
    assert!(near(&e["recall@1"], 0.5) && near(&e["precision@1"], 1.0));
    assert_eq!(v["users"], 100);
    // Flat is exact: the ANN row equals the exact row.
    assert_eq!(v["ann"], v["exact"]);
    assert!(near(&v["ann_vs_exact"]["recall@10"], 1.0));
    // IVF with one probe loses some of the exact top-10 but keeps the rank-1 copy.
    let v = run_eval(&["index_type=IVF", "nlists=16", "nprobe=1"]);
    let r = v["ann_vs_exact"]["recall@10"].as_f64().unwrap();
    assert!(r < 1.0 && r > 0.3, "{r}");
    assert!(near(&v["ann"]["recall@1"], 0.5));
    // Custom item ids are mapped back to rows.
    let ids: Vec<i64> = (0..400).map(|i| 10_000 + i * 7).collect();
    std::fs::write(dir.path().join("ids.npy"), npy::npy_i64(&[400], &ids)).unwrap();
    let idp = pp("ids.npy");
    let v = run_eval(&["--item-ids", &idp]);
    assert!(near(&v["ann"]["recall@10"], 0.5), "{v}");
    // Users with no held-out items are left out and counted; bad input is one clear line.
    std::fs::write(dir.path().join("few.csv"), "0,0\n1,1\n").unwrap();
    let o = ok(&[
        "eval",
        "faiss",
        "--users",
        &pp("users.npy"),
        "--items",
        &pp("items.npy"),
        "--truth",
        &pp("few.csv"),
        "-k",
        "5",
    ]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("98 without held-out items left out"));
    std::fs::write(dir.path().join("bad.csv"), "0,0\n1,999\n").unwrap();
    fails(
        &[
            "eval",
            "faiss",
            "--users",
            &pp("users.npy"),
            "--items",
            &pp("items.npy"),
            "--truth",
            &pp("bad.csv"),
            "-k",
            "5",
        ],
        &["out of range", "400 items"],
    );
    fails(
        &[
            "eval",
            "faiss",
            "--users",
            &pp("users.npy"),
            "--items",
            &pp("items.npy"),
            "--truth",
            &pp("few.csv"),
            "-k",
            "0",
        ],
        &["k must be at least 1"],
    );
}

#[test]
fn bench_writes_json_csv_svg_png() {
    let d = data();
    let out = d.dir.join("bench");
    let o = ok(&[
        "bench",
        "--base",
        &p(&d, "items.npy"),
        "--queries",
        &p(&d, "queries.npy"),
        "-k",
        "5",
        "--run",
        "faiss",
        "--run",
        "faiss index_type=IVF nlists=16 ; nprobe=1,4,16",
        "--out",
        out.to_str().unwrap(),
        "--repeat",
        "1",
        "--single",
        "5",
    ]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("recall"));
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    let rows = v["results"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["recall"].as_f64(), Some(1.0), "Flat is exact");
    assert_eq!(rows[3]["sweep"], "nprobe=16");
    assert_eq!(
        rows[3]["recall"].as_f64(),
        Some(1.0),
        "all 16 lists probed is exact"
    );
    assert!(rows[1]["recall"].as_f64().unwrap() <= 1.0);
    for r in rows {
        assert!(r["qps"].as_f64().unwrap() > 0.0 && r["index_bytes"].as_u64().unwrap() > 0);
        assert!(r["p99_ms"].as_f64().unwrap() >= r["p50_ms"].as_f64().unwrap());
    }
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5);
    assert!(csv.starts_with("label,backend,params,sweep,metric,k,build_s,index_bytes,peak_rss_bytes,recall,qps,p50_ms,p99_ms"));
    let svg = std::fs::read_to_string(out.join("recall_qps.svg")).unwrap();
    assert!(
        svg.starts_with("<svg")
            && svg.contains("</svg>")
            && (svg.contains("<polyline") || svg.contains("<path"))
    );
    // The PNG decodes, has the chart's size, and is not blank.
    let decoder = png::Decoder::new(std::fs::File::open(out.join("recall_qps.png")).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (960, 640));
    let px = &buf[..info.buffer_size()];
    let non_white = px
        .chunks(info.color_type.samples())
        .filter(|c| c.iter().any(|&b| b < 200))
        .count();
    assert!(non_white > 2000, "only {non_white} non-white pixels");
    // The ground truth was cached next to the queries; a TOML grid with relative paths reuses it.
    let cached = |dir: &Path| -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                name.starts_with("queries.gt-l2-k5-") && name.ends_with(".npy")
            })
            .count()
    };
    assert_eq!(cached(&d.dir), 1);
    // Another base with the same queries file: its own truth, not the cached one (Flat stays
    // exact, where stale truth would give it a recall near 0).
    let other = vecindex::synth::gaussian(N, D, 77).into_vec();
    write_npy(&d.dir.join("other.npy"), N, D, &other);
    let out3 = d.dir.join("bench3");
    ok(&[
        "bench",
        "--base",
        &p(&d, "other.npy"),
        "--queries",
        &p(&d, "queries.npy"),
        "-k",
        "5",
        "--run",
        "faiss",
        "--out",
        out3.to_str().unwrap(),
        "--repeat",
        "1",
        "--single",
        "2",
    ]);
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out3.join("results.json")).unwrap()).unwrap();
    assert_eq!(v["results"][0]["recall"].as_f64(), Some(1.0), "fresh truth");
    assert_eq!(cached(&d.dir), 2);
    std::fs::write(
        d.dir.join("grid.toml"),
        "[dataset]\nbase = \"items.npy\"\nqueries = \"queries.npy\"\nk = 5\n\n[[run]]\nbackend = \"faiss\"\nlabel = \"flat ip\"\nparams = { metric = \"IP\" }\n",
    )
    .unwrap();
    let out2 = d.dir.join("bench2");
    ok(&[
        "bench",
        "--config",
        &p(&d, "grid.toml"),
        "--out",
        out2.to_str().unwrap(),
        "--repeat",
        "1",
        "--single",
        "3",
    ]);
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out2.join("results.json")).unwrap()).unwrap();
    assert_eq!(v["results"][0]["label"], "flat ip");
    assert_eq!(v["results"][0]["recall"].as_f64(), Some(1.0));
    fails(
        &[
            "bench",
            "--base",
            &p(&d, "items.npy"),
            "--queries",
            &p(&d, "queries.npy"),
            "--run",
            "faiss index_type=HSNW",
            "--out",
            out2.to_str().unwrap(),
        ],
        &["Flat, HNSW, IVF"],
    );
    fails(
        &[
            "bench",
            "--base",
            &p(&d, "items.npy"),
            "--queries",
            &p(&d, "queries.npy"),
            "--out",
            out2.to_str().unwrap(),
        ],
        &["nothing to run"],
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

/// An output that is one of the inputs (directly, through a symlink or a hard link) is refused
/// before anything is written, and the input is left byte for byte as it was.
#[test]
fn output_that_is_an_input_is_refused_and_nothing_is_touched() {
    let d = data();
    let items = p(&d, "items.npy");
    let before = std::fs::read(&items).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&items, d.dir.join("link.npy")).unwrap();
    std::fs::hard_link(&items, d.dir.join("hard.npy")).unwrap();
    let mut outputs = vec![items.clone(), p(&d, "hard.npy")];
    if cfg!(unix) {
        outputs.push(p(&d, "link.npy"));
    }
    for out in &outputs {
        fails(
            &["build", "faiss", "--input", &items, "--output", out],
            &["is the same file as --input", "nothing was written"],
        );
    }
    assert_eq!(std::fs::read(&items).unwrap(), before);
    let index = p(&d, "items.index");
    ok(&["build", "faiss", "--input", &items, "--output", &index]);
    let index_bytes = std::fs::read(&index).unwrap();
    let queries = p(&d, "queries.npy");
    for (out, flag) in [(&index, "--index"), (&queries, "--queries")] {
        fails(
            &[
                "query",
                "faiss",
                "--index",
                &index,
                "--queries",
                &queries,
                "-k",
                "3",
                "--output",
                out,
            ],
            &[&format!("is the same file as {flag}")],
        );
    }
    assert_eq!(std::fs::read(&index).unwrap(), index_bytes);
    assert_eq!(std::fs::read(&items).unwrap(), before);
}

/// `-k` must be ≥ 1, said in the message; huge values are refused, not allocated.
#[test]
fn top_k_is_checked_before_anything_is_allocated() {
    let d = data();
    let index = p(&d, "items.index");
    ok(&[
        "build",
        "faiss",
        "--input",
        &p(&d, "items.npy"),
        "--output",
        &index,
    ]);
    let q = p(&d, "queries.npy");
    let out = p(&d, "out.npz");
    let cases: [(&str, &[&str]); 3] = [
        ("9223372036854775807", &["top_k", "smaller top_k"]),
        ("1000000000", &["top_k", "smaller top_k"]),
        ("-1", &["top_k must be at least 1", "-k -1"]),
    ];
    for (k, needles) in cases {
        fails(
            &[
                "query",
                "faiss",
                "--index",
                &index,
                "--queries",
                &q,
                "-k",
                k,
                "--output",
                &out,
            ],
            needles,
        );
    }
}

/// A signal in the middle of a save leaves the old index intact. SIGINT, SIGTERM and SIGHUP end
/// the program by that signal with the save's temp file removed; `kill -9` cannot be caught and
/// leaves its temp file, which the next save to that path removes.
#[cfg(target_os = "linux")]
#[test]
fn a_signal_during_a_save_keeps_the_old_file_and_leaves_no_temp_file() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let (n, d) = (600_000, 128); // a ~300 MB index: its save takes a while
    let items = vecindex::synth::gaussian(n, d, 9).into_vec();
    let input = dir.path().join("big.npy");
    write_npy(&input, n, d, &items);
    drop(items);
    let out = dir.path().join("big.index");
    let small = data();
    let save_small = || {
        ok(&[
            "build",
            "faiss",
            "--input",
            &p(&small, "items.npy"),
            "--output",
            out.to_str().unwrap(),
        ])
    };
    save_small();
    let old = std::fs::read(&out).unwrap();
    let temps = || -> Vec<PathBuf> {
        std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(".big.index.tmp-")
            })
            .collect()
    };
    // Sends `signal` the moment the big save's temp file appears; the exit status, once caught.
    let interrupt_save = |signal: &str| -> std::process::ExitStatus {
        for _ in 0..3 {
            let mut child = bin()
                .args([
                    "build",
                    "faiss",
                    "--input",
                    input.to_str().unwrap(),
                    "--output",
                ])
                .arg(&out)
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            loop {
                if !temps().is_empty() {
                    let pid = child.id().to_string();
                    let sent = Command::new("kill").args([signal, &pid]).status().unwrap();
                    assert!(sent.success());
                    return child.wait().unwrap();
                }
                if child.try_wait().unwrap().is_some() {
                    break; // finished before we saw the save: try again
                }
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            save_small();
        }
        panic!("never saw the save in progress");
    };
    for (signal, number) in [("-INT", 2), ("-TERM", 15), ("-HUP", 1)] {
        let status = interrupt_save(signal);
        assert_eq!(status.signal(), Some(number), "{signal}: {status:?}");
        assert_eq!(
            std::fs::read(&out).unwrap(),
            old,
            "{signal}: old index intact"
        );
        assert!(
            temps().is_empty(),
            "{signal} left a temp file: {:?}",
            temps()
        );
    }
    let status = interrupt_save("-KILL");
    assert_eq!(status.signal(), Some(9));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        old,
        "the old index must be intact"
    );
    assert!(!temps().is_empty(), "the killed save left its temp file");
    save_small();
    assert!(
        temps().is_empty(),
        "the next save removed the dead process's temp file"
    );
    ok(&["info", out.to_str().unwrap()]);
}

/// The smaller defects of #18: each bad input gets one clear line.
#[test]
fn small_defects_give_one_clear_line() {
    let d = data();
    let items = p(&d, "items.npy");
    let q = p(&d, "queries.npy");
    let out = p(&d, "out.npz");
    let hnsw = p(&d, "hnsw.index");
    ok(&[
        "build",
        "faiss",
        "index_type=HNSW",
        "--input",
        &items,
        "--output",
        &hnsw,
    ]);
    // A build-only parameter on `query` is refused, not ignored.
    fails(
        &[
            "query",
            "faiss",
            "efConstruction=5",
            "--index",
            &hnsw,
            "--queries",
            &q,
            "-k",
            "3",
            "--output",
            &out,
        ],
        &["efConstruction only shapes a build", "efSearch"],
    );
    // A directory is named as one, for every backend.
    let dir = d.dir.to_str().unwrap();
    for backend in ["faiss", "annoy"] {
        fails(
            &[
                "query",
                backend,
                "--index",
                dir,
                "--queries",
                &q,
                "-k",
                "3",
                "--output",
                &out,
            ],
            &["is a directory, not a file"],
        );
    }
    // The OS cause is said once.
    let missing = d.dir.join("no").join("such").join("x.index");
    let o = run(&[
        "build",
        "faiss",
        "--input",
        &items,
        "--output",
        missing.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    // Control characters from a file never reach the terminal.
    let bad = d.dir.join("bad.npy");
    std::fs::write(&bad, b"\x93NUMPY\x01\x00\x10\x00{\x1b[31mevil\x07    \n").unwrap();
    let o = run(&[
        "build",
        "faiss",
        "--input",
        bad.to_str().unwrap(),
        "--output",
        &p(&d, "x.index"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        !o.stderr.iter().any(|&b| b == 0x1b || b == 0x07),
        "raw control bytes in the message"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("malformed .npy header"));
    // nprobe above nlists: kept (faiss stores it so), all lists probed, and said.
    let ivf = p(&d, "ivf.index");
    ok(&[
        "build",
        "faiss",
        "index_type=IVF",
        "nlists=10",
        "--input",
        &items,
        "--output",
        &ivf,
    ]);
    let o = ok(&[
        "query",
        "faiss",
        "nprobe=50",
        "--index",
        &ivf,
        "--queries",
        &q,
        "-k",
        "3",
        "--output",
        &out,
    ]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("nprobe=50 exceeds nlists=10"));
}
