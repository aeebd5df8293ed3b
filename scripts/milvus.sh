#!/usr/bin/env bash
# Starts or stops a real Milvus 2.3.5 standalone (PyPI package `milvus==2.3.5`) on loopback for the
# tests and benchmarks. Pitfalls of this server: docs/milvus.md.
#
#   scripts/milvus.sh start DIR   fresh data dir DIR; prints the launcher's pid once 19530 answers
#   scripts/milvus.sh stop PID    SIGINT to the launcher, then SIGTERM to its process group
#   scripts/milvus.sh kill PID    SIGKILL to its process group (a crash), back once it is all gone
#
# VECINDEX_MILVUS_SESSION_TTL=S shortens the server's session lease (default 30 s): a server
# restarted after a crash waits for its previous sessions to expire, so the fault tests use 5.
#
# Every component binds 127.0.0.1; the proxy port is 19530 (fixed: etcd's peer port is fixed too,
# so two servers cannot share a machine anyway). Readiness is polled on the proxy's REST surface,
# not on :9091/healthz, which the launcher silently moves when 9091 is busy.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
port="${VECINDEX_MILVUS_PORT:-19530}"

ready() { curl -fsS -m 1 "http://127.0.0.1:$port/v1/vector/collections" >/dev/null 2>&1; }

case "${1:-}" in
start)
  dir="${2:?usage: milvus.sh start DATA_DIR}"
  if [ ! -x "$venv/bin/milvus-server" ]; then
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    echo "installing milvus==2.3.5 into $venv ..." >&2
    "$venv/bin/python" -m pip install --quiet milvus==2.3.5 >&2
  fi
  if ready; then
    echo "milvus.sh: something already answers on 127.0.0.1:$port; stop it first" >&2
    exit 1
  fi
  # The launcher test-binds each port without SO_REUSEADDR and silently moves to the next free
  # one when that fails, which it does while a crashed server's connections sit in TIME_WAIT
  # (up to 60 s): wait until the port is clear.
  if command -v ss >/dev/null 2>&1; then
    for _ in $(seq 1 900); do
      [ -z "$(ss -Htan "( sport = :$port )" 2>/dev/null)" ] && break
      sleep 0.1
    done
  fi
  mkdir -p "$dir"
  extra=()
  for r in rootCoord proxy queryCoord queryNode indexCoord indexNode dataCoord dataNode; do
    extra+=(--extra-config "$r.ip=127.0.0.1")
  done
  if [ -n "${VECINDEX_MILVUS_SESSION_TTL:-}" ]; then
    extra+=(--extra-config "common.session.ttl=$VECINDEX_MILVUS_SESSION_TTL")
  fi
  # setsid: the launcher leads its own process group, so the fallback stop reaches its
  # `milvus run standalone` child and nothing else.
  setsid "$venv/bin/milvus-server" --data "$dir" --proxy-port "$port" "${extra[@]}" \
    </dev/null >"$dir.log" 2>&1 &
  pid=$!
  # First start unpacks ~250 MB of binaries; ~9 s on an idle machine, allow 180 s under load.
  for _ in $(seq 1 900); do
    if ready; then
      echo "$pid"
      exit 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "milvus.sh: the server exited during start-up; last lines of $dir.log:" >&2
      tail -20 "$dir.log" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
  echo "milvus.sh: no answer on 127.0.0.1:$port after 180 s; see $dir.log" >&2
  "$0" stop "$pid" || true
  exit 1
  ;;
stop)
  pid="${2:?usage: milvus.sh stop PID}"
  kill -INT "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  # The launcher gives its child 1 s after SIGINT; whatever is left in the group gets SIGTERM.
  sleep 1
  kill -TERM -- "-$pid" 2>/dev/null || true
  ;;
kill)
  pid="${2:?usage: milvus.sh kill PID}"
  kill -KILL -- "-$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    pgrep -g "$pid" >/dev/null 2>&1 || exit 0
    sleep 0.1
  done
  echo "milvus.sh: process group $pid still alive after SIGKILL" >&2
  exit 1
  ;;
*)
  echo "usage: milvus.sh start DATA_DIR | stop PID | kill PID" >&2
  exit 2
  ;;
esac
