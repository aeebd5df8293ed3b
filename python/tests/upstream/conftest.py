"""Runs torch-rechub's own tests/test_serving.py (downloaded at test time by fetch_upstream.py,
never committed) on vecindex: ``torch_rechub.serving`` resolves to ``vecindex.serving``."""

import vecindex

vecindex.patch_torch_rechub()
