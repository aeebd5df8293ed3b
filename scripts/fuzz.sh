#!/usr/bin/env bash
# Fuzzes every reader with cargo-fuzz (libFuzzer; `-s none` works on stable Rust), each target for
# SECONDS (default 60), under a 2 GB RSS cap and a 10 s per-input timeout. New interesting inputs
# are added to fuzz/corpus/<target>/ (commit the ones worth keeping: tests/fuzz_corpus.rs replays
# them in the normal test command); a crash is saved under fuzz/artifacts/<target>/.
#
#   ./scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
secs="${1:-60}"
shift || true
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz 0.13.2 ..." >&2
  cargo install cargo-fuzz --version 0.13.2 --locked >&2
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cd fuzz/fuzz_targets && ls ./*.rs | sed 's|^\./||; s|\.rs$||')
fi
for t in "${targets[@]}"; do
  echo "== $t ($secs s)" >&2
  cargo fuzz run -s none --release "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 2>&1 |
    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)|cov:|ERROR|panicked|SUMMARY" |
    tail -n 4
done
