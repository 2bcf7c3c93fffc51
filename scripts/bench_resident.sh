#!/usr/bin/env bash
# Kernel comparison, everything resident: prefill and decode tokens/s of swapmoe against
# the prebuilt llama.cpp of node-llama-cpp (through tools/llama-driver), same threads, same
# prompt text, greedy, medians of R alternating runs, ratios swapmoe / llama.cpp.
#
#   scripts/bench_resident.sh MODEL [MODEL...]
#
# Environment: R=3 runs per engine, THREADS=2, PROMPT_TOKENS=512, N=32 tokens generated
# (N-1 decode passes are timed), LLAMA_MODE=default|no-mmap (default: llama.cpp's own
# default, mmap with weight repacking on; no-mmap reads the weights into memory, repacking
# on), SWAPMOE, LLAMA_DRIVER (see scripts/bench_lib.sh). Per-run output lines are kept in
# $BENCH_LOG_DIR (default: a temporary directory, printed).
set -uo pipefail
. "$(dirname "$0")/bench_lib.sh"

[ $# -ge 1 ] || { sed -n '2,14p' "$0" >&2; exit 2; }
LOCK=${LOCK:-}
R=${R:-3}; THREADS=${THREADS:-2}; PROMPT_TOKENS=${PROMPT_TOKENS:-512}; N=${N:-32}; LLAMA_MODE=${LLAMA_MODE:-default}
case "$LLAMA_MODE" in
  default) llama_flags=(--mmap) ;;
  no-mmap) llama_flags=(--no-mmap) ;;
  *) bench_die "LLAMA_MODE must be default or no-mmap" ;;
esac
bench_find_binaries
NEED_GIB=${NEED_GIB:-0}
avail_gib() { awk '/MemAvailable/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo; }
# Runs "$@" holding $LOCK (when set), if NEED_GIB GiB are available then; rc 99 = skipped.
locked() {
  [ -n "$LOCK" ] && { exec 9> "$LOCK"; flock 9; }
  local rc=0
  if awk -v a="$(avail_gib)" -v n="$NEED_GIB" 'BEGIN { exit !(a + 0 >= n + 0) }'; then "$@"; rc=$?
  else echo "skipped: $(avail_gib) GiB available, NEED_GIB=$NEED_GIB" >&2; rc=99; fi
  [ -n "$LOCK" ] && { flock -u 9; exec 9>&-; }
  return $rc
}
logs=${BENCH_LOG_DIR:-$(mktemp -d /tmp/bench_resident.XXXXXX)}
mkdir -p "$logs"
ctx=$(( (PROMPT_TOKENS + N + 256) / 256 * 256 ))

echo "# bench_resident: R=$R threads=$THREADS prompt=$PROMPT_TOKENS tokens, generate=$N, llama.cpp mode=$LLAMA_MODE, logs $logs"
bench_machine_state
summary=()
for model in "$@"; do
  [ -f "$model" ] || bench_die "no such model: $model"
  name=$(basename "$model" .gguf)
  pfile=$logs/$name.prompt.txt
  bench_prompt_file "$model" "$PROMPT_TOKENS" "$pfile"
  sm_pp=(); sm_tg=(); ll_pp=(); ll_tg=()
  for r in $(seq 1 "$R"); do
    # Alternate which engine goes first, so slow drifts of the shared machine hit both.
    if [ $((r % 2)) = 1 ]; then order="swapmoe llama"; else order="llama swapmoe"; fi
    for eng in $order; do
      log=$logs/$name.$eng.$r.log
      if [ "$eng" = swapmoe ]; then
        locked "$SWAPMOE" run "$model" -p "$(cat "$pfile")" -n "$N" --temp 0 --threads "$THREADS" --ctx "$ctx" --print-ids \
          > "$log.out" 2> "$log"
        rc=$?
        pp=$(bench_swapmoe_prompt_tps < "$log"); tg=$(bench_swapmoe_decode_tps < "$log")
        pn=$(bench_swapmoe_prompt_n < "$log")
        [ "$rc" = 0 ] && [ -n "$pp" ] && { sm_pp+=("$pp"); sm_tg+=("$tg"); }
      else
        locked "$LLAMA_DRIVER" -m "$model" --prompt-file "$pfile" -n "$N" --threads "$THREADS" --ctx "$ctx" \
          "${llama_flags[@]}" > "$log.out" 2> "$log"
        rc=$?
        pp=$(bench_json prompt_tps < "$log.out"); tg=$(bench_json decode_tps < "$log.out")
        pn=$(bench_json prompt_tokens < "$log.out")
        [ "$rc" = 0 ] && [ -n "$pp" ] && { ll_pp+=("$pp"); ll_tg+=("$tg"); }
      fi
      printf '%-28s run %d %-8s rc %-3s prompt %4s tok  prefill %8s tok/s  decode %8s tok/s  (load %s)\n' \
        "$name" "$r" "$eng" "$rc" "${pn:-?}" "${pp:--}" "${tg:--}" "$(cut -d' ' -f1 /proc/loadavg)"
    done
  done
  mpp=$(bench_median "${sm_pp[@]}"); mtg=$(bench_median "${sm_tg[@]}")
  lpp=$(bench_median "${ll_pp[@]}"); ltg=$(bench_median "${ll_tg[@]}")
  summary+=("$(printf '| %s | %s | %s | %s | %s | %s | %s | %s |' "$name" "$mpp" "$lpp" "$(bench_ratio "$mpp" "$lpp")" \
    "$mtg" "$ltg" "$(bench_ratio "$mtg" "$ltg")" "$(cut -d' ' -f1-3 /proc/loadavg)")")
  echo "$name: prefill ratio $(bench_ratio "$mpp" "$lpp") ($mpp / $lpp tok/s), decode ratio $(bench_ratio "$mtg" "$ltg") ($mtg / $ltg tok/s), medians of ${#sm_pp[@]} / ${#ll_pp[@]} runs"
done
echo
echo "| model | swapmoe prefill tok/s | llama.cpp prefill tok/s | ratio | swapmoe decode tok/s | llama.cpp decode tok/s | ratio | load average |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${summary[@]}"
echo "(medians of $R runs; ratio = swapmoe / llama.cpp; load average at end $(cut -d' ' -f1-3 /proc/loadavg))"
