//! The Milvus backend against a real Milvus 2.3.5 server on loopback. `./scripts/test.sh` starts
//! the server and sets `VECINDEX_MILVUS_URI`; without it these tests skip with a notice, except
//! under CI / VECINDEX_REQUIRE_PEERS, where they fail.
#![cfg(feature = "milvus")]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vecindex::eval::{exact_neighbors, recall_against};
use vecindex::milvus::MilvusBuilder;
use vecindex::{builder_factory, Config, Metric, Vectors};

fn cfg(uri: &str) -> Config {
    Config::new().set("uri", uri).set("connect_timeout", 20)
}

fn with(c: &Config, kv: &[(&str, &str)]) -> Config {
    kv.iter().fold(c.clone(), |c, (k, v)| c.set(*k, *v))
}

fn data(n: usize, d: usize, seed: u64) -> Vectors {
    Vectors::new(common::gaussian(n, d, seed), d).unwrap()
}

fn collections(uri: &str) -> Vec<String> {
    MilvusBuilder::from_config(&cfg(uri))
        .unwrap()
        .list_collections()
        .unwrap()
}

fn metric_of(name: &str) -> Metric {
    match name {
        "IP" => Metric::InnerProduct,
        "COSINE" => Metric::Cosine,
        _ => Metric::L2,
    }
}

#[test]
fn flat_equals_exact_search_for_every_metric_and_sees_every_item_at_once() {
    let Some(uri) = common::milvus_uri() else {
        return;
    };
    let (n, d, k) = (3000, 24, 10);
    let items = data(n, d, 1);
    let queries = data(40, d, 2);
    for metric in ["L2", "IP", "COSINE"] {
        let b = builder_factory("milvus", &with(&cfg(&uri), &[("metric", metric)])).unwrap();
        let idx = b.from_embeddings(items.view()).unwrap();
        assert_eq!(
            (idx.len(), idx.dim(), idx.metric()),
            (n, d, metric_of(metric))
        );
        let got = idx.query(queries.view(), k).unwrap();
        let want = exact_neighbors(items.view(), queries.view(), metric_of(metric), k).unwrap();
        common::assert_same_results(
            &got.ids,
            &got.distances,
            &want.ids,
            &want.distances,
            k,
            1e-4,
        );
        if metric == "L2" {
            // Freshness: right after the build, every item is there and finds itself first.
            let own = idx.query(items.view(), 1).unwrap();
            for (i, id) in own.ids.iter().enumerate() {
                assert_eq!(*id, i as i64, "item {i} not visible right after the build");
            }
        }
    }
}

#[test]
fn hnsw_and_ivf_reach_recall_on_real_embeddings() {
    let Some(uri) = common::milvus_uri() else {
        return;
    };
    // The committed sample (2,000 items): the server-side indexes against exact cosine truth,
    // computed in f64 on normalised copies.
    let set = common::real_sets().remove(0);
    let (base, queries) = (set.base, set.queries);
    let k = 10;
    let (gt_ids, _) = common::exact_f64(
        &common::unit_rows(&base),
        &common::unit_rows(&queries),
        false,
        k,
    );
    let recall = |r: &vecindex::Neighbors| {
        let mut hit = 0;
        for q in 0..r.n_queries {
            let want = &gt_ids[q * k..(q + 1) * k];
            hit += r.ids_row(q).iter().filter(|i| want.contains(i)).count();
        }
        hit as f64 / (r.n_queries * k) as f64
    };
    for (kv, min) in [
        (
            &[("index_type", "HNSW"), ("m", "16"), ("ef", "64")][..],
            0.95,
        ),
        (
            &[
                ("index_type", "IVF_FLAT"),
                ("nlist", "32"),
                ("nprobe", "16"),
            ][..],
            0.95,
        ),
    ] {
        let c = with(&cfg(&uri), kv).set("metric", "COSINE");
        let idx = builder_factory("milvus", &c)
            .unwrap()
            .from_embeddings(base.view())
            .unwrap();
        let r = recall(&idx.query(queries.view(), k).unwrap());
        eprintln!("milvus {kv:?} COSINE recall@10 {r:.4}");
        assert!(r >= min, "{kv:?}: recall@10 {r} < {min}");
    }
}

