#!/usr/bin/env bash
# End-to-end tests of what makes swapmoe different, on the shipped demo model (64 experts per
# layer, top-2) under a --mem budget below the file's size (CTest label "e2e"):
#  1. read engines: `--io uring`, `--io pread` and `--io auto` give the resident model's greedy
#     ids, and the statistics line names the engine that ran and its hit rate; with io_uring
#     refused by the kernel (swapmoe-no-uring, a seccomp filter) `--io auto` falls back to the
#     pread pool with a note and the same ids, and `--io uring` fails cleanly;
#  2. prefetch: where `swapmoe plan` streams experts, the run reports predictions issued and
#     prefetched experts used (> 0), and `--no-prefetch` turns it off with the same ids;
#  3. `--policy swapmoe --exactness 0` is exact: same ids as the resident model, same eval nll
#     (also with a profile from `swapmoe profile`);
#  4. `sweep` on a tiny grid (exact and swapmoe τ=0 points have ppl ratio 1 and top-1 100%),
#     `bench` (throughput and cache figures), `chat` scripted through a pipe;
#  5. `serve --mem` and `serve --mem --policy swapmoe --exactness 0` with concurrent clients:
#     every greedy completion equals `run`'s text, and the cache figures are served.
# SwapMoE's pure mode (τ > 0) is not checked for determinism here (its swap schedule is timing
# dependent for now).
#
# Usage: scripts/test_e2e.sh [BUILD_DIR]   needs swapmoe, swapmoe-no-uring, curl, python3.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
swapmoe="$build/swapmoe"
nouring="$build/swapmoe-no-uring"
. "$root/scripts/skip.sh"
model="$root/models/fortunes-moe.gguf"
mem=20M
threads=2
prompt="Der Computer ist"
n=24
fails=0
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
for exe in "$swapmoe" "$nouring"; do [ -x "$exe" ] || { echo "test_e2e: $exe not built" >&2; exit 1; }; done
[ -f "$model" ] || { echo "test_e2e: $model missing" >&2; exit 1; }
for tool in curl python3; do
  if ! command -v "$tool" >/dev/null; then
    swapmoe_skip "$tool" "test_e2e needs $tool (scripts/install-deps.sh installs it)" && exit 77
    exit 1
  fi
done
work=$(mktemp -d "${TMPDIR:-/tmp}/swapmoe-e2e.XXXXXX")
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
head -c 6000 "$root/models/fortunes-moe-test.txt" > "$work/text.txt"

# stats FILE: the "--mem ..." statistics line of a run's stderr.
stats() { grep -h -- "--mem $mem" "$1" | tail -n 1; }
# run_ids NAME [--no-uring] [ARGS...]: greedy ids of `swapmoe run ... ARGS` into $work/NAME.ids,
# stderr into $work/NAME.err; --no-uring runs it with io_uring refused by the kernel.
run_ids() {
  local name=$1 wrap=(); shift
  if [ "${1:-}" = --no-uring ]; then wrap=("$nouring"); shift; fi
  timeout 300 "${wrap[@]}" "$swapmoe" run "$model" -p "$prompt" -n $n --temp 0 --print-ids -t $threads "$@" \
    > "$work/$name.ids" 2> "$work/$name.err"
}
same_ids() {  # same_ids NAME WHAT
  if [ -s "$work/$1.ids" ] && cmp -s "$work/ref.ids" "$work/$1.ids"; then return 0; fi
  bad "$2: ids differ from the resident model: $(cat "$work/$1.ids") vs $(cat "$work/ref.ids"): $(tail -c 300 "$work/$1.err")"
  return 1
}

run_ids ref || bad "resident run failed: $(tail -c 300 "$work/ref.err")"
expected_text=$(timeout 300 "$swapmoe" run "$model" -p "$prompt" -n 16 --temp 0 -t $threads 2> /dev/null)

# ---- 1. read engines
for io in uring pread auto; do
  run_ids "io-$io" --mem $mem --io $io || { bad "--io $io: rc $?: $(tail -c 300 "$work/io-$io.err")"; continue; }
  line=$(stats "$work/io-$io.err")
  want=$([ $io = pread ] && echo pread || echo io_uring)
  if same_ids "io-$io" "--io $io" && [[ "$line" == *"--mem $mem, $want: hit rate "* ]]; then
    ok "--io $io: same ids; $(echo "$line" | cut -d'|' -f1)"
  else
    [ -n "$line" ] && [[ "$line" != *"$want: hit rate "* ]] && bad "--io $io: statistics line does not name $want with a hit rate: $line"
  fi
done
run_ids fallback --no-uring --mem $mem --io auto
rc=$?
if [ $rc -eq 125 ]; then
  swapmoe_skip seccomp "io_uring fallback: $(cat "$work/fallback.err")" || bad "io_uring fallback not tested"
elif [ $rc -ne 0 ]; then
  bad "--io auto without io_uring: rc $rc: $(tail -c 300 "$work/fallback.err")"
