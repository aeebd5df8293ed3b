"""pymilvus side of `peer-bench milvus`: the same flow vecindex runs, on the same server,
data and collection parameters — create (INT64 pk + FLOAT_VECTOR), insert in batches of at most
32 MiB, flush, create_index, load — then batch searches of all queries (split at 16384 per call
as the server requires), best of --repeat. Prints JSON with the phase times; writes ids to OUT.
The collection is dropped at the end.
"""
import argparse
import json
import time
import uuid

import numpy as np
from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, connections, utility


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--threads", type=int, default=1)  # unused: the server does the work
    p.add_argument("--uri", required=True)
    p.add_argument("--index-type", required=True)
    p.add_argument("--metric", required=True)
    p.add_argument("--build-params", default="{}")
    p.add_argument("--search-params", default="{}")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    xb = np.load(a.base)
    xq = np.load(a.queries)
    n, d = xb.shape
    host, port = a.uri.split("://")[-1].rsplit(":", 1)
    connections.connect("bench", host=host, port=port)
    name = f"pymilvus_bench_{uuid.uuid4().hex}"
    schema = CollectionSchema(
        [
            FieldSchema("id", DataType.INT64, is_primary=True, auto_id=False),
            FieldSchema("embedding", DataType.FLOAT_VECTOR, dim=d),
        ]
    )
    out = {}
    coll = Collection(name, schema, using="bench", consistency_level="Bounded")
    try:
        t0 = time.perf_counter()
        rows = max(1, (32 << 20) // (4 * d + 8))
        for s in range(0, n, rows):
            e = min(n, s + rows)
            coll.insert([np.arange(s, e, dtype=np.int64), xb[s:e]])
        t1 = time.perf_counter()
        coll.flush()
        t2 = time.perf_counter()
        coll.create_index(
            "embedding",
            {
                "index_type": a.index_type,
                "metric_type": a.metric,
                "params": json.loads(a.build_params),
            },
        )
        coll.load()
        t3 = time.perf_counter()
        out.update(insert_s=t1 - t0, flush_s=t2 - t1, index_load_s=t3 - t2, build_s=t3 - t0)
        param = {"metric_type": a.metric, "params": json.loads(a.search_params)}
        best = float("inf")
        ids = None
        for _ in range(a.repeat):
            t = time.perf_counter()
            got = []
            for s in range(0, len(xq), 16384):
                got.extend(
                    coll.search(
                        xq[s : s + 16384], "embedding", param, limit=a.k,
                        consistency_level="Bounded",
                    )
                )
            best = min(best, time.perf_counter() - t)
            ids = np.full((len(xq), a.k), -1, dtype=np.int64)
            for i, hits in enumerate(got):
                h = list(hits.ids)
                ids[i, : len(h)] = h
        out["search_s"] = best
        np.save(a.out, ids)
    finally:
        utility.drop_collection(name, using="bench")
        connections.disconnect("bench")
    print(json.dumps(out))


main()
