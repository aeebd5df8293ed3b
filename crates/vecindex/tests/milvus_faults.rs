//! The Milvus backend when the server dies: a real Milvus 2.3.5 that this test starts, crashes
//! (SIGKILL to its process group) in the middle of an insert, an index build and a search, and
//! restarts on the same data. Each fault must give an error naming the server and the step,
//! within a bounded time; no staging collection may survive the failed builds; a collection
//! built before a crash must be searchable again, with the same results, after the restart.
//!
//! A server of its own (two cannot share a machine: etcd's ports are fixed), so it runs in its
//! own stage of `./scripts/test.sh`, after the shared server is stopped:
//! `cargo test --release -p vecindex --features milvus --test milvus_faults -- --ignored
//! --test-threads=1`.
#![cfg(feature = "milvus")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vecindex::milvus::MilvusBuilder;
use vecindex::{builder_factory, Config, Error, Vectors};

const URI: &str = "http://127.0.0.1:19530";
/// A dead server must be reported well within this (connect_timeout 3 s, timeout 10 s, and the
/// build's attempt to drop its staging collection).
const BOUND: Duration = Duration::from_secs(60);

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/milvus.sh")
}

/// SIGKILL to the server's process group (`milvus.sh kill`), back once every process is gone.
fn kill_server(pid: &str) {
    let st = Command::new("bash")
        .arg(script())
        .args(["kill", pid])
        .status()
        .unwrap();
    assert!(st.success(), "milvus.sh kill {pid}");
}

/// A Milvus server on loopback, owned by this test: stopped by its own pid when dropped.
struct Server {
    dir: PathBuf,
    pid: Option<String>,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let mut s = Server {
            dir: dir.to_path_buf(),
            pid: None,
        };
        s.restart();
        s
    }

    fn restart(&mut self) {
        assert!(self.pid.is_none(), "already running");
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(&self.dir)
            .env("VECINDEX_MILVUS_SESSION_TTL", "5")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "milvus.sh start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.pid = Some(String::from_utf8(out.stdout).unwrap().trim().to_string());
    }

    fn crash(&mut self) {
        kill_server(&self.pid.take().expect("running"));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.pid.is_some() {
            self.crash();
        }
    }
}

fn config(collection: &str, kv: &[(&str, &str)]) -> Config {
    let c = Config::new()
        .set("uri", URI)
        .set("collection", collection)
        .set("connect_timeout", 3)
        .set("timeout", 10)
        .set("connections", 1);
    kv.iter().fold(c, |c, (k, v)| c.set(*k, *v))
}

fn data(n: usize, d: usize, seed: u64) -> Vectors {
    Vectors::new(common::gaussian(n, d, seed), d).unwrap()
}

fn collections() -> Vec<String> {
    let b = MilvusBuilder::from_config(&Config::new().set("uri", URI).set("connect_timeout", 30));
    let mut names = b.unwrap().list_collections().unwrap();
    names.sort();
    names
}

/// Asserts `e` is a server error naming the server and one of `steps`, and `took` is bounded.
fn assert_server_error(e: &Error, steps: &[&str], took: Duration) {
    let text = e.to_string();
    assert!(matches!(e, Error::Server { .. }), "{e:?}");
    assert!(text.contains(URI), "{text}");
    assert!(steps.iter().any(|s| text.contains(s)), "{text}");
    assert!(took < BOUND, "{took:?}: {text}");
    eprintln!("fault reported in {:.1} s: {text}", took.as_secs_f64());
}

