#!/usr/bin/env bash
# CLI smoke test: forge a tiny random model of every architecture, run every `swapmoe`
# command on it, check that the outputs are well-formed, and check that bad input (missing
# file, corrupt file, bad TYPE, bad flags) ends with exit status 1 and one
# "swapmoe: error:" line, never a crash. When the llama.cpp reference harness is installed
# (tests/conformance/node_modules), also checks that llama.cpp loads what the forge and
# `swapmoe quantize` write.
#
# Usage: scripts/smoke.sh [BUILD_DIR]   (default: build; needs swapmoe and swapmoe-forge)
# Environment: SMOKE_THREADS (default 2), SMOKE_KEEP=1 keeps the work directory.
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
swapmoe="$build/swapmoe"
forge="$build/swapmoe-forge"
threads="${SMOKE_THREADS:-2}"
for exe in "$swapmoe" "$forge"; do
  [ -x "$exe" ] || { echo "smoke: $exe not built" >&2; exit 1; }
done

vocab_dir="$root/tests/data/vocab"
[ -f "$vocab_dir/ggml-vocab-llama-spm.gguf" ] || vocab_dir="$root/../shared/vocab"
spm="$vocab_dir/ggml-vocab-llama-spm.gguf"
qwen="$vocab_dir/ggml-vocab-qwen2.gguf"
[ -f "$spm" ] && [ -f "$qwen" ] || { echo "smoke: vocabulary files not found in $vocab_dir" >&2; exit 1; }

