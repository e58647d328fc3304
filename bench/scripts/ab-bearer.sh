#!/usr/bin/env bash
# Interleaved A/B of two axum_bench binaries: the /bearer-to-/open ratio of each, measured in
# alternating rounds so that both sample the same moments of a shared machine's load. A
# difference of a few per cent is invisible in back-to-back runs of run-http.sh here (their
# medians move by +-0.03); alternating brings it out.
#
#   bench/scripts/ab-bearer.sh OLD_BIN NEW_BIN     # ROUNDS=6 PAIRS=5 DURATION=2 CONNS=64
#
# Each round starts each binary's server once and measures PAIRS adjacent pairs of /open (with
# the bearer header) and /bearer, in alternating order; a ratio is taken per pair.
#
# Build each binary with `cargo build --profile bench -p authkit-bench --bin axum_bench` in
# its own checkout and copy target/release/axum_bench aside: the target directory is shared.
# Prints, per binary, the ratio of every pair and their median.
set -euo pipefail
old="$1" new="$2"
ROUNDS=${ROUNDS:-6}
PAIRS=${PAIRS:-5}
DURATION=${DURATION:-2}
CONNS=${CONNS:-64}
SERVER_CPU=${SERVER_CPU:-0}
WRK_CPU=${WRK_CPU:-1}
out=$(mktemp -d)
pid=""
stop() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  pid=""
}
trap 'stop; rm -rf "$out"' EXIT

rps() {
  taskset -c "$WRK_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" "$@" 2>&1 \
    | awk '/^Requests\/sec:/ { print $2 }'
}

# one BIN LABEL: a server from BIN; PAIRS pairs of /open with the bearer header and /bearer;
# prints "LABEL ratio bearer_rps open_rps" per pair.
one() {
  local bin="$1" label="$2" dir="$out/$2"
  rm -rf "$dir"; mkdir -p "$dir"
  taskset -c "$SERVER_CPU" "$bin" --dir "$dir" --max-secs 600 >"$dir/stdout" 2>"$dir/stderr" &
  pid=$!
  until grep -q '^READY ' "$dir/stdout" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { cat "$dir/stderr" >&2; exit 1; }
    sleep 0.2
  done
  local base token open bearer
  base=$(sed -n 's/^READY //p' "$dir/stdout")
  token=$(cat "$dir/token.txt")
  for pair in $(seq 1 "$PAIRS"); do
    if (( pair % 2 )); then
      open=$(rps "$base/open" -H "Authorization: Bearer $token")
      bearer=$(rps "$base/bearer" -H "Authorization: Bearer $token")
    else
      bearer=$(rps "$base/bearer" -H "Authorization: Bearer $token")
      open=$(rps "$base/open" -H "Authorization: Bearer $token")
    fi
    awk -v b="$bearer" -v o="$open" -v l="$label" 'BEGIN { printf "%s %.4f %.0f %.0f\n", l, b / o, b, o }'
  done
  stop
}

results="$out/results"
for round in $(seq 1 "$ROUNDS"); do
  # Alternate which goes first, so neither always follows the other.
  if (( round % 2 )); then order=(old new); else order=(new old); fi
  for which in "${order[@]}"; do
    if [ "$which" = old ]; then bin="$old"; else bin="$new"; fi
    one "$bin" "$which" | tee -a "$results" | sed "s/^/round $round: /" >&2
  done
done

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "| binary | /bearer ÷ /open with the header, per pair | median |"
echo "|---|---|---:|"
for which in old new; do
  ratios=$(awk -v w="$which" '$1 == w { print $2 }' "$results")
  echo "| $which | $(echo "$ratios" | tr '\n' ' ') | $(echo "$ratios" | median) |"
done
