"""Annoy-compatible forests on the vecindex engine; files are annoy's own."""

from __future__ import annotations

import typing as ty

from .._api import Builder
from . import _common
from .base import BaseBuilder, EngineIndexer, FilePath

_AnnoyMetric = ty.Literal["angular", "euclidean", "dot"]

_DEFAULT_METRIC: _AnnoyMetric = "angular"
_DEFAULT_N_TREES = 10
_DEFAULT_THREADS = -1
_DEFAULT_SEARCHK = -1


class AnnoyIndexer(EngineIndexer):
    """An annoy forest: distances as annoy returns them (angular sqrt(2-2cos), euclidean,
    manhattan ascending; dot descending). Slots annoy cannot fill hold id -1 and ±inf."""


class AnnoyBuilder(BaseBuilder):
    """``torch_rechub.serving.AnnoyBuilder`` on the vecindex engine.

    Same parameters, order and defaults (``manhattan`` and ``hamming`` work too). Differences:
    queries run as one parallel batch; ``top_k`` beyond what annoy finds pads with id -1 instead
    of crashing; ``save`` also writes ``<file>.vecindex.json`` (dimension, metric, item count, custom ids) so a
    wrong ``d``/metric on load is an error, not garbage. Extra keyword: ``seed``."""

    def __init__(
        self,
        d: int,
        metric: _AnnoyMetric = _DEFAULT_METRIC,
        *,
        n_trees: int = _DEFAULT_N_TREES,
        threads: int = _DEFAULT_THREADS,
        searchk: int = _DEFAULT_SEARCHK,
        seed: ty.Optional[int] = None,
    ) -> None:
        self._builder = Builder(
            "annoy", d=d, metric=metric, n_trees=n_trees, threads=threads, searchk=searchk, seed=seed
        )
        self._loader = Builder("annoy", d=d, metric=metric, searchk=searchk)

    def from_embeddings(self, embeddings: ty.Any, ids: ty.Any = None) -> ty.ContextManager[AnnoyIndexer]:
        """Builds the forest when the ``with`` block is entered; ``ids``: optional int64 ids."""
        return _common.opened(_common.build(self._builder, embeddings, ids), AnnoyIndexer)

    def from_index_file(self, index_file: FilePath) -> ty.ContextManager[AnnoyIndexer]:
        """Opens an annoy file (ours, or ``AnnoyIndex.save``'s with this builder's d and metric)."""
        return _common.opened(lambda: self._loader.from_index_file(index_file), AnnoyIndexer)