else
  line=$(stats "$work/fallback.err")
  if same_ids fallback "--io auto without io_uring" && grep -q "note: io_uring_queue_init failed.*using a pool of pread threads" "$work/fallback.err" &&
      [[ "$line" == *"--mem $mem, pread: hit rate "* ]]; then
    ok "--io auto without io_uring falls back to pread: same ids; $(echo "$line" | cut -d'|' -f1)"
  else
    bad "--io auto without io_uring: no fallback note or no pread statistics: $(tail -c 400 "$work/fallback.err")"
  fi
  run_ids forced-uring --no-uring --mem $mem --io uring
  rc=$?
  if [ $rc -eq 1 ] && grep -q "^swapmoe: error: .*io_uring" "$work/forced-uring.err"; then
    ok "--io uring without io_uring: clean error ($(head -n 1 "$work/forced-uring.err" | cut -c1-100))"
  else
    bad "--io uring without io_uring: rc $rc (want 1 and an error line): $(tail -c 300 "$work/forced-uring.err")"
  fi
fi

# ---- 2. prefetch
"$swapmoe" plan "$model" --mem $mem --json > "$work/plan.json" 2> "$work/plan.err" || bad "plan failed: $(cat "$work/plan.err")"
# The plan streams experts (and so prefetches: on by default in exact mode) when they do not all fit.
plan_prefetch=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(not d["all_experts_fit"])' "$work/plan.json" 2>&1)
line=$(stats "$work/io-auto.err")
issued=$(echo "$line" | sed -n 's/.*prefetch accuracy [0-9.]*% (issued \([0-9]*\), used \([0-9]*\)[,)].*/\1/p')
used=$(echo "$line" | sed -n 's/.*prefetch accuracy [0-9.]*% (issued \([0-9]*\), used \([0-9]*\)[,)].*/\2/p')
if [ "$plan_prefetch" != True ] && [ "$plan_prefetch" != true ]; then
  bad "plan --json says every expert fits at --mem $mem (nothing to stream or prefetch): $plan_prefetch"
elif [ -n "$issued" ] && [ -n "$used" ] && [ "$issued" -gt 0 ] && [ "$used" -gt 0 ]; then
  ok "prefetch on (plan) and used: issued $issued, used $used ($(echo "$line" | grep -o 'prefetch accuracy [0-9.]*%'))"
else
  bad "prefetch not reported as issued and used: $line"
fi
run_ids noprefetch --mem $mem --no-prefetch || bad "--no-prefetch: $(tail -c 300 "$work/noprefetch.err")"
if same_ids noprefetch "--no-prefetch" && [[ "$(stats "$work/noprefetch.err")" == *"prefetch accuracy off"* ]]; then
  ok "--no-prefetch: same ids, prefetch reported off"
else
  bad "--no-prefetch: prefetch not reported off: $(stats "$work/noprefetch.err")"
fi

# ---- 3. SwapMoE at τ = 0 is exact
run_ids sm0 --mem $mem --policy swapmoe --exactness 0 || bad "swapmoe τ=0: $(tail -c 300 "$work/sm0.err")"
same_ids sm0 "--policy swapmoe --exactness 0" && ok "--policy swapmoe --exactness 0: same ids ($(grep -h 'resident .* of chosen' "$work/sm0.err" | tail -n1 | cut -c1-90))"
eval_nll() { timeout 300 "$swapmoe" eval "$model" --text "$work/text.txt" --max-tokens 200 -t $threads "$@" 2> "$work/eval.err"; }
nll_ref=$(eval_nll)
nll_sm0=$(eval_nll --mem $mem --policy swapmoe --exactness 0)
[ -n "$nll_ref" ] && [ "$nll_ref" = "$nll_sm0" ] && ok "eval --policy swapmoe --exactness 0: identical to resident: $nll_sm0" \
  || bad "eval --policy swapmoe --exactness 0: $nll_sm0 vs resident $nll_ref: $(tail -c 300 "$work/eval.err")"
if timeout 300 "$swapmoe" profile "$model" --text "$work/text.txt" --max-tokens 300 -o "$work/profile.json" -t $threads \
    > /dev/null 2> "$work/profile.err" &&
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["format"] == "swapmoe-profile" and len(d["layers"]) == 4' "$work/profile.json"; then
  ok "profile: 4 layers written"
  run_ids smprof --mem $mem --policy swapmoe --exactness 0 --profile "$work/profile.json" ||
    bad "swapmoe with --profile: $(tail -c 300 "$work/smprof.err")"
  same_ids smprof "--policy swapmoe --exactness 0 --profile" && ok "--policy swapmoe --exactness 0 --profile: same ids"
else
  bad "profile failed: $(tail -c 300 "$work/profile.err")"
fi

