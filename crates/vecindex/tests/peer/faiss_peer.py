"""faiss-cpu side of the cross-compatibility tests (run by the Rust tests from the test venv).

  search INDEX QUERIES.npy K OUT.npz [EF]   faiss.read_index + search (HNSW, also inside an id map or a
                                            refine wrapper: efSearch EF); writes ids, distances
  factory STRING METRIC BASE.npy OUT        faiss.index_factory, train and add BASE, write
  build  KIND METRIC BASE.npy [IDS.npy] OUT  KIND = flat | hnswM | ivfN (IVF with N lists, trained on BASE,
                                            nprobe 4); writes a faiss index (IDMap / add_with_ids if ids)
"""
import sys

import faiss
import numpy as np

faiss.omp_set_num_threads(1)


def main():
    cmd = sys.argv[1]
    if cmd == "search":
        index = faiss.read_index(sys.argv[2])
        if len(sys.argv) > 6:
            inner = faiss.downcast_index(index.index) if isinstance(index, (faiss.IndexIDMap, faiss.IndexIDMap2)) else index
            if isinstance(inner, faiss.IndexRefine):
                inner = faiss.downcast_index(inner.base_index)
            inner.hnsw.efSearch = int(sys.argv[6])
        q = np.load(sys.argv[3])
        k = int(sys.argv[4])
        D, I = index.search(q, k)
        np.savez(sys.argv[5], ids=I.astype(np.int64), distances=D.astype(np.float32))
        print(index.ntotal, index.d, index.metric_type)
    elif cmd == "factory":
        string, metric, base, out = sys.argv[2], sys.argv[3], np.load(sys.argv[4]), sys.argv[5]
        m = faiss.METRIC_L2 if metric == "L2" else faiss.METRIC_INNER_PRODUCT
        index = faiss.index_factory(base.shape[1], string, m)
        index.train(base)
        index.add(base)
        faiss.write_index(index, out)
    elif cmd == "build":
        kind, metric, base = sys.argv[2], sys.argv[3], np.load(sys.argv[4])
        ids = np.load(sys.argv[5]) if len(sys.argv) == 7 else None
        out = sys.argv[-1]
        m = faiss.METRIC_L2 if metric == "L2" else faiss.METRIC_INNER_PRODUCT
        if kind == "flat":
            index = faiss.IndexFlat(base.shape[1], m)
            if ids is not None:
                index = faiss.IndexIDMap(index)
        elif kind.startswith("hnsw"):
            index = faiss.IndexHNSWFlat(base.shape[1], int(kind[4:]), m)
            if ids is not None:
                index = faiss.IndexIDMap2(index)
        elif kind.startswith("ivf"):
            index = faiss.index_factory(base.shape[1], f"IVF{int(kind[3:])},Flat", m)
            index.train(base)
            index.nprobe = 4
        else:
            raise SystemExit(f"unknown kind {kind}")
        if ids is not None:
            index.add_with_ids(base, ids)
        else:
            index.add(base)
        faiss.write_index(index, out)
    else:
        raise SystemExit(f"unknown command {cmd}")


main()
