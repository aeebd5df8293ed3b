#!/usr/bin/env bash
# The one test command: sets up what the tests need (a local venv with faiss-cpu, numpy, the other
# peers, torch, torch-rechub and the Milvus 2.3.5 server from PyPI), starts Milvus on 127.0.0.1,
# runs every test of the workspace, installs the Python package into the venv (`pip install .`)
# and runs its tests under pytest (torch-rechub's own test_serving.py among them), checks that no
# Milvus collection was left behind, stops the server, and then runs the Milvus fault tests (which
# crash and restart a server of their own).
# Peer and Milvus tests fail (not skip) here because VECINDEX_REQUIRE_PEERS is set.
#
#   ./scripts/test.sh                 everything (what CI runs)
#   ./scripts/test.sh --no-milvus     skip starting Milvus; its tests then skip with a notice
#   ./scripts/test.sh [cargo test args...]   e.g. ./scripts/test.sh -p vecindex --test milvus
#                                     (with cargo test args the Python tests are not run)
#   ./scripts/test.sh --python-only   only the Python package's tests
#
# VECINDEX_MILVUS_URI=http://host:port uses an already running server instead of starting one.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

milvus=1
rust=1
args=()
for a in "$@"; do
  case "$a" in
    --no-milvus) milvus=0 ;;
    --python-only) rust=0 ;;
    *) args+=("$a") ;;
  esac
done
python=1
[ ${#args[@]} -eq 0 ] || python=0

py="$(bash scripts/venv.sh)"
export VECINDEX_PYTHON="$py"
export VECINDEX_REQUIRE_PEERS=1
# The full real-embedding set (20,000 + 1,000 rows of d=384 with exact ground truth) that the
# larger real-data tests also run on; the committed sample (crates/vecindex/tests/data) always.
export VECINDEX_SHARED_DATA="${VECINDEX_SHARED_DATA:-$root/../shared/data/debian-desc-all-minilm-l6-v2}"
# Keep the peers from oversubscribing the 2-core machine while cargo runs tests in parallel.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

# Compile first, so the server is not kept waiting through a cold build.
if [ "$rust" = 1 ]; then
  cargo test --release --workspace --no-run ${args[@]+"${args[@]}"}
fi
if [ "$python" = 1 ]; then
  echo "building and installing the vecindex Python package into the venv (pip install .) ..." >&2
  "$py" -m pip install --quiet --force-reinstall --no-deps . >&2
fi

mpid="" data=""
stop_milvus() {
  if [ -n "$mpid" ]; then
    bash scripts/milvus.sh stop "$mpid" || true
    mpid=""
  fi
  # The server's data directory is ours alone (mktemp below): nothing of it outlives the run.
  if [ -n "$data" ]; then
    rm -rf "$data"
    data=""
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

status=0
if [ "$rust" = 1 ]; then
  cargo test --release --workspace --no-fail-fast ${args[@]+"${args[@]}"} || status=$?
fi
if [ "$python" = 1 ]; then
  # Run from outside the source tree, so `import vecindex` is the installed package.
  (cd python/tests && "$py" -m pytest -q -p no:cacheprovider .) || status=$?
fi
[ "$status" = 0 ] || exit "$status"

if [ -n "${VECINDEX_MILVUS_URI:-}" ]; then
  # Every collection a test makes is dropped by the test (temporary ones with their indexer).
  left="$(curl -fsS -m 5 "${VECINDEX_MILVUS_URI%/}/v1/vector/collections")"
  echo "Milvus collections after the tests: $left" >&2
  if [ -n "$mpid" ] && [ "$left" != '{"code":200,"data":[]}' ]; then
    echo "error: the tests left Milvus collections behind" >&2
    exit 1
  fi
fi

if [ -n "$mpid" ] && [ "$rust" = 1 ] && [ ${#args[@]} -eq 0 ]; then
  # The fault tests crash and restart a server of their own; two cannot share the machine.
  stop_milvus
  echo "Milvus fault tests (a server of their own, crashed mid-insert/index/search and restarted) ..." >&2
  cargo test --release -p vecindex --features milvus --test milvus_faults -- --ignored --test-threads=1
fi
