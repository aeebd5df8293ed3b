"""What goes in and comes out of the Python API: kinds, dtypes, shapes, and every bad input's
exception and message."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import vecindex
from vecindex import serving

from conftest import brute_force, gaussian

N, D, K = 200, 8, 5


@pytest.fixture(scope="module")
def data():
    return gaussian(N, D, 1), gaussian(20, D, 2)


@pytest.fixture(scope="module")
def flat(data):
    with vecindex.builder_factory("faiss", metric="L2").from_embeddings(data[0]) as index:
        yield index


def exact_ids(data, k=K):
    return brute_force(data[0], data[1], k, "L2")[0]


def test_numpy_in_numpy_out(flat, data):
    ids, dist = flat.query(data[1], K)
    assert isinstance(ids, np.ndarray) and ids.dtype == np.int64 and ids.shape == (20, K)
    assert isinstance(dist, np.ndarray) and dist.dtype == np.float32 and dist.shape == (20, K)
    np.testing.assert_array_equal(ids, exact_ids(data))
    assert ids.flags.c_contiguous and dist.flags.c_contiguous


def test_torch_in_torch_out(flat, data):
    ids, dist = flat.query(torch.from_numpy(data[1]), K)
    assert isinstance(ids, torch.Tensor) and ids.dtype == torch.int64 and ids.device.type == "cpu"
    assert isinstance(dist, torch.Tensor) and dist.dtype == torch.float32
    np.testing.assert_array_equal(ids.numpy(), exact_ids(data))


@pytest.mark.parametrize(
    "convert",
    [
        lambda q: q.astype(np.float64),
        lambda q: q.astype(np.float16).astype(np.float32),  # values representable in f16
        lambda q: np.asfortranarray(q),
        lambda q: np.repeat(q, 2, axis=0)[::2],  # strided view
        lambda q: q.tolist(),
        lambda q: torch.from_numpy(q).double(),
        lambda q: torch.from_numpy(q).requires_grad_(True),
        lambda q: torch.from_numpy(q).t().contiguous().t(),  # non-contiguous tensor
    ],
    ids=["f64", "f16-exact", "fortran", "strided", "list", "torch-f64", "requires-grad", "torch-strided"],
)
def test_other_layouts_give_the_same_answer(flat, data, convert):
    ids, _ = flat.query(convert(data[1]), K)
    np.testing.assert_array_equal(np.asarray(ids), exact_ids(data))


def test_half_precision_inputs_are_converted(data):
    items16 = data[0].astype(np.float16)
    items = items16.astype(np.float32)  # what the engine should see
    for x in (items16, torch.from_numpy(items16), torch.from_numpy(items).to(torch.bfloat16)):
        want = np.asarray(x.float() if isinstance(x, torch.Tensor) else x, dtype=np.float32)
        with vecindex.builder_factory("faiss").from_embeddings(x) as index:
            ids, _ = index.query(data[1], K)
        np.testing.assert_array_equal(ids, brute_force(want, data[1], K, "L2")[0])


def test_array_protocol_objects(data):
    class Wrapped:
        def __init__(self, a):
            self.a = a

        def __array__(self, dtype=None, copy=None):
            return self.a

    with vecindex.builder_factory("faiss").from_embeddings(Wrapped(data[0])) as index:
        ids, _ = index.query(Wrapped(data[1]), K)
    np.testing.assert_array_equal(ids, exact_ids(data))


def test_float32_contiguous_input_is_not_copied(monkeypatch, data):
    """The array handed to the engine is the caller's own buffer."""
    seen = []

    class Spy:
        def __init__(self, native):
            self.native = native

        def build(self, items, ids=None, progress=None):
            seen.append(items)
            return self.native.build(items, ids, progress)

        backend = "faiss"

    b = vecindex.builder_factory("faiss")
    monkeypatch.setattr(b, "_native", Spy(b._native))
    b.from_embeddings(data[0]).close()
    assert seen and np.shares_memory(seen[0], data[0])
    t = torch.from_numpy(data[0])
    b.from_embeddings(t).close()
    assert np.shares_memory(seen[1], data[0])


def test_custom_ids(data):
    ids_in = np.arange(N, dtype=np.int64) * 1000 + 7
    for ids_arg in (ids_in, torch.from_numpy(ids_in), ids_in.tolist(), ids_in.astype(np.int32)):
        with vecindex.builder_factory("faiss").from_embeddings(data[0], ids=ids_arg) as index:
            ids, _ = index.query(data[1], K)
        np.testing.assert_array_equal(ids, ids_in[exact_ids(data)])


@pytest.mark.parametrize(
    "bad,exc,words",
    [
        (lambda x: x.astype(np.int64), TypeError, "integer"),
        (lambda x: torch.from_numpy(x).long(), TypeError, "integer"),
        (lambda x: x > 0, TypeError, "integer"),
        (lambda x: x.astype(np.complex64), TypeError, "complex64"),
        (lambda x: np.array(["a", "b"]), TypeError, "<U1"),
        (lambda x: x[0], ValueError, "reshape(1, -1)"),
        (lambda x: x[None], ValueError, "3-D"),
        (lambda x: x[:, :0], ValueError, "at least one dimension"),
        (lambda x: x[:, :3], ValueError, "expected 8, got 3"),
    ],
    ids=["int", "torch-int", "bool", "complex", "strings", "1-D", "3-D", "d=0", "wrong-d"],
)
def test_bad_queries(flat, data, bad, exc, words):
    with pytest.raises(exc) as e:
        flat.query(bad(data[1]), K)
    assert words in str(e.value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_names_row_and_column(flat, data, value):
    q = data[1].copy()
    q[3, 5] = value
    with pytest.raises(ValueError, match=r"row 3, column 5"):
        flat.query(q, K)
    x = data[0].copy()
    x[17, 2] = value
    with pytest.raises(ValueError, match=r"row 17, column 2"):
        vecindex.builder_factory("faiss").from_embeddings(x)


@pytest.mark.parametrize("k,exc", [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError), ("3", TypeError)])
def test_bad_top_k(flat, data, k, exc):
    with pytest.raises(exc, match="top_k"):
        flat.query(data[1], k)


