#!/usr/bin/env bash
# Aggregate decode tok/s of `swapmoe serve --parallel N` with N = 1, 2, 4 concurrent
# streaming clients (scripts/stream_clients.mjs), batched and, for comparison, with
# --no-batching (slots taking turns). One fresh server per run, so /metrics cover it alone.
#
#   scripts/bench_batching.sh MODEL [TOKENS] [-- extra serve args, e.g. --mem 300M]
#   CLIENTS="1 2 4 8" MODES="batched turns" scripts/bench_batching.sh MODEL 64 -- --mem 300M
#
# Env: SWAPMOE (binary, default build/swapmoe), THREADS (2), CTX per slot (512).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
model="${1:?usage: bench_batching.sh MODEL [TOKENS] [-- serve args]}"
shift
tokens=64
if [ $# -gt 0 ] && [ "$1" != "--" ]; then tokens="$1"; shift; fi
[ "${1:-}" = "--" ] && shift
bin="${SWAPMOE:-$here/../build/swapmoe}"
threads="${THREADS:-2}"
ctx_per="${CTX:-512}"
for mode in ${MODES:-batched turns}; do
  for n in ${CLIENTS:-1 2 4}; do
    flags=(); [ "$mode" = turns ] && flags=(--no-batching)
    log="$(mktemp)"
    "$bin" serve "$model" --host 127.0.0.1 --port 0 -t "$threads" --parallel "$n" --ctx $((ctx_per * n)) \
      "${flags[@]}" "$@" 2>"$log" >/dev/null &
    pid=$!
    trap 'kill $pid 2>/dev/null || true' EXIT
    port=""
    for _ in $(seq 600); do
      port="$(grep -oE 'on http://127\.0\.0\.1:[0-9]+' "$log" | grep -oE '[0-9]+$' || true)"
      [ -n "$port" ] && break
      kill -0 "$pid" 2>/dev/null || { cat "$log"; exit 1; }
      sleep 0.1
    done
    printf '%-8s ' "$mode"
    node "$here/stream_clients.mjs" --url "http://127.0.0.1:$port" --clients "$n" --tokens "$tokens"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -f "$log"
  done
done
