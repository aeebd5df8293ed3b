#!/usr/bin/env bash
# The one test command: sets up what the tests need (a local venv with faiss-cpu, numpy and the
# other peers), then runs every test of the workspace. Peer tests fail (not skip) here because
# VECINDEX_REQUIRE_PEERS is set.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="$(bash scripts/venv.sh)"
export VECINDEX_PYTHON="$py"
export VECINDEX_REQUIRE_PEERS=1
# Keep the peers from oversubscribing the 2-core machine while cargo runs tests in parallel.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
cargo test --release --workspace "$@"
