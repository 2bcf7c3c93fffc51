#!/usr/bin/env bash
# Models by name, end to end: builds an ollama store and a Hugging Face cache in a
# temporary folder (laid out as ollama and huggingface_hub write them) around the demo
# model, and checks that `swapmoe run NAME` gives the same ids as running the path, that
# the params layer's defaults apply, that `list` shows both stores, and that missing or
# odd names fail cleanly.
# Usage: scripts/test_stores.sh BUILD_DIR
set -euo pipefail
build="$(cd "${1:?usage: test_stores.sh BUILD_DIR}" && pwd)"
root="$(cd "$(dirname "$0")/.." && pwd)"
swapmoe="$build/swapmoe"
model="$root/models/fortunes-moe.gguf"
work="$(mktemp -d "${TMPDIR:-/tmp}/swapmoe-stores.XXXXXX")"
trap 'rm -rf "$work"' EXIT
fails=0
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# ollama: blobs/sha256-HEX and manifests/HOST/NAMESPACE/MODEL/TAG.
ollama="$work/ollama"
mkdir -p "$ollama/blobs" "$ollama/manifests/registry.ollama.ai/library/fortunes" \
  "$ollama/manifests/registry.ollama.ai/someone/fortunes"
hex="$(sha256sum "$model" | cut -c1-64)"
ln "$model" "$ollama/blobs/sha256-$hex" 2>/dev/null || cp "$model" "$ollama/blobs/sha256-$hex"
params='{"stop":["Welt"],"temperature":0}'
phex="$(printf '%s' "$params" | sha256sum | cut -c1-64)"
printf '%s' "$params" > "$ollama/blobs/sha256-$phex"
manifest() {
  printf '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:%s","size":1}%s]}' \
    "$hex" "$1"
}
manifest "" > "$ollama/manifests/registry.ollama.ai/library/fortunes/latest"
manifest ",{\"mediaType\":\"application/vnd.ollama.image.params\",\"digest\":\"sha256:$phex\",\"size\":1}" \
  > "$ollama/manifests/registry.ollama.ai/someone/fortunes/r1"

# Hugging Face: snapshots/REV/FILE -> ../../blobs/HASH, refs/main = REV.
hub="$work/hub"
repo="$hub/models--swapmoe--fortunes-GGUF"
rev=0123456789abcdef0123456789abcdef01234567
mkdir -p "$repo/blobs" "$repo/refs" "$repo/snapshots/$rev"
ln "$model" "$repo/blobs/$hex" 2>/dev/null || cp "$model" "$repo/blobs/$hex"
ln -s "../../blobs/$hex" "$repo/snapshots/$rev/fortunes-moe-Q8_0.gguf"
printf '%s' "$rev" > "$repo/refs/main"

