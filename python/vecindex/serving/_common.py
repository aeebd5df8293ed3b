"""Pieces the serving builders share: the context-managed build/load and the peer-compatible
handling of values the original accepted."""

from __future__ import annotations

import contextlib
import typing as ty
import warnings

from .._api import Builder, Index
from .base import EngineIndexer

I = ty.TypeVar("I", bound=EngineIndexer)


@contextlib.contextmanager
def opened(index_factory: ty.Callable[[], Index], wrap: ty.Callable[[Index], I]) -> ty.Iterator[I]:
    """Builds or loads on entering the ``with`` block (as the original does) and closes the index
    when it ends, also on error: a temporary Milvus collection is dropped then."""
    index = index_factory()
    try:
        yield wrap(index)
    finally:
        index.close()


def build(builder: Builder, embeddings: ty.Any, ids: ty.Any) -> ty.Callable[[], Index]:
    return lambda: builder.from_embeddings(embeddings, ids=ids)


def warn_if_nprobe_exceeds(nprobe: ty.Optional[int], nlists: int) -> None:
    """faiss takes an ``nprobe`` above the number of lists and silently probes them all; so does
    the engine (the value is stored as given, as faiss stores it). The drop-in says so."""
    if nprobe is not None and isinstance(nlists, int) and nlists >= 1 and nprobe > nlists:
        warnings.warn(
            f"faiss: nprobe={nprobe} exceeds the number of lists ({nlists}); "
            f"all {nlists} lists are probed, as faiss does",
            UserWarning,
            stacklevel=4,
        )
