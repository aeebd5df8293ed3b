#!/usr/bin/env bash
# Side-by-side peer benchmarks (release build, same data and thread count on both sides).
#   ./scripts/bench.sh flat [extra peer-bench flags, e.g. --threads-list 1,2 --repeat 5]
#   ./scripts/bench.sh milvus [flags]   installs pymilvus 2.3.7 into .venv, starts Milvus 2.3.5 on
#                                       loopback unless VECINDEX_MILVUS_URI names a running one
#   ./scripts/bench.sh python [flags]   the Python package: its overhead over the Rust call, and
#                                       vecindex.serving vs torch_rechub.serving end to end at 1 and
#                                       2 threads (flags: --quick, --repeat N, --only faiss,annoy;
#                                       --no-milvus skips the Milvus rows)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="$(bash scripts/venv.sh)"
suite="${1:-flat}"
shift || true
if [ "$suite" = python ]; then
  "$py" -m pip install --quiet --force-reinstall --no-deps . >&2
  flags=()
  milvus=1
  for a in "$@"; do
    if [ "$a" = "--no-milvus" ]; then milvus=0; else flags+=("$a"); fi
  done
  mpid="" data=""
  trap '[ -n "$mpid" ] && bash scripts/milvus.sh stop "$mpid"; [ -n "$data" ] && rm -rf "$data"' EXIT
  if [ "$milvus" = 1 ] && [ -z "${VECINDEX_MILVUS_URI:-}" ]; then
    data="$(mktemp -d "${TMPDIR:-/tmp}/vecindex-milvus.XXXXXX")"
    mpid="$(bash scripts/milvus.sh start "$data/milvus")"
    export VECINDEX_MILVUS_URI="http://127.0.0.1:19530"
  elif [ "$milvus" = 0 ]; then
    unset VECINDEX_MILVUS_URI
  fi
  # The full real-embedding set, where present (see scripts/test.sh).
  shared="${VECINDEX_SHARED_DATA:-$root/../shared/data/debian-desc-all-minilm-l6-v2}"
  for t in 1 2; do
    RAYON_NUM_THREADS=$t OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t MKL_NUM_THREADS=$t \
      "$py" bench/python/serving_bench.py --threads "$t" --shared "$shared" ${flags[@]+"${flags[@]}"}
  done
  exit 0
fi
cargo build --release --quiet -p vecindex-bench
if [ "$suite" != milvus ]; then
  exec ./target/release/peer-bench "$suite" --python "$py" "$@"
fi

if ! "$py" -c "import pymilvus" >/dev/null 2>&1; then
  echo "installing pymilvus 2.3.7 into .venv (bench only) ..." >&2
  # The pins keep pymilvus 2.3.7 importable (its imports break with setuptools>=70, marshmallow>=4).
  "$py" -m pip install --quiet "pymilvus==2.3.7" "setuptools<70" "marshmallow<4" >&2
fi
mpid="" data=""
trap '[ -n "$mpid" ] && bash scripts/milvus.sh stop "$mpid"; [ -n "$data" ] && rm -rf "$data"' EXIT
if [ -z "${VECINDEX_MILVUS_URI:-}" ]; then
  data="$(mktemp -d "${TMPDIR:-/tmp}/vecindex-milvus.XXXXXX")"
  echo "starting Milvus 2.3.5 on 127.0.0.1:19530 (data in $data) ..." >&2
  mpid="$(bash scripts/milvus.sh start "$data/milvus")"
  export VECINDEX_MILVUS_URI="http://127.0.0.1:19530"
fi
./target/release/peer-bench milvus --python "$py" "$@"
