"""Milvus collections through the vecindex engine's gRPC client (tested against Milvus 2.3.5)."""

from __future__ import annotations

import typing as ty

from .._api import Builder, Index, inspect
from . import _common
from .base import BaseBuilder, EngineIndexer, FilePath

_MilvusIndexType = ty.Literal["FLAT", "HNSW", "IVF_FLAT"]
_MilvusMetric = ty.Literal["COSINE", "IP", "L2"]

# The original's code defaults (its documentation says L2 and m=16; existing callers get these).
_DEFAULT_MILVUS_INDEX_TYPE: _MilvusIndexType = "FLAT"
_DEFAULT_MILVUS_METRIC: _MilvusMetric = "COSINE"
_DEFAULT_N_LIST = 128
_DEFAULT_M = 30
_DEFAULT_NAME = "rechub"
_DEFAULT_HOST = "localhost"
_DEFAULT_PORT = 19530


class MilvusIndexer(EngineIndexer):
    """A Milvus collection: L2 is the squared distance (ascending), IP and COSINE similarities
    (descending). ``save`` writes a handle file and keeps the collection."""


class MilvusBuilder(BaseBuilder):
    """``torch_rechub.serving.MilvusBuilder`` on the vecindex engine.

    Same parameters, order and defaults (metric COSINE, m=30: the original's code, not its docs).
    ``name`` prefixes the generated collection name (the original also used it as the connection
    alias); the collection is dropped when the ``with`` block ends unless the indexer was saved,
    and also when the build fails half-way. Differences: inserts are batched (no 64 MiB limit),
    ``ef`` below ``top_k`` is raised to ``top_k`` (the server refuses ef < k), an IVF index without ``nprobe`` probes max(8, nlist/6) lists, and ``save`` /
    ``from_index_file`` work (a JSON handle naming the server and collection; the original raised
    NotImplementedError). Extra keywords: ``uri``, ``token``, ``user``, ``password``, ``db_name``,
    ``collection`` (a named collection that persists), ``overwrite``, ``efConstruction``,
    ``consistency``, ``timeout``."""

    def __init__(
        self,
        d: int,
        index_type: _MilvusIndexType = _DEFAULT_MILVUS_INDEX_TYPE,
        metric: _MilvusMetric = _DEFAULT_MILVUS_METRIC,
        *,
        m: int = _DEFAULT_M,
        nlist: int = _DEFAULT_N_LIST,
        ef: ty.Optional[int] = None,
        nprobe: ty.Optional[int] = None,
        name: str = _DEFAULT_NAME,
        host: str = _DEFAULT_HOST,
        port: int = _DEFAULT_PORT,
        uri: ty.Optional[str] = None,
        token: ty.Optional[str] = None,
        user: ty.Optional[str] = None,
        password: ty.Optional[str] = None,
        db_name: ty.Optional[str] = None,
        collection: ty.Optional[str] = None,
        overwrite: ty.Optional[bool] = None,
        efConstruction: ty.Optional[int] = None,
        consistency: ty.Optional[str] = None,
        timeout: ty.Optional[float] = None,
    ) -> None:
        kind = str(index_type).upper()
        self._connection: ty.Dict[str, ty.Any] = dict(
            token=token, user=user, password=password, db_name=db_name, consistency=consistency, timeout=timeout
        )
        if uri is not None:
            self._connection["uri"] = uri
        else:
            self._connection.update(host=host, port=port)
        # A reopened handle keeps its own server unless one was named explicitly.
        self._explicit_server = uri is not None or host != _DEFAULT_HOST or port != _DEFAULT_PORT
        config: ty.Dict[str, ty.Any] = dict(
            d=d, index_type=index_type, metric=metric, name=name, collection=collection, overwrite=overwrite
        )
        if kind == "HNSW":
            config.update(m=m, ef=ef, efConstruction=efConstruction)
        elif kind == "IVF_FLAT":
            config.update(nlist=nlist, nprobe=nprobe)
        self._builder = Builder("milvus", **config, **self._connection)
        self._ef = ef
        self._nprobe = nprobe

    def from_embeddings(self, embeddings: ty.Any, ids: ty.Any = None) -> ty.ContextManager[MilvusIndexer]:
        """Creates, fills, indexes and loads a collection when the ``with`` block is entered;
        ``ids``: optional int64 primary keys."""
        return _common.opened(_common.build(self._builder, embeddings, ids), MilvusIndexer)

    def from_index_file(self, index_file: FilePath) -> ty.ContextManager[MilvusIndexer]:
        """Reopens a collection from the handle file ``save`` wrote (it stays on the server)."""
        return _common.opened(lambda: self._load(index_file), MilvusIndexer)

    def _load(self, index_file: FilePath) -> Index:
        kind = inspect(index_file)["index_type"]
        connection = dict(self._connection)
        if not self._explicit_server:
            connection.pop("host", None)
            connection.pop("port", None)
        index = Builder("milvus", **connection).from_index_file(index_file)
        try:
            if kind == "HNSW":
                index.set_params(ef=self._ef)
            elif kind == "IVF_FLAT":
                index.set_params(nprobe=self._nprobe)
        except BaseException:
            index.close()
            raise
        return index
