//! The mutation suite: thousands of corrupted index, sidecar, handle and embedding files, each
//! given to the `vecindex` binary (`info`, `query`, `build`) under a 2 GB address-space cap. Every
//! run must end with exit 0, or exit 1 and one line `error: ...`: never a panic (exit 101), an
//! abort or a signal, a hang (20 s), or an allocation the cap refuses.
//!
//! The seeds are small valid files written by the binary itself (byte-identical to what faiss and
//! annoy write); the mutations are bit flips, random bytes, header fields set to extreme values,
//! truncation, appended junk, deleted and duplicated chunks, and for JSON also numbers replaced
//! by extreme ones. `VECINDEX_MUTATIONS=N` sets how many mutated files per seed (default 250);
//! `VECINDEX_MUTATION_SEED` the random seed. A failing case is kept under
//! `target/mutation-failures/` with the command that failed.
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use vecindex::io::npy;

const ADDRESS_SPACE_KB: u64 = 2 << 20; // 2 GiB
const RUN_LIMIT: Duration = Duration::from_secs(20);
const D: usize = 16;

/// splitmix64: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// A position, half the time within the first 128 bytes (where the headers are).
    fn position(&mut self, len: usize) -> usize {
        if self.below(2) == 0 {
            self.below(len.min(128))
        } else {
            self.below(len)
        }
    }
}

const WORDS32: [u32; 8] = [
    0,
    1,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0xffff_fffe,
    0x0001_0000,
    1_000_000_000,
];
const WORDS64: [u64; 6] = [0, u64::MAX, i64::MAX as u64, 1 << 40, 1 << 62, 0x8000_0000];
const JSON_NUMBERS: [&str; 8] = [
    "0",
    "-1",
    "99999999999999999999999",
    "1e308",
    "-9223372036854775808",
    "18446744073709551615",
    "4294967296",
    "0.5",
];

fn mutate(bytes: &[u8], json: bool, rng: &mut Rng) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let ops = 1 + rng.below(3);
    for _ in 0..ops {
        if b.is_empty() {
            b.push(rng.next() as u8);
            continue;
        }
        let len = b.len();
        match rng.below(if json { 10 } else { 8 }) {
            0 => {
                let i = rng.position(len);
                b[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.position(len);
                b[i] = rng.next() as u8;
            }
            2 if len >= 4 => {
                let i = rng.position(len - 3) & !3;
                let w = WORDS32[rng.below(WORDS32.len())];
                b[i..i + 4].copy_from_slice(&w.to_le_bytes());
            }
            3 if len >= 8 => {
                let i = rng.position(len - 7) & !7;
                let w = WORDS64[rng.below(WORDS64.len())];
                b[i..i + 8].copy_from_slice(&w.to_le_bytes());
            }
            4 => b.truncate(rng.below(len)),
            5 => {
                for _ in 0..1 + rng.below(64) {
                    b.push(rng.next() as u8);
                }
            }
            6 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(256));
                b.drain(i..i + n);
            }
            7 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(256));
                let chunk = b[i..i + n].to_vec();
                let at = rng.below(len);
                b.splice(at..at, chunk);
            }
            _ => {
                // A number in the JSON replaced by an extreme one.
                let starts: Vec<usize> = (0..len)
                    .filter(|&i| {
                        b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
                    })
                    .collect();
                if let Some(&s) = starts.get(rng.below(starts.len())) {
                    let e = (s..len)
                        .find(|&i| !(b[i].is_ascii_digit() || b[i] == b'.'))
                        .unwrap_or(len);
                    let with = JSON_NUMBERS[rng.below(JSON_NUMBERS.len())].as_bytes();
                    b.splice(s..e, with.iter().copied());
                }
            }
        }
    }
    b
}