#[test]
fn hnsw_raises_ef_to_top_k_and_pads_when_k_exceeds_n() {
    let Some(uri) = common::milvus_uri() else {
        return;
    };
    let (n, d) = (2000, 16);
    let items = data(n, d, 3);
    let queries = data(5, d, 4);
    let c = with(&cfg(&uri), &[("index_type", "HNSW"), ("ef", "8")]);
    let idx = builder_factory("milvus", &c)
        .unwrap()
        .from_embeddings(items.view())
        .unwrap();
    // ef 8 < top_k 100: the server would refuse; we search with ef = 100, and say so in
    // info().warnings (the library never prints).
    assert!(idx.info().warnings.is_empty());
    let r = idx.query(queries.view(), 100).unwrap();
    let w = idx.info().warnings;
    assert!(w.len() == 1 && w[0].contains("ef 8 < top_k 100"), "{w:?}");
    assert!(r.ids.iter().all(|&i| (0..n as i64).contains(&i)));
    let want = exact_neighbors(items.view(), queries.view(), Metric::L2, 100).unwrap();
    assert!(recall_against(&r, &want, 100) > 0.9);

    // A tiny collection: top_k > n pads with -1 / +inf, in the common shape.
    let small = data(7, d, 5);
    let idx = builder_factory("milvus", &cfg(&uri))
        .unwrap()
        .from_embeddings(small.view())
        .unwrap();
    let r = idx.query(queries.view(), 10).unwrap();
    for q in 0..5 {
        let ids = r.ids_row(q);
        let mut seen: Vec<i64> = ids[..7].to_vec();
        seen.sort();
        assert_eq!(seen, (0..7).collect::<Vec<i64>>());
        assert_eq!(&ids[7..], &[-1, -1, -1]);
        assert!(r.distances_row(q)[7..].iter().all(|x| *x == f32::INFINITY));
    }
}

#[test]
fn custom_ids_save_and_reopen_and_cleanup() {
    let Some(uri) = common::milvus_uri() else {
        return;
    };
    let (n, d, k) = (1500, 12, 5);
    let items = data(n, d, 6);
    let queries = data(20, d, 7);
    let ids: Vec<i64> = (0..n as i64)
        .map(|i| i * 1_000_003 + (1 << 40) - 7 * (i % 3))
        .collect();
    let name = format!("vecindex_test_persist_{}", std::process::id());
    let c =
        with(&cfg(&uri), &[("metric", "IP"), ("collection", &name)]).set("token", "root:Milvus");
    let b = builder_factory("milvus", &c).unwrap();
    let idx = b.from_embeddings_with_ids(items.view(), &ids).unwrap();
    let got = idx.query(queries.view(), k).unwrap();
    let want = exact_neighbors(items.view(), queries.view(), Metric::InnerProduct, k).unwrap();
    let mapped: Vec<i64> = want.ids.iter().map(|&r| ids[r as usize]).collect();
    common::assert_same_results(&got.ids, &got.distances, &mapped, &want.distances, k, 1e-4);

    // A second build under the same name is refused unless overwrite=true.
    let e = b.from_embeddings(items.view()).err().unwrap().to_string();
    assert!(
        e.contains("already exists") && e.contains("overwrite=true"),
        "{e}"
    );

    let dir = tempfile::tempdir().unwrap();
    let handle = dir.path().join("index.milvus.json");
    idx.save(&handle).unwrap();
    let text = std::fs::read_to_string(&handle).unwrap();
    assert!(
        !text.contains("root:Milvus"),
        "the token must never be written: {text}"
    );
    drop(idx);
    assert!(
        collections(&uri).contains(&name),
        "a named collection persists"
    );

    let reopened = builder_factory("milvus", &cfg(&uri))
        .unwrap()
        .from_index_file(&handle)
        .unwrap();
    assert_eq!((reopened.len(), reopened.dim()), (n, d));
    assert!(reopened.info().custom_ids);
    assert_eq!(reopened.query(queries.view(), k).unwrap(), got);
    // The builder's d and metric are checked against the collection.
    let e = builder_factory("milvus", &cfg(&uri).set("d", 13))
        .unwrap()
        .from_index_file(&handle)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("dimension mismatch"), "{e}");
    let e = builder_factory("milvus", &cfg(&uri).set("metric", "L2"))
        .unwrap()
        .from_index_file(&handle)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("metric IP"), "{e}");
    // Wrong query dimension and bad k never reach the server.
    assert!(reopened.query(data(2, d + 1, 8).view(), k).is_err());
    assert!(reopened.query(queries.view(), 0).is_err());
    assert!(reopened
        .query(queries.view(), 16385)
        .unwrap_err()
        .to_string()
        .contains("16384"));
    drop(reopened);
    assert!(
        collections(&uri).contains(&name),
        "an opened collection is never dropped"
    );

    // overwrite=true replaces it (built beside, swapped in); then clean up.
    let c2 = with(&cfg(&uri), &[("collection", &name), ("overwrite", "true")]);
    let idx2 = builder_factory("milvus", &c2)
        .unwrap()
        .from_embeddings(items.view().slice_rows(0, 100))
        .unwrap();
    assert_eq!(idx2.len(), 100);
    drop(idx2);
    MilvusBuilder::from_config(&cfg(&uri))
        .unwrap()
        .drop_collection(&name)
        .unwrap();
    assert!(!collections(&uri).contains(&name));
    let e = builder_factory("milvus", &cfg(&uri))
        .unwrap()
        .from_index_file(&handle)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("does not exist"), "{e}");
}