. "$root/scripts/skip.sh"
work="$(mktemp -d "${TMPDIR:-/tmp}/swapmoe-smoke.XXXXXX")"
[ "${SMOKE_KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT

failures=0
pass() { echo "ok   $*"; }
bad() { echo "FAIL $*" >&2; failures=$((failures + 1)); }

# expect_ok NAME REGEX CMD...: exit 0 and stdout matching the extended regex.
expect_ok() {
  local name="$1" re="$2"; shift 2
  local out rc
  out="$("$@" 2>"$work/stderr")"; rc=$?
  if [ $rc -ne 0 ]; then bad "$name: exit $rc: $(tail -n 3 "$work/stderr")"; return; fi
  if [ -n "$re" ] && ! printf '%s' "$out" | grep -Eq -- "$re"; then bad "$name: output does not match /$re/: $(printf '%s' "$out" | head -c 300)"; return; fi
  pass "$name"
}

# expect_error NAME CMD...: exit 1, stderr has a "swapmoe: error:" line, no crash.
expect_error() {
  local name="$1"; shift
  "$@" >"$work/stdout" 2>"$work/stderr"; local rc=$?
  if [ $rc -ne 1 ]; then bad "$name: exit $rc (want 1): $(head -c 300 "$work/stderr")"; return; fi
  if ! grep -q "^swapmoe\(-forge\)\?: error: " "$work/stderr"; then bad "$name: no 'swapmoe: error:' line: $(head -c 300 "$work/stderr")"; return; fi
  pass "$name ($(head -n 1 "$work/stderr" | cut -c1-100))"
}

ids_re='^\[[0-9]+(,[0-9]+)*\]$'
have_node=0
if command -v node >/dev/null && [ -d "$root/tests/conformance/node_modules/node-llama-cpp" ]; then have_node=1
else swapmoe_skip node "llama.cpp load checks: node or tests/conformance/node_modules missing" || failures=$((failures + 1)); fi
llama_load() {  # llama_load NAME FILE
  [ $have_node = 1 ] || return 0
  if node "$root/tests/conformance/llama_ref.mjs" load "$2" >"$work/stdout" 2>"$work/stderr"; then pass "$1: llama.cpp loads it"
  else bad "$1: llama.cpp does not load it: $(grep -i error "$work/stderr" | head -n 3)"; fi
}

text="$work/text.txt"
printf 'The quick brown fox jumps over the lazy dog. Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich. 日本語のテキスト。\n' >"$text"

for arch in qwen3moe qwen2moe llama olmoe deepseek2 glm4moe gpt-oss; do
  m="$work/$arch.gguf"
  expect_ok "$arch: forge" '' "$forge" --arch "$arch" --type Q8_0 --layers 2 --vocab "$spm" --seed 7 -t "$threads" -o "$m"
  [ -f "$m" ] || continue
  expect_ok "$arch: info" "architecture: $arch" "$swapmoe" info "$m"
  expect_ok "$arch: tokenize" "$ids_re" "$swapmoe" tokenize "$m" "Hello world"
  expect_ok "$arch: run --print-ids" '^\[[0-9]+,[0-9]+,[0-9]+,[0-9]+,[0-9]+\]$' \
    "$swapmoe" run "$m" -p "Hello world" -n 5 --temp 0 --print-ids -t "$threads"
  expect_ok "$arch: run (text)" '' "$swapmoe" run "$m" -p "Once upon a time" -n 8 --seed 1 -t "$threads"
  grep -q "decode .* tok/s" "$work/stderr" && pass "$arch: run prints timing on stderr" || bad "$arch: no timing line"
  expect_ok "$arch: eval" '^\{"tokens":[0-9]+,"nll":[0-9.]+,"ppl":[0-9.e+]+\}$' \
    "$swapmoe" eval "$m" --text "$text" --max-tokens 24 -t "$threads"
  q="$work/$arch-q4km.gguf"
  expect_ok "$arch: quantize Q4_K_M" '' "$swapmoe" quantize "$m" "$q" Q4_K_M -t "$threads"
  expect_ok "$arch: info on quantized" 'Q4_K' "$swapmoe" info "$q"
  expect_ok "$arch: run quantized" "$ids_re" "$swapmoe" run "$q" -p "Hello" -n 3 --temp 0 --print-ids -t "$threads"
  llama_load "$arch forged" "$m"
  llama_load "$arch quantized" "$q"
done

# `swapmoe quantize` against llama.cpp's own quantizer (types and bytes of every tensor),
# on shapes that exercise the layer rules, the 8-expert rules, tied embeddings and the
# fallbacks for rows that do not fit 256-blocks.
if ! command -v python3 >/dev/null; then
  swapmoe_skip python3 "quantize vs llama.cpp: python3 is not installed" || bad "quantize vs llama.cpp not run"
else
  "$forge" --arch deepseek2 --layers 9 --leading-dense 2 --experts 16 --vocab "$spm" -o "$work/ds2-f32.gguf" 2>/dev/null
  "$forge" --arch llama --layers 9 --experts 8 --embd 320 --heads 5 --expert-ff 192 --tied --vocab "$spm" \
    -o "$work/llama-f32.gguf" 2>/dev/null
  # glm4moe: the NextN/MTP layer's tensors (blk.9) are quantized too, as llama-quantize does.
  "$forge" --arch glm4moe --layers 9 --leading-dense 2 --experts 16 --vocab "$spm" -o "$work/glm-f32.gguf" 2>/dev/null
  for f in ds2-f32 llama-f32 glm-f32; do
    python3 "$root/scripts/smoke_quantize_llama.py" "$swapmoe" "$work/$f.gguf" Q4_K_M Q5_K_M Q3_K_M Q2_K Q8_0 \
      IQ4_NL IQ4_XS MXFP4_MOE TQ1_0 TQ2_0 \
      >"$work/qcmp.out" 2>"$work/qcmp.err"
    rc=$?
    if [ $rc -eq 77 ]; then
      swapmoe_skip llama-lib "quantize vs llama.cpp: $(tail -n 1 "$work/qcmp.err")" || bad "quantize vs llama.cpp not run"
      break
    fi
    while read -r line; do
      case "$line" in ok*) pass "${line#ok   }" ;; *) bad "$line" ;; esac
    done <"$work/qcmp.out"
    # A crash after some lines must not hide behind the lines it printed: any non-zero exit fails.
    [ $rc -eq 0 ] || bad "quantize vs llama.cpp on $f: exit $rc after $(wc -l <"$work/qcmp.out") line(s): $(tail -n 3 "$work/qcmp.err")"
  done
fi

# Determinism: the same seed gives the same file.
m="$work/qwen3moe.gguf"
"$forge" --arch qwen3moe --type Q8_0 --layers 2 --vocab "$spm" --seed 7 -t 1 -o "$work/again.gguf" 2>/dev/null
cmp -s "$m" "$work/again.gguf" && pass "forge is deterministic (1 vs $threads threads)" || bad "forge output depends on threads or run"

# A real vocabulary with special tokens.
expect_ok "tokenize special tokens" '^\[[0-9,]*151644[0-9,]*\]$' "$swapmoe" tokenize "$qwen" "<|im_start|>user"
expect_ok "tokenize --no-parse-special" '^\[[0-9,]+\]$' "$swapmoe" tokenize "$qwen" "<|im_start|>" --no-parse-special
expect_ok "help" 'quantize' "$swapmoe" --help

