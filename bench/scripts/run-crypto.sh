#!/usr/bin/env bash
# Runs the crypto benchmarks (bench/benches/crypto.rs) and the Node peer on one fixture,
# pinned to one core, RUNS times each in separate processes, and prints the markdown table
# (median of per-process medians, ratios) that goes into bench/README.md.
#
#   bench/scripts/run-crypto.sh                 # 3 runs on cpu 1
#   RUNS=1 CPU=0 bench/scripts/run-crypto.sh    # quicker
#   NODE=0 bench/scripts/run-crypto.sh          # without the Node peer
#   QUICK=1 RUNS=1 bench/scripts/run-crypto.sh  # smoke test (short rounds, noisy figures)
#   AUTHKIT_BENCH_CLOCK=wall bench/scripts/run-crypto.sh  # wall time instead of CPU time
#
# Times are CPU time of the measuring thread (Rust) / process (Node) unless
# AUTHKIT_BENCH_CLOCK=wall: on a shared machine wall time counts other processes' slices.
#
# Output: the table on stdout, then the interleaved uncached ratio (benches/paired.rs);
# raw results under target/bench-crypto/ (criterion baselines
# run1..runN under target/criterion/, node-N.json, fixture.json).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

RUNS="${RUNS:-3}"
CPU="${CPU:-1}"
NODE="${NODE:-1}"
crit_args=()
node_args=()
if [ "${QUICK:-0}" = 1 ]; then
  crit_args=(--warm-up-time 0.2 --measurement-time 0.5)
  node_args=(--round-ms 300 --rounds 3)
fi
target="${CARGO_TARGET_DIR:-$root/target}"
out="$target/bench-crypto"
mkdir -p "$out"

command -v taskset >/dev/null || { echo "taskset (util-linux) is required" >&2; exit 1; }

echo "== building (bench profile)" >&2
cargo bench -p authkit-bench --bench crypto --bench paired --no-run >&2
cargo build -q -p authkit-bench --bin fixture --bin report >&2

echo "== fixture" >&2
"$target/debug/fixture" >"$out/fixture.json"
export AUTHKIT_BENCH_FIXTURE="$out/fixture.json"

if [ "$NODE" = 1 ]; then
  command -v node >/dev/null || { echo "node is required for the peer (or NODE=0)" >&2; exit 1; }
  if [ ! -d "$here/node_modules/iron-session" ] || [ ! -d "$here/node_modules/jose" ]; then
    (cd "$here" && npm install --no-audit --no-fund >&2)
  fi
fi

baselines=()
node_files=()
for i in $(seq 1 "$RUNS"); do
  echo "== run $i/$RUNS: criterion on cpu $CPU" >&2
  taskset -c "$CPU" cargo bench -q -p authkit-bench --bench crypto -- --save-baseline "run$i" "${crit_args[@]}" >&2
  baselines+=("run$i")
  if [ "$NODE" = 1 ]; then
    echo "== run $i/$RUNS: node peer on cpu $CPU" >&2
    taskset -c "$CPU" node "$here/iron_peer.mjs" "$out/fixture.json" "${node_args[@]}" >"$out/node-$i.json"
    node_files+=("$out/node-$i.json")
  fi
done

echo "== uncached verification, interleaved with its floor (benches/paired.rs) on cpu $CPU" >&2
paired_rounds=2000
[ "${QUICK:-0}" = 1 ] && paired_rounds=50
ROUNDS=$paired_rounds taskset -c "$CPU" cargo bench -q -p authkit-bench --bench paired >"$out/paired.txt"

{
  echo "<!-- $(date -u +%Y-%m-%dT%H:%MZ), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), nproc=$(nproc), $(rustc --version), node $(node --version 2>/dev/null || echo n/a), RUNS=$RUNS, taskset -c $CPU, clock ${AUTHKIT_BENCH_CLOCK:-cpu}, load average at end: $(cut -d' ' -f1-3 /proc/loadavg) -->"
  echo
  "$target/debug/report" "$target/criterion" "$(IFS=,; echo "${baselines[*]}")" "${node_files[@]}"
  echo
  cat "$out/paired.txt"
} | tee "$out/table.md"
