"""annoy side of `peer-bench annoy`: same data, metric, trees, search_k values and build
threads. Prints JSON: build_s (best of --build-repeat), file_size and per search_k the best time to answer all queries
(annoy has no batch call: one get_nns_by_vector per query, as its users and Torch-RecHub do);
writes each run's ids to OUT_PREFIX<search_k>.npy.
"""
import argparse
import json
import os
import tempfile
import time

import numpy as np
from annoy import AnnoyIndex


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--metric", required=True)
    p.add_argument("--n-trees", type=int, required=True)
    p.add_argument("--searchks", required=True)
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--build-repeat", type=int, default=1)
    p.add_argument("--out-prefix", required=True)
    a = p.parse_args()
    xb = np.load(a.base)
    xq = np.load(a.queries)
    index = AnnoyIndex(xb.shape[1], a.metric)
    t = time.perf_counter()
    for i, row in enumerate(xb):
        index.add_item(i, row)
    add_s = time.perf_counter() - t
    build_s = float("inf")
    for r in range(max(1, a.build_repeat)):
        if r:
            index.unbuild()
        t = time.perf_counter()
        index.build(a.n_trees, n_jobs=a.threads)
        build_s = min(build_s, time.perf_counter() - t)
    fd, path = tempfile.mkstemp(suffix=".ann")
    os.close(fd)
    index.save(path)
    size = os.path.getsize(path)
    out = {"build_s": build_s, "add_s": add_s, "file_size": size, "search": {}}
    qs = [row.tolist() for row in xq]
    for sk in [int(x) for x in a.searchks.split(",")]:
        best = float("inf")
        for _ in range(a.repeat):
            t = time.perf_counter()
            res = [index.get_nns_by_vector(q, a.k, search_k=sk) for q in qs]
            best = min(best, time.perf_counter() - t)
        ids = np.full((len(qs), a.k), -1, dtype=np.int64)
        for i, r in enumerate(res):
            ids[i, : len(r)] = r
        np.save(f"{a.out_prefix}{sk}.npy", ids)
        out["search"][str(sk)] = best
    os.unlink(path)
    print(json.dumps(out))


main()
