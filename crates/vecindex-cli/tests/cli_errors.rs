//! Errors of the `vecindex` binary: one line and exit 1 for bad input, an output that is an
//! input refused, `-k` checked, the smaller defects, and signals during a save (Linux).

mod common;

use common::*;
#[cfg(target_os = "linux")]
use std::path::PathBuf;
#[cfg(target_os = "linux")]
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
    use std::os::unix::process::{CommandExt, ExitStatusExt};
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
    let interrupt_save = |signal: libc::c_int| -> std::process::ExitStatus {
        let mut seen = Vec::new();
        for _ in 0..10 {
            let mut cmd = bin();
            cmd.args([
                "build",
                "faiss",
                "--input",
                input.to_str().unwrap(),
                "--output",
            ])
            .arg(&out)
            .stderr(std::process::Stdio::null());
            // The CLI keeps a signal its parent ignores ignored (nohup, background jobs), as it
            // should; the test wants the signals live whatever ran it.
            // SAFETY: only async-signal-safe calls (signal(2)) between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                        libc::signal(s, libc::SIG_DFL);
                    }
                    Ok(())
                });
            }
            let mut child = cmd.spawn().unwrap();
            loop {
                if !temps().is_empty() {
                    // Sent from here, not by a `kill` process: no fork between seeing the temp
                    // file and the signal.
                    // SAFETY: kill(2) with the pid of our own child, which has not been reaped.
                    let sent = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
                    assert_eq!(sent, 0);
                    let status = child.wait().unwrap();
                    if status.success() {
                        seen.push("the save finished before the signal landed");
                        break;
                    }
                    return status;
                }
                if let Some(status) = child.try_wait().unwrap() {
                    seen.push(if status.success() {
                        "finished before we saw the save"
                    } else {
                        "the build failed"
                    });
                    break;
                }
                std::thread::yield_now();
            }
            save_small();
        }
        panic!("never interrupted the save in progress: {seen:?}");
    };
    for (signal, number) in [(libc::SIGINT, 2), (libc::SIGTERM, 15), (libc::SIGHUP, 1)] {
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
    let status = interrupt_save(libc::SIGKILL);
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
