#!/usr/bin/env bash
# The floors of src/ (docs/architecture.md): a library may include only libraries on lower
# floors (and itself). Exit status 1, naming each offending include, when one reaches up or
# sideways.
#   scripts/check_floors.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
declare -A floor=(
  [util]=0 [gguf]=1 [quant]=1 [io]=1 [store]=1 [sample]=1 [template]=1 [ops]=2 [tokenizer]=2
  [arch]=3 [expert]=4 [model]=5 [cache]=5 [runtime]=6 [eval]=7 [server]=7 [convert]=7 [cli]=8
)
bad=0
for dir in "$root"/src/*/; do
  lib=$(basename "$dir")
  [ -n "${floor[$lib]+x}" ] || { echo "check_floors: src/$lib has no floor (add it here and to docs/architecture.md)" >&2; bad=1; continue; }
  while IFS=: read -r file line inc; do
    dep=${inc#*\"}; dep=${dep%%/*}
    [ -n "${floor[$dep]+x}" ] || continue
    if [ "$dep" != "$lib" ] && [ "${floor[$dep]}" -ge "${floor[$lib]}" ]; then
      echo "check_floors: ${file#$root/}:$line includes $dep/ (floor ${floor[$dep]}) from $lib/ (floor ${floor[$lib]})" >&2
      bad=1
    fi
  done < <(grep -Hn '^#include "[a-z_]*/' "$dir"* || true)
done
[ $bad -eq 0 ] && echo "check_floors: every include goes down"
exit $bad
