"""annoy side of the cross-compatibility tests (run by the Rust tests from the test venv).

  search INDEX F METRIC QUERIES.npy K SEARCH_K OUT.npz   AnnoyIndex(F, METRIC).load + get_nns_by_vector
  build  F METRIC BASE.npy N_TREES SEED OUT               add_item(i, row), set_seed, build(n_jobs=1), save
"""
import sys

import numpy as np
from annoy import AnnoyIndex


def main():
    cmd = sys.argv[1]
    if cmd == "search":
        path, f, metric, qpath, k, search_k, out = sys.argv[2:9]
        index = AnnoyIndex(int(f), metric)
        index.load(path)
        q = np.load(qpath)
        k = int(k)
        ids = np.full((len(q), k), -1, dtype=np.int64)
        dist = np.full((len(q), k), np.nan, dtype=np.float32)
        for i, row in enumerate(q):
            got, d = index.get_nns_by_vector(row.tolist(), k, search_k=int(search_k), include_distances=True)
            ids[i, : len(got)] = got
            dist[i, : len(d)] = d
        np.savez(out, ids=ids, distances=dist)
        print(index.get_n_items(), index.get_n_trees())
    elif cmd == "build":
        f, metric, base, n_trees, seed, out = sys.argv[2:8]
        x = np.load(base)
        index = AnnoyIndex(int(f), metric)
        for i, row in enumerate(x):
            index.add_item(i, row.tolist())
        index.set_seed(int(seed))
        index.build(int(n_trees), n_jobs=1)
        index.save(out)
    else:
        raise SystemExit(f"unknown command {cmd}")


main()
