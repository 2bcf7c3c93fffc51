#!/usr/bin/env bash
# Reproduces the SwapMoE tradeoff tables in docs/ (docs/swapmoe-results.md explains them):
#   docs/swapmoe-demo.{csv,svg}        the trained demo model, budgets from the minimum to
#                                      resident, policies exact and swapmoe at three τ
#   docs/swapmoe-qwen3-30b.{csv,svg}   the forged Qwen3-30B-A3B-shaped Q4_K_M model (17.3 GiB)
#                                      at --mem 4G/6G/10G and resident
# Usage: bash scripts/sweep_docs.sh [demo|qwen3|all]   (default all)
# Env: SWAPMOE (default build/swapmoe), QWEN3 (default qwen3-30b-a3b-q4km.gguf),
#      OUT (default docs), THREADS (default 2 for the 30B, 1 for the demo).
# The 30B runs need more than 3 GB of RAM (the resident point ~18 GB), so each holds the
# machine-wide lock /work/big/.memlock (if it exists) and is split in two parts of a few
# minutes each; the second appends to the first's CSV (sweep --append).
set -euo pipefail
cd "$(dirname "$0")/.."
swapmoe=${SWAPMOE:-build/swapmoe}
qwen3=${QWEN3:-qwen3-30b-a3b-q4km.gguf}
out=${OUT:-docs}
what=${1:-all}
text=models/fortunes-moe-test.txt
lock() { if [ -e /work/big/.memlock ]; then flock /work/big/.memlock "$@"; else "$@"; fi; }

if [ "$what" = demo ] || [ "$what" = all ]; then
  echo "== demo model: $(sha256sum models/fortunes-moe.gguf | cut -c1-16)" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # The held-out text is split: SwapMoE's routing profile (per-layer slot shares, initial
  # resident sets) comes from its second part, the sweep scores 4096 tokens of the first,
  # in windows of the trained context. Decode speed: the median of 5 runs of 128 greedy
  # tokens after a 16-token prompt.
  head -c 130000 "$text" > "$tmp/eval.txt"
  tail -c +130001 "$text" > "$tmp/profile.txt"
  "$swapmoe" profile models/fortunes-moe.gguf --text "$tmp/profile.txt" --max-tokens 4096 -t 1 \
    -o "$tmp/demo.profile" > /dev/null
  "$swapmoe" sweep models/fortunes-moe.gguf --text "$tmp/eval.txt" -t "${THREADS:-1}" \
    --mem min,25%,50%,75%,100%,resident --policy exact,swapmoe --exactness 1,0.5,0.2 --profile "$tmp/demo.profile" \
    --max-tokens 4096 -n 128 --prompt-tokens 16 --repeat 5 -o "$out/swapmoe-demo" \
    --title "SwapMoE on the demo model (fortunes-moe.gguf, $(sha256sum models/fortunes-moe.gguf | cut -c1-8)): 4096 held-out tokens"
fi

if [ "$what" = qwen3 ] || [ "$what" = all ]; then
  [ -f "$qwen3" ] || { echo "sweep_docs.sh: $qwen3 not found (forge it: swapmoe-forge --preset qwen3-30b-a3b)" >&2; exit 1; }
  common=(--text "$text" -t "${THREADS:-2}" --ctx 64 --max-tokens 32 -n 16 --prompt-tokens 8 --repeat 3
          --title "SwapMoE on a Qwen3-30B-A3B-shaped model (Q4_K_M, 17.3 GiB, random weights)")
  echo "== qwen3-30b: part 1 (4G, 6G)" >&2
  lock "$swapmoe" sweep "$qwen3" "${common[@]}" --mem 4G,6G --policy exact,swapmoe --exactness 1,0.5 \
    -o "$out/swapmoe-qwen3-30b"
  echo "== qwen3-30b: part 2 (10G, resident)" >&2
  lock "$swapmoe" sweep "$qwen3" "${common[@]}" --mem 10G,resident --policy exact,swapmoe --exactness 1,0.5 \
    -o "$out/swapmoe-qwen3-30b" --append
fi
