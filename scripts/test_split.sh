#!/usr/bin/env bash
# Split GGUF end to end through the CLI (CTest label "split"):
#  1. swapmoe-forge writes the same model whole and as a gguf-split set; `run --temp 0
#     --print-ids` and `eval` on the set's first part give exactly the ids and nll of the
#     whole file, without and with --mem (the expert cache, and the SwapMoE store at
#     --exactness 0, reading every part with O_DIRECT);
#  2. `quantize` reads a set and writes a set: a split input quantized whole is
#     byte-identical to the whole input quantized, a split output runs as the whole one, and
#     COPY merges a set into the whole file and splits it back, byte for byte;
#  3. `info` lists the parts; a later part's path, a missing part and a part in the wrong place
#     give one-line errors naming the part (exit 1, no crash).
# Usage: scripts/test_split.sh [BUILD_DIR]
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/test_lib.sh"
test_init split "${1:-$root/build}"

text="$work/text.txt"
printf 'Split files hold the same tensors as the whole file, spread over parts. Each part is a GGUF file. ' > "$text"

# same_output NAME WHOLE FIRST_PART: run ids and eval nll equal, without and with --mem.
same_output() {
  local name=$1 whole=$2 split=$3 mem minb total
  "$swapmoe" plan "$whole" --ctx 256 -t "$threads" --json > "$work/plan.json" || { bad "$name: plan failed"; return; }
  minb=$(json_field "$work/plan.json" min_budget)
  total=$(json_field "$work/plan.json" expert_bytes_total)
  mem=$(awk -v a="$minb" -v b="$total" 'BEGIN { printf "%.0f\n", a + 0.3 * b }')
  for mode in "" "--mem $mem" "--mem $mem --policy swapmoe --exactness 0"; do
    for m in whole split; do
      local f=$whole; [ $m = split ] && f=$split
      # shellcheck disable=SC2086
      timeout 300 "$swapmoe" run "$f" -p "Once upon a time" -n 16 --temp 0 --print-ids --ctx 256 -t "$threads" $mode \
        > "$work/ids.$m" 2> "$work/err" || bad "$name $m run [$mode]: $(tail -c 300 "$work/err")"
      # shellcheck disable=SC2086
      timeout 300 "$swapmoe" eval "$f" --text "$text" --ctx 256 -t "$threads" $mode \
        > "$work/nll.$m" 2> "$work/err" || bad "$name $m eval [$mode]: $(tail -c 300 "$work/err")"
    done
    if [ -s "$work/ids.whole" ] && cmp -s "$work/ids.whole" "$work/ids.split"; then ok "$name: run ids identical [${mode:-resident}]"
    else bad "$name: run ids differ [${mode:-resident}]: $(cat "$work/ids.whole") vs $(cat "$work/ids.split")"; fi
    if [ -s "$work/nll.whole" ] && cmp -s "$work/nll.whole" "$work/nll.split"; then ok "$name: eval identical [${mode:-resident}]: $(cat "$work/nll.split")"
    else bad "$name: eval differs [${mode:-resident}]: $(cat "$work/nll.whole") vs $(cat "$work/nll.split")"; fi
  done
}

# ---- 1. forge whole and split, per architecture
for arch in qwen3moe deepseek2; do
  args=(--arch "$arch" --type Q8_0 --layers 3 --experts 16 --experts-used 2 --vocab "$spm" --seed 7 -t "$threads")
  "$forge" "${args[@]}" -o "$work/$arch.gguf" > /dev/null 2> "$work/err" || { bad "$arch: forge failed: $(cat "$work/err")"; continue; }
  "$forge" "${args[@]}" -o "$work/$arch-split.gguf" --split-max-size 1M > /dev/null 2> "$work/err" \
    || { bad "$arch: split forge failed: $(cat "$work/err")"; continue; }
  first=$(ls "$work/$arch-split-00001-of-"*.gguf 2> /dev/null)
  n=$(ls "$work/$arch-split-"*-of-*.gguf | wc -l)
  [ -n "$first" ] && [ "$n" -ge 3 ] && ok "$arch: forge wrote $n parts" || { bad "$arch: expected a set of >= 3 parts, got $n"; continue; }
  ls "$work" | grep -q '\.tmp$' && bad "$arch: temporary files left behind: $(ls "$work" | grep '\.tmp$')"
  same_output "$arch" "$work/$arch.gguf" "$first"
done

# ---- 2. quantize reads and writes sets
q=$work/q
mkdir -p "$q"
"$forge" --arch qwen3moe --type F32 --layers 2 --experts 8 --experts-used 2 --vocab "$spm" --seed 3 -t "$threads" \
  -o "$q/f32.gguf" > /dev/null 2>&1 || bad "quantize: forge failed"
"$swapmoe" quantize "$q/f32.gguf" "$q/f32-split.gguf" F32 --split-max-tensors 6 -t "$threads" 2> "$work/err" \
  || bad "quantize to a set: $(cat "$work/err")"
