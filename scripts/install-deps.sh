#!/usr/bin/env bash
# Installs everything swapmoe needs to build and test, from Debian packages and the npm
# registry only. Safe to run repeatedly; skips apt when every package is present.
set -euo pipefail
pkgs=(build-essential cmake pkg-config ccache clang libclang-rt-14-dev
      liburing-dev nlohmann-json3-dev libcli11-dev libcpp-httplib-dev
      libgtest-dev libgmock-dev libbenchmark-dev libicu-dev
      python3 curl time)
# python3: smoke.sh's quantize comparison, cgroup and e2e checks; curl: the e2e server checks;
# time (GNU time): cgroup_run.sh --budget reads the peak RSS of the command from it.
# (The template goldens are committed, so CI does not need python3-jinja2 to regenerate them.)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from Debian (nodejs + npm) or elsewhere with npm bundled: only ask apt
# for it when no node/npm is on PATH.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then missing+=(nodejs npm); fi
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
# The llama.cpp reference for conformance tests (node-llama-cpp, pinned in package-lock.json).
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ -f "$root/tests/conformance/package.json" ] && [ ! -d "$root/tests/conformance/node_modules/node-llama-cpp" ]; then
  (cd "$root/tests/conformance" && npm ci --no-audit --no-fund --loglevel=error)
fi
