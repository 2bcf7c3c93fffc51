#!/usr/bin/env bash
# Issue 8, item 2/5: the figures that docs/deepseek-r1.md projects the full DeepSeek-R1 671B
# from, measured on slices of the same forge preset (same widths, types and expert sizes).
#
#   scripts/bench_r1_slice.sh [SLICE]        (default /work/big/r1-slice-3d2m-q4km.gguf)
#
# SLICE is a slice with real random data everywhere, e.g.
#   swapmoe-forge --preset deepseek-r1-671b-q4km --layers 5 --leading-dense 3 --vocab ggml-vocab-deepseek-v3.gguf -o SLICE
# (3 dense + 2 MoE layers, 15.1 GiB).
#
# Parts (each can be skipped with SKIP_<PART>=1):
#   COMPUTE   per-layer compute time, dense and MoE, with every used expert in memory. A
#             resident MoE layer is 6.8 GiB, so instead of resident runs this forges
#             zero-weight slices (--sparse-all: holes, no disk) with 1-6 MoE layers: every
#             token of a zero model routes to the same 8 experts per layer, so after the
#             prompt a small --mem holds them all and decoding reads nothing. Matrix-vector
#             work does not depend on the weights' values, so the decode time is the
#             compute time. Wall time on this shared 2-core machine (load 10-16 while
#             this was written) says little, so the figure is CPU time: each slice runs
#             `bench -n N1` and `-n N2` (4 and 28) with non-spinning workers
#             (SWAPMOE_SPIN_US=0), and (CPU(N2) - CPU(N1)) / (N2 - N1) is the CPU time of
#             one decode token, loading and prompt cancelling out; fastest of R=3. A
#             least-squares fit of cpu/token = c0 + n_dense*t_dense + n_moe*t_moe gives the
#             per-layer times. These budgets stay under 3 GiB, so no memory lock is taken
#             (the lock was held by long sweeps for 15+ minutes at a time).
#   POLICIES  `swapmoe bench` on SLICE under each BUDGETS x POLICIES in a cgroup at the budget:
#             decode tok/s, hit rate, bytes read per token, I/O wait per token (decode only;
#             the prompt's cold misses are excluded), and bench's own O_DIRECT bandwidth.
#   SWAPMOE   the same with --policy swapmoe, if this swapmoe has it.
#   IO        scripts/bench_io.sh: O_DIRECT read bandwidth by queue depth (io_uring, pread).
#
# Environment: SWAPMOE (binary; default build/swapmoe), FORGE (swapmoe-forge; default next to
# SWAPMOE), BUILD (build dir with libswapmoe_io.a for bench_io; default dirname of SWAPMOE),
# PRESET (forge preset of the zero-weight slices, deepseek-r1-671b-q4km; SLOT_MIB, its largest
# expert in MiB, 27.24), N (decode tokens, 24), THREADS (2), BUDGETS ("3G 3.6G 4.4G 6G": the 24/40/64 GB cache fractions), POLICIES ("lru lfu nextuse"),
# VOCAB (ggml-vocab-deepseek-v3.gguf), OUT (log directory; default /tmp/bench_r1_slice.$$).
# Big runs hold the machine-wide memory lock (/work/big/.memlock) one at a time.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
slice=${1:-/work/big/r1-slice-3d2m-q4km.gguf}
swapmoe=${SWAPMOE:-$root/build/swapmoe}
forge=${FORGE:-$(dirname "$swapmoe")/swapmoe-forge}
build=${BUILD:-$(dirname "$swapmoe")}
n=${N:-24}
threads=${THREADS:-2}
budgets=${BUDGETS:-"3G 3.6G 4.4G 6G"}
policies=${POLICIES:-"lru lfu nextuse"}
vocab=${VOCAB:-}
out=${OUT:-/tmp/bench_r1_slice.$$}
lock=${MEMLOCK:-/work/big/.memlock}
prompt="The history of the river town"

