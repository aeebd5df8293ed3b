"""Shared helpers for the Python tests.

Peers (torch-rechub, faiss-cpu, annoy, a Milvus server) are optional on a user's machine: tests
that need one skip with a notice. Under the test script (VECINDEX_REQUIRE_PEERS=1, as in CI) a
missing peer fails instead, so nothing passes silently because its data or server is absent."""

from __future__ import annotations

import importlib
import json
import os
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUIRE = os.environ.get("VECINDEX_REQUIRE_PEERS") == "1"


def need(module: str):
    """Imports a peer library, or skips (fails under the test script) when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if REQUIRE:
            raise
        pytest.skip(f"{module} not installed ({e})")


@pytest.fixture(scope="session")
def milvus_uri() -> str:
    uri = os.environ.get("VECINDEX_MILVUS_URI")
    if not uri:
        if REQUIRE and os.environ.get("VECINDEX_NO_MILVUS") != "1":
            pytest.fail("VECINDEX_MILVUS_URI is not set (the test script starts Milvus)")
        pytest.skip("no Milvus server (set VECINDEX_MILVUS_URI)")
    return uri


def milvus_collections(uri: str) -> list:
    """Collection names on the server (its REST surface)."""
    with urllib.request.urlopen(uri.rstrip("/") + "/v1/vector/collections", timeout=10) as r:
        return json.loads(r.read())["data"]


def gaussian(n: int, d: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d), dtype=np.float32)


def clustered(n: int, d: int, seed: int, centers: int = 20) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, d), dtype=np.float32) * 3
    return (c[rng.integers(0, centers, n)] + rng.standard_normal((n, d), dtype=np.float32)).astype(np.float32)


def brute_force(items: np.ndarray, queries: np.ndarray, k: int, metric: str):
    """Exact top-k in float64: ``(ids, scores)`` with the metric's own order."""
    x, q = items.astype(np.float64), queries.astype(np.float64)
    if metric == "L2":
        s = (q * q).sum(1)[:, None] - 2 * q @ x.T + (x * x).sum(1)[None, :]
        order = np.argsort(s, axis=1, kind="stable")
    elif metric in ("IP", "dot"):
        s = q @ x.T
        order = np.argsort(-s, axis=1, kind="stable")
    elif metric in ("angular", "COSINE"):
        xn = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)
        qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-30)
        s = qn @ xn.T
        order = np.argsort(-s, axis=1, kind="stable")
        if metric == "angular":
            s = np.sqrt(np.maximum(2 - 2 * s, 0))
    elif metric == "euclidean":
        s = np.sqrt(np.maximum((q * q).sum(1)[:, None] - 2 * q @ x.T + (x * x).sum(1)[None, :], 0))
        order = np.argsort(s, axis=1, kind="stable")
    else:
        raise ValueError(metric)
    ids = order[:, :k]
    return ids, np.take_along_axis(s, ids, axis=1)


def recall(got: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(g[:k]) & set(t)) / k for g, t in zip(np.asarray(got), truth)]))


# torch-rechub's own suite runs in a subprocess of test_upstream.py (its conftest patches
# torch_rechub.serving for the whole process, which the parity tests must not see).
collect_ignore = ["upstream"]
