#!/usr/bin/env bash
# Shared helpers of scripts/bench_budget.sh and scripts/bench_resident.sh (sourced, not run).
#
# Binaries (override by environment):
#   SWAPMOE      the swapmoe CLI (default: build/swapmoe, else the first of /work/build-*/swapmoe)
#   LLAMA_DRIVER tools/llama-driver binary (default: build/llama-driver/llama-driver, built on demand
#                with scripts/build_llama_driver.sh)

bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

bench_die() { echo "$(basename "$0"): $*" >&2; exit 1; }

bench_find_binaries() {
  if [ -z "${SWAPMOE:-}" ]; then
    if [ -x "$bench_root/build/swapmoe" ]; then SWAPMOE=$bench_root/build/swapmoe
    else bench_die "set SWAPMOE=/path/to/swapmoe (e.g. cmake --build <dir> --target swapmoe)"; fi
  fi
  [ -x "$SWAPMOE" ] || bench_die "SWAPMOE=$SWAPMOE is not executable"
  LLAMA_DRIVER=${LLAMA_DRIVER:-$bench_root/build/llama-driver/llama-driver}
  if [ ! -x "$LLAMA_DRIVER" ]; then
    "$bench_root/scripts/build_llama_driver.sh" "$(dirname "$LLAMA_DRIVER")" >&2 || bench_die "cannot build llama-driver"
  fi
}

# median of the numbers given as arguments (mean of the two middle ones for an even count;
# "-" when there are none, e.g. every run failed).
bench_median() {
  [ $# -gt 0 ] || { echo "-"; return; }
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR % 2) printf "%.2f\n", v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ratio A/B with two decimals, "-" when either is missing or B is zero.
bench_ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f\n", a / b }'
}

# A numeric field of the llama-driver JSON line: bench_json FIELD < file
bench_json() { grep -o "\"$1\":[-0-9.e+]*" | head -1 | cut -d: -f2; }

# swapmoe run's summary line on stderr:
#   swapmoe: prompt 512 tokens, 12.34 tok/s | decode 31 tokens, 5.67 tok/s | generated 32 tokens
bench_swapmoe_prompt_tps() { sed -n 's/^swapmoe: prompt [0-9]* tokens, \([0-9.]*\) tok\/s .*/\1/p' | tail -1; }
bench_swapmoe_prompt_n() { sed -n 's/^swapmoe: prompt \([0-9]*\) tokens, .*/\1/p' | tail -1; }
bench_swapmoe_decode_tps() { sed -n 's/^swapmoe: prompt .* | decode [0-9]* tokens, \([0-9.]*\) tok\/s .*/\1/p' | tail -1; }

bench_machine_state() {
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM," \
       "$(awk '/MemAvailable/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) available," \
       "load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "swapmoe: $SWAPMOE ($(git -C "$bench_root" rev-parse --short HEAD 2>/dev/null)$(git -C "$bench_root" diff --quiet 2>/dev/null || echo ', tree dirty'))"
  echo "llama.cpp: $LLAMA_DRIVER (prebuilt node-llama-cpp libllama.v0.4.0.so)"
}

# The text of an N-token prompt, cut by the model's own vocabulary (llama-driver
# --print-prompt), so both engines tokenize the very same text.
bench_prompt_file() {  # MODEL N OUTFILE
  "$LLAMA_DRIVER" -m "$1" --prompt-tokens "$2" --print-prompt > "$3" || bench_die "llama-driver --print-prompt failed on $1"
}