# ---- 4. sweep, bench, chat
if timeout 600 "$swapmoe" sweep "$model" --text "$work/text.txt" --mem $mem,24M --policy exact,swapmoe --exactness 0 \
    --max-tokens 128 -n 4 -t $threads -o "$work/sweep" > /dev/null 2> "$work/sweep.err"; then
  if python3 - "$work/sweep.csv" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 4, f"{len(rows)} rows, want 4"
for r in rows:
    assert float(r["ppl_ratio"]) == 1.0 and float(r["top1_agreement"]) == 1.0, r
    assert 0.0 <= float(r["hit_rate"]) <= 1.0, r
assert len({r["ppl"] for r in rows}) == 1, "ppl differs between points"
EOF
  then ok "sweep: 4 points, exact and swapmoe τ=0 all at ppl ratio 1 and top-1 100%"
  else bad "sweep: CSV check failed: $(head -c 600 "$work/sweep.csv")"; fi
  [ -s "$work/sweep.svg" ] || bad "sweep: no SVG"
else
  bad "sweep failed: $(tail -c 300 "$work/sweep.err")"
fi
if timeout 300 "$swapmoe" bench "$model" --mem $mem -n 8 -t $threads > "$work/bench.out" 2>&1 &&
    grep -Eq 'decode: 8 tokens in [0-9.]+ s, [0-9.]+ tok/s' "$work/bench.out" && grep -Eq 'hit rate [0-9.]+%' "$work/bench.out" &&
    # The bound's inputs: the disk measured at the decode loop's queue, and how busy it was kept.
    { grep -q '^I/O bound: no expert bytes' "$work/bench.out" ||
      { grep -Eq '^disk bandwidth: [0-9.]+ [KMG]?i?B/s at [0-9]+ reads of' "$work/bench.out" &&
        grep -Eq '^disk: busy [0-9.]+% of the decode time' "$work/bench.out"; }; }; then
  ok "bench: $(grep -h '^decode:' "$work/bench.out")"
else
  bad "bench: $(tail -c 400 "$work/bench.out")"
fi
printf '%s\n/stats\n' "$prompt" | timeout 120 "$swapmoe" chat "$model" --mem $mem -n 12 --temp 0 -t $threads \
  > "$work/chat.out" 2> "$work/chat.err"
rc=$?
if [ $rc -eq 0 ] && grep -q "tokens generated: 12" "$work/chat.out" && grep -q "expert cache: hit rate" "$work/chat.out"; then
  ok "chat through a pipe: a reply, /stats, clean exit at end of input"
else
  bad "chat through a pipe: rc $rc: $(head -c 400 "$work/chat.out") $(tail -c 200 "$work/chat.err")"
fi

# ---- 5. serve under --mem, exact and SwapMoE τ=0, with concurrent clients
serve_check() {  # serve_check NAME ARGS...
  local name=$1; shift
  "$swapmoe" serve "$model" --port 0 --parallel 2 -t $threads "$@" > "$work/$name.out" 2> "$work/$name.err" &
  server_pid=$!
  local url="" i
  for i in $(seq 1 100); do
    url=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/$name.err" | head -n 1)
    [ -n "$url" ] && break
    kill -0 $server_pid 2>/dev/null || break
    sleep 0.2
  done
  if [ -z "$url" ]; then bad "serve $*: did not start: $(tail -c 300 "$work/$name.err")"; server_pid=""; return; fi
  local pids=()
  for i in 1 2 3 4 5 6; do
    curl -sS --max-time 120 "$url/v1/completions" -H 'Content-Type: application/json' \
      -d "{\"prompt\":\"$prompt\",\"max_tokens\":16,\"temperature\":0}" > "$work/$name.r$i" 2>&1 &
    pids+=($!)
  done
  local failed=0
  for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
  curl -sS --max-time 30 "$url/metrics" > "$work/$name.metrics" 2>&1
  kill $server_pid 2>/dev/null; wait $server_pid 2>/dev/null; server_pid=""
  if python3 - "$expected_text" "$work/$name".r* <<'EOF'
import json, sys
want = sys.argv[1]
for f in sys.argv[2:]:
    got = json.load(open(f))["choices"][0]["text"]
    assert got.strip() == want.strip(), f"{f}: {got!r} != run's {want!r}"
EOF
  then
    ok "serve $*: 6 concurrent greedy completions equal run's text ($(grep -h '^swapmoe_requests_total' "$work/$name.metrics"))"
  else
    bad "serve $*: $failed curl failure(s); completions differ from run's text or are not JSON: $(head -c 300 "$work/$name.r1")"
  fi
  grep -Eq '^swapmoe_.*(hit|cache).* [0-9.e+]+$' "$work/$name.metrics" || bad "serve $*: no cache figures in /metrics"
}
serve_check serve-mem --mem $mem
serve_check serve-swapmoe --mem $mem --policy swapmoe --exactness 0

[ $fails -eq 0 ] && { echo "test_e2e: all passed"; exit 0; }
echo "test_e2e: $fails failure(s)" >&2
exit 1
