"""The Python examples in README.md and docs/python.md run as written (in a scratch directory)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from conftest import ROOT


def blocks(path):
    text = (ROOT / path).read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_quick_start(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    found = blocks("README.md")
    assert found, "README.md has no Python example"
    for code in found:
        scope: dict = {}
        exec(compile(code, "README.md", "exec"), scope)
        assert scope["ids"].shape == (8, 10) and scope["distances"].shape == (8, 10)
    assert (tmp_path / "items.index").exists()


def test_docs_examples(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import torch

    rng = np.random.default_rng(0)
    scope_seed = {
        "item_embeddings": torch.randn(500, 16),
        "user_embeddings": torch.randn(4, 16),
        "items": rng.standard_normal((500, 16), dtype=np.float32),
        "users": rng.standard_normal((4, 16), dtype=np.float32),
        "item_ids": np.arange(500) * 3 + 1,
    }
    found = blocks("docs/python.md")
    assert len(found) >= 2
    for code in found:
        exec(compile(code, "docs/python.md", "exec"), dict(scope_seed))
