"""torch-rechub 0.9.0's own tests/test_serving.py (downloaded from its PyPI sdist at test time,
never committed), run unchanged with ``vecindex.patch_torch_rechub()``: all 69 cases pass, the 27
Milvus ones against the test script's local Milvus 2.3.5."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import REQUIRE, ROOT

UPSTREAM = ROOT / "python" / "tests" / "upstream"


def test_torch_rechub_test_serving_passes_on_vecindex():
    try:
        subprocess.run([sys.executable, str(UPSTREAM / "fetch_upstream.py"), "0.9.0"], check=True,
                       capture_output=True, text=True, timeout=600)
    except subprocess.CalledProcessError as e:
        if REQUIRE:
            raise AssertionError(f"could not fetch torch-rechub's tests: {e.stderr}")
        pytest.skip(f"could not fetch torch-rechub's tests (offline?): {e.stderr.strip()[-300:]}")
    env = dict(os.environ)
    milvus = bool(os.environ.get("VECINDEX_MILVUS_URI"))
    if not milvus:
        if REQUIRE and os.environ.get("VECINDEX_NO_MILVUS") != "1":
            pytest.fail("VECINDEX_MILVUS_URI is not set (the test script starts Milvus)")
        env["SKIP_MILVUS_TESTS"] = "1"
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(UPSTREAM / "test_serving.py")],
        capture_output=True, text=True, timeout=1800, env=env, cwd=UPSTREAM,
    )
    summary = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr[-2000:]
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    skipped = int(m.group(1)) if (m := re.search(r"(\d+) skipped", summary)) else 0
    assert (passed, skipped) == ((69, 0) if milvus else (42, 27)), summary
