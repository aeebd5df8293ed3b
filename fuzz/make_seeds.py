"""Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/ (seed-* files; inputs
that fuzzing runs add keep their own names). Seeds come from the repository's test fixtures
(faiss and annoy files written by the real libraries) and from small files made here.

    python fuzz/make_seeds.py          # needs numpy only
"""

import json
import shutil
import struct
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "crates" / "vecindex" / "tests" / "fixtures"
CORPUS = ROOT / "fuzz" / "corpus"
METRICS = ["angular", "euclidean", "manhattan", "dot", "hamming"]


def target(name):
    d = CORPUS / name
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("seed-*"):
        old.unlink()
    return d


def npy_bytes(a):
    import io

    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


def main():
    d = target("faiss_file")
    for f in sorted((FIX / "faiss").glob("*.index")):
        shutil.copy(f, d / f"seed-{f.name}")
    # The quantized kinds (IxSQ, IHNs, IxRF), the small files only.
    for f in sorted((FIX / "faiss_quantized").glob("*.index")):
        if f.stat().st_size <= 30_000:
            shutil.copy(f, d / f"seed-q-{f.name}")

    d = target("annoy_file")
    for f in sorted((FIX / "annoy").glob("*.ann")):
        meta = json.loads(f.with_suffix(".json").read_text())
        if meta["f"] <= 64:
            head = bytes([METRICS.index(meta["metric"]), meta["f"] - 1])
            (d / f"seed-{f.stem}").write_bytes(head + f.read_bytes())

    d = target("annoy_sidecar")
    side = {"format": "vecindex-annoy", "version": 1, "d": 4, "metric": "angular", "n_items": 50, "n_trees": 2}
    (d / "seed-v1").write_text(json.dumps(side))
    (d / "seed-ids").write_text(json.dumps(dict(side, ids=list(range(100, 150)))))
    (d / "seed-v2").write_text(json.dumps(dict(side, version=2, forest_bytes=4096, forest_digest="0" * 16)))

    d = target("npy")
    rng = np.random.default_rng(0)
    arrays = {
        "f32": rng.standard_normal((5, 3)).astype(np.float32),
        "f64": rng.standard_normal((4, 2)),
        "f16": rng.standard_normal((3, 4)).astype(np.float16),
        "be": rng.standard_normal((2, 3)).astype(">f4"),
        "fortran": np.asfortranarray(rng.standard_normal((3, 5)).astype(np.float32)),
        "ids": np.arange(7, dtype=np.int64),
        "ids32": np.arange(5, dtype=np.int32),
        "empty": np.zeros((0, 4), np.float32),
    }
    for name, a in arrays.items():
        (d / f"seed-{name}").write_bytes(npy_bytes(a))

    d = target("safetensors")
    data = rng.standard_normal((3, 4)).astype(np.float32).tobytes()
    header = json.dumps({"emb": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, len(data)]}}).encode()
    (d / "seed-f32").write_bytes(struct.pack("<Q", len(header)) + header + data)
    two = json.dumps(
        {
            "a": {"dtype": "F32", "shape": [1, 4], "data_offsets": [0, 16]},
            "b": {"dtype": "F16", "shape": [2, 2], "data_offsets": [16, 24]},
        }
    ).encode()
    (d / "seed-two").write_bytes(struct.pack("<Q", len(two)) + two + data[:24])

    d = target("fvecs")
    rows = rng.standard_normal((3, 4)).astype(np.float32)
    (d / "seed-3x4").write_bytes(b"".join(struct.pack("<i", 4) + r.tobytes() for r in rows))

    d = target("milvus_handle")
    handle = {
        "format": "vecindex-milvus",
        "version": 1,
        "uri": "http://127.0.0.1:9",
        "collection": "items",
        "d": 8,
        "metric": "L2",
        "index_type": "HNSW",
        "n_items": 100,
        "custom_ids": False,
        "primary_field": "id",
        "vector_field": "embedding",
        "build_params": {"M": "16", "efConstruction": "200"},
        "ef": 64,
        "consistency": "Bounded",
    }
    (d / "seed-hnsw").write_text(json.dumps(handle, indent=2))
    (d / "seed-ivf").write_text(
        json.dumps(dict(handle, index_type="IVF_FLAT", build_params={"nlist": "16"}, ef=None, nprobe=8))
    )

    d = target("config")
    for i, text in enumerate(
        [
            "index_type=HNSW\nm=16\nefSearch=64",
            "index_type=IVF\nnlists=100\nnprobe=8\nmetric=IP",
            "metric=angular\nn_trees=10\nsearchk=-1\nthreads=2",
            "index_type=IVF_FLAT\nnlist=128\nuri=http://127.0.0.1:19530\ncollection=x\noverwrite=true",
            "efSerch=4\nd=0\nmetric=cosine",
            "factory=HNSW32,SQ8,RFlat\nk_factor=2\nmetric=IP",
            "factory=IVF1k,SQfp16\nnprobe=4",
            "index_type=HNSW\nstorage=SQ8\nrefine=Flat\nfactory=HNSW16_SQ8",
            "factory=IVF1k,PQ32x8np,RFlat\nnprobe=4\nk_factor=2",
            "index_type=IVF\nstorage=PQ\npq_m=8\npq_nbits=6\nmetric=IP",
        ]
    ):
        (d / f"seed-{i}").write_text(text)


if __name__ == "__main__":
    main()
