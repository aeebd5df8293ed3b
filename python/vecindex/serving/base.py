"""The abstract Builder/Indexer pair of ``torch_rechub.serving.base``, with the engine-backed
indexer every backend shares."""

from __future__ import annotations

import abc
import os
import typing as ty

from .._api import Index, PathLike

if ty.TYPE_CHECKING:
    import torch

#: Type for a path to a file (``torch_rechub.types.FilePath``).
FilePath = PathLike


class BaseBuilder(abc.ABC):
    """Builds a ``BaseIndexer`` from embeddings or an index file. Both methods return context
    managers: the build or load happens when the ``with`` block is entered, and the index is
    released when it ends."""

    @abc.abstractmethod
    def from_embeddings(self, embeddings: "torch.Tensor") -> ty.ContextManager["BaseIndexer"]:
        """Build a vector index from a 2-D (n, d) tensor or array."""

    @abc.abstractmethod
    def from_index_file(self, index_file: FilePath) -> ty.ContextManager["BaseIndexer"]:
        """Open a vector index saved on disk."""


class BaseIndexer(abc.ABC):
    """Queries and saves an index."""

    @abc.abstractmethod
    def query(self, embeddings: "torch.Tensor", top_k: int) -> ty.Tuple["torch.Tensor", "torch.Tensor"]:
        """``(ids, distances)``: CPU tensors of shape (n, top_k), int64 and float32, best first."""

    @abc.abstractmethod
    def save(self, file_path: FilePath) -> None:
        """Persist the index to ``file_path``."""


class EngineIndexer(BaseIndexer):
    """A ``BaseIndexer`` over a ``vecindex.Index``: torch tensors out, whatever came in."""

    def __init__(self, index: Index) -> None:
        self._index = index

    @property
    def index(self) -> Index:
        """The underlying ``vecindex.Index`` (metric, info, numpy queries)."""
        return self._index

    def query(self, embeddings: ty.Any, top_k: int) -> ty.Tuple["torch.Tensor", "torch.Tensor"]:
        import torch

        ids, distances, _ = self._index._query_arrays(embeddings, top_k)
        return torch.from_numpy(ids), torch.from_numpy(distances)

    def save(self, file_path: FilePath) -> None:
        self._index.save(os.fspath(file_path))

    def set_params(self, **params: ty.Any) -> None:
        """Changes query-time parameters on the open index (``efSearch``, ``nprobe``,
        ``searchk``, ``ef``; ``None`` values are skipped)."""
        self._index.set_params(**params)

    @property
    def metric(self) -> str:
        return self._index.metric

    @property
    def higher_is_better(self) -> bool:
        return self._index.higher_is_better
