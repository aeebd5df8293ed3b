"""The plain vecindex API: ``builder_factory`` → ``Builder`` → ``Index``, numpy or torch in and out."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

from . import _native
from ._convert import as_ids, as_matrix, as_top_k, config_value

PathLike = Union[str, "os.PathLike[str]"]


def _settings(config: Dict[str, Any]) -> list:
    """``key=value`` settings for the engine; ``None`` means "not given"."""
    return [(k, config_value(v)) for k, v in config.items() if v is not None]


class Index:
    """An open index: ``query``, ``save``, query-time parameters. Also a context manager
    (``close()`` on exit: a temporary Milvus collection is dropped then).

    ``query`` returns what it was given: torch tensors for a torch query, numpy arrays otherwise.
    Queries from several threads run in parallel (the GIL is released)."""

    __slots__ = ("_native", "_backend")

    def __init__(self, native: _native.Index, backend: str) -> None:
        self._native = native
        self._backend = backend

    def query(self, queries: Any, top_k: int) -> Tuple[Any, Any]:
        """The ``top_k`` best items of each query row, best first: ``(ids, distances)`` of shape
        ``(n, top_k)`` (int64, float32). Empty slots hold id -1 and +inf (distances) or -inf
        (similarities)."""
        ids, distances, was_torch = self._query_arrays(queries, top_k)
        if was_torch:
            import torch

            return torch.from_numpy(ids), torch.from_numpy(distances)
        return ids, distances

    def _query_arrays(self, queries: Any, top_k: int) -> Tuple[np.ndarray, np.ndarray, bool]:
        """``(ids, distances, was_torch)``: the numpy result, and whether torch came in."""
        q, was_torch = as_matrix(queries, "queries")
        ids, distances = self._native.query(q, as_top_k(top_k))
        return ids, distances, was_torch

    def save(self, path: PathLike) -> None:
        """Writes the index atomically: a faiss or annoy file (+ ``.vecindex.json`` sidecar for
        annoy), or a Milvus handle file (the collection is then kept)."""
        self._native.save(os.fspath(path))

    def set_param(self, key: str, value: Any) -> None:
        """Changes a query-time parameter: ``efSearch`` (faiss HNSW), ``nprobe`` (IVF),
        ``searchk`` (annoy), ``ef`` (Milvus HNSW)."""
        self._native.set_param(key, config_value(value))

    def set_params(self, **params: Any) -> None:
        """``set_param`` for each keyword (``None`` values are skipped)."""
        for key, value in params.items():
            if value is not None:
                self.set_param(key, value)

    @property
    def backend(self) -> str:
        return self._backend

    @property
    def metric(self) -> str:
        """The metric's name: what the distances mean."""
        return self._native.metric

    @property
    def higher_is_better(self) -> bool:
        """True for similarities (IP, COSINE, dot), False for distances."""
        return self._native.higher_is_better

    @property
    def dim(self) -> int:
        return self._native.dim

    @property
    def info(self) -> Dict[str, Any]:
        """Format, index type, metric, sizes and parameters."""
        return json.loads(self._native.info_json())

    @property
    def closed(self) -> bool:
        return self._native.closed

    def __len__(self) -> int:
        return len(self._native)

    def close(self) -> None:
        """Releases the index; later calls raise ValueError. Closing twice is harmless."""
        self._native.close()

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return f"<vecindex.Index ({self._backend}) closed>"
        i = self.info
        return f"<vecindex.Index {i['backend']} {i['index_type']} metric={self.metric} n={i['n']} d={i['dim']}>"


class Builder:
    """Makes indexes of one backend with one configuration (validated here: unknown keys,
    values and backends raise at once, with the valid choices in the message)."""

    __slots__ = ("_native", "_config")

    def __init__(self, backend: str, **config: Any) -> None:
        self._config = dict(config)
        self._native = _native.Builder(backend, _settings(config))

    @property
    def backend(self) -> str:
        return self._native.backend

    @property
    def config(self) -> Dict[str, Any]:
        return dict(self._config)

    def from_embeddings(self, embeddings: Any, ids: Any = None, progress: Any = None) -> Index:
        """Builds an index over the rows of ``embeddings`` (n, d); row i gets id i, or ``ids[i]``
        (64-bit, unique, not -1). The GIL is released; Ctrl-C stops the build.

        ``progress``: ``True`` prints the build's stages on stderr, or a callable
        ``progress(stage, done, total)`` is called at each checkpoint (an exception it raises
        stops the build and propagates)."""
        x, _ = as_matrix(embeddings, "embeddings")
        id_arr: Optional[np.ndarray] = None if ids is None else as_ids(ids, x.shape[0])
        if progress is True:
            progress = _print_progress
        elif progress is False:
            progress = None
        elif progress is not None and not callable(progress):
            raise TypeError("progress must be True, False, None or a callable(stage, done, total)")
        return Index(self._native.build(x, id_arr, progress), self.backend)

    def from_index_file(self, path: PathLike) -> Index:
        """Opens a saved index: a faiss file (also from ``faiss.write_index``), an annoy file
        (also from ``AnnoyIndex.save``; give ``d`` and ``metric`` when it has no sidecar), or a
        Milvus handle file."""
        return Index(self._native.load(os.fspath(path)), self.backend)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._config.items())
        return f"vecindex.builder_factory({self.backend!r}{', ' if args else ''}{args})"


def _print_progress(stage: str, done: int, total: int) -> None:
    pct = 100.0 * done / total if total else 100.0
    end = "\n" if done >= total else ""
    sys.stderr.write(f"\rvecindex: {stage} {done}/{total} ({pct:.0f}%)  {end}")
    sys.stderr.flush()


def builder_factory(backend: str, **config: Any) -> Builder:
    """The builder for ``backend`` ("faiss", "annoy", "milvus") with ``config`` in the original
    Python names (``index_type``, ``metric``, ``efSearch``, ``n_trees``, ...; case and underscores
    do not matter). An unknown backend raises NotImplementedError, like torch_rechub's."""
    return Builder(backend, **config)


def load(path: PathLike, backend: Optional[str] = None, **config: Any) -> Index:
    """Opens a saved index; ``backend`` is recognised from the file when not given."""
    if backend is None:
        backend = inspect(path)["backend"]
    return Builder(backend, **config).from_index_file(path)


def inspect(path: PathLike) -> Dict[str, Any]:
    """Describes a saved index (format, type, metric, sizes, parameters) without querying it."""
    return json.loads(_native.inspect_json(os.fspath(path)))


def exact_knn(items: Any, queries: Any, top_k: int, metric: str = "L2") -> Tuple[Any, Any]:
    """Exact top-k by brute force (``metric`` "L2" squared distance or "IP"): the truth that
    approximate results are judged against. Returns torch tensors for torch queries."""
    x, _ = as_matrix(items, "items")
    q, was_torch = as_matrix(queries, "queries")
    ids, distances = _native.exact_knn(x, q, metric, as_top_k(top_k))
    if was_torch:
        import torch

        return torch.from_numpy(ids), torch.from_numpy(distances)
    return ids, distances


def available_backends() -> list:
    """The backends this build has ("faiss", "annoy", and "milvus" unless built without it)."""
    return list(_native.available_backends())