grep -q "wrote .* parts" "$work/err" && ok "quantize wrote a set: $(grep -o 'wrote [0-9]* parts' "$work/err")"
"$swapmoe" quantize "$q/f32.gguf" "$q/a.gguf" Q4_K_M -t "$threads" 2> /dev/null || bad "quantize whole -> whole"
"$swapmoe" quantize "$q/f32-split-00001-of-"*.gguf "$q/b.gguf" Q4_K_M -t "$threads" 2> "$work/err" || bad "quantize set -> whole: $(cat "$work/err")"
if cmp -s "$q/a.gguf" "$q/b.gguf"; then ok "quantize: a set in gives the same bytes as the whole file in"
else bad "quantize: set -> whole differs from whole -> whole"; fi
"$swapmoe" quantize "$q/f32.gguf" "$q/c.gguf" Q4_K_M --split-max-size 1M -t "$threads" 2> "$work/err" || bad "quantize whole -> set: $(cat "$work/err")"
qfirst=$(ls "$q/c-00001-of-"*.gguf 2> /dev/null)
[ -n "$qfirst" ] && same_output "quantized Q4_K_M" "$q/a.gguf" "$qfirst"
"$swapmoe" quantize "$qfirst" "$qfirst" Q8_0 > /dev/null 2> "$work/err" && bad "quantize onto its own input was accepted"

# COPY keeps every byte: merging the forged set gives the forged whole file, and splitting
# the whole file gives the forged set, byte for byte.
for arch in qwen3moe deepseek2; do
  first=$(ls "$work/$arch-split-00001-of-"*.gguf 2> /dev/null) || continue
  "$swapmoe" quantize "$first" "$q/$arch-merged.gguf" COPY 2> "$work/err" || bad "$arch: COPY merge: $(cat "$work/err")"
  if cmp -s "$q/$arch-merged.gguf" "$work/$arch.gguf"; then ok "$arch: quantize COPY merges the set into the whole file, byte for byte"
  else bad "$arch: the merged set differs from the whole file"; fi
  "$swapmoe" quantize "$work/$arch.gguf" "$q/$arch-resplit.gguf" COPY --split-max-size 1M 2> "$work/err" \
    || bad "$arch: COPY split: $(cat "$work/err")"
  same=1
  for p in "$work/$arch-split-"*-of-*.gguf; do
    cmp -s "$p" "$q/$arch-resplit${p#"$work/$arch-split"}" || same=0
  done
  [ $same = 1 ] && ok "$arch: quantize COPY --split-max-size 1M writes the forged set, byte for byte" \
    || bad "$arch: quantize COPY --split-max-size differs from swapmoe-forge --split-max-size"
done

# ---- 3. info and errors
first=$(ls "$work/qwen3moe-split-00001-of-"*.gguf 2> /dev/null | head -n1)
if [ -n "$first" ]; then
  n=$(ls "$work/qwen3moe-split-"*-of-*.gguf | wc -l)
  "$swapmoe" info "$first" > "$work/info" 2> /dev/null || bad "info on a set failed"
  if grep -q "^parts: *$n (split GGUF)" "$work/info" && [ "$(grep -c -- "-of-.*tensors$" "$work/info")" = "$n" ]; then
    ok "info lists the $n parts"
  else bad "info does not list the parts: $(head -c 600 "$work/info")"; fi
  second=${first/-00001-of-/-00002-of-}
  # expect_error WHAT MUST_CONTAIN CMD...: exit 1, one line "swapmoe: error: ...".
  expect_error() {
    local what=$1 want=$2; shift 2
    "$@" > /dev/null 2> "$work/err"; local rc=$?
    if [ $rc -eq 1 ] && [ "$(wc -l < "$work/err")" = 1 ] && grep -qF -- "$want" "$work/err"; then ok "$what: $(cat "$work/err")"
    else bad "$what: rc=$rc, stderr: $(head -c 400 "$work/err") (wanted '$want')"; fi
  }
  expect_error "a later part's path" "open its first part, $first" "$swapmoe" run "$second" -p hi -n 1 --temp 0
  expect_error "plan on a later part" "open its first part" "$swapmoe" plan "$second"
  mv "$second" "$work/held"
  expect_error "a missing part" "$second: part 2 of $n of the split model $first is missing" "$swapmoe" info "$first"
  # Another part of the set in its place: its split.no gives it away.
  cp "${first/-00001-of-/-00003-of-}" "$second"
  expect_error "a part in the wrong place" "$second: split.no is 2 (part 3 of $n) where part 2 of $n was expected" \
    "$swapmoe" eval "$first" --text "$text"
  mv "$work/held" "$second"
fi

if [ $fails -ne 0 ]; then echo "test_split: $fails failure(s)" >&2; exit 1; fi
echo "test_split: all passed"