def test_bad_ids(data):
    b = vecindex.builder_factory("faiss")
    with pytest.raises(ValueError, match="duplicate id 5"):
        b.from_embeddings(data[0], ids=[5] * N)
    with pytest.raises(ValueError, match="-1"):
        b.from_embeddings(data[0], ids=[-1] + list(range(N - 1)))
    with pytest.raises(ValueError, match="3 ids for 200"):
        b.from_embeddings(data[0], ids=[1, 2, 3])
    with pytest.raises(TypeError, match="integers"):
        b.from_embeddings(data[0], ids=np.zeros(N))


def test_empty_and_zero_rows(data):
    with pytest.raises(ValueError, match="zero embeddings"):
        vecindex.builder_factory("faiss").from_embeddings(np.zeros((0, D), np.float32))
    with vecindex.builder_factory("faiss").from_embeddings(data[0]) as index:
        ids, dist = index.query(np.zeros((0, D), np.float32), K)
        assert ids.shape == (0, K) and dist.shape == (0, K)


def test_configuration_errors():
    with pytest.raises(NotImplementedError, match="faiss, annoy, milvus"):
        vecindex.builder_factory("foo")
    with pytest.raises(NotImplementedError, match="model='foo'"):
        serving.builder_factory("foo")
    with pytest.raises(ValueError, match="Flat, HNSW, IVF"):
        vecindex.builder_factory("faiss", index_type="LSH")
    with pytest.raises(ValueError, match="did you mean"):
        vecindex.builder_factory("faiss", index_type="HNSW", efSerch=4)
    with pytest.raises(TypeError, match="efSerch"):
        serving.builder_factory("faiss", index_type="HNSW", efSerch=4)
    with pytest.raises(ValueError, match="L2, IP"):
        serving.builder_factory("faiss", metric="cosine")
    with pytest.raises(ValueError, match="angular"):
        serving.builder_factory("annoy", d=4, metric="cosine")
    with pytest.raises(ValueError, match="FLAT, HNSW, IVF_FLAT"):
        serving.builder_factory("milvus", d=4, index_type="IVF_PQ")


def test_files(tmp_path, data):
    with pytest.raises(FileNotFoundError):
        vecindex.builder_factory("faiss").from_index_file(tmp_path / "missing.index")
    junk = tmp_path / "junk.index"
    junk.write_bytes(b"this is not an index at all")
    with pytest.raises(ValueError):
        vecindex.builder_factory("faiss").from_index_file(junk)
    with vecindex.builder_factory("faiss").from_embeddings(data[0]) as index:
        index.save(tmp_path / "ok.index")
    truncated = tmp_path / "truncated.index"
    truncated.write_bytes((tmp_path / "ok.index").read_bytes()[:-100])
    with pytest.raises(ValueError):
        vecindex.builder_factory("faiss").from_index_file(truncated)
    with pytest.raises((FileNotFoundError, OSError)):
        with vecindex.builder_factory("faiss").from_embeddings(data[0]) as index:
            index.save(tmp_path / "no" / "such" / "dir" / "x.index")


def test_closed_index_raises(data):
    index = vecindex.builder_factory("faiss").from_embeddings(data[0])
    assert not index.closed and len(index) == N and index.dim == D
    index.close()
    index.close()  # twice is fine
    assert index.closed
    with pytest.raises(ValueError, match="closed"):
        index.query(data[1], K)


def test_info_and_metric(data):
    with vecindex.builder_factory("faiss", index_type="HNSW", metric="IP", m=16).from_embeddings(data[0]) as index:
        assert index.metric == "IP" and index.higher_is_better
        info = index.info
        assert info["index_type"] == "HNSW" and info["n"] == N and info["params"]["m"] == "16"
        assert "HNSW" in repr(index)


def test_stub_matches_the_extension_module():
    """python/vecindex/_native.pyi declares exactly what the compiled module has."""
    import ast
    from pathlib import Path

    stub = ast.parse(Path(vecindex.__file__).with_name("_native.pyi").read_text())
    declared = {}
    for node in stub.body:
        if isinstance(node, ast.ClassDef):
            declared[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
        elif isinstance(node, ast.FunctionDef):
            declared[node.name] = None
        elif isinstance(node, ast.AnnAssign) and not node.target.id.startswith("_") or (
            isinstance(node, ast.AnnAssign) and node.target.id == "__version__"
        ):
            declared[node.target.id] = None
    native = vecindex._native
    public = {n for n in dir(native) if not n.startswith("_") or n == "__version__"}
    assert public == set(declared), (public ^ set(declared))
    for cls, methods in declared.items():
        if methods is None:
            continue
        have = {n for n in dir(getattr(native, cls)) if not n.startswith("__") or n in ("__init__", "__len__")}
        missing = methods - have - {"__init__"}
        extra = {n for n in have if not n.startswith("__")} - methods
        assert not missing and not extra, (cls, missing, extra)
