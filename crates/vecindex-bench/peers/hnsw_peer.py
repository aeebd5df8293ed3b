"""faiss-cpu / hnswlib side of `peer-bench hnsw`: same data, factory string (faiss; hnswlib
takes M from it and always stores flat vectors), efConstruction, efSearch values and thread
count. Prints JSON: build_s and per efSearch the best batch time and the best
single-query rate; writes each batch's ids to OUT_PREFIX<ef>.npy for the recall check.
"""
import argparse
import json
import time

import numpy as np
from rss import reset_peak, status


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--lib", choices=["faiss", "hnswlib"], required=True)
    p.add_argument("--base", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--metric", choices=["L2", "IP"], default="L2")
    p.add_argument("--factory", default="HNSW32,Flat")
    p.add_argument("--efc", type=int, default=40)
    p.add_argument("--efs", required=True)
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--single", type=int, default=200)
    p.add_argument("--out-prefix", required=True)
    p.add_argument("--k-factor", type=float, default=1.0)
    a = p.parse_args()
    xb = np.load(a.base)
    xq = np.load(a.queries)
    n, d = xb.shape
    m = int(a.factory.split(",")[0][len("HNSW"):] or 32)
    if a.lib == "faiss":
        import faiss

        reset_peak()
        before = status("VmRSS")
        faiss.omp_set_num_threads(a.threads)
        t = time.perf_counter()
        index = faiss.index_factory(d, a.factory, faiss.METRIC_L2 if a.metric == "L2" else faiss.METRIC_INNER_PRODUCT)
        refined = isinstance(index, faiss.IndexRefine)
        hnsw = faiss.downcast_index(index.base_index) if refined else index
        hnsw.hnsw.efConstruction = a.efc
        index.train(xb)
        index.add(xb)
        build_s = time.perf_counter() - t
        if refined:
            index.k_factor = a.k_factor

        def set_ef(ef):
            hnsw.hnsw.efSearch = ef

        def search(q):
            return index.search(q, a.k)[1]
    else:
        import hnswlib

        reset_peak()
        before = status("VmRSS")
        t = time.perf_counter()
        index = hnswlib.Index(space="l2" if a.metric == "L2" else "ip", dim=d)
        index.init_index(max_elements=n, ef_construction=a.efc, M=m, random_seed=100)
        index.set_num_threads(a.threads)
        index.add_items(xb, np.arange(n))
        build_s = time.perf_counter() - t

        def set_ef(ef):
            index.set_ef(max(ef, a.k))

        def search(q):
            return index.knn_query(q, k=a.k)[0].astype(np.int64)
    out = {"build_s": build_s, "build_peak_delta_bytes": max(0, status("VmHWM") - before), "search": {}}
    for ef in [int(x) for x in a.efs.split(",")]:
        set_ef(ef)
        search(xq[:32])
        best = float("inf")
        for _ in range(a.repeat):
            t = time.perf_counter()
            ids = search(xq)
            best = min(best, time.perf_counter() - t)
        ns = min(a.single, len(xq))
        single = 0.0
        for _ in range(a.repeat):
            t = time.perf_counter()
            for i in range(ns):
                search(xq[i : i + 1])
            single = max(single, ns / (time.perf_counter() - t))
        np.save(f"{a.out_prefix}{ef}.npy", np.asarray(ids, dtype=np.int64))
        out["search"][str(ef)] = {"batch_s": best, "single_qps": single}
    print(json.dumps(out))


main()
