#!/usr/bin/env bash
# Memory-budget test of the swapmoe CLI (CTest label "budget"):
#  1. exactness: for every architecture, a forged model is run with `run --temp 0
#     --print-ids` and `eval` with and without --mem (budget = the minimum plus 30% of the
#     experts; default cache, lru per-layer pools with pread, lfu with 3-layer prefetch), and the
#     ids and the printed nll must be identical;
#  2. a forged model about 3x the budget runs inside scripts/cgroup_run.sh capped at the
#     budget + 5%, swap forbidden, page cache dropped; its peak must stay within the budget
#     itself (skipped with a message when no cgroup can be made; a failure under CI=true);
#  3. faults: an injected read error (SWAPMOE_FAULT_READ) and a truncated copy of the
#     model must give a clean "swapmoe: error:" naming the file, no hang, no crash.
# Usage: scripts/test_budget.sh [BUILD_DIR]
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/skip.sh"
. "$root/scripts/test_lib.sh"
test_init budget "${1:-$root/build}"

text="$work/text.txt"
printf 'The memory budget decides which experts stay resident. Tokens arrive one at a time, and every layer asks for its experts again. ' > "$text"
printf '%s' "$(cat "$text")$(cat "$text")" > "$text"

# budget_for MODEL FRACTION: the minimum budget plus FRACTION of all expert bytes.
budget_for() {
  "$swapmoe" plan "$1" --ctx 256 -t "$threads" --json > "$work/plan.json" || return 1
  local minb total
  minb=$(json_field "$work/plan.json" min_budget)
  total=$(json_field "$work/plan.json" expert_bytes_total)
  awk -v a="$minb" -v b="$total" -v f="$2" 'BEGIN { printf "%.0f\n", a + f * b }'
}

# ---- 1. exactness per architecture
# (qwen3moe-iq: the same with IQ1_S experts and IQ2_XXS down projections, the grid i-quants of
# unsloth's DeepSeek-R1 files, so that the expert cache moves their odd-sized slices too;
# deepseek2-legacy: the unsplit attn_kv_b layout, split at load by src/ops/mla_legacy.h;
# glm4moe: with its NextN/MTP layer in the file, which neither mode loads;
# gpt-oss: expert biases read into the slot with their expert, sinks, a window of 4 positions
# so the 24-token run crosses it; gpt-oss-mxfp4: the same with MXFP4 experts, as released.)
# SWAPMOE_BUDGET_CASES="gpt-oss ..." runs only those cases.
for case in ${SWAPMOE_BUDGET_CASES:-qwen3moe qwen2moe llama olmoe deepseek2 qwen3moe-iq deepseek2-legacy glm4moe gpt-oss gpt-oss-mxfp4}; do
  arch=${case%-iq}
  arch=${arch%-legacy}
  arch=${arch%-mxfp4}
  extra=()
  [ "$case" = qwen3moe-iq ] && extra=(--expert-type IQ1_S --down-type IQ2_XXS)
  [ "$case" = deepseek2-legacy ] && extra=(--mla-layout legacy)
  [ "$arch" = gpt-oss ] && extra=(--sliding-window 4)
  [ "$case" = gpt-oss-mxfp4 ] && extra+=(--expert-type MXFP4)
  m="$work/$case.gguf"
  if ! "$forge" --arch "$arch" --type Q8_0 "${extra[@]}" --layers 3 --experts 16 --experts-used 2 --vocab "$spm" --seed 11 \
      -t "$threads" -o "$m" > /dev/null 2> "$work/forge.err"; then
    bad "$case: forge failed: $(head -c 300 "$work/forge.err")"; continue
  fi
  mem=$(budget_for "$m" 0.3) || { bad "$case: plan failed"; continue; }
  for mode in "" "--mem $mem" "--mem $mem --no-prefetch --cache-policy lru --cache-layout per-layer --io pread" \
      "--mem $mem --prefetch --prefetch-depth 3 --cache-policy lfu"; do
    # shellcheck disable=SC2086
    timeout 300 "$swapmoe" run "$m" -p "Once upon a time" -n 24 --temp 0 --print-ids --ctx 256 -t "$threads" $mode \
      > "$work/ids.$case.${#mode}" 2> "$work/run.err" || bad "$case run [$mode]: $(tail -c 400 "$work/run.err")"
    # shellcheck disable=SC2086
    timeout 300 "$swapmoe" eval "$m" --text "$text" --ctx 256 -t "$threads" $mode \
      > "$work/nll.$case.${#mode}" 2> "$work/eval.err" || bad "$case eval [$mode]: $(tail -c 400 "$work/eval.err")"
    [ -n "$mode" ] && grep -h "hit rate" "$work/run.err" | sed "s/^/  $case run: /"
  done
  for f in "$work"/ids.$case.* "$work"/nll.$case.*; do :; done
  base_ids="$work/ids.$case.0"; base_nll="$work/nll.$case.0"
  for f in "$work"/ids.$case.*; do
    [ "$f" = "$base_ids" ] && continue
    if cmp -s "$base_ids" "$f" && [ -s "$f" ]; then ok "$case: run ids identical with --mem ($(basename "$f"))"
    else bad "$case: run ids differ with --mem: $(cat "$base_ids") vs $(cat "$f")"; fi
  done
  for f in "$work"/nll.$case.*; do
    [ "$f" = "$base_nll" ] && continue
    if cmp -s "$base_nll" "$f" && [ -s "$f" ]; then ok "$case: eval nll identical with --mem: $(cat "$f")"
    else bad "$case: eval differs with --mem: $(cat "$base_nll") vs $(cat "$f")"; fi
  done
