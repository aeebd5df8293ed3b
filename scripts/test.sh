#!/usr/bin/env bash
# The one test command: sets up what the tests need (a local venv with faiss-cpu, numpy, the other
# peers and the Milvus 2.3.5 server from PyPI), starts Milvus on 127.0.0.1, runs every test of the
# workspace, checks that no Milvus collection was left behind, and stops the server.
# Peer and Milvus tests fail (not skip) here because VECINDEX_REQUIRE_PEERS is set.
#
#   ./scripts/test.sh                 everything (what CI runs)
#   ./scripts/test.sh --no-milvus     skip starting Milvus; its tests then skip with a notice
#   ./scripts/test.sh [cargo test args...]   e.g. ./scripts/test.sh -p vecindex --test milvus
#
# VECINDEX_MILVUS_URI=http://host:port uses an already running server instead of starting one.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

milvus=1
args=()
for a in "$@"; do
  if [ "$a" = "--no-milvus" ]; then milvus=0; else args+=("$a"); fi
done

py="$(bash scripts/venv.sh)"
export VECINDEX_PYTHON="$py"
export VECINDEX_REQUIRE_PEERS=1
# Keep the peers from oversubscribing the 2-core machine while cargo runs tests in parallel.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

# Compile first, so the server is not kept waiting through a cold build.
cargo test --release --workspace --no-run ${args[@]+"${args[@]}"}

mpid=""
stop_milvus() {
  if [ -n "$mpid" ]; then
    bash scripts/milvus.sh stop "$mpid" || true
    mpid=""
  fi
}
trap stop_milvus EXIT

if [ "$milvus" = 1 ] && [ -z "${VECINDEX_MILVUS_URI:-}" ]; then
  data="$(mktemp -d "${TMPDIR:-/tmp}/vecindex-milvus.XXXXXX")"
  echo "starting Milvus 2.3.5 on 127.0.0.1:19530 (data in $data) ..." >&2
  mpid="$(bash scripts/milvus.sh start "$data/milvus")"
  export VECINDEX_MILVUS_URI="http://127.0.0.1:19530"
elif [ "$milvus" = 0 ]; then
  unset VECINDEX_MILVUS_URI
  export VECINDEX_NO_MILVUS=1
fi

cargo test --release --workspace --no-fail-fast ${args[@]+"${args[@]}"}

if [ -n "${VECINDEX_MILVUS_URI:-}" ]; then
  # Every collection a test makes is dropped by the test (temporary ones with their indexer).
  left="$(curl -fsS -m 5 "${VECINDEX_MILVUS_URI%/}/v1/vector/collections")"
  echo "Milvus collections after the tests: $left" >&2
  if [ -n "$mpid" ] && [ "$left" != '{"code":200,"data":[]}' ]; then
    echo "error: the tests left Milvus collections behind" >&2
    exit 1
  fi
fi