die() { echo "bench_r1_slice: $*" >&2; exit 1; }
[ -x "$swapmoe" ] || die "set SWAPMOE=/path/to/swapmoe (not executable: $swapmoe)"
mkdir -p "$out"
if [ -z "$vocab" ]; then
  for d in "$root/tests/data/vocab" "$root/../shared/vocab" /work/shared/vocab; do
    [ -f "$d/ggml-vocab-deepseek-v3.gguf" ] && { vocab=$d/ggml-vocab-deepseek-v3.gguf; break; }
  done
fi

echo "# bench_r1_slice $(date -u +%FT%TZ)"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(awk '/MemAvailable/ { printf "%.1f GiB available", $2 / 1048576 }' /proc/meminfo)"
echo "swapmoe: $swapmoe ($(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet 2>/dev/null || echo ', tree dirty')), threads $threads, logs in $out"

# One locked, cgroup-limited command; its stderr to $out/$1.err, stdout to $out/$1.out.
locked() {  # NAME LIMIT CMD...
  local name=$1 limit=$2; shift 2
  flock "$lock" timeout 900 "$root/scripts/cgroup_run.sh" "$limit" -- "$@" > "$out/$name.out" 2> "$out/$name.err"
  local rc=$?
  [ $rc = 0 ] || echo "  ($name: rc $rc, see $out/$name.err)"
  return $rc
}
# "read 2.60 GiB/token" -> MiB
read_mib() {
  sed -n 's/.*| read \([0-9.]*\) \([KMG]i\?B\)\/token.*/\1 \2/p' | head -1 |
    awk '{ m = ($2 ~ /^G/) ? 1024 : ($2 ~ /^M/) ? 1 : ($2 ~ /^K/) ? 1 / 1024 : 1 / 1048576; printf "%.1f\n", $1 * m }'
}

