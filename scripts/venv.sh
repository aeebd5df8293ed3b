#!/usr/bin/env bash
# Creates (only if missing or incomplete) the local Python venv with the peer libraries the tests
# and benchmarks compare against, what the Python package's tests need (torch, pytest, maturin,
# torch-rechub 0.9.0 with pymilvus), and the Milvus server package. Used by test.sh and bench.sh;
# prints the python path.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
py="$venv/bin/python"
# The peers, pinned: the tests assert byte identity with files these exact versions write.
need="numpy==2.4.6 faiss-cpu==1.15.1 annoy==1.17.3 hnswlib==0.8.0"
have_pins() {
  "$py" - "$@" <<'PY' >/dev/null 2>&1
import sys, importlib.metadata as m
sys.exit(any(m.version(n) != v for n, v in (a.split("==") for a in sys.argv[1:])))
PY
}
# shellcheck disable=SC2086
if [ ! -x "$py" ] || ! have_pins $need; then
  echo "setting up $venv ($need) ..." >&2
  [ -x "$py" ] || python3 -m venv "$venv"
  "$py" -m pip install --quiet --upgrade pip >&2
  # shellcheck disable=SC2086
  "$py" -m pip install --quiet $need >&2
fi
# The Milvus 2.3.5 standalone server (a real Milvus binary packaged on PyPI; no dependencies).
if [ ! -x "$venv/bin/milvus-server" ]; then
  echo "installing milvus==2.3.5 into $venv ..." >&2
  "$py" -m pip install --quiet milvus==2.3.5 >&2
fi
# The Python package's tests: torch (PyPI's wheel is the large CUDA build; installed once per
# venv), torch-rechub 0.9.0 for the parity tests (its serving module imports faiss, annoy and
# pymilvus; the pins keep pymilvus 2.3.7, which matches the 2.3.5 server, importable).
pytest_need="torch==2.12.1 torch-rechub==0.9.0 pymilvus==2.3.7 setuptools<70 marshmallow<4 pytest>=8 maturin>=1.16,<2"
if ! "$py" -c "import torch, torch_rechub, pymilvus, pytest, maturin" >/dev/null 2>&1; then
  echo "installing the Python test dependencies into $venv (torch is ~3 GB with its CUDA libraries) ..." >&2
  # shellcheck disable=SC2086
  "$py" -m pip install --quiet $pytest_need >&2
fi
echo "$py"
