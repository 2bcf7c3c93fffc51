#!/usr/bin/env bash
# Runs the node client tests of `swapmoe serve` (tests/server/*.test.mjs).
# Usage: run_tests.sh BUILD_DIR [TEST_FILE...]   (default: all *.test.mjs here)
# Needs node and npm; installs the pinned clients with `npm ci` when node_modules is
# missing. Forges a small random-weight qwen3moe model (2 layers, Qwen2 vocabulary) into
# BUILD_DIR/server-test/ once. The servers the tests start bind to 127.0.0.1 only.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="$(cd "${1:?usage: run_tests.sh BUILD_DIR [TEST_FILE...]}" && pwd)"
shift
root="$(cd "$here/../.." && pwd)"

if [ ! -d "$here/node_modules/openai" ] || [ ! -d "$here/node_modules/ollama" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --prefer-offline >/dev/null)
fi

model_dir="$build/server-test"
model="$model_dir/tiny-qwen3moe.gguf"
mkdir -p "$model_dir"
if [ ! -f "$model" ]; then
  # Tests may run in parallel: forge under a private name and rename into place.
  tmp="$model_dir/forge-$$.gguf"
  "$build/swapmoe-forge" --arch qwen3moe --type Q8_0 --vocab "$root/tests/data/vocab/ggml-vocab-qwen2.gguf" \
    --layers 2 --seed 1 -o "$tmp" >/dev/null
  mv -f "$tmp" "$model"
fi

export SWAPMOE_BIN="$build/swapmoe" SWAPMOE_MODEL="$model" SWAPMOE_TEMPLATES="$here"
cd "$here"
if [ $# -eq 0 ]; then set -- *.test.mjs; fi
exec node --test --test-concurrency=1 "$@"
