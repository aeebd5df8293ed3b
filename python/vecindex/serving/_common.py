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


def clamp_nprobe(nprobe: ty.Optional[int], nlists: int, backend: str) -> ty.Optional[int]:
    """faiss accepts ``nprobe`` above the number of lists and silently probes them all; the
    drop-in does the same and says so (Milvus takes such an nprobe as it is)."""
    if nprobe is not None and isinstance(nlists, int) and nlists >= 1 and nprobe > nlists:
        warnings.warn(
            f"{backend}: nprobe={nprobe} exceeds the number of lists ({nlists}); "
            f"probing all {nlists} lists, as {backend} does",
            UserWarning,
            stacklevel=4,
        )
        return nlists
    return nprobe
