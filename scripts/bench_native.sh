#!/usr/bin/env bash
# Resident prefill and decode of swapmoe against llama.cpp built natively
# (scripts/build_llama_native.sh: llama-bench, GGML_NATIVE=ON), side by side in one run:
#
#   llama.cpp: llama-bench -m MODEL -t THREADS -p 512 -n 32 -r 1           -> pp512, tg32 (depth 0)
#              llama-bench -m MODEL -t THREADS -p 0 -n 32 -d 512 -r 1      -> tg32 @ d512
#   swapmoe:   swapmoe run MODEL -p <512-token text> -n 32 --threads THREADS  -> prefill, decode at depth 512..543
#              swapmoe run MODEL -p "Hello" -n 33 --threads THREADS            -> decode at depth 1..33
#
# R alternating rounds (the engine that goes first alternates), medians, ratios swapmoe /
# llama.cpp. Also decode's effective bandwidth: bytes of weights one token touches (every
# tensor once, n_expert_used / n_expert of the routed experts, one row of token_embd:
# scripts/gguf_decode_bytes.py) x decode tok/s, against the machine's read bandwidth measured
# here (scripts/bench_membw.cpp, THREADS threads each reading its own 1 GiB, best of 5).
#
#   scripts/bench_native.sh MODEL [MODEL...]
#
# Environment: R=3, THREADS=2, PROMPT_TOKENS=512, N=32, DEPTH=512 (llama-bench's -d; swapmoe's
# decode after its PROMPT_TOKENS prompt), LLAMA_BIN (directory of llama-bench; default: the
# path in /work/notes/llama-native.txt, else /work/llama-native/build/bin), DRIVER=1 adds the
# prebuilt node-llama-cpp libraries through tools/llama-driver as a second llama.cpp column
# (prefill, and decode after the prompt), LOCK=FILE (flock held for each single run),
# NEED_GIB (a run starts only when MemAvailable >= NEED_GIB; it waits up to WAIT_S=900 s,
# then the run is skipped), SWAPMOE, LLAMA_DRIVER (scripts/bench_lib.sh), BENCH_LOG_DIR.
# llama.cpp runs in its default mode (mmap, weight repacking on), as a user would run it.
set -uo pipefail
. "$(dirname "$0")/bench_lib.sh"

