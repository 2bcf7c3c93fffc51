#!/usr/bin/env bash
# Aggregate decode tokens/s with 1, 2, 4, 8 concurrent streaming clients: `swapmoe serve
# --parallel N` against llama.cpp's `llama-server -np N` (built natively,
# scripts/build_llama_native.sh), the same prompt set, greedy, THREADS threads each.
#
#   scripts/bench_serve.sh MODEL [resident|cgroup]
#
# resident: both engines in their default mode (llama.cpp: mmap + weight repacking).
# cgroup:   each server inside scripts/cgroup_run.sh LIMIT (page cache dropped first);
#           swapmoe with --mem LIMIT, llama.cpp with mmap and --no-repack (its default repack
#           is OOM-killed there).
# For each (round, N, engine) a fresh server is started with N slots (context CTX_PER_SLOT x
# N), N clients (scripts/bench_serve_clients.py) stream MAX_TOKENS tokens each (or stop at
# DEADLINE seconds), and the server is stopped. Aggregate decode tok/s = tokens after each
# client's first / span from the first client's first token to the last client's last token.
# MiB read per generated token = the server's /proc/PID/io read_bytes over the client run /
# tokens generated (storage reads of the whole process: O_DIRECT expert reads for swapmoe,
# page-cache misses of the mmap for llama.cpp), printed next to what routing allows: with
# uniform routing of k of E experts, N tokens of one step need E (1 - (1 - k/E)^N) distinct
# experts per layer, so a step that read each needed expert once for all its tokens would read
# that / (N k) of N single-token steps (N=4 at 8 of 128: 29.1 of 32, 0.91).
#
# Environment: R=2 rounds (engine order alternates), CLIENTS="1 2 4 8", THREADS=2,
# MAX_TOKENS=32, DEADLINE=180, CTX_PER_SLOT=256, LIMIT=6G, ENGINES="swapmoe llama",
# LLAMA_BIN (see scripts/bench_native.sh), LOCK=FILE and NEED_GIB (held / required for each
# server's lifetime), PORT=18080, SWAPMOE, BENCH_LOG_DIR. Needs root for the cgroup mode.
set -uo pipefail
. "$(dirname "$0")/bench_lib.sh"

[ $# -ge 1 ] || { sed -n '2,27p' "$0" >&2; exit 2; }
model=$1; mode=${2:-resident}
case "$mode" in resident|cgroup) ;; *) bench_die "mode must be resident or cgroup" ;; esac
[ -f "$model" ] || bench_die "no such model: $model"
R=${R:-2}; CLIENTS=${CLIENTS:-1 2 4 8}; THREADS=${THREADS:-2}; MAX_TOKENS=${MAX_TOKENS:-32}; DEADLINE=${DEADLINE:-180}
CTX_PER_SLOT=${CTX_PER_SLOT:-256}; LIMIT=${LIMIT:-6G}; ENGINES=${ENGINES:-swapmoe llama}; PORT=${PORT:-18080}
LOCK=${LOCK:-}; NEED_GIB=${NEED_GIB:-0}
if [ -z "${LLAMA_BIN:-}" ]; then
  LLAMA_BIN=/work/llama-native/build/bin
  [ -f /work/notes/llama-native.txt ] && LLAMA_BIN=$(dirname "$(head -1 /work/notes/llama-native.txt)")
fi
[ -x "$LLAMA_BIN/llama-server" ] || bench_die "no $LLAMA_BIN/llama-server: run scripts/build_llama_native.sh (or set LLAMA_BIN)"
if [ -z "${SWAPMOE:-}" ]; then SWAPMOE=$bench_root/build/swapmoe; fi
[ -x "$SWAPMOE" ] || bench_die "SWAPMOE=$SWAPMOE is not executable"
logs=${BENCH_LOG_DIR:-$(mktemp -d /tmp/bench_serve.XXXXXX)}
mkdir -p "$logs"
name=$(basename "$model" .gguf)
read -r _ expert_bytes _ _ n_exp n_used < <(python3 "$bench_root/scripts/gguf_decode_bytes.py" "$model")