#[test]
fn temporary_collections_never_outlive_their_indexer() {
    let Some(uri) = common::milvus_uri() else {
        return;
    };
    let d = 16;
    let items = data(1200, d, 9);
    let idx = builder_factory("milvus", &cfg(&uri).set("name", "vecindex_tmp"))
        .unwrap()
        .from_embeddings(items.view())
        .unwrap();
    let name = idx.info().params["collection"].clone();
    assert!(name.starts_with("vecindex_tmp_"), "{name}");
    assert!(collections(&uri).contains(&name));
    drop(idx);
    assert!(
        !collections(&uri).contains(&name),
        "dropped with the indexer"
    );

    // A build that fails half-way (index building exceeds build_timeout) leaves nothing behind.
    let before = collections(&uri);
    let big = data(20000, 128, 10);
    let c = with(
        &cfg(&uri),
        &[
            ("name", "vecindex_fail"),
            ("index_type", "HNSW"),
            ("m", "64"),
            ("efConstruction", "2000"),
            ("build_timeout", "1"),
        ],
    );
    let e = builder_factory("milvus", &c)
        .unwrap()
        .from_embeddings(big.view())
        .err()
        .expect("index build cannot finish within 1 s");
    assert!(e.to_string().contains("building the index"), "{e}");
    let after = collections(&uri);
    assert!(
        !after
            .iter()
            .any(|c| c.starts_with("vecindex_fail") && !before.contains(c)),
        "half-built collection left behind: {after:?}"
    );
}

#[test]
fn bad_input_is_refused_before_contacting_the_server() {
    // Port 1 on loopback: nothing listens. Input errors must win over connection errors.
    let c = Config::new().set("uri", "http://127.0.0.1:1");
    let b = builder_factory("milvus", &c).unwrap();
    let e = b.from_embeddings(Vectors::new(vec![], 4).unwrap().view());
    assert!(e.err().unwrap().to_string().contains("zero embeddings"));
    let v = Vectors::new(vec![1.0, f32::NAN, 0.0, 1.0], 2).unwrap();
    assert!(b
        .from_embeddings(v.view())
        .err()
        .unwrap()
        .to_string()
        .contains("NaN"));
    let v = data(3, 2, 1);
    let e = b.from_embeddings_with_ids(v.view(), &[5, 6, 5]);
    assert!(e.err().unwrap().to_string().contains("duplicate id 5"));
    let b = builder_factory("milvus", &c.clone().set("d", 3)).unwrap();
    assert!(b
        .from_embeddings(v.view())
        .err()
        .unwrap()
        .to_string()
        .contains("dimension"));
    let b = builder_factory("milvus", &c.clone().set("metric", "COSINE")).unwrap();
    let z = Vectors::new(vec![0.0, 0.0, 1.0, 2.0], 2).unwrap();
    assert!(b
        .from_embeddings(z.view())
        .err()
        .unwrap()
        .to_string()
        .contains("zero vector"));
}