[ $# -ge 1 ] || { sed -n '2,26p' "$0" >&2; exit 2; }
R=${R:-3}; THREADS=${THREADS:-2}; PROMPT_TOKENS=${PROMPT_TOKENS:-512}; N=${N:-32}; DEPTH=${DEPTH:-512}
LOCK=${LOCK:-}; NEED_GIB=${NEED_GIB:-0}; WAIT_S=${WAIT_S:-900}; DRIVER=${DRIVER:-0}
if [ -z "${LLAMA_BIN:-}" ]; then
  LLAMA_BIN=/work/llama-native/build/bin
  [ -f /work/notes/llama-native.txt ] && LLAMA_BIN=$(dirname "$(head -1 /work/notes/llama-native.txt)")
fi
[ -x "$LLAMA_BIN/llama-bench" ] || bench_die "no $LLAMA_BIN/llama-bench: run scripts/build_llama_native.sh (or set LLAMA_BIN)"
bench_find_binaries
logs=${BENCH_LOG_DIR:-$(mktemp -d /tmp/bench_native.XXXXXX)}
mkdir -p "$logs"

avail_gib() { awk '/MemAvailable/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo; }
enough_mem() { awk -v a="$(avail_gib)" -v n="$NEED_GIB" 'BEGIN { exit !(a + 0 >= n + 0) }'; }
# Runs "$@" holding $LOCK (when set) once NEED_GIB GiB are available; rc 99 = skipped.
locked() {
  [ -n "$LOCK" ] && { exec 9> "$LOCK"; flock 9; }
  local rc=0 waited=0
  while ! enough_mem && [ "$waited" -lt "$WAIT_S" ]; do sleep 15; waited=$((waited + 15)); done
  if enough_mem; then "$@"; rc=$?
  else echo "skipped: $(avail_gib) GiB available, NEED_GIB=$NEED_GIB" >&2; rc=99; fi
  [ -n "$LOCK" ] && { flock -u 9; exec 9>&-; }
  return $rc
}
# A field of llama-bench's JSON output for the test with the given n_prompt/n_gen/n_depth.
lb_ts() {  # FILE N_PROMPT N_GEN N_DEPTH
  python3 - "$@" <<'EOF'
import json, sys
f, p, g, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
try:
    rows = json.load(open(f))
except Exception:
    sys.exit(0)
for r in rows:
    if r.get("n_prompt") == p and r.get("n_gen") == g and r.get("n_depth", 0) == d:
        print("%.2f" % r["avg_ts"]); break
EOF
}

# The machine's read bandwidth, as decode sees it: THREADS threads streaming from memory.
membw_bin=$logs/membw
g++ -std=c++20 -O2 -march=native "$bench_root/scripts/bench_membw.cpp" -pthread -o "$membw_bin" || bench_die "cannot build bench_membw"
membw() { "$membw_bin" "$THREADS" 1024 5 2> /dev/null; }

ctx=$(( (PROMPT_TOKENS + N + 256) / 256 * 256 ))
echo "# bench_native: R=$R threads=$THREADS prompt=$PROMPT_TOKENS generate=$N depth=$DEPTH, logs $logs"
bench_machine_state
echo "llama.cpp native: $LLAMA_BIN/llama-bench ($(git -C "$LLAMA_BIN/../../src" rev-parse --short HEAD 2>/dev/null), GGML_NATIVE=ON, default mode: mmap + repack)"
bw_before=$(membw)
echo "memory read bandwidth ($THREADS threads): $bw_before GB/s"
table=(); bwtable=()
for model in "$@"; do
  [ -f "$model" ] || bench_die "no such model: $model"
  name=$(basename "$model" .gguf)
  read -r touched _ _ _ _ _ < <(python3 "$bench_root/scripts/gguf_decode_bytes.py" "$model")
  pfile=$logs/$name.prompt.txt
  bench_prompt_file "$model" "$PROMPT_TOKENS" "$pfile"
  s_pp=(); s_tg=(); s_tgd=(); l_pp=(); l_tg=(); l_tgd=(); d_pp=(); d_tgd=()
  engines="swapmoe llama"; [ "$DRIVER" = 1 ] && engines="swapmoe llama driver"
  for r in $(seq 1 "$R"); do
    set -- $engines
    case $(( (r - 1) % $# )) in 0) order="$*" ;; 1) order="${*:2} $1" ;; *) order="${*: -1} ${*:1:$#-1}" ;; esac
    for eng in $order; do
      log=$logs/$name.$eng.$r
      case $eng in
        swapmoe)
          locked "$SWAPMOE" run "$model" -p "$(cat "$pfile")" -n "$N" --temp 0 --threads "$THREADS" --ctx "$ctx" \
            --print-ids > "$log.a.out" 2> "$log.a.log"
          locked "$SWAPMOE" run "$model" -p "Hello" -n $((N + 1)) --temp 0 --threads "$THREADS" --ctx "$ctx" \
            --print-ids > "$log.b.out" 2> "$log.b.log"
          pp=$(bench_swapmoe_prompt_tps < "$log.a.log"); tgd=$(bench_swapmoe_decode_tps < "$log.a.log")
          tg=$(bench_swapmoe_decode_tps < "$log.b.log")
          [ -n "$pp" ] && s_pp+=("$pp"); [ -n "$tgd" ] && s_tgd+=("$tgd"); [ -n "$tg" ] && s_tg+=("$tg") ;;
        llama)
          locked "$LLAMA_BIN/llama-bench" -m "$model" -t "$THREADS" -p "$PROMPT_TOKENS" -n "$N" -r 1 -o json \
            > "$log.a.json" 2> "$log.a.log"
          locked "$LLAMA_BIN/llama-bench" -m "$model" -t "$THREADS" -p 0 -n "$N" -d "$DEPTH" -r 1 -o json \
            > "$log.b.json" 2> "$log.b.log"
          pp=$(lb_ts "$log.a.json" "$PROMPT_TOKENS" 0 0); tg=$(lb_ts "$log.a.json" 0 "$N" 0)
          tgd=$(lb_ts "$log.b.json" 0 "$N" "$DEPTH")
          [ -n "$pp" ] && l_pp+=("$pp"); [ -n "$tgd" ] && l_tgd+=("$tgd"); [ -n "$tg" ] && l_tg+=("$tg") ;;
        driver)
          locked "$LLAMA_DRIVER" -m "$model" --prompt-file "$pfile" -n "$N" --threads "$THREADS" --ctx "$ctx" --mmap \
            > "$log.out" 2> "$log.log"
          pp=$(bench_json prompt_tps < "$log.out"); tgd=$(bench_json decode_tps < "$log.out"); tg=""
          [ -n "$pp" ] && d_pp+=("$pp"); [ -n "$tgd" ] && d_tgd+=("$tgd") ;;
      esac
      printf '%-26s run %d %-7s prefill %7s  decode d0 %6s  decode d%d %6s tok/s  (load %s, %s GiB available)\n' \
        "$name" "$r" "$eng" "${pp:--}" "${tg:--}" "$DEPTH" "${tgd:--}" "$(cut -d' ' -f1 /proc/loadavg)" "$(avail_gib)"
    done
  done
  spp=$(bench_median "${s_pp[@]}"); stg=$(bench_median "${s_tg[@]}"); stgd=$(bench_median "${s_tgd[@]}")
  lpp=$(bench_median "${l_pp[@]}"); ltg=$(bench_median "${l_tg[@]}"); ltgd=$(bench_median "${l_tgd[@]}")
  row="| $name | $spp | $lpp | **$(bench_ratio "$spp" "$lpp")** | $stg | $ltg | **$(bench_ratio "$stg" "$ltg")** | $stgd | $ltgd | **$(bench_ratio "$stgd" "$ltgd")** |"
  if [ "$DRIVER" = 1 ]; then
    dpp=$(bench_median "${d_pp[@]}"); dtgd=$(bench_median "${d_tgd[@]}")
    row="$row $dpp | $dtgd |"
  fi
  table+=("$row")
  bwtable+=("$name $touched $stg $ltg $stgd $ltgd")
  echo "$name: prefill $spp / $lpp, decode $stg / $ltg, decode at depth $DEPTH $stgd / $ltgd (swapmoe / llama.cpp native, medians)"
done
bw_after=$(membw)
bw=$(bench_median "$bw_before" "$bw_after")
echo
echo "| model | swapmoe prefill | llama.cpp pp$PROMPT_TOKENS | ratio | swapmoe decode | llama.cpp tg$N | ratio | swapmoe decode @$DEPTH | llama.cpp tg$N @ d$DEPTH | ratio |$([ "$DRIVER" = 1 ] && echo " prebuilt llama.cpp prefill | prebuilt decode @$PROMPT_TOKENS |")"
echo "|---|---|---|---|---|---|---|---|---|---|$([ "$DRIVER" = 1 ] && echo "---|---|")"
printf '%s\n' "${table[@]}"
echo "(tok/s, medians of $R alternating runs, $THREADS threads; ratio = swapmoe / llama.cpp)"
echo
echo "Decode's effective bandwidth = weight bytes touched per token x tok/s (GB/s), against the memory"
echo "read bandwidth measured before and after ($bw_before, $bw_after GB/s; mean $bw GB/s, $THREADS threads):"
echo "| model | GB touched per token | swapmoe d0 | llama.cpp d0 | swapmoe d$DEPTH | llama.cpp d$DEPTH |"
echo "|---|---|---|---|---|---|"
# GB/s and, in parentheses, the fraction of the measured read bandwidth.
gb() { awk -v b="$1" -v t="$2" -v m="$bw" 'BEGIN { if (t == "-" || t == "") print "-"; else printf "%.1f (%.2f)", b * t / 1e9, b * t / 1e9 / m }'; }
for row in "${bwtable[@]}"; do
  read -r n t a b c d <<< "$row"
  echo "| $n | $(awk -v b="$t" 'BEGIN { printf "%.2f", b / 1e9 }') | $(gb "$t" "$a") | $(gb "$t" "$b") | $(gb "$t" "$c") | $(gb "$t" "$d") |"
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
