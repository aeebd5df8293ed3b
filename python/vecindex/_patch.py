"""``patch_torch_rechub()``: existing ``torch_rechub.serving`` code runs on this engine unchanged."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types


def patch_torch_rechub() -> None:
    """Registers ``vecindex.serving`` (and its submodules ``base``, ``annoy``, ``faiss``,
    ``milvus``) as ``torch_rechub.serving`` in ``sys.modules``, so that
    ``from torch_rechub.serving import builder_factory`` gets ours. Call it before that import.

    If torch-rechub is installed, its package is imported and its ``serving`` attribute replaced;
    if not, a minimal ``torch_rechub`` package (with ``types.FilePath``) stands in for it, so
    neither torch-rechub nor its faiss/annoy/pymilvus imports are needed."""
    from . import serving
    from .serving import annoy, base, faiss, milvus

    sys.modules["torch_rechub.serving"] = serving
    for name, module in (("base", base), ("annoy", annoy), ("faiss", faiss), ("milvus", milvus)):
        sys.modules[f"torch_rechub.serving.{name}"] = module

    parent = sys.modules.get("torch_rechub")
    if parent is None and importlib.util.find_spec("torch_rechub") is not None:
        try:
            parent = importlib.import_module("torch_rechub")
        except ImportError:
            parent = None
    if parent is None:
        parent = types.ModuleType("torch_rechub", "Stand-in package registered by vecindex.patch_torch_rechub().")
        parent.__path__ = []  # a package, so submodule imports resolve through sys.modules
        type_module = types.ModuleType("torch_rechub.types")
        type_module.FilePath = base.FilePath  # type: ignore[attr-defined]
        parent.types = type_module  # type: ignore[attr-defined]
        sys.modules["torch_rechub"] = parent
        sys.modules.setdefault("torch_rechub.types", type_module)
    parent.serving = serving  # type: ignore[attr-defined]
