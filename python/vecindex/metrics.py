"""Evaluation: ``topk_metrics`` (torch_rechub.basic.metric's, with its defects fixed) and
``match_evaluation`` (the serving docs' matching example: ANN results of user embeddings against
item embeddings, ids mapped to raw ids, scored against the test interactions and against exact
search). Both compute in the Rust engine."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any, Dict, Hashable, List, Mapping, Optional, Sequence

import numpy as np

from . import _native
from ._api import builder_factory, exact_knn
from ._convert import as_float_array, as_matrix

_NAMES = ("NDCG", "MRR", "Recall", "Hit", "Precision")


class TopkMetrics(defaultdict):
    """The original's result: ``{'NDCG': ['NDCG@10: 0.1234', ...], 'MRR': [...], 'Recall': [...],
    'Hit': [...], 'Precision': [...]}`` (values rounded to 4 places as ``str(round(x, 4))``;
    'Hit' is the original's pooled recall), plus the numbers:

    * ``values``: ``{'NDCG@10': 0.1234..., 'HitRate@10': ..., 'PooledRecall@10': ...}`` unrounded;
    * ``per_k``: one dict per k with ``ndcg, mrr, recall, precision, hit_rate, pooled_recall``;
    * ``users`` averaged over and ``users_without_truth`` left out."""

    def __init__(self, doc: Dict[str, Any]) -> None:
        super().__init__(list)
        for name, strings in doc["legacy"]:
            self[name] = list(strings)
        m = doc["metrics"]
        self.per_k: List[Dict[str, float]] = m["at"]
        self.users: int = m["users"]
        self.users_without_truth: int = m["users_without_truth"]
        self.values: Dict[str, float] = {}
        keys = {
            "ndcg": "NDCG",
            "mrr": "MRR",
            "recall": "Recall",
            "precision": "Precision",
            "hit_rate": "HitRate",
            "pooled_recall": "PooledRecall",
        }
        for at in self.per_k:
            for field, label in keys.items():
                self.values[f"{label}@{at['k']}"] = at[field]


def _as_list(items: Any) -> list:
    if hasattr(items, "tolist"):
        items = items.tolist()
    return list(items)


def topk_metrics(
    y_true: Mapping[Hashable, Sequence[Hashable]],
    y_pred: Mapping[Hashable, Sequence[Hashable]],
    topKs: Optional[Sequence[int]] = None,
) -> TopkMetrics:
    """NDCG, MRR, Recall, Hit and Precision at each k in ``topKs`` (default ``[5]``), in
    torch_rechub's output structure. Differences from the original (see docs/python.md): a
    repeated prediction counts once (at its first position), id -1 (an empty result slot) is never
    a hit, prediction lists shorter than k are fine, users with empty truth are left out of the
    averages (and counted in ``users_without_truth``), and k = 0 or no users is a ValueError."""
    if topKs is None:
        topKs = [5]
    if not isinstance(topKs, (tuple, list)):
        raise ValueError("topKs wrong, it should be tuple or list")
    if len(y_true) != len(y_pred):
        raise ValueError(
            f"y_true has {len(y_true)} users but y_pred has {len(y_pred)}; give both for the same users"
        )
    codes: Dict[Hashable, int] = {}
    truth: List[List[int]] = []
    pred: List[List[int]] = []
    for user, relevant in y_true.items():
        if user not in y_pred:
            raise KeyError(f"user {user!r} is in y_true but not in y_pred")
        truth.append([codes.setdefault(item, len(codes)) for item in _as_list(relevant)])
        row = []
        for item in _as_list(y_pred[user]):
            if item == -1 and not isinstance(item, (str, bytes)):
                row.append(-1)  # an empty result slot
            else:
                row.append(codes.setdefault(item, len(codes)))
        pred.append(row)
    ks = []
    for k in topKs:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise ValueError(f"topKs must hold positive integers; got {k!r}")
        ks.append(int(k))
    return TopkMetrics(json.loads(_native.topk_metrics_json(truth, pred, ks)))


def _exact_plan(metric: str):
    """How to search exactly for an index's metric: (faiss metric, normalise first) or None."""
    m = metric.upper()
    if m in ("L2", "EUCLIDEAN"):
        return "L2", False
    if m in ("IP", "DOT"):
        return "IP", False
    if m in ("COSINE", "ANGULAR"):
        return "IP", True
    return None


def _normalised(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms == 0, 1, norms)).astype(np.float32)


def _column(table: Any, col: str) -> np.ndarray:
    return np.asarray(table[col])


def _load_maps(raw_id_maps: Any):
    if raw_id_maps is None:
        return None, None
    if isinstance(raw_id_maps, (str, bytes)) or hasattr(raw_id_maps, "__fspath__"):
        user_map, item_map = np.load(raw_id_maps, allow_pickle=True)
        return user_map, item_map
    user_map, item_map = raw_id_maps
    return user_map, item_map


