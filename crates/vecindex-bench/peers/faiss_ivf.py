"""faiss-cpu side of `peer-bench ivf`: `IVF<nlist>,<storage>` (Flat, SQ8, SQfp16, PQ<m>np) with the same
data, lists, probes and thread count. Prints JSON: train_s, add_s, and per nprobe the best batch time; writes the ids of
each nprobe's batch to OUT_PREFIX<nprobe>.npy for the recall check.
"""
import argparse
import json
import time

import faiss
import numpy as np

from rss import reset_peak, status


def index_bytes(index):
    """faiss's layout: codes and ids of the stored vectors, centroids, codec parameters."""
    ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
    total = ivf.ntotal * (ivf.code_size + 8) + ivf.nlist * ivf.d * 4
    if isinstance(ivf, faiss.IndexIVFPQ):
        total += (ivf.pq.centroids.size() + ivf.precomputed_table.size()) * 4
    elif isinstance(ivf, faiss.IndexIVFScalarQuantizer):
        total += ivf.sq.trained.size() * 4
    return total


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--metric", choices=["L2", "IP"], required=True)
    p.add_argument("--nlist", type=int, required=True)
    p.add_argument("--nprobes", required=True)
    p.add_argument("--storage", default="Flat")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out-prefix", required=True)
    a = p.parse_args()
    faiss.omp_set_num_threads(a.threads)
    xb = np.load(a.base)
    xq = np.load(a.queries)
    metric = faiss.METRIC_L2 if a.metric == "L2" else faiss.METRIC_INNER_PRODUCT
    reset_peak()
    before = status("VmRSS")
    index = faiss.index_factory(xb.shape[1], f"IVF{a.nlist},{a.storage}", metric)
    t = time.perf_counter()
    index.train(xb)
    train_s = time.perf_counter() - t
    t = time.perf_counter()
    index.add(xb)
    add_s = time.perf_counter() - t
    build_mb = (status("VmHWM") - before) / 1e6
    out = {"train_s": train_s, "add_s": add_s, "build_mb": build_mb, "search": {},
           "bytes_per_vector": index_bytes(index) / max(index.ntotal, 1)}
    for nprobe in [int(x) for x in a.nprobes.split(",")]:
        index.nprobe = nprobe
        index.search(xq[:32], a.k)
        best = float("inf")
        for _ in range(a.repeat):
            t = time.perf_counter()
            _, I = index.search(xq, a.k)
            best = min(best, time.perf_counter() - t)
        np.save(f"{a.out_prefix}{nprobe}.npy", I.astype(np.int64))
        out["search"][str(nprobe)] = best
    print(json.dumps(out))


main()
