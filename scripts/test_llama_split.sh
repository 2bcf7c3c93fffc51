#!/usr/bin/env bash
# Split sets written by llama.cpp's own tool (opt-in; not in CTest: CI has no llama.cpp build).
#
#   LLAMA_GGUF_SPLIT=/path/to/llama-gguf-split scripts/test_llama_split.sh [BUILD_DIR]
#
# swapmoe-forge writes a small qwen3moe Q8_0 model; llama-gguf-split splits it by tensor count
# and by size (and with --no-tensor-first-split, where the first part holds only metadata).
# swapmoe must open each set from its first part, list its parts in `info`, and give exactly
# the whole file's `run --temp 0` ids and `eval` nll, without and with --mem (experts read
# from the parts with O_DIRECT). llama-gguf-split --merge of a set must also give a file
# that swapmoe runs identically.
# Without the tool the check is a skip of class llama-split (scripts/skip.sh: a failure under
# CI=true / SWAPMOE_REQUIRE=all unless SWAPMOE_ALLOW_SKIP names llama-split).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
. "$root/scripts/skip.sh"
tool=${LLAMA_GGUF_SPLIT:-}
if [ -z "$tool" ] && command -v llama-gguf-split > /dev/null 2>&1; then tool=$(command -v llama-gguf-split); fi
if [ -z "$tool" ] || [ ! -x "$tool" ]; then
  if swapmoe_skip llama-split "llama-gguf-split not found (set LLAMA_GGUF_SPLIT=PATH)"; then exit 77; fi
  exit 1
fi
. "$root/scripts/test_lib.sh"
test_init llama_split "$build"
prompt="Once upon a time"
text="$work/text.txt"
printf 'Split files hold the same tensors as the whole file, spread over parts. Each part is a GGUF file. ' > "$text"

whole="$work/model.gguf"
"$forge" --arch qwen3moe --type Q8_0 --layers 2 --embd 128 --expert-ff 128 --vocab "$spm" --seed 7 -o "$whole" \
  > /dev/null 2>&1 || { echo "test_llama_split: forge failed" >&2; exit 1; }
"$swapmoe" plan "$whole" --ctx 256 -t 2 --json > "$work/plan.json" || { echo "test_llama_split: plan failed" >&2; exit 1; }
mem=$(awk -v a="$(json_field "$work/plan.json" min_budget)" -v b="$(json_field "$work/plan.json" expert_bytes_total)" \
  'BEGIN { printf "%.0f\n", a + 0.3 * b }')
out() {  # out MODEL [--mem N]: "ids nll"
  local m=$1; shift
  local ids nll
  ids=$("$swapmoe" run "$m" -p "$prompt" -n 16 --temp 0 --print-ids -t 2 --ctx 256 "$@" 2> /dev/null | tail -n1)
  nll=$("$swapmoe" eval "$m" --text "$text" --ctx 256 -t 2 "$@" 2> /dev/null | sed -n 's/.*"nll": *\([-0-9.e+]*\).*/\1/p')
  echo "$ids $nll"
}
ref=$(out "$whole")
ref_mem=$(out "$whole" --mem "$mem")
[ -n "${ref%% *}" ] && [ "$ref" = "$ref_mem" ] || { echo "test_llama_split: the whole file gave no output ($ref / $ref_mem)" >&2; exit 1; }

check_set() {  # check_set NAME TOOL_ARGS...
  local name=$1; shift
  local dir="$work/$name"
  mkdir -p "$dir"
  if ! "$tool" --split "$@" "$whole" "$dir/m" > "$dir/log" 2>&1; then bad "$name: llama-gguf-split failed: $(tail -n2 "$dir/log")"; return; fi
  local parts first n
  parts=$(ls "$dir" | grep -c -- '-of-.*\.gguf$')
  first=$(ls "$dir"/m-00001-of-*.gguf 2> /dev/null | head -n1)
  [ "$parts" -ge 2 ] && [ -n "$first" ] || { bad "$name: expected a set of 2+ parts, got $parts"; return; }
  n=$("$swapmoe" info "$first" 2> /dev/null | grep -c -- '-of-')
  [ "$n" -ge "$parts" ] && ok "$name: info lists the $parts parts" || bad "$name: info lists $n lines for $parts parts"
  local got got_mem
  got=$(out "$first")
  got_mem=$(out "$first" --mem "$mem")
  [ "$got" = "$ref" ] && ok "$name: $parts parts, run ids and eval nll = the whole file's" || bad "$name: $got vs $ref"
  [ "$got_mem" = "$ref" ] && ok "$name: the same with --mem $mem" || bad "$name --mem: $got_mem vs $ref"
  if [ "$name" = tensors ]; then
    if "$tool" --merge "$first" "$dir/merged.gguf" > "$dir/mlog" 2>&1; then
      [ "$(out "$dir/merged.gguf")" = "$ref" ] && ok "$name: llama-gguf-split --merge gives the whole file's output" \
        || bad "$name: the merged file differs"
    else
      bad "$name: llama-gguf-split --merge failed: $(tail -n2 "$dir/mlog")"
    fi
  fi
}
check_set tensors --split-max-tensors 9
check_set size --split-max-size 5M
check_set metadata-first --split-max-tensors 12 --no-tensor-first-split

echo "test_llama_split: $([ $fails -eq 0 ] && echo "all passed" || echo "$fails FAILED") ($tool)"
[ $fails -eq 0 ]