/// Builds with `kv`, crashing the server from the progress callback when `at` says so (the
/// callback runs on the building thread: the crash happens between two steps or, with a delay,
/// in the middle of one). Returns the build's error and how long the build took to report it.
fn build_through_a_crash(
    server: &mut Server,
    items: &Vectors,
    kv: &[(&str, &str)],
    at: impl Fn(&str, u64) -> Option<Duration> + Send + Sync + 'static,
) -> (Error, Duration) {
    let pid = server.pid.clone().unwrap();
    let crashed_at = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let fired = Arc::new(AtomicBool::new(false));
    let (crashed2, fired2) = (crashed_at.clone(), fired.clone());
    let mut b = builder_factory("milvus", &config("fault_build", kv)).unwrap();
    b.set_progress(Arc::new(move |stage: &str, done: u64, _total: u64| {
        let Some(delay) = at(stage, done) else { return };
        if fired2.swap(true, Ordering::SeqCst) {
            return;
        }
        let (pid, crashed) = (pid.clone(), crashed2.clone());
        let kill = move || {
            std::thread::sleep(delay);
            *crashed.lock().unwrap() = Some(Instant::now());
            kill_server(&pid);
        };
        if delay.is_zero() {
            kill();
        } else {
            std::thread::spawn(kill);
        }
    }));
    let e = b
        .from_embeddings(items.view())
        .err()
        .expect("the build fails");
    let end = Instant::now();
    assert!(fired.load(Ordering::SeqCst), "the crash never happened");
    server.pid = None;
    // A kill on its own thread may still be under way: wait for it (but it must have begun).
    let crashed = loop {
        if let Some(t) = *crashed_at.lock().unwrap() {
            break t;
        }
        assert!(end.elapsed() < BOUND, "the build failed with no crash: {e}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(crashed <= end, "the build failed before the kill: {e}");
    (e, end.duration_since(crashed))
}

fn no_staging_left(names: &[String]) {
    assert!(
        names.iter().all(|n| !n.contains("_vxb")),
        "staging collections left behind: {names:?}"
    );
    assert!(!names.contains(&"fault_build".to_string()), "{names:?}");
}

#[test]
#[ignore = "starts and crashes its own Milvus: run by ./scripts/test.sh in its own stage"]
fn server_crashes_give_clear_errors_and_leave_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Server::start(&tmp.path().join("milvus"));

    // Before any fault: a small HNSW collection (kept, queried across restarts) and a large
    // FLAT one (slow enough to search that a crash lands mid-search).
    let keep_items = data(2000, 16, 1);
    let keep_queries = data(50, 16, 2);
    let keep_path = tmp.path().join("keep.milvus");
    let keep = builder_factory("milvus", &config("fault_keep", &[("index_type", "HNSW")]))
        .unwrap()
        .from_embeddings(keep_items.view())
        .unwrap();
    keep.save(&keep_path).unwrap();
    let want = keep.query(keep_queries.view(), 10).unwrap();
    let big_items = data(100_000, 32, 3);
    let big = builder_factory("milvus", &config("fault_big", &[]))
        .unwrap()
        .from_embeddings(big_items.view())
        .unwrap();
    let big_path = tmp.path().join("big.milvus");
    big.save(&big_path).unwrap();
    drop(big);

    // 1. Crash mid-insert (after the first of several insert requests).
    let items = data(200_000, 64, 4);
    let (e, took) = build_through_a_crash(&mut server, &items, &[], |stage, done| {
        (stage == "inserting" && done > 0).then_some(Duration::ZERO)
    });
    assert_server_error(&e, &["inserting", "dropping"], took);

    // 2. Restart between build and query: the saved handle reopens and answers as before;
    //    the indexer opened before the crash reconnects. The failed build's staging collection
    //    survived the crash (nobody could drop it); the next build removes it.
    server.restart();
    let reopened = builder_factory("milvus", &Config::new().set("connect_timeout", 30))
        .unwrap()
        .from_index_file(&keep_path)
        .unwrap();
    let got = reopened.query(keep_queries.view(), 10).unwrap();
    assert_eq!(got.ids, want.ids);
    let again = keep.query(keep_queries.view(), 10);
    assert_eq!(again.map(|r| r.ids).ok(), Some(want.ids.clone()));
    let leftovers: Vec<String> = collections()
        .into_iter()
        .filter(|n| n.contains("_vxb"))
        .collect();
    assert_eq!(leftovers.len(), 1, "the crashed build's staging collection");

    // 3. Crash mid-index build.
    let items = data(100_000, 32, 5);
    let kv = [("index_type", "IVF_FLAT"), ("nlist", "1024")];
    let (e, took) = build_through_a_crash(&mut server, &items, &kv, |stage, done| {
        (stage == "building index" && done == 0).then_some(Duration::from_millis(300))
    });
    assert_server_error(
        &e,
        &["building the index", "loading the collection", "dropping"],
        took,
    );
    server.restart();

    // 4. Crash mid-search: 20,000 queries × 100 k-NN by brute force over 100,000 items.
    let big = builder_factory("milvus", &Config::new().set("connect_timeout", 30))
        .unwrap()
        .from_index_file(&big_path)
        .unwrap();
    let queries = data(20_000, 32, 6);
    let pid = server.pid.take().unwrap();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        let at = Instant::now();
        kill_server(&pid);
        at
    });
    let Err(e) = big.query(queries.view(), 100) else {
        panic!("the search outlived the server")
    };
    let crashed = killer.join().unwrap();
    assert_server_error(&e, &["searching"], Instant::now().duration_since(crashed));

    // After the last restart: everything built before the crashes answers; a new build works and
    // clears what the crashed builds left behind.
    server.restart();
    let reopened = builder_factory("milvus", &Config::new().set("connect_timeout", 30))
        .unwrap()
        .from_index_file(&keep_path)
        .unwrap();
    assert_eq!(
        reopened.query(keep_queries.view(), 10).unwrap().ids,
        want.ids
    );
    let after = builder_factory("milvus", &config("fault_after", &[]))
        .unwrap()
        .from_embeddings(keep_items.view())
        .unwrap();
    assert_eq!(after.len(), keep_items.rows());
    let names = collections();
    no_staging_left(&names);
    assert_eq!(names, ["fault_after", "fault_big", "fault_keep"]);
    drop((keep, reopened, after, big));
    drop(server);
}
