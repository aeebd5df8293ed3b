"""Turning what users pass (torch tensors, numpy arrays, anything with ``__array__``, nested lists)
into the C-contiguous float32 / int64 numpy buffers the engine reads without copying, with errors
that say what is wrong and how to fix it."""

from __future__ import annotations

import operator
import sys
from typing import Any, Tuple

import numpy as np


def _torch() -> Any:
    # torch is optional: only look at it when the caller has imported it already.
    return sys.modules.get("torch")


def is_torch_tensor(x: Any) -> bool:
    torch = _torch()
    return torch is not None and isinstance(x, torch.Tensor)


def _tensor_to_numpy(t: Any, what: str) -> np.ndarray:
    """A CPU numpy view of a tensor (no copy for CPU float32/float64/float16)."""
    torch = _torch()
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if t.is_complex():
        raise TypeError(f"{what} is a complex tensor ({t.dtype}); vectors must be real floating point")
    if t.dtype == torch.bfloat16:
        t = t.to(torch.float32)  # numpy has no bfloat16
    return t.numpy()  # integer and bool tensors are refused by as_matrix's dtype check


def as_float_array(x: Any, what: str) -> Tuple[np.ndarray, bool]:
    """``(array, was_torch)``: ``x`` as a numpy float array of any shape (a view where possible);
    integer, bool, complex and non-numeric inputs are refused with a TypeError."""
    was_torch = is_torch_tensor(x)
    if was_torch:
        arr = _tensor_to_numpy(x, what)
    else:
        try:
            arr = np.asarray(x)
        except (TypeError, ValueError) as e:
            raise TypeError(
                f"{what} must be a 2-D float array (numpy array, torch tensor or nested lists); "
                f"got {type(x).__name__}: {e}"
            ) from e
    kind = arr.dtype.kind
    if kind in "biu":
        raise TypeError(
            f"{what} has dtype {arr.dtype}, an integer type; vectors must be floating point "
            f"(convert with .astype(numpy.float32) or tensor.float())"
        )
    if kind != "f":
        raise TypeError(
            f"{what} has dtype {arr.dtype}; vectors must be a float array "
            f"(float32 preferred; float16/float64/bfloat16 are converted)"
        )
    return arr, was_torch


def as_matrix(x: Any, what: str = "embeddings") -> Tuple[np.ndarray, bool]:
    """``(array, was_torch)``: ``x`` as a C-contiguous float32 2-D array. A C-contiguous float32
    input is returned as is (no copy); other float dtypes and strided inputs are converted once."""
    arr, was_torch = as_float_array(x, what)
    if arr.ndim != 2:
        hint = "; for a single vector use x.reshape(1, -1)" if arr.ndim == 1 else ""
        raise ValueError(
            f"{what} must be 2-D (n, d); got {arr.ndim}-D with shape {tuple(arr.shape)}{hint}"
        )
    if arr.shape[1] == 0:
        raise ValueError(f"{what} has shape {tuple(arr.shape)}: vectors need at least one dimension")
    return np.ascontiguousarray(arr, dtype=np.float32), was_torch


def as_ids(ids: Any, n: int) -> np.ndarray:
    """Custom ids as a C-contiguous int64 1-D array with one id per row."""
    if is_torch_tensor(ids):
        ids = ids.detach().cpu().numpy()
    arr = np.asarray(ids)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "b" or arr.size > 0:
            raise TypeError(f"ids must be integers (int64); got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
    if arr.ndim != 1:
        raise ValueError(f"ids must be 1-D with one id per row; got shape {tuple(arr.shape)}")
    if arr.shape[0] != n:
        raise ValueError(f"got {arr.shape[0]} ids for {n} embeddings; give exactly one id per row")
    if arr.dtype == np.uint64 and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise ValueError("ids must fit in int64 (64-bit signed)")
    return np.ascontiguousarray(arr, dtype=np.int64)


def as_top_k(top_k: Any) -> int:
    """``top_k`` as a positive int (bools and floats are refused, as numpy does for indices)."""
    if isinstance(top_k, bool):
        raise TypeError("top_k must be an integer, not bool")
    try:
        k = operator.index(top_k)
    except TypeError:
        raise TypeError(f"top_k must be an integer; got {type(top_k).__name__}") from None
    if k < 1:
        raise ValueError(f"top_k must be at least 1; got {k}")
    return k


def config_value(value: Any) -> str:
    """A Python setting as the engine's ``key=value`` text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    if hasattr(value, "__index__"):
        return str(operator.index(value))
    if hasattr(value, "__fspath__"):
        return str(value.__fspath__())
    raise TypeError(f"unsupported setting value {value!r} ({type(value).__name__})")
