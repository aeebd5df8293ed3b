"""vecindex: one Builder → Indexer API over faiss- and annoy-compatible indexes (native Rust, files
byte-compatible with faiss 1.15 and annoy 1.17) and Milvus.

    import vecindex
    builder = vecindex.builder_factory("faiss", index_type="HNSW", metric="IP")
    with builder.from_embeddings(items) as index:        # numpy array or torch tensor (n, d)
        ids, distances = index.query(users, top_k=10)    # same kind out as in
        index.save("items.index")                        # faiss.read_index reads it

``vecindex.serving`` is a drop-in for ``torch_rechub.serving`` (torch tensors out);
``vecindex.patch_torch_rechub()`` makes existing ``torch_rechub.serving`` imports use it.
"""

from ._api import Builder, Index, available_backends, builder_factory, exact_knn, inspect, load
from ._native import __version__
from ._patch import patch_torch_rechub
from .metrics import TopkMetrics, match_evaluation, topk_metrics

__all__ = [
    "Builder",
    "Index",
    "TopkMetrics",
    "__version__",
    "available_backends",
    "builder_factory",
    "exact_knn",
    "inspect",
    "load",
    "match_evaluation",
    "patch_torch_rechub",
    "topk_metrics",
]
