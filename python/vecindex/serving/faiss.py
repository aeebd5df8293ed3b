"""FAISS-compatible indexes (Flat, HNSW, IVF) on the vecindex engine; files are faiss's own."""

from __future__ import annotations

import typing as ty

from .._api import Builder, Index
from . import _common
from .base import BaseBuilder, EngineIndexer, FilePath

_FaissIndexType = ty.Literal["Flat", "HNSW", "IVF"]
_FaissMetric = ty.Literal["IP", "L2"]

_DEFAULT_FAISS_INDEX_TYPE: _FaissIndexType = "Flat"
_DEFAULT_FAISS_METRIC: _FaissMetric = "L2"
_DEFAULT_N_LISTS = 100
_DEFAULT_M = 32


class FaissIndexer(EngineIndexer):
    """A faiss-format index: ``query`` returns squared L2 distances (ascending) or inner products
    (descending); ``save`` writes a file ``faiss.read_index`` reads."""


class FaissBuilder(BaseBuilder):
    """``torch_rechub.serving.FaissBuilder`` on the vecindex engine.

    Same parameters, order and defaults. Differences: ``index_type`` and ``metric`` are validated
    (the original silently fell back to Flat / inner product), matched case-insensitively; an
    IVF index without ``nprobe`` probes max(8, nlists/6) lists instead of faiss's 1 (recall@10
    ~0.9 instead of ~0.5); ``nprobe`` above ``nlists`` probes all lists, as in faiss, with a
    warning; ``efSearch`` and
    ``nprobe`` also apply to ``from_index_file`` (the original kept the file's). Extra keywords:
    ``efConstruction`` and ``threads`` (HNSW build); ``storage`` (``"SQ8"``, ``"SQfp16"``:
    scalar-quantized vectors, any index type; ``"PQ"``: IVF-PQ, with ``pq_m`` sub-quantizers
    of ``pq_nbits`` bits), ``refine="Flat"`` with ``k_factor`` (re-rank ``k * k_factor``
    candidates with the exact vectors); ``factory``, a faiss ``index_factory`` string such as
    ``"HNSW32,SQ8,RFlat"`` or ``"IVF1024,PQ32"``, which then replaces ``index_type``, ``m``,
    ``nlists``, ``storage``, ``pq_m``, ``pq_nbits`` and ``refine``."""

    def __init__(
        self,
        index_type: _FaissIndexType = _DEFAULT_FAISS_INDEX_TYPE,
        metric: _FaissMetric = _DEFAULT_FAISS_METRIC,
        *,
        m: int = _DEFAULT_M,
        nlists: int = _DEFAULT_N_LISTS,
        efSearch: ty.Optional[int] = None,
        nprobe: ty.Optional[int] = None,
        efConstruction: ty.Optional[int] = None,
        threads: ty.Optional[int] = None,
        storage: ty.Optional[str] = None,
        refine: ty.Optional[str] = None,
        k_factor: ty.Optional[float] = None,
        factory: ty.Optional[str] = None,
        pq_m: ty.Optional[int] = None,
        pq_nbits: ty.Optional[int] = None,
    ) -> None:
        config: ty.Dict[str, ty.Any] = {"metric": metric}
        quantized = dict(storage=storage, refine=refine, k_factor=k_factor, pq_m=pq_m, pq_nbits=pq_nbits)
        if factory is not None:
            # The factory string names the kind and its shape; the search breadths stay ours.
            config.update(factory=factory, efSearch=efSearch, efConstruction=efConstruction)
            config.update(nprobe=nprobe, threads=threads, k_factor=k_factor)
            # Given beside the string they must agree with it (the engine says so if not).
            config.update(storage=storage, refine=refine, pq_m=pq_m, pq_nbits=pq_nbits)
        else:
            kind = str(index_type).upper()
            config["index_type"] = index_type
            if kind == "HNSW":
                config.update(m=m, efSearch=efSearch, efConstruction=efConstruction, threads=threads)
                config.update(quantized)
            elif kind == "IVF":
                _common.warn_if_nprobe_exceeds(nprobe, nlists)
                config.update(nlists=nlists, nprobe=nprobe)
                config.update(quantized)
            else:
                config.update(quantized)
        self._builder = Builder("faiss", **config)
        self._efSearch = efSearch
        self._nprobe = nprobe
        self._k_factor = k_factor

    def from_embeddings(self, embeddings: ty.Any, ids: ty.Any = None) -> ty.ContextManager[FaissIndexer]:
        """Builds the index when the ``with`` block is entered; ``ids``: optional int64 ids."""
        return _common.opened(_common.build(self._builder, embeddings, ids), FaissIndexer)

    def from_index_file(self, index_file: FilePath) -> ty.ContextManager[FaissIndexer]:
        """Opens a faiss file (ours or ``faiss.write_index``'s)."""
        return _common.opened(lambda: self._load(index_file), FaissIndexer)

    def _load(self, index_file: FilePath) -> Index:
        index = Builder("faiss").from_index_file(index_file)
        try:
            kind = index.info["index_type"]
            if kind == "HNSW" and self._efSearch is not None:
                index.set_param("efSearch", self._efSearch)
            if kind == "IVF" and self._nprobe is not None:
                _common.warn_if_nprobe_exceeds(self._nprobe, int(index.info["params"]["nlists"]))
                index.set_param("nprobe", self._nprobe)
            if self._k_factor is not None:
                index.set_param("k_factor", self._k_factor)
        except BaseException:
            index.close()
            raise
        return index