done

# A chosen subset checks exactness only (parts 2 and 3 use the qwen3moe model).
if [ -n "${SWAPMOE_BUDGET_CASES:-}" ]; then
  [ "$fails" -eq 0 ] && { echo "test_budget: exactness of $SWAPMOE_BUDGET_CASES passed"; exit 0; }
  echo "test_budget: $fails failure(s)" >&2; exit 1
fi

# ---- 2. a model ~3x the budget inside a memory cgroup
big="$work/big.gguf"
if "$forge" --arch qwen3moe --type Q8_0 --layers 4 --embd 512 --expert-ff 1024 --experts 64 --experts-used 4 \
    --vocab "$spm" --seed 5 -t "$threads" -o "$big" > /dev/null 2> "$work/forge.err"; then
  size=$(stat -c %s "$big")
  mem=$(budget_for "$big" 0.05)
  limit=$(awk -v m="$mem" 'BEGIN { printf "%.0f\n", m * 1.05 }')
  echo "big model: $size bytes, budget $mem bytes ($(awk -v s="$size" -v m="$mem" 'BEGIN { printf "%.2f", s / m }')x), cgroup limit $limit"
  [ "$size" -ge $((3 * mem)) ] || echo "note: the model is less than 3x the budget (overhead dominates tiny budgets)"
  timeout 600 "$swapmoe" run "$big" -p "Once upon a time" -n 16 --temp 0 --print-ids --ctx 256 -t "$threads" \
    > "$work/big.ref" 2> /dev/null || bad "big model: run without --mem failed"
  timeout 600 bash "$root/scripts/cgroup_run.sh" --budget "$mem" "$limit" -- "$swapmoe" run "$big" -p "Once upon a time" -n 16 \
    --temp 0 --print-ids --ctx 256 -t "$threads" --mem "$mem" > "$work/big.out" 2> "$work/big.err"
  rc=$?
  if [ $rc -eq 77 ]; then
    swapmoe_skip cgroup "big model in a memory cgroup: $(grep -h skip "$work/big.err" | head -n1)" || bad "cgroup test not run"
  elif [ $rc -ne 0 ]; then
    bad "big model under cgroup limit $limit: rc $rc: $(tail -c 600 "$work/big.err")"
  elif ! cmp -s "$work/big.ref" "$work/big.out"; then
    bad "big model under cgroup: ids differ: $(cat "$work/big.ref") vs $(cat "$work/big.out")"
  else
    ok "big model under cgroup limit: $(grep -h 'cgroup_run:' "$work/big.err" | tail -n1)"
    grep -h "hit rate" "$work/big.err" | sed 's/^/  /'
  fi
else
  bad "big model: forge failed: $(head -c 300 "$work/forge.err")"
fi

# ---- 3. faults: an injected read error and a truncated file
m="$work/qwen3moe.gguf"
mem=$(budget_for "$m" 0.3)
SWAPMOE_FAULT_READ=3 timeout 120 "$swapmoe" run "$m" -p "Once upon a time" -n 8 --temp 0 --ctx 256 -t "$threads" \
  --mem "$mem" > /dev/null 2> "$work/fault.err"
rc=$?
if [ $rc -eq 1 ] && grep -q "^swapmoe: error: .*$m" "$work/fault.err"; then ok "injected read fault: $(head -c 300 "$work/fault.err")"
else bad "injected read fault: rc $rc, stderr: $(head -c 400 "$work/fault.err")"; fi
t="$work/trunc.gguf"
head -c $(( $(stat -c %s "$m") - 100000 )) "$m" > "$t"
timeout 120 "$swapmoe" run "$t" -p "Once upon a time" -n 8 --temp 0 --ctx 256 -t "$threads" --mem "$mem" \
  > /dev/null 2> "$work/trunc.err"
rc=$?
if [ $rc -eq 1 ] && grep -q "^swapmoe: error: .*trunc.gguf" "$work/trunc.err"; then ok "truncated file: $(head -c 300 "$work/trunc.err")"
else bad "truncated file: rc $rc, stderr: $(head -c 400 "$work/trunc.err")"; fi
# A budget below the minimum is refused before loading, with the numbers.
timeout 60 "$swapmoe" run "$m" -p "x" -n 1 --ctx 256 --mem 1M > /dev/null 2> "$work/small.err"
if grep -q "needs at least" "$work/small.err"; then ok "budget too small: $(head -c 300 "$work/small.err")"
else bad "budget too small: $(head -c 300 "$work/small.err")"; fi

[ $fails -eq 0 ] && { echo "test_budget: all passed"; exit 0; }
echo "test_budget: $fails failure(s)" >&2
exit 1