# Errors: clean exit 1, never a crash.
head -c 4096 "$m" >"$work/truncated.gguf"
printf 'GGUF\x03\x00\x00\x00garbage' >"$work/garbage.gguf"
expect_error "missing model" "$swapmoe" info "$work/does-not-exist.gguf"
expect_error "truncated model (info)" "$swapmoe" info "$work/truncated.gguf"
expect_error "truncated model (run)" "$swapmoe" run "$work/truncated.gguf" -p hi
expect_error "garbage model" "$swapmoe" tokenize "$work/garbage.gguf" hi
expect_error "not a GGUF" "$swapmoe" eval "$text" --text "$text"
expect_error "bad TYPE" "$swapmoe" quantize "$m" "$work/x.gguf" Q9_X
expect_error "quantize onto itself" "$swapmoe" quantize "$m" "$m" Q8_0
expect_error "missing text file" "$swapmoe" eval "$m" --text "$work/nope.txt"
expect_error "unknown flag" "$swapmoe" run "$m" -p hi --bogus
expect_error "bad number" "$swapmoe" run "$m" -p hi -n abc
expect_error "negative count" "$swapmoe" run "$m" -p hi -n -3
expect_error "missing prompt" "$swapmoe" run "$m"
expect_error "no subcommand" "$swapmoe"
expect_error "unknown subcommand" "$swapmoe" frobnicate
expect_error "context too small" "$swapmoe" run "$m" -p "Hello world" -n 100 --ctx 8 --print-ids
expect_error "forge: unknown arch" "$forge" --arch gpt9 --vocab "$spm" -o "$work/y.gguf"
expect_error "forge: bad vocab" "$forge" --vocab "$text" -o "$work/y.gguf"
expect_error "forge: bad width" "$forge" --arch qwen3moe --experts 4 --experts-used 8 --vocab "$spm" -o "$work/y.gguf"
[ ! -e "$work/x.gguf" ] && [ ! -e "$work/x.gguf.tmp" ] && pass "failed quantize leaves no file" || bad "failed quantize left a file"

# Hostile input (issue 15): each of these crashed, hung or misbehaved before.
# expect_error_within SECONDS NAME CMD...: as expect_error, and it must end in time (a hang
# in open() or a thread pool is a failure, not a slow pass).
expect_error_within() {
  local secs="$1" name="$2"; shift 2
  timeout -k 2 "$secs" "$@" >"$work/stdout" 2>"$work/stderr"; local rc=$?
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then bad "$name: still running after ${secs}s (hang)"; return; fi
  if [ $rc -ne 1 ]; then bad "$name: exit $rc (want 1): $(head -c 300 "$work/stderr")"; return; fi
  if ! grep -q "^swapmoe\(-forge\)\?: error: " "$work/stderr"; then bad "$name: no 'swapmoe: error:' line: $(head -c 300 "$work/stderr")"; return; fi
  pass "$name ($(grep -m1 'error:' "$work/stderr" | cut -c1-100))"
}
expect_error_within 60 "run --min-p 5 (was SIGSEGV)" "$swapmoe" run "$m" -p hi -n 4 --min-p 5 --seed 1
expect_error_within 60 "run --top-p 1.5" "$swapmoe" run "$m" -p hi -n 4 --top-p 1.5
expect_error_within 60 "run --temp -1" "$swapmoe" run "$m" -p hi -n 4 --temp -1
expect_error_within 60 "run --top-k -2" "$swapmoe" run "$m" -p hi -n 4 --top-k -2
expect_error_within 30 "run -t 1000000 (was a hang)" "$swapmoe" run "$m" -p hi -n 4 -t 1000000
mkfifo "$work/fifo"
expect_error_within 30 "FIFO as MODEL (was a hang)" "$swapmoe" run "$work/fifo" -p hi -n 2
expect_error_within 30 "FIFO as info MODEL" "$swapmoe" info "$work/fifo"
expect_error_within 30 "FIFO as --text" "$swapmoe" eval "$m" --text "$work/fifo"
expect_error_within 30 "FIFO as --chat-template-file" "$swapmoe" chat "$m" --chat-template-file "$work/fifo"
expect_error_within 30 "FIFO as --profile" "$swapmoe" run "$m" -p hi -n 2 --mem 1G --policy swapmoe --profile "$work/fifo"
expect_error_within 30 "FIFO as quantize IN" "$swapmoe" quantize "$work/fifo" "$work/x.gguf" Q8_0
expect_error_within 30 "FIFO as forge --vocab" "$forge" --arch qwen3moe --vocab "$work/fifo" -o "$work/y.gguf"
expect_error_within 30 "--text /dev/zero (was unbounded)" "$swapmoe" eval "$m" --text /dev/zero
expect_error_within 30 "--text a directory" "$swapmoe" eval "$m" --text "$work"
expect_error_within 60 "--ctx larger than memory" "$swapmoe" run "$m" -p hi -n 2 --ctx 1000000000
expect_error_within 30 "--mem '' (was: no limit)" "$swapmoe" run "$m" -p hi -n 2 --mem ''
expect_error_within 30 "plan --mem ''" "$swapmoe" plan "$m" --mem ''
"$swapmoe" run "$m" -p hi -n 2 --temp 0 --ctx 100000 -t "$threads" >/dev/null 2>"$work/stderr"
grep -q "warning: --ctx 100000 is beyond the model's trained context" "$work/stderr" \
  && pass "--ctx past the trained context warns" || bad "--ctx past the trained context: no warning: $(head -c 300 "$work/stderr")"