#[test]
fn server_down_is_a_clear_error_within_the_connect_timeout() {
    // Nothing listens on port 1: refused at once, reported with the uri.
    let c = Config::new()
        .set("uri", "http://127.0.0.1:1")
        .set("connect_timeout", 2);
    let t = Instant::now();
    let e = builder_factory("milvus", &c)
        .unwrap()
        .from_embeddings(data(10, 4, 1).view())
        .err()
        .unwrap()
        .to_string();
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    assert!(
        e.contains("http://127.0.0.1:1") && e.contains("connecting"),
        "{e}"
    );

    // A port that accepts TCP but never speaks gRPC: bounded too.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let uri = format!("http://{}", silent.local_addr().unwrap());
    let t = Instant::now();
    let e = builder_factory(
        "milvus",
        &Config::new().set("uri", &uri).set("connect_timeout", 2),
    )
    .unwrap()
    .from_embeddings(data(10, 4, 1).view())
    .err()
    .unwrap()
    .to_string();
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(e.contains(&uri), "{e}");
}

/// A TCP relay in front of the server that can be cut, to stop "the server" mid-run without
/// disturbing the other tests that share it.
struct Relay {
    addr: String,
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(upstream: &str) -> Relay {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let cut = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (cut2, conns2) = (cut.clone(), conns.clone());
        std::thread::spawn(move || {
            while !cut2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((down, _)) => {
                        down.set_nonblocking(false).unwrap();
                        let up = TcpStream::connect(&upstream).unwrap();
                        let mut l = conns2.lock().unwrap();
                        l.push(down.try_clone().unwrap());
                        l.push(up.try_clone().unwrap());
                        for (mut a, mut b) in [
                            (down.try_clone().unwrap(), up.try_clone().unwrap()),
                            (up, down),
                        ] {
                            std::thread::spawn(move || {
                                let mut buf = [0u8; 65536];
                                while let Ok(n) = a.read(&mut buf) {
                                    if n == 0 || b.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                                let _ = b.shutdown(std::net::Shutdown::Both);
                            });
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            // The listener is dropped here: new connections are refused from now on.
        });
        Relay { addr, cut, conns }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for s in self.conns.lock().unwrap().iter() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn server_gone_mid_run_gives_an_error_in_bounded_time() {
    let Some(uri) = common::milvus_uri() else {
        return;
    };
    let relay = Relay::start(&uri);
    let name = format!("vecindex_test_cut_{}", std::process::id());
    let d = 8;
    let items = data(500, d, 11);
    let c = Config::new()
        .set("uri", &relay.addr)
        .set("collection", &name)
        .set("connect_timeout", 3)
        .set("timeout", 5);
    let idx = builder_factory("milvus", &c)
        .unwrap()
        .from_embeddings(items.view())
        .unwrap();
    assert_eq!(
        idx.query(items.view().slice_rows(0, 3), 1).unwrap().ids,
        vec![0, 1, 2]
    );
    relay.cut();
    let t = Instant::now();
    let e = idx
        .query(items.view().slice_rows(0, 3), 1)
        .err()
        .unwrap()
        .to_string();
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    assert!(e.contains(&relay.addr) && e.contains("searching"), "{e}");
    drop(idx);
    MilvusBuilder::from_config(&cfg(&uri))
        .unwrap()
        .drop_collection(&name)
        .unwrap();
}

#[test]
fn works_from_inside_another_async_runtime() {
    let Some(uri) = common::milvus_uri() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let items = data(300, 8, 12);
    let name = rt.block_on(async {
        let idx = builder_factory("milvus", &cfg(&uri))
            .unwrap()
            .from_embeddings(items.view())
            .unwrap();
        let r = idx.query(items.view().slice_rows(0, 4), 1).unwrap();
        assert_eq!(r.ids, vec![0, 1, 2, 3]);
        let name = idx.info().params["collection"].clone();
        drop(idx); // dropping inside the runtime must not panic either
        name
    });
    assert!(!collections(&uri).contains(&name));
}