/// One kind of seed file and the commands that read it (`{}` stands for the mutated file).
struct Seed {
    name: String,
    bytes: Vec<u8>,
    json: bool,
    /// File name the mutated copy gets (readers pick formats by extension).
    file: &'static str,
    /// A file written intact beside the mutated one (the forest a mutated sidecar describes).
    companion: Option<(&'static str, Vec<u8>)>,
    /// `{}` stands for the mutated file, `{dir}` for the directory it is in.
    commands: Vec<Vec<String>>,
}

fn vecindex() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vecindex"))
}

fn ok(args: &[&str]) {
    let o = vecindex().args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn seeds(dir: &Path) -> Vec<Seed> {
    let items: Vec<f32> = vecindex::synth::gaussian(300, D, 1).into_vec();
    let queries: Vec<f32> = vecindex::synth::gaussian(5, D, 2).into_vec();
    let ids: Vec<i64> = (0..300).map(|i| 1000 + 7 * i).collect();
    let at = |name: &str| dir.join(name).to_str().unwrap().to_string();
    std::fs::write(at("items.npy"), npy::npy_f32(&[300, D], &items)).unwrap();
    std::fs::write(at("queries.npy"), npy::npy_f32(&[5, D], &queries)).unwrap();
    std::fs::write(at("ids.npy"), npy::npy_i64(&[300], &ids)).unwrap();
    let query = |backend: &str, extra: &[&str]| -> Vec<String> {
        let mut c = s(&["query", backend, "--index", "{}", "--queries"]);
        c.push(at("queries.npy"));
        c.extend(s(&["-k", "5", "--output", "-"]));
        c.extend(s(extra));
        c
    };
    let mut out = Vec::new();
    let faiss: [(&str, &[&str], bool); 14] = [
        ("faiss_flat_l2", &["index_type=Flat"], false),
        ("faiss_flat_ip", &["index_type=Flat", "metric=IP"], false),
        ("faiss_hnsw", &["index_type=HNSW", "M=8"], false),
        ("faiss_ivf", &["index_type=IVF", "nlists=8"], false),
        ("faiss_flat_ids", &["index_type=Flat"], true),
        ("faiss_ivf_ids", &["index_type=IVF", "nlists=8"], true),
        ("faiss_sq8", &["factory=SQ8"], false),
        ("faiss_sqfp16_ip", &["factory=SQfp16", "metric=IP"], false),
        ("faiss_hnsw_sq8", &["factory=HNSW8,SQ8"], false),
        ("faiss_ivf_sq8_ip", &["factory=IVF8,SQ8", "metric=IP"], true),
        // Custom ids: an id map around a refine index around an IVF (lists of row numbers).
        (
            "faiss_ivf_sqfp16_rflat_ids",
            &["factory=IVF8,SQfp16,RFlat"],
            true,
        ),
        (
            "faiss_hnsw_sq8_rflat",
            &["factory=HNSW8,SQ8,RFlat", "k_factor=2"],
            true,
        ),
        // IVF-PQ: 6-bit codes across byte boundaries, IP, ids in the lists; 8-bit codes with
        // the precomputed L2 tables under a refine index.
        (
            "faiss_ivf_pq6_ip_ids",
            &["factory=IVF8,PQ4x6np", "metric=IP"],
            true,
        ),
        ("faiss_ivf_pq8_rflat", &["factory=IVF8,PQ8np,RFlat"], false),
    ];
    for (name, params, with_ids) in faiss {
        let path = at(&format!("{name}.index"));
        let mut args = vec!["build", "faiss", "--input"];
        let input = at("items.npy");
        let ids_path = at("ids.npy");
        args.push(&input);
        args.extend(["--output", &path]);
        if with_ids {
            args.extend(["--ids", &ids_path]);
        }
        args.extend(params);
        ok(&args);
        out.push(Seed {
            name: name.into(),
            bytes: std::fs::read(&path).unwrap(),
            json: false,
            file: "m.index",
            companion: None,
            commands: vec![s(&["info", "{}"]), query("faiss", &[])],
        });
    }
    for metric in ["angular", "euclidean", "dot"] {
        let path = at(&format!("annoy_{metric}.ann"));
        let m = format!("metric={metric}");
        ok(&[
            "build",
            "annoy",
            "--input",
            &at("items.npy"),
            "--output",
            &path,
            &m,
            "n_trees=3",
            "--ids",
            &at("ids.npy"),
        ]);
        let d = format!("d={D}");
        // The forest alone, read as annoy's own files are (no sidecar: d and metric given).
        let forest = std::fs::read(&path).unwrap();
        out.push(Seed {
            name: format!("annoy_{metric}_forest"),
            bytes: forest.clone(),
            json: false,
            file: "m.ann",
            companion: None,
            commands: vec![query("annoy", &[&d, &m])],
        });
        // The sidecar, beside an intact forest.
        let mut on_forest = query("annoy", &[]);
        on_forest[3] = "{dir}/s.ann".into();
        out.push(Seed {
            name: format!("annoy_{metric}_sidecar"),
            bytes: std::fs::read(format!("{path}.vecindex.json")).unwrap(),
            json: true,
            file: "s.ann.vecindex.json",
            companion: Some(("s.ann", forest)),
            commands: vec![s(&["info", "{dir}/s.ann"]), on_forest],
        });
    }
    let handle = r#"{"format":"vecindex-milvus","version":1,"uri":"http://127.0.0.1:9","collection":"c","d":16,"metric":"L2","index_type":"HNSW","n_items":300,"custom_ids":false,"primary_field":"id","vector_field":"embedding","build_params":{"M":"16","efConstruction":"200"},"ef":64,"consistency":"Bounded"}"#;
    out.push(Seed {
        name: "milvus_handle".into(),
        companion: None,
        bytes: handle.as_bytes().to_vec(),
        json: true,
        file: "m.milvus",
        commands: vec![s(&["info", "{}"])],
    });
    let build = |input_file: &str| -> Vec<String> {
        let mut c = s(&["build", "faiss", "--input", "{}", "--output"]);
        c.push(at(input_file));
        c
    };
    let query_with = |index: &str| -> Vec<String> {
        s(&[
            "query",
            "faiss",
            "--index",
            index,
            "--queries",
            "{}",
            "-k",
            "3",
            "--output",
            "-",
        ])
    };
    let flat = at("faiss_flat_l2.index");
    out.push(Seed {
        name: "npy".into(),
        companion: None,
        bytes: std::fs::read(at("queries.npy")).unwrap(),
        json: false,
        file: "m.npy",
        commands: vec![build("npy_out.index"), query_with(&flat)],
    });
    let mut fvecs = Vec::new();
    for row in queries.chunks(D) {
        fvecs.extend((D as u32).to_le_bytes());
        row.iter().for_each(|x| fvecs.extend(x.to_le_bytes()));
    }
    out.push(Seed {
        name: "fvecs".into(),
        companion: None,
        bytes: fvecs,
        json: false,
        file: "m.fvecs",
        commands: vec![build("fvecs_out.index"), query_with(&flat)],
    });
    let header = format!(
        r#"{{"emb":{{"dtype":"F32","shape":[5,{D}],"data_offsets":[0,{}]}}}}"#,
        5 * D * 4
    );
    let mut st = (header.len() as u64).to_le_bytes().to_vec();
    st.extend(header.as_bytes());
    queries.iter().for_each(|x| st.extend(x.to_le_bytes()));
    out.push(Seed {
        name: "safetensors".into(),
        companion: None,
        bytes: st,
        json: false,
        file: "m.safetensors",
        commands: vec![build("st_out.index"), query_with(&flat)],
    });
    out
}

/// Writes `bytes` as the seed's file in `dir` (and its companion beside it); the file's path.
fn place(sd: &Seed, bytes: &[u8], dir: &Path) -> PathBuf {
    if let Some((name, companion)) = &sd.companion {
        std::fs::write(dir.join(name), companion).unwrap();
    }
    let path = dir.join(sd.file);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn fill(command: &[String], file: &Path, dir: &Path) -> Vec<String> {
    command
        .iter()
        .map(|a| {
            a.replace("{dir}", dir.to_str().unwrap())
                .replace("{}", file.to_str().unwrap())
        })
        .collect()
}

/// Runs one command under the address-space cap: whether it was rejected (exit 1 with one error
/// line) or answered (exit 0); `Err` says what went wrong otherwise.
fn check(args: &[String]) -> Result<bool, String> {
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -v {ADDRESS_SPACE_KB} && exec \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_vecindex"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if start.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("no answer within {RUN_LIMIT:?}"));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let mut err = String::new();
    use std::io::Read;
    child.stderr.take().unwrap().read_to_string(&mut err).ok();
    match status.code() {
        Some(0) => Ok(false),
        Some(1) => {
            let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
            if lines.len() == 1 && lines[0].starts_with("error: ") {
                Ok(true)
            } else {
                Err(format!("exit 1 without one error line: {err:?}"))
            }
        }
        _ => Err(format!("{status:?}: {err}")),
    }
}

#[test]
fn mutated_files_get_an_answer_or_one_clear_error_under_a_2gb_cap() {
    let dir = tempfile::tempdir().unwrap();
    let seeds = seeds(dir.path());
    let per_seed: usize = std::env::var("VECINDEX_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(250);
    let seed: u64 = std::env::var("VECINDEX_MUTATION_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(18);
    // The judge itself: a usage error (exit 2) is a failure, not a clear rejection.
    assert!(check(&s(&["--no-such-flag"])).is_err());
    // The seeds themselves must pass (else the suite only tests the error path).
    let seed_dir = dir.path().join("seeds");
    std::fs::create_dir_all(&seed_dir).unwrap();
    for sd in &seeds {
        let path = place(sd, &sd.bytes, &seed_dir);
        for c in &sd.commands {
            let args = fill(c, &path, &seed_dir);
            let o = vecindex().args(&args).output().unwrap();
            assert!(
                o.status.success(),
                "seed {} {args:?}: {}",
                sd.name,
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
    let jobs: Vec<(usize, usize)> = (0..seeds.len())
        .flat_map(|s| (0..per_seed).map(move |m| (s, m)))
        .collect();
    let next = AtomicUsize::new(0);
    let runs = AtomicUsize::new(0);
    let rejected = AtomicUsize::new(0);
    let failures: Mutex<Vec<String>> = Mutex::default();
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mutation-failures");
    std::thread::scope(|scope| {
        for worker in 0..2 {
            let (jobs, seeds, next, runs, rejected, failures, keep) =
                (&jobs, &seeds, &next, &runs, &rejected, &failures, &keep);
            let dir = dir.path().join(format!("w{worker}"));
            std::fs::create_dir_all(&dir).unwrap();
            scope.spawn(move || loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(s, m)) = jobs.get(j) else { break };
                let sd = &seeds[s];
                let mut rng = Rng(seed ^ ((s as u64) << 32) ^ m as u64);
                let bytes = mutate(&sd.bytes, sd.json, &mut rng);
                let path = place(sd, &bytes, &dir);
                for c in &sd.commands {
                    let args = fill(c, &path, &dir);
                    runs.fetch_add(1, Ordering::Relaxed);
                    match check(&args) {
                        Ok(false) => {}
                        Ok(true) => {
                            rejected.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(why) => {
                            std::fs::create_dir_all(keep).unwrap();
                            let kept = keep.join(format!("{}-{m}", sd.name));
                            std::fs::write(&kept, &bytes).unwrap();
                            failures.lock().unwrap().push(format!(
                                "{} mutation {m} (kept as {}): {args:?}: {why}",
                                sd.name,
                                kept.display()
                            ));
                        }
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    let (runs, rejected) = (runs.into_inner(), rejected.into_inner());
    eprintln!(
        "mutation suite: {} files, {runs} runs under a {} GiB cap, {rejected} rejected with one \
         error line, {} failures",
        jobs.len(),
        ADDRESS_SPACE_KB >> 20,
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Mutations must reach past the first check: a good share of runs still succeed.
    assert!(rejected < runs, "every mutated file was rejected");
}