# The prompt set: one short English prompt per client (the same for both engines).
prompts=$logs/prompts.txt
cat > "$prompts" <<'EOF'
The history of the printing press begins in the fifteenth century, when
A good recipe for bread needs only flour, water, salt and yeast, but the
In the morning the harbour was quiet, and the fishing boats lay at anchor while
The first rule of writing a clear report is to say what you measured and
Mountains form where two plates of the earth's crust push against each other, and
She opened the old wooden box and found a letter addressed to her grandmother, which
Compilers translate source code into machine code in several stages: first the
The train to the coast left at seven, and by the time it reached the river valley
EOF

avail_gib() { awk '/MemAvailable/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo; }
server_pid=""; wrapper_pid=""
# The PID of the process listening on PORT (the server itself, also inside cgroup_run.sh).
listener_pid() { ss -Htlnp "sport = :$PORT" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1; }
read_bytes() { awk '/^read_bytes:/ { print $2 }' "/proc/$1/io" 2>/dev/null || echo 0; }
start_server() {  # ENGINE N LOG
  local eng=$1 n=$2 log=$3 cmd
  # A fresh port each time: the previous server's closed connections sit in TIME_WAIT on its
  # port, and a server that does not set SO_REUSEADDR cannot bind it again for a minute.
  PORT=$((PORT + 1))
  if [ "$eng" = swapmoe ]; then
    cmd=("$SWAPMOE" serve "$model" --threads "$THREADS" --parallel "$n" --ctx $((CTX_PER_SLOT * n)) --port "$PORT")
    [ "$mode" = cgroup ] && cmd+=(--mem "$LIMIT")
  else
    cmd=("$LLAMA_BIN/llama-server" -m "$model" -t "$THREADS" -np "$n" -c $((CTX_PER_SLOT * n)) --port "$PORT"
         --host 127.0.0.1 --no-webui)
    [ "$mode" = cgroup ] && cmd+=(--mmap --no-repack)
  fi
  if [ "$mode" = cgroup ]; then cmd=("$bench_root/scripts/cgroup_run.sh" "$LIMIT" -- "${cmd[@]}"); fi
  echo "${cmd[*]}" > "$log"
  "${cmd[@]}" >> "$log" 2>&1 &
  wrapper_pid=$!
  local t=0
  # Ready when /health answers 200 (llama-server answers 503 while loading).
  while [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")" != 200 ]; do
    kill -0 "$wrapper_pid" 2> /dev/null || { echo "server exited during start-up (see $log)" >&2; return 1; }
    sleep 2; t=$((t + 2))
    [ "$t" -gt 900 ] && { echo "server not ready after 900 s" >&2; return 1; }
  done
  server_pid=$(listener_pid)
}
stop_server() {
  [ -n "$wrapper_pid" ] || return 0
  kill "$wrapper_pid" 2> /dev/null
  [ -n "$server_pid" ] && [ "$server_pid" != "$wrapper_pid" ] && kill "$server_pid" 2> /dev/null
  wait "$wrapper_pid" 2> /dev/null
  wrapper_pid=""; server_pid=""
  while [ -n "$(listener_pid)" ]; do sleep 1; done
}
trap stop_server EXIT

echo "# bench_serve: $name, $mode$([ "$mode" = cgroup ] && echo " $LIMIT"), R=$R clients {$CLIENTS} threads=$THREADS" \
     "max_tokens=$MAX_TOKENS deadline=${DEADLINE}s, logs $logs"
echo "machine: $(nproc) cores, $(avail_gib) GiB available, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "swapmoe: $SWAPMOE ($(git -C "$bench_root" rev-parse --short HEAD 2>/dev/null)); llama.cpp: $LLAMA_BIN/llama-server (native)"
declare -A tps mib
for r in $(seq 1 "$R"); do
  for n in $CLIENTS; do
    set -- $ENGINES
    if [ $((r % 2)) = 0 ] && [ $# -gt 1 ]; then order="$2 $1"; else order="$*"; fi
    for eng in $order; do
      log=$logs/$name.$mode.$eng.n$n.r$r
      [ -n "$LOCK" ] && { exec 9> "$LOCK"; flock 9; }
      if ! awk -v a="$(avail_gib)" -v need="$NEED_GIB" 'BEGIN { exit !(a + 0 >= need + 0) }'; then
        echo "N=$n $eng round $r skipped: $(avail_gib) GiB available, NEED_GIB=$NEED_GIB"
        [ -n "$LOCK" ] && { flock -u 9; exec 9>&-; }
        continue
      fi
      if start_server "$eng" "$n" "$log.server.log"; then
        b0=$(read_bytes "$server_pid")
        python3 "$bench_root/scripts/bench_serve_clients.py" --url "http://127.0.0.1:$PORT" --clients "$n" \
          --max-tokens "$MAX_TOKENS" --prompts "$prompts" --deadline "$DEADLINE" $([ "$eng" = llama ] && echo --llama) > "$log.json" 2> "$log.err"
        b1=$(read_bytes "$server_pid")
        [ "$eng" = swapmoe ] && curl -s "http://127.0.0.1:$PORT/metrics" > "$log.metrics"
      else
        b0=0; b1=0; : > "$log.json"
      fi
      stop_server
      [ -n "$LOCK" ] && { flock -u 9; exec 9>&-; }
      agg=$(grep -o '"agg_decode_tps": [0-9.]*' "$log.json" | awk '{ print $2 }')
      tok=$(grep -o '"tokens": [0-9]*' "$log.json" | awk '{ print $2 }')
      m=$(awk -v a="$b0" -v b="$b1" -v t="${tok:-0}" 'BEGIN { if (t > 0) printf "%.1f", (b - a) / 1048576 / t; else print "-" }')
      [ -n "$agg" ] && tps[$eng.$n]="${tps[$eng.$n]:-} $agg"
      [ "$m" != "-" ] && mib[$eng.$n]="${mib[$eng.$n]:-} $m"
      printf 'round %d N=%d %-7s aggregate %8s tok/s  tokens %4s  read %7s MiB/token  (load %s)\n' "$r" "$n" "$eng" \
        "${agg:--}" "${tok:--}" "$m" "$(cut -d' ' -f1 /proc/loadavg)"
    done
  done
done

echo
echo "| N clients | swapmoe tok/s | llama-server tok/s | ratio | swapmoe MiB read/token | llama.cpp MiB read/token | distinct experts/layer/step (uniform) | routing allows (x N=1 reads) |"
echo "|---|---|---|---|---|---|---|---|"
s1=""
for n in $CLIENTS; do
  st=$(bench_median ${tps[swapmoe.$n]:-}); lt=$(bench_median ${tps[llama.$n]:-})
  sm=$(bench_median ${mib[swapmoe.$n]:-}); lm=$(bench_median ${mib[llama.$n]:-})
  [ -z "$s1" ] && s1=$st
  dist=$(awk -v e="$n_exp" -v k="$n_used" -v n="$n" 'BEGIN { printf "%.1f", e * (1 - (1 - k / e) ^ n) }')
  frac=$(awk -v e="$n_exp" -v k="$n_used" -v n="$n" 'BEGIN { printf "%.2f", e * (1 - (1 - k / e) ^ n) / (n * k) }')
  echo "| $n | $st | $lt | **$(bench_ratio "$st" "$lt")** | $sm | $lm | $dist of $((n * n_used)) | $frac |"
done
echo "(medians of $R rounds; aggregate = all clients' decode tokens / time; swapmoe N / swapmoe N=1:" \
     "$(for n in $CLIENTS; do printf '%s ' "$(bench_ratio "$(bench_median ${tps[swapmoe.$n]:-})" "$s1")"; done))"
echo "one expert (gate+up+down, all layers together): $(awk -v b="$expert_bytes" -v e="$n_exp" 'BEGIN { printf "%.2f MiB", b / e / 1048576 }'); $n_exp experts, $n_used used per token and layer"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