def _mapped(m: Any, key: Any) -> Any:
    if m is None:
        return key.item() if hasattr(key, "item") else key
    return m[key]


def _top_items(
    ids: np.ndarray, scores: np.ndarray, topk: int, higher_is_better: bool
) -> List[List[int]]:
    """Per user, the best ``topk`` distinct rows; a user may have several interest rows
    (``ids``/``scores`` of shape (users, interests, k))."""
    out = []
    for u in range(ids.shape[0]):
        uid, us = ids[u].reshape(-1), scores[u].reshape(-1)
        order = np.argsort(-us if higher_is_better else us, kind="stable")
        seen, row = set(), []
        for j in order:
            i = int(uid[j])
            if i >= 0 and i not in seen:
                seen.add(i)
                row.append(i)
                if len(row) == topk:
                    break
        out.append(row)
    return out


def match_evaluation(
    user_embedding: Any,
    item_embedding: Any,
    test_user: Any,
    all_item: Any,
    user_col: str = "user_id",
    item_col: str = "movie_id",
    raw_id_maps: Any = None,
    topk: int = 10,
    model: str = "faiss",
    exact: bool = True,
    **builder_config: Any,
) -> Dict[str, Any]:
    """The serving docs' matching evaluation on this engine.

    Builds a ``model`` index (default faiss Flat L2; ``builder_config`` as for
    ``builder_factory``) over ``item_embedding`` (row i is ``all_item[item_col][i]``), queries the
    top ``topk`` for every test user (a 3-D ``user_embedding`` (users, interests, d) is queried per
    interest and merged, as the multi-interest models need), maps rows to raw ids through
    ``raw_id_maps`` (a path to the ``(user_map, item_map)`` .npy, the pair itself, or None for no
    mapping) and scores them against ``test_user[item_col]``.

    Returns ``{"metrics": TopkMetrics, "exact_metrics": TopkMetrics or None, "recall_vs_exact":
    float or None, "predictions": {raw user: [raw items]}}``; the exact figures come from a
    brute-force search with the index's metric (angular/cosine as normalised IP) when ``exact``."""
    users, _ = as_float_array(user_embedding, "user_embedding")
    multi = users.ndim == 3
    n_users = users.shape[0]
    flat_users, _ = as_matrix(users.reshape(-1, users.shape[-1]) if multi else users, "user_embedding")
    items, _ = as_matrix(item_embedding, "item_embedding")
    item_codes = _column(all_item, item_col)
    if item_codes.shape[0] != items.shape[0]:
        raise ValueError(
            f"all_item[{item_col!r}] has {item_codes.shape[0]} entries for {items.shape[0]} item embeddings"
        )
    test_users = _column(test_user, user_col)
    if test_users.shape[0] != n_users:
        raise ValueError(f"test_user[{user_col!r}] has {test_users.shape[0]} users for {n_users} user embeddings")
    test_items = _column(test_user, item_col)
    user_map, item_map = _load_maps(raw_id_maps)
    per = users.shape[1] if multi else 1

    def predictions(ids: np.ndarray, scores: np.ndarray, higher: bool) -> Dict[Any, list]:
        rows = _top_items(ids.reshape(n_users, per, -1), scores.reshape(n_users, per, -1), topk, higher)
        return {
            _mapped(user_map, test_users[u]): [_mapped(item_map, item_codes[i]) for i in row]
            for u, row in enumerate(rows)
        }

    truth: Dict[Any, list] = {}
    for u, it in zip(test_users, test_items):
        truth.setdefault(_mapped(user_map, u), []).append(_mapped(item_map, it))

    with builder_factory(model, **builder_config).from_embeddings(items) as index:
        ids, scores = index.query(flat_users, topk)
        metric, higher = index.metric, index.higher_is_better
    pred = predictions(ids, scores, higher)
    y_pred = {u: pred.get(u, []) for u in truth}
    result: Dict[str, Any] = {
        "metrics": topk_metrics(truth, y_pred, [topk]),
        "exact_metrics": None,
        "recall_vs_exact": None,
        "predictions": pred,
    }
    plan = _exact_plan(metric) if exact else None
    if plan is not None:
        faiss_metric, normalise = plan
        xi, xq = (_normalised(items), _normalised(flat_users)) if normalise else (items, flat_users)
        e_ids, e_scores = exact_knn(xi, xq, topk, faiss_metric)
        exact_pred = predictions(e_ids, e_scores, faiss_metric == "IP")
        result["exact_metrics"] = topk_metrics(truth, {u: exact_pred.get(u, []) for u in truth}, [topk])
        found = sum(len(set(pred[u]) & set(exact_pred[u])) for u in exact_pred)
        total = sum(len(exact_pred[u]) for u in exact_pred)
        result["recall_vs_exact"] = found / total if total else None
    return result
