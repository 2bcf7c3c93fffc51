#!/bin/sh
# Trains the demo model end to end and checks it against llama.cpp:
#   tools/train/train.py  -> WORK/fortunes-moe-f32.gguf (+ the held-out text)
#   swapmoe quantize      -> models/fortunes-moe.gguf (Q8_0) and models/fortunes-moe-test.txt
#   tools/train/stats.py  -> held-out perplexity vs unigram, routing specialisation (WORK/stats.json)
#   swapmoe eval / llama_ref.mjs eval on the held-out text, greedy continuations on both.
# Usage: scripts/train.sh [BUILD_DIR] [WORK_DIR] [extra train.py args...]
# Needs scripts/train-deps.sh (Debian packages) and a built `swapmoe` in BUILD_DIR.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
WORK=${2:-$ROOT/build-train}
[ $# -ge 2 ] && shift 2 || shift $#
PY=/usr/bin/python3
SWAPMOE=$BUILD/swapmoe
[ -x "$SWAPMOE" ] || { echo "train.sh: $SWAPMOE not built (cmake --build $BUILD --target swapmoe)" >&2; exit 1; }
mkdir -p "$WORK"

if [ "${SKIP_TRAIN:-0}" != 1 ]; then
  $PY "$ROOT/tools/train/train.py" --work "$WORK" "$@"
fi
"$SWAPMOE" quantize "$WORK/fortunes-moe-f32.gguf" "$ROOT/models/fortunes-moe.gguf" Q8_0
cp "$WORK/fortunes-moe-test.txt" "$ROOT/models/fortunes-moe-test.txt"
ls -l "$ROOT/models/fortunes-moe.gguf"

$PY "$ROOT/tools/train/stats.py" --work "$WORK" | tee "$WORK/stats.md"

M=$ROOT/models/fortunes-moe.gguf
T=$ROOT/models/fortunes-moe-test.txt
echo "== swapmoe vs llama.cpp: held-out perplexity (8 pieces of one window) and greedy ids"
(cd "$ROOT/tests/conformance" && [ -d node_modules ] || npm ci)
$PY "$ROOT/tools/train/engine_check.py" "$M" "$T" --swapmoe "$SWAPMOE" --json "$WORK/engine_check.json"
echo "== bpe.py vs swapmoe vs llama.cpp tokenization of the whole held-out text"
$PY "$ROOT/tools/train/tokenizer_check.py" "$M" "$T" --merges "$WORK/merges.json" --swapmoe "$SWAPMOE"
