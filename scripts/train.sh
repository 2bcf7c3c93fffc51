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
echo "== held-out text, first context window: swapmoe vs llama.cpp"
"$SWAPMOE" eval "$M" --text "$T"
(cd "$ROOT/tests/conformance" && { [ -d node_modules ] || npm ci; } && node llama_ref.mjs eval "$M" "$T")
echo "== greedy continuations (40 tokens): swapmoe, then llama.cpp ids"
for p in "The only way to" "Der Computer ist" "La vida es" "Il problema" "Жизнь — это" "Nie ma"; do
  echo "-- $p"
  "$SWAPMOE" run "$M" -p "$p" -n 40 --temp 0
  (cd "$ROOT/tests/conformance" && node llama_ref.mjs greedy "$M" "$p" 40)
done
