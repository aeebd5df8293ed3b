"""A drop-in for ``torch_rechub.serving`` on the vecindex engine.

Change ``from torch_rechub.serving import builder_factory`` to
``from vecindex.serving import builder_factory``; or call ``vecindex.patch_torch_rechub()`` once
and leave the imports as they are. Same builders, parameters, defaults and context-manager
protocol; queries return CPU torch tensors (ids int64, distances float32, shape (n, top_k)).
"""

from __future__ import annotations

import typing as ty

from .annoy import AnnoyBuilder, AnnoyIndexer
from .base import BaseBuilder, BaseIndexer
from .faiss import FaissBuilder, FaissIndexer
from .milvus import MilvusBuilder, MilvusIndexer

_RetrievalModel = ty.Literal["annoy", "faiss", "milvus"]

_BUILDERS: ty.Dict[str, ty.Type[BaseBuilder]] = {
    "annoy": AnnoyBuilder,
    "faiss": FaissBuilder,
    "milvus": MilvusBuilder,
}


def builder_factory(model: _RetrievalModel, **builder_config: ty.Any) -> BaseBuilder:
    """The builder for ``model`` ("annoy", "faiss" or "milvus") with ``builder_config`` passed to
    its constructor. An unknown model raises NotImplementedError (naming the valid ones); unknown
    keywords raise TypeError, unknown index types and metrics ValueError."""
    builder = _BUILDERS.get(model) if isinstance(model, str) else None
    if builder is None:
        raise NotImplementedError(
            f"{model=} is not implemented yet! Valid models: {', '.join(_BUILDERS)}"
        )
    return builder(**builder_config)


__all__ = [
    "builder_factory",
    "BaseBuilder",
    "BaseIndexer",
    "AnnoyBuilder",
    "AnnoyIndexer",
    "FaissBuilder",
    "FaissIndexer",
    "MilvusBuilder",
    "MilvusIndexer",
]
