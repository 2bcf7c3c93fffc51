#!/usr/bin/env bash
# Side-by-side decode speed of SwapMoE under a budget against the resident model, for the
# issue-4 target "decode at --mem 6G >= 70% of resident" (docs/swapmoe-results.md). The two
# are measured alternately, R rounds, so that load changes on a shared machine hit both;
# prints every run, the medians and their ratio.
# Usage: bash scripts/sweep_speedcheck.sh [MODEL] [MEM]   (defaults: the 30B file, 6G)
# Env: SWAPMOE (build/swapmoe), R (rounds, 3), N (decoded tokens, 24), THREADS (2).
# The resident runs need ~18 GB of RAM: the whole check holds /work/big/.memlock if it exists.
set -euo pipefail
cd "$(dirname "$0")/.."
swapmoe=${SWAPMOE:-build/swapmoe}
model=${1:-qwen3-30b-a3b-q4km.gguf}
mem=${2:-6G}
R=${R:-3}; N=${N:-24}; T=${THREADS:-2}
if [ -e /work/big/.memlock ] && [ -z "${SPEEDCHECK_LOCKED:-}" ]; then
  exec env SPEEDCHECK_LOCKED=1 flock /work/big/.memlock bash "$0" "$@"
fi
tps() { sed -n 's/^decode: .* s, \([0-9.]*\) tok\/s$/\1/p'; }
res=(); swm=()
for r in $(seq 1 "$R"); do
  a=$("$swapmoe" bench "$model" -t "$T" -n "$N" 2>/dev/null | tps)
  b=$("$swapmoe" bench "$model" -t "$T" -n "$N" --mem "$mem" --policy swapmoe 2>/dev/null | tps)
  echo "round $r: resident $a tok/s, --mem $mem --policy swapmoe $b tok/s"
  res+=("$a"); swm+=("$b")
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
mr=$(median "${res[@]}"); ms=$(median "${swm[@]}")
awk -v r="$mr" -v s="$ms" -v m="$mem" 'BEGIN {printf "median: resident %.2f tok/s, swapmoe at %s %.2f tok/s: %.0f%% of resident\n", r, m, s, 100*s/r}'
