#!/usr/bin/env bash
# Instructions per in-process request for each route of src/bin/layer_drive.rs, by
# callgrind: the count of a run of LOW requests is subtracted from one of HIGH requests, so
# setup cancels out. Deterministic for a given binary and fixture, whatever else the machine
# runs. Needs valgrind (apt-get install valgrind).
#
#   bench/scripts/count-instructions.sh            # LOW=1000 HIGH=3000
set -euo pipefail
cd "$(dirname "$0")/../.."
LOW=${LOW:-1000}
HIGH=${HIGH:-3000}
target=${CARGO_TARGET_DIR:-target}
cargo build --profile bench -p authkit-bench --bin layer_drive --bin fixture >&2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$target/release/fixture" >"$out/fixture.json"
export AUTHKIT_BENCH_FIXTURE="$out/fixture.json"
count() {
  valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$target/release/layer_drive" "$1" "$2" 2>&1 \
    | sed -n 's/.*I *refs: *//p' | tr -d ,
}
declare -A per
for route in /open /extension /bearer; do
  low=$(count "$route" "$LOW")
  high=$(count "$route" "$HIGH")
  per[$route]=$(( (high - low) / (HIGH - LOW) ))
done
echo "| route | instructions per request | more than /open |"
echo "|---|---:|---:|"
for route in /open /extension /bearer; do
  echo "| \`$route\` | ${per[$route]} | $(( per[$route] - per[/open] )) |"
done