# A split model in the cache: parts in blobs/ under their hashes, the snapshot names them.
srepo="$hub/models--swapmoe--fortunes-split-GGUF"
mkdir -p "$srepo/blobs" "$srepo/refs" "$srepo/snapshots/$rev/Q8_0" "$work/split"
"$swapmoe" quantize "$model" "$work/split/fortunes-moe-Q8_0.gguf" COPY --split-max-size 8M > /dev/null 2>&1
for f in "$work"/split/*.gguf; do
  h="$(sha256sum "$f" | cut -c1-64)"
  mv "$f" "$srepo/blobs/$h"
  ln -s "../../../blobs/$h" "$srepo/snapshots/$rev/Q8_0/$(basename "$f")"
done
printf '%s' "$rev" > "$srepo/refs/main"

export OLLAMA_MODELS="$ollama" HF_HUB_CACHE="$hub"
want="$("$swapmoe" run "$model" -p "Der Computer" -n 12 --temp 0 --print-ids 2>/dev/null)"
for name in fortunes fortunes:latest library/fortunes:latest registry.ollama.ai/library/fortunes:latest \
  someone/fortunes:r1 hf:swapmoe/fortunes-GGUF hf:swapmoe/fortunes-GGUF:q8_0 hf:swapmoe/fortunes-split-GGUF \
  hf:swapmoe/fortunes-split-GGUF:Q8_0; do
  got="$("$swapmoe" run "$name" -p "Der Computer" -n 12 --temp 0 --print-ids 2>"$work/err")" || { bad "run $name: $(cat "$work/err")"; continue; }
  if [ "$got" = "$want" ]; then ok "run $name = run PATH"; else bad "run $name: $got, path gave $want"; fi
done

# The params layer: temperature 0 (greedy) and the stop word "Welt" are defaults.
greedy="$("$swapmoe" run "$model" -p "Der Computer" -n 24 --temp 0 2>/dev/null)"
named="$("$swapmoe" run someone/fortunes:r1 -p "Der Computer" -n 24 2>/dev/null)"
expected="${greedy%%Welt*}"
if [ "$named" = "$expected" ] && [ "$named" != "$greedy" ]; then ok "params layer: greedy, stops at 'Welt'"
else bad "params layer: got '$named', expected '$expected'"; fi
over="$("$swapmoe" run someone/fortunes:r1 -p "Der Computer" -n 24 --temp 0.9 --seed 3 2>/dev/null)"
ref="$("$swapmoe" run "$model" -p "Der Computer" -n 24 --temp 0.9 --seed 3 2>/dev/null)"
if [ "$over" = "${ref%%Welt*}" ]; then ok "an explicit --temp overrides the params layer"; else bad "--temp override: '$over' vs '$ref'"; fi

# Other commands take names too.
"$swapmoe" info fortunes 2>/dev/null | grep -q "architecture: qwen3moe" && ok "info NAME" || bad "info NAME"
"$swapmoe" plan hf:swapmoe/fortunes-GGUF --mem 20M 2>/dev/null | grep -q "expert cache" && ok "plan hf:" || bad "plan hf:"
[ "$("$swapmoe" tokenize fortunes "Der Computer" 2>/dev/null)" = "$("$swapmoe" tokenize "$model" "Der Computer")" ] \
  && ok "tokenize NAME" || bad "tokenize NAME"

# list: both stores, with the plan.
"$swapmoe" list --mem 1G > "$work/list" 2>/dev/null || bad "list failed"
for n in fortunes:latest someone/fortunes:r1 hf:swapmoe/fortunes-GGUF:Q8_0; do
  grep -q "^$n .*qwen3moe .*21.49 MiB .* 1  resident" "$work/list" && ok "list: $n" || bad "list: $n missing: $(cat "$work/list")"
done
grep -q "^hf:swapmoe/fortunes-split-GGUF:Q8_0 .*qwen3moe .*21.49 MiB .* 4  resident" "$work/list" \
  && ok "list: split model, 4 parts" || bad "list: split model: $(cat "$work/list")"
rm "$srepo/snapshots/$rev/Q8_0/fortunes-moe-Q8_0-00003-of-00004.gguf"
expect_error_early() { if "$@" > /dev/null 2> "$work/err"; then bad "$1 succeeded"; return 1; fi; }
if expect_error_early "$swapmoe" run hf:swapmoe/fortunes-split-GGUF -p hi; then
  grep -q "part 3 of 4 is missing" "$work/err" && ok "missing split part" || bad "missing split part: $(cat "$work/err")"
fi
"$swapmoe" list --mem 20M 2>/dev/null | grep -q "^fortunes:latest .*--mem" && ok "list --mem 20M: streams" || bad "list --mem 20M"
"$swapmoe" list --mem 4M 2>/dev/null | grep -q "^fortunes:latest .*too large" && ok "list --mem 4M: too large" || bad "list --mem 4M"

# Errors: one clean line each, naming where it looked and the closest names.
expect_error() {
  local what="$1" pattern="$2"; shift 2
  if "$@" > /dev/null 2> "$work/err"; then bad "$what: succeeded"; return; fi
  if grep -q "^swapmoe: error: .*$pattern" "$work/err"; then ok "$what"; else bad "$what: $(cat "$work/err")"; fi
}
expect_error "missing name" "looked for .*fortunez/latest.*closest: fortunes:latest" "$swapmoe" run fortunez -p hi
expect_error "missing hf repo" "closest: hf:swapmoe/fortunes-GGUF" "$swapmoe" run hf:swapmoe/fortune-GGUF -p hi
expect_error "missing quant" "no GGUF file matching 'Q4_K_M'" "$swapmoe" run hf:swapmoe/fortunes-GGUF:Q4_K_M -p hi
expect_error "dot-dot name" "namespace" "$swapmoe" run "library/../../etc/passwd" -p hi
expect_error "dot-dot tag" "not allowed" "$swapmoe" run "fortunes:a..b" -p hi
expect_error "odd characters" "names use letters" "$swapmoe" run 'fortunes;ls' -p hi
expect_error "missing path" "does-not-exist.gguf" "$swapmoe" run "$work/does-not-exist.gguf" -p hi
OLLAMA_MODELS="$work/none" expect_error "no store" "neither a file nor a model of an ollama store (there is none at .*/none" "$swapmoe" run fortunes -p hi

# The README's example: a store written by scripts/demo_store.sh.
bash "$root/scripts/demo_store.sh" "$work/demo" > /dev/null
got="$(OLLAMA_MODELS="$work/demo" "$swapmoe" run fortunes-moe -p "Der Computer" -n 12 --temp 0 --print-ids 2>/dev/null)" || true
[ "$got" = "$want" ] && ok "README: demo_store.sh + run fortunes-moe" || bad "README example: $got"

if [ "$fails" -ne 0 ]; then echo "$fails store check(s) failed"; exit 1; fi
echo "all store checks passed"
