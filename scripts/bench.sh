#!/usr/bin/env bash
# Side-by-side peer benchmarks (release build, same data and thread count on both sides).
#   ./scripts/bench.sh flat [extra peer-bench flags, e.g. --threads-list 1,2 --repeat 5]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="$(bash scripts/venv.sh)"
suite="${1:-flat}"
shift || true
cargo build --release --quiet
exec ./target/release/vecindex peer-bench "$suite" --python "$py" "$@"
