#!/usr/bin/env bash
# Pure SwapMoE mode gives the same output for the same input (issue 15, item 12): the swap
# schedule follows the token stream, not the clock. On the demo model under small budgets,
# `eval` (nll) and `run` (sampled with a fixed seed, ids) are repeated RUNS times under each
# setting: 1 and 2 threads, io_uring and pread, and with the machine loaded by a competing
# process; every setting must give one and the same output. Prints the distinct outputs.
#
# Usage: scripts/test_swapmoe_determinism.sh [BUILD_DIR] [RUNS]   (default: build, 5)
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
runs="${2:-5}"
swapmoe="$build/swapmoe"
model="$root/models/fortunes-moe.gguf"
text="$root/models/fortunes-moe-test.txt"
[ -x "$swapmoe" ] && [ -f "$model" ] && [ -f "$text" ] || { echo "determinism: needs $swapmoe, $model, $text" >&2; exit 1; }
work="$(mktemp -d "${TMPDIR:-/tmp}/swapmoe-determinism.XXXXXX")"
trap 'rm -rf "$work"; [ -n "${load_pid:-}" ] && kill "$load_pid" 2>/dev/null' EXIT
failures=0

settings=("-t 1 --io uring" "-t 2 --io uring" "-t 1 --io pread" "-t 2 --io pread" "-t 2 --io uring LOADED")
for mem in 20M 24M; do
  for kind in eval run; do
    : >"$work/all"
    for s in "${settings[@]}"; do
      args="${s% LOADED}"
      load_pid=""
      if [ "$args" != "$s" ]; then
        # A competing process on the same cores: the reads complete at other times.
        ( while :; do "$swapmoe" eval "$model" --text "$text" --mem "$mem" --policy swapmoe -t 2 >/dev/null 2>&1; done ) &
        load_pid=$!
      fi
      : >"$work/one"
      for i in $(seq "$runs"); do
        # shellcheck disable=SC2086
        if [ "$kind" = eval ]; then
          "$swapmoe" eval "$model" --text "$text" --mem "$mem" --policy swapmoe $args 2>"$work/err" >"$work/out"
        else
          "$swapmoe" run "$model" -p "Der Computer" -n 64 --seed 7 --print-ids --mem "$mem" --policy swapmoe $args \
            2>"$work/err" >"$work/out"
        fi
        # The slot plan rides along, so that a difference can be told apart from a plan change.
        echo "$(grep -o 'per MoE layer: [0-9 ]*' "$work/err") $(cat "$work/out")" >>"$work/one"
      done
      if [ -n "$load_pid" ]; then kill "$load_pid" 2>/dev/null; wait "$load_pid" 2>/dev/null; load_pid=""; fi
      n=$(sort -u "$work/one" | wc -l)
      lines=$(wc -l <"$work/one")
      cat "$work/one" >>"$work/all"
      if [ "$lines" -ne "$runs" ] || [ "$n" -ne 1 ]; then
        echo "FAIL --mem $mem $kind ($s): $n distinct outputs of $lines runs:" >&2; sort "$work/one" | uniq -c | cut -c1-120 >&2
        failures=$((failures + 1))
      else
        echo "ok   --mem $mem $kind ($s): $runs runs, 1 distinct output"
      fi
    done
    n=$(sort -u "$work/all" | wc -l)
    if [ "$n" -ne 1 ]; then echo "FAIL --mem $mem $kind: $n distinct outputs across the settings:" >&2; sort "$work/all" | uniq -c | cut -c1-120 >&2; failures=$((failures + 1))
    else echo "ok   --mem $mem $kind: the same output under every setting ($(head -c 60 "$work/all"))"; fi
  done
done
[ $failures -eq 0 ] && echo "determinism: all checks passed" || { echo "determinism: $failures check(s) failed" >&2; exit 1; }