# Files written (item 11): never over an input, by another path or a link; no temporary
# file left behind by a failure.
cp "$m" "$work/self.gguf"; ln -f "$work/self.gguf" "$work/self-link.gguf"
expect_error "quantize onto itself via ./" "$swapmoe" quantize "$work/self.gguf" "$work/./self.gguf" Q8_0
expect_error "quantize onto a hard link of IN" "$swapmoe" quantize "$work/self.gguf" "$work/self-link.gguf" Q8_0
cmp -s "$m" "$work/self.gguf" && pass "quantize left its input intact" || bad "quantize damaged its input"
cp "$spm" "$work/vocab-copy.gguf"
expect_error "forge --vocab X -o X" "$forge" --arch qwen3moe --layers 1 --vocab "$work/vocab-copy.gguf" -o "$work/./vocab-copy.gguf"
cmp -s "$spm" "$work/vocab-copy.gguf" && pass "forge left its vocabulary intact" || bad "forge damaged its vocabulary"
ls -a "$work" | grep -q '\.tmp$' && bad "temporary files left: $(ls -a "$work" | grep '\.tmp$' | head -n 3)" || pass "no temporary files left"
# Parse errors are exactly one line (the README promises one).
for args in "run --bogus" "run -n abc" "frobnicate" "" "run --temp"; do
  # shellcheck disable=SC2086
  "$swapmoe" $args >/dev/null 2>"$work/stderr"
  if [ "$(wc -l <"$work/stderr")" -eq 1 ] && grep -q "^swapmoe: error: " "$work/stderr"; then pass "one-line parse error: swapmoe $args"
  else bad "parse error of 'swapmoe $args' is not one 'swapmoe: error:' line: $(head -c 300 "$work/stderr")"; fi
done

# The README's first command: the demo model (the default MODEL) under a --mem budget below
# the model file's size prints a continuation and the statistics line, and stays inside a
# memory cgroup of budget + 5% (page cache dropped) where one can be made.
demo="$root/models/fortunes-moe.gguf"
demo_mem="${SMOKE_DEMO_MEM:-20M}"
if [ -f "$demo" ]; then
  demo_bytes=$(stat -c %s "$demo")
  mem_bytes=$(awk -v s="$demo_mem" 'BEGIN { m = 1; u = toupper(substr(s, length(s))); if (u == "M") m = 1048576; else if (u == "K") m = 1024; else if (u == "G") m = 1073741824; printf "%.0f\n", s * m }')
  [ "$mem_bytes" -lt "$demo_bytes" ] && pass "demo: --mem $demo_mem ($mem_bytes bytes) is below the model's $demo_bytes bytes" \
    || bad "demo: --mem $demo_mem is not below the model's size ($demo_bytes bytes)"
  expect_ok "demo: README command (default model, --mem $demo_mem)" '[[:alpha:]]{3}' \
    "$swapmoe" run --mem "$demo_mem" -p "Der Computer" -n 48 --seed 1 -t "$threads"
  if grep -Eq 'tok/s' "$work/stderr" && grep -Eq 'hit rate [0-9.]+% \| read [0-9.]+ [KMG]?i?B/token' "$work/stderr"; then
    pass "demo: statistics line ($(grep -Eo 'hit rate [0-9.]+% \| read [^|]*' "$work/stderr" | head -n 1))"
  else bad "demo: no statistics line (tokens/s, hit rate, bytes read per token): $(tail -n 3 "$work/stderr")"; fi
  limit=$(awk -v m="$mem_bytes" 'BEGIN { printf "%.0f\n", m * 1.05 }')
  bash "$root/scripts/cgroup_run.sh" --budget "$mem_bytes" "$limit" -- "$swapmoe" run "$demo" --mem "$demo_mem" -p "Der Computer" -n 48 \
    --seed 1 -t "$threads" >"$work/stdout" 2>"$work/stderr"
  rc=$?
  if [ $rc -eq 77 ]; then
    swapmoe_skip cgroup "demo in a memory cgroup: $(grep -h skip "$work/stderr" | head -n 1)" || bad "demo cgroup run not run"
  elif [ $rc -eq 0 ]; then pass "demo: inside a cgroup of budget + 5%, peak within the budget: $(grep -h 'cgroup_run:' "$work/stderr" | tail -n 1)"
  else bad "demo: inside a cgroup of budget + 5%: rc $rc: $(tail -n 3 "$work/stderr")"; fi
else
  bad "demo: $demo missing"
fi

if [ $failures -ne 0 ]; then
  echo "smoke: $failures check(s) failed" >&2
  exit 1
fi
echo "smoke: all checks passed"
