"""Side-by-side benchmark of the Python package (run by `scripts/bench.sh python`).

1. Overhead of the Python layer: on one index, `Index.query` from Python vs the engine's own
   query timed inside Rust (`_bench_query`), batch (1,000 queries, k=10) and single queries.
2. End to end against what users run today: `vecindex.serving` vs `torch_rechub.serving` in the
   same process on the same torch tensors, build + query as in the seed's examples, for every
   backend and index type, at one thread count (the parent runs this file once per count with
   RAYON_NUM_THREADS / OMP_NUM_THREADS set, and passes --threads).

Prints markdown tables; ratios > 1 mean vecindex is faster.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

import vecindex
from vecindex import serving


def load_sets(shared: Path, quick: bool):
    rng = np.random.default_rng(42)
    n = 20_000 if quick else 100_000
    sets = {f"gaussian {n // 1000}k x 128": (rng.standard_normal((n, 128), dtype=np.float32),
                                             rng.standard_normal((1000, 128), dtype=np.float32))}
    real = shared / "base.npy"
    if real.exists():
        sets["real 20k x 384"] = (np.load(real).astype(np.float32), np.load(shared / "queries.npy").astype(np.float32))
    else:
        print(f"NOTICE: real-data set not found at {shared}; only synthetic data", file=sys.stderr)
    return sets


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def overhead(sets, repeat):
    print("\n### Python layer vs the engine's own call (same index, same process)\n")
    print("| data | index | batch: engine q/s | batch: Python q/s | ratio | single: engine µs | single: Python µs | added µs |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (items, queries) in sets.items():
        for label, cfg in (("Flat L2", dict(index_type="Flat")), ("HNSW32 L2", dict(index_type="HNSW", m=32))):
            with vecindex.builder_factory("faiss", **cfg).from_embeddings(items) as ix:
                q = queries[:1000]
                nat = ix._native
                ix.query(q, 10)
                engine = nat._bench_query(q, 10, repeat, False)
                python = best(lambda: ix.query(q, 10), repeat)
                rows = [q[i : i + 1] for i in range(len(q))]
                engine_1 = nat._bench_query(q, 10, repeat, True) / len(q)

                def singles():
                    for r in rows:
                        ix.query(r, 10)

                python_1 = best(singles, repeat) / len(q)
                print(
                    f"| {name} | {label} | {len(q) / engine:,.0f} | {len(q) / python:,.0f} | {engine / python:.3f} "
                    f"| {engine_1 * 1e6:.1f} | {python_1 * 1e6:.1f} | {(python_1 - engine_1) * 1e6:.1f} |"
                )


def e2e_configs(threads, milvus_uri):
    t = threads
    cfgs = [
        ("faiss", "Flat L2", dict(index_type="Flat", metric="L2")),
        ("faiss", "Flat IP", dict(index_type="Flat", metric="IP")),
        ("faiss", "HNSW32 L2", dict(index_type="HNSW", metric="L2", m=32)),
        ("faiss", "IVF100 nprobe=8 L2", dict(index_type="IVF", metric="L2", nlists=100, nprobe=8)),
        ("faiss", "IVF100 nprobe=8 IP", dict(index_type="IVF", metric="IP", nlists=100, nprobe=8)),
        ("annoy", "angular 10 trees", dict(metric="angular", n_trees=10, threads=t)),
        ("annoy", "euclidean 10 trees", dict(metric="euclidean", n_trees=10, threads=t)),
        ("annoy", "dot 10 trees", dict(metric="dot", n_trees=10, threads=t)),
    ]
    if milvus_uri:
        host, port = milvus_uri.split("//")[1].rsplit(":", 1)
        conn = dict(host=host, port=int(port))
        cfgs += [
            ("milvus", "FLAT L2", dict(index_type="FLAT", metric="L2", **conn)),
            ("milvus", "HNSW COSINE ef=64", dict(index_type="HNSW", metric="COSINE", ef=64, **conn)),
            ("milvus", "IVF_FLAT IP nprobe=16", dict(index_type="IVF_FLAT", metric="IP", nprobe=16, **conn)),
        ]
    return cfgs


def run_e2e(factory, model, cfg, items, queries):
    t0 = time.perf_counter()
    with factory(model, **cfg).from_embeddings(items) as ix:
        t1 = time.perf_counter()
        ids, _ = ix.query(queries, 10)
        t2 = time.perf_counter()
    return t1 - t0, t2 - t1, ids.numpy()


def exact_kind(metric):
    """The exact search that judges an index of ``metric``: "L2", "IP" or "cos"."""
    return {"L2": "L2", "euclidean": "L2", "IP": "IP", "dot": "IP"}.get(metric, "cos")


def exact_truth(items, queries, kind):
    if kind == "cos":
        items = items / np.maximum(np.linalg.norm(items, axis=1, keepdims=True), 1e-30)
        queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-30)
    ids, _ = vecindex.exact_knn(items.astype(np.float32), queries.astype(np.float32), 10, "L2" if kind == "L2" else "IP")
    return ids


def recall(got, truth):
    return float(np.mean([len(set(g) & set(t)) / len(t) for g, t in zip(got, truth)]))


def drop_leaked(uri, prefix):
    import json
    import urllib.request

    with urllib.request.urlopen(uri.rstrip("/") + "/v1/vector/collections", timeout=10) as r:
        names = json.loads(r.read())["data"]
    for name in names:
        if name.startswith(prefix):
            req = urllib.request.Request(
                uri.rstrip("/") + "/v1/vector/collections/drop",
                data=json.dumps({"collectionName": name}).encode(),
                headers={"Content-Type": "application/json"}, method="POST")
            urllib.request.urlopen(req, timeout=30).read()


def end_to_end(sets, threads, milvus_uri, repeat):
    import torch_rechub.serving as original

    print(f"\n### vecindex.serving vs torch_rechub.serving, {threads} thread(s)\n")
    print("| data | backend | index | build s (theirs / ours) | build ratio | query s (theirs / ours) | query ratio | end-to-end ratio | recall@10 (theirs / ours) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, (items_np, queries_np) in sets.items():
        items, queries = torch.from_numpy(items_np), torch.from_numpy(queries_np)
        truths = {}
        for model, label, cfg in e2e_configs(threads, milvus_uri):
            kind = exact_kind(cfg["metric"])
            if kind not in truths:
                truths[kind] = exact_truth(items_np, queries_np, kind)
            if model in ("annoy", "milvus"):
                cfg = dict(cfg, d=items.shape[1])
            runs = {"theirs": [], "ours": []}
            failed = None
            for _ in range(repeat):
                for side, factory in (("theirs", original.builder_factory), ("ours", serving.builder_factory)):
                    if side == "theirs" and failed:
                        continue
                    gc.collect()
                    try:
                        runs[side].append(run_e2e(factory, model, cfg, items, queries))
                    except Exception as e:  # the original may fail where we do not
                        if side == "ours":
                            raise
                        failed = f"{type(e).__name__}: {str(e).splitlines()[0][:90]}"
                        if model == "milvus":
                            drop_leaked(milvus_uri, "rechub_")  # it leaks a failed build's collection
            ob, oq = min(r[0] for r in runs["ours"]), min(r[1] for r in runs["ours"])
            if failed:
                ro = recall(runs["ours"][0][2], truths[kind])
                print(f"| {name} | {model} | {label} | fails / {ob:.2f} | — | — / {oq:.3f} | — | torch-rechub fails: {failed} "
                      f"| — / {ro:.3f} |", flush=True)
                continue
            tb, tq = min(r[0] for r in runs["theirs"]), min(r[1] for r in runs["theirs"])
            rt, ro = (recall(runs[side][0][2], truths[kind]) for side in ("theirs", "ours"))
            print(
                f"| {name} | {model} | {label} | {tb:.2f} / {ob:.2f} | {tb / ob:.2f} | {tq:.3f} / {oq:.3f} | "
                f"{tq / oq:.2f} | {(tb + tq) / (ob + oq):.2f} | {rt:.3f} / {ro:.3f} |",
                flush=True,
            )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--shared", type=Path, required=True)
    ap.add_argument("--quick", action="store_true", help="20k Gaussian items instead of 100k")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-overhead", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated backends for the end-to-end table")
    args = ap.parse_args()
    import faiss

    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    sets = load_sets(args.shared, args.quick)
    print(f"\nthreads={args.threads} load average {os.getloadavg()[0]:.2f}, vecindex {vecindex.__version__}, "
          f"faiss {faiss.__version__}, torch {torch.__version__}")
    if not args.skip_overhead:
        overhead(sets, args.repeat)
    milvus_uri = os.environ.get("VECINDEX_MILVUS_URI")
    if args.only:
        keep = set(args.only.split(","))
        global e2e_configs
        full = e2e_configs
        e2e_configs = lambda t, u: [c for c in full(t, u) if c[0] in keep]  # noqa: E731
    end_to_end(sets, args.threads, milvus_uri, args.repeat)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
