#!/bin/sh
# Debian packages for training the demo model (tools/train): PyTorch, the regex and numpy
# modules, an optimised BLAS (Debian's python3-torch falls back to the slow reference BLAS
# without one: 4x slower training), and the fortune-cookie corpora the model learns from.
# Run as root (or through sudo). Use /usr/bin/python3 afterwards: these modules are Debian's.
set -eu
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends \
  python3 python3-torch python3-regex python3-numpy libopenblas0-openmp \
  fortunes-min fortunes fortunes-de fortunes-es fortunes-it fortunes-ru fortunes-pl
