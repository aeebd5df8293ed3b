#!/usr/bin/env bash
# Creates (only if missing or incomplete) the local Python venv with the peer libraries the tests
# and benchmarks compare against, and the Milvus server package. Sourced by test.sh and bench.sh; prints the python path.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
py="$venv/bin/python"
need="numpy faiss-cpu annoy hnswlib"
if ! "$py" -c "import numpy, faiss, annoy, hnswlib" >/dev/null 2>&1; then
  echo "setting up $venv ($need) ..." >&2
  python3 -m venv "$venv"
  "$py" -m pip install --quiet --upgrade pip >&2
  # shellcheck disable=SC2086
  "$py" -m pip install --quiet $need >&2
fi
# The Milvus 2.3.5 standalone server (a real Milvus binary packaged on PyPI; no dependencies).
if [ ! -x "$venv/bin/milvus-server" ]; then
  echo "installing milvus==2.3.5 into $venv ..." >&2
  "$py" -m pip install --quiet milvus==2.3.5 >&2
fi
echo "$py"
