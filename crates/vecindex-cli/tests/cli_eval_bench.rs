//! `vecindex demo`, `eval` (analytic metrics on a set with a known answer) and `bench` (JSON,
//! CSV, SVG and PNG outputs, TOML grids, the cached ground truth).

mod common;

use common::*;
use std::path::Path;
use vecindex::io::npy;

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

/// `--synthetic` generates the data; `--sizes` runs the grid on prefixes of it (the exact index
/// is exact at every size, its truth computed per size) and draws the cost curve.
#[test]
fn bench_sizes_draw_the_cost_curve() {
    let d = data();
    let out = d.dir.join("curve");
    ok(&[
        "bench",
        "--synthetic",
        "3000x8",
        "--sizes",
        "500,3000",
        "--run",
        "faiss",
        "--run",
        "faiss factory=IVF8,PQ4x4np ; nprobe=8",
        "--out",
        out.to_str().unwrap(),
        "--repeat",
        "1",
        "--single",
        "3",
    ]);
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    let rows = v["results"].as_array().unwrap();
    let sizes: Vec<u64> = rows
        .iter()
        .map(|r| r["n_items"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, [500, 500, 3000, 3000]);
    assert_eq!(
        rows[0]["recall"].as_f64(),
        Some(1.0),
        "Flat is exact at 500"
    );
    assert_eq!(
        rows[2]["recall"].as_f64(),
        Some(1.0),
        "Flat is exact at 3000"
    );
    assert!(
        rows[3]["recall"].as_f64().unwrap() < 1.0,
        "4-bit PQ codes are lossy"
    );
    let svg = std::fs::read_to_string(out.join("cost_curve.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.matches("<polyline").count() >= 4);
    assert!(out.join("cost_curve.png").exists());
    fails(
        &[
            "bench",
            "--synthetic",
            "100x8",
            "--sizes",
            "200",
            "--run",
            "faiss",
        ],
        &["--sizes: 200 is not between 1 and the 100 base rows"],
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
    assert!(csv.starts_with("label,n_items,backend,params,sweep,metric,k,build_s,index_bytes,peak_rss_bytes,recall,qps,p50_ms,p99_ms"));
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
