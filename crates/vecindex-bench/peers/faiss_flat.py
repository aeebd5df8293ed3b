"""faiss-cpu side of `peer-bench flat`: same data, same thread count, same timing rules.

Prints one JSON object: build_s, batch_s (best of --repeat), single_qps (best of --repeat over
--single one-query calls), peak_delta_bytes (VmHWM after the runs minus VmRSS before the build),
and writes the batch result ids to --out-ids (.npy) for the agreement check.
"""
import argparse
import json
import time

import faiss
import numpy as np
from rss import reset_peak, status


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--metric", choices=["L2", "IP"], required=True)
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--single", type=int, default=200)
    p.add_argument("--out-ids", required=True)
    a = p.parse_args()
    faiss.omp_set_num_threads(a.threads)
    xb = np.load(a.base)
    xq = np.load(a.queries)
    reset_peak()
    before = status("VmRSS")
    t = time.perf_counter()
    index = faiss.IndexFlat(xb.shape[1], faiss.METRIC_L2 if a.metric == "L2" else faiss.METRIC_INNER_PRODUCT)
    index.add(xb)
    build_s = time.perf_counter() - t
    index.search(xq[:64], a.k)  # warm-up
    batch = []
    for _ in range(a.repeat):
        t = time.perf_counter()
        _, I = index.search(xq, a.k)
        batch.append(time.perf_counter() - t)
    single = []
    ns = min(a.single, xq.shape[0])
    for _ in range(a.repeat):
        t = time.perf_counter()
        for i in range(ns):
            index.search(xq[i : i + 1], a.k)
        single.append(ns / (time.perf_counter() - t))
    peak = status("VmHWM")
    np.save(a.out_ids, I.astype(np.int64))
    print(json.dumps({
        "build_s": build_s,
        "batch_s": min(batch),
        "single_qps": max(single),
        "peak_delta_bytes": max(0, peak - before),
        "faiss_version": faiss.__version__,
    }))


main()
