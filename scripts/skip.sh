#!/usr/bin/env bash
# Skips that CI does not allow (the shell side of tests/unit/require.h).
#
# Sourced:   . scripts/skip.sh; if swapmoe_skip CLASS "reason"; then <skipped>; else <failed>; fi
# Executed:  bash scripts/skip.sh CLASS "reason"    exit 77 (a CTest skip) or 1 (required)
#
# Strict mode is CI=true or SWAPMOE_REQUIRE=all: a skip is then a failure, unless
# SWAPMOE_ALLOW_SKIP (comma-separated classes: node, cgroup, uring, python3, ...) names its
# class. Every skip is printed and appended to $SWAPMOE_SKIP_LOG when that is set
# (scripts/test.sh prints the file as the summary of what did not run).

swapmoe_strict() { [ "${CI:-}" = true ] || [ "${SWAPMOE_REQUIRE:-}" = all ]; }

# swapmoe_skip CLASS REASON...: returns 0 when the skip is allowed, 1 when it is a failure.
swapmoe_skip() {
  local cls="$1"; shift
  local reason="$*" verdict=SKIP
  if swapmoe_strict && [[ ",${SWAPMOE_ALLOW_SKIP:-}," != *",$cls,"* ]]; then verdict=FAIL; fi
  local who="${SWAPMOE_SKIP_WHO:-$(basename "${0:-sh}")}"
  if [ -n "${SWAPMOE_SKIP_LOG:-}" ]; then echo "$verdict $who [$cls]: $reason" >> "$SWAPMOE_SKIP_LOG"; fi
  if [ $verdict = SKIP ]; then
    echo "skip: $who [$cls]: $reason"
    return 0
  fi
  echo "FAIL: $who [$cls]: $reason (required under CI=true / SWAPMOE_REQUIRE=all; SWAPMOE_ALLOW_SKIP=$cls allows it)" >&2
  return 1
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  [ $# -ge 2 ] || { echo "usage: skip.sh CLASS REASON" >&2; exit 2; }
  SWAPMOE_SKIP_WHO="${SWAPMOE_SKIP_WHO:-ctest}"
  if swapmoe_skip "$@"; then exit 77; fi
  exit 1
fi