# ---------------------------------------------------------------------------------------------
if [ "${SKIP_COMPUTE:-0}" != 1 ]; then
  [ -x "$forge" ] || die "no swapmoe-forge at $forge (set FORGE)"
  [ -n "$vocab" ] || die "no ggml-vocab-deepseek-v3.gguf found (set VOCAB)"
  n1=${N1:-4}; n2=${N2:-28}
  echo
  echo "## compute per layer (zero-weight slices, every used expert cached; CPU time of $n2 - $n1 decode tokens, fastest of R=${R:-3})"
  echo "| slice | dense | MoE | --mem | user CPU s/token | wall s/token (fastest) | hit rate | cgroup peak |"
  echo "|---|---|---|---|---|---|---|---|"
  fitdata=$out/fit.txt; : > "$fitdata"
  # Shapes whose budget stays under 3 GiB (no memory lock needed).
  for shape in ${SHAPES:-"1,1" "2,1" "1,3"}; do
    nd=${shape%,*}; nm=${shape#*,}
    f=$out/zero-${nd}d${nm}m.gguf
    "$forge" --preset "${PRESET:-deepseek-r1-671b-q4km}" --layers $((nd + nm)) --leading-dense "$nd" --sparse-all \
      --split-max-size 0 --vocab "$vocab" -o "$f" 2> "$out/forge-${nd}d${nm}m.err" || die "forge failed: $(tail -1 "$out/forge-${nd}d${nm}m.err")"
    # dense weights + 8 slots per MoE layer + 0.35 GiB slack.
    mem=$("$swapmoe" plan "$f" --mem 64G --ctx 256 | awk -v nm="$nm" -v slot="${SLOT_MIB:-27.24}" '/^ *dense weights / && !d { d = $3 * ($4 == "MiB" ? 1 / 1024 : 1) }
      END { printf "%.2fG\n", d + nm * 8 * slot / 1024 + 0.35 }')
    cpu1=""; cpu2=""; wall=""; hit=""; peak=""
    for r in $(seq 1 "${R:-3}"); do
      for nn in $n1 $n2; do
        name=zero-${nd}d${nm}m-$nn-$r
        # No spinning workers: CPU time is then the work itself (spin-waiting would add
        # the waits of a loaded machine to it).
        # The cgroup gets CG_SLACK (default 0.5G) above the budget: this part measures CPU
        # time, not the budget (forged slices with 2+ dense layers were OOM-killed at the
        # budget + 0.35 GiB on 2026-11-29; see the README of this script's issue).
        if SWAPMOE_SPIN_US=0 "$root/scripts/cgroup_run.sh" --no-drop "$(awk -v m="${mem%G}" -v s="${CG_SLACK:-0.5}" 'BEGIN { printf "%.2fG", m + s }')" -- /usr/bin/time -f "cpu %U %S" \
             "$swapmoe" bench "$f" --mem "$mem" -n "$nn" -t "$threads" --ctx 256 -p "$prompt" > "$out/$name.out" 2> "$out/$name.err"; then
          # User time only: the system time is dominated by loading (reading the dense
          # weights, dropping their page cache), which varies by a second between runs.
          c=$(awk '/^cpu / { printf "%.3f", $2 }' "$out/$name.err")
          if [ "$nn" = "$n1" ]; then cpu1="$cpu1 $c"; else
            cpu2="$cpu2 $c"
            tps=$(sed -n 's/^decode: .* \([0-9.]*\) tok\/s$/\1/p' "$out/$name.out" | head -1)
            wall="$wall $tps"
            hit=$(sed -n 's/.*hit rate \([0-9.]*\)%.*/\1/p' "$out/$name.out" | head -1)
            peak=$(sed -n 's/.*peak \([0-9.]* MiB\).*/\1/p' "$out/$name.err" | tail -1)
          fi
        else
          echo "  ($name failed, see $out/$name.err)"
        fi
      done
    done
    min() { printf '%s\n' "$@" | sort -g | head -1; }
    max() { printf '%s\n' "$@" | sort -g | tail -1; }
    if [ -n "$cpu1" ] && [ -n "$cpu2" ]; then
      # shellcheck disable=SC2086
      cpt=$(awk -v a="$(min $cpu1)" -v b="$(min $cpu2)" -v n=$((n2 - n1)) 'BEGIN { printf "%.4f", (b - a) / n }')
      # shellcheck disable=SC2086
      wpt=$(awk -v t="$(max $wall)" 'BEGIN { printf "%.4f", 1 / t }')
      echo "$nd $nm $cpt" >> "$fitdata"
      echo "| zero-${nd}d${nm}m | $nd | $nm | $mem | $cpt | $wpt | $hit% | $peak |"
    fi
    rm -f "$f"
  done
  # Least squares for cpu = c0 + nd*td + nm*tm (normal equations, 3x3, Cramer's rule).
  awk -v threads="$threads" '{ x1 = 1; x2 = $1; x3 = $2; y = $3
         a11 += x1*x1; a12 += x1*x2; a13 += x1*x3; a22 += x2*x2; a23 += x2*x3; a33 += x3*x3
         b1 += x1*y; b2 += x2*y; b3 += x3*y; k++ }
    function det(p,q,r,s,t,u,v,w,z) { return p*(t*z-u*w) - q*(s*z-u*v) + r*(s*w-t*v) }
    END {
      if (k < 3) { print "fit: fewer than 3 slices ran"; exit }
      D = det(a11,a12,a13, a12,a22,a23, a13,a23,a33)
      c0 = det(b1,a12,a13, b2,a22,a23, b3,a23,a33) / D
      td = det(a11,b1,a13, a12,b2,a23, a13,b3,a33) / D
      tm = det(a11,a12,b1, a12,a22,b2, a13,a23,b3) / D
      full = c0 + 3*td + 58*tm
      printf "\nfit (CPU seconds per token): %.1f ms fixed (output 129280 x 7168, embedding row, sampling) + %.1f ms per dense layer + %.1f ms per MoE layer (8 routed + 1 shared expert)\n", 1000*c0, 1000*td, 1000*tm
      printf "full R1 (3 dense + 58 MoE layers), every used expert in memory: %.2f CPU s/token; at %d threads with perfect scaling %.2f s/token = %.3f tok/s\n", full, threads, full/threads, threads/full
    }' "$fitdata"
fi

# ---------------------------------------------------------------------------------------------
bench_row() {  # NAME BUDGET LABEL
  local name=$1 mem=$2 label=$3
  local tps hit mib wait bw bound peak
  tps=$(sed -n 's/^decode: .* \([0-9.]*\) tok\/s$/\1/p' "$out/$name.out" | head -1)
  hit=$(sed -n 's/.*hit rate \([0-9.]*\)%.*/\1/p' "$out/$name.out" | head -1)%
  # SwapMoE's stats line has no hit rate: the resident and masked shares of the choice instead.
  grep -q "experts: swapmoe:" "$out/$name.out" &&
    hit=$(sed -n 's/.*resident \([0-9.]*%\) of chosen | masked \([0-9.]*%\).*/resident \1, masked \2/p' "$out/$name.out" | head -1)
  mib=$(read_mib < "$out/$name.out")
  [ -n "$mib" ] || mib=$(sed -n 's/.*swaps [0-9]* (\([0-9.]* [KMG]*i*B\)\/token).*/\1 swaps/p' "$out/$name.out" | head -1)
  wait=$(sed -n 's/.*I\/O wait \([0-9.]*\) ms\/token.*/\1/p' "$out/$name.out" | head -1)
  bw=$(sed -n 's/.*missed at \([0-9.]* [KMG]*i*B\)\/s disk.*/\1/p' "$out/$name.out" | head -1)
  slots=$(sed -n 's/^cache: \([0-9]*\) slots.*/\1/p' "$out/$name.out" | head -1)
  peak=$(sed -n 's/.*peak \([0-9.]* MiB\).*/\1/p' "$out/$name.err" | tail -1)
  local comp
  comp=$(awk -v t="$tps" -v w="$wait" 'BEGIN { if (t > 0) printf "%.0f", 1000 / t - w; else print "-" }')
  echo "| $label | $mem | ${slots:-?} | $tps | $hit | $mib | $wait | $comp | ${bw:--} | $peak |"
}

if [ "${SKIP_POLICIES:-0}" != 1 ] || [ "${SKIP_SWAPMOE:-0}" != 1 ]; then
  [ -f "$slice" ] || die "no slice $slice"
  echo
  echo "## budgets x policies on $(basename "$slice") ($(du -h --apparent-size "$slice" | cut -f1)), $n decode tokens, cgroup = budget"
  echo "| policy | --mem | slots | decode tok/s | hit rate | read MiB/token | I/O wait ms/token | compute ms/token | disk (bench) | cgroup peak |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
fi
if [ "${SKIP_POLICIES:-0}" != 1 ]; then
  for mem in $budgets; do
    for pol in $policies; do
      name=slice-$pol-$mem
      locked "$name" "$mem" "$swapmoe" bench "$slice" --mem "$mem" --cache-policy "$pol" -n "$n" -t "$threads" --ctx 256 \
        -p "$prompt" && bench_row "$name" "$mem" "$pol"
    done
  done
fi
if [ "${SKIP_SWAPMOE:-0}" != 1 ]; then
  if "$swapmoe" bench --help 2>&1 | grep -q -- "--policy"; then
    for mem in $budgets; do
      name=slice-swapmoe-$mem
      locked "$name" "$mem" "$swapmoe" bench "$slice" --mem "$mem" --policy swapmoe -n "$n" -t "$threads" --ctx 256 \
        -p "$prompt" && bench_row "$name" "$mem" "swapmoe"
    done
  else
    echo "(this swapmoe has no --policy swapmoe yet: SwapMoE mode not measured)"
  fi
fi

# ---------------------------------------------------------------------------------------------
if [ "${SKIP_IO:-0}" != 1 ]; then
  echo
  echo "## O_DIRECT read bandwidth (scripts/bench_io.sh, 2 GiB file in /work/big)"
  if [ -f "$build/libswapmoe_io.a" ]; then
    flock "$lock" "$root/scripts/bench_io.sh" "$build" /work/big 2048 > "$out/bench_io.out" 2>&1 || echo "(bench_io failed, see $out/bench_io.out)"
    sed 's/^/    /' "$out/bench_io.out"
  else
    echo "(no $build/libswapmoe_io.a: cmake --build $build --target swapmoe_io)"
  fi
fi
