#!/usr/bin/env bash
# HTTP benchmarks with wrk on loopback: server pinned to SERVER_CPU, wrk to WRK_CPU, each
# case RUNS times, interleaved (run 1 of every case, then run 2...), median reported. Servers are our own binaries (bench/src/bin/), built in
# the bench profile, and stop by themselves (--max-secs) if this script dies.
#
#   bench/scripts/run-http.sh              # both parts
#   PART=emulator bench/scripts/run-http.sh
#   PART=axum RUNS=1 DURATION=3 bench/scripts/run-http.sh
#
# e. emulator: refresh grant (pre-generated single-use tokens), password grant, list users
#    (limit=100) with USERS users created through the API, get user by id, JWKS; rps, p99
#    and peak RSS (VmHWM of the server process); the RSA-2048 signing floors (openssl and the
#    emulator's own signer), measured once per run.
# f. axum: the same handler without auth, behind AuthKitLayer::bearer (repeated token,
#    cache on) and behind AuthKitLayer::web (repeated session cookie), plus the uncached and
#    no-token (401) paths and /plaintext.
#
# Output: markdown tables on stdout; raw wrk output under target/bench-http/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

PART="${PART:-all}"
RUNS="${RUNS:-3}"
DURATION="${DURATION:-5}"
SERVER_CPU="${SERVER_CPU:-0}"
WRK_CPU="${WRK_CPU:-1}"
EMU_CONNS="${EMU_CONNS:-32}"    # perf-security §A3b measured workos/emulate with -c32
AXUM_CONNS="${AXUM_CONNS:-64}"  # and §A3's axum/node servers with -c64
USERS="${USERS:-10000}"
TOKENS="${TOKENS:-60000}"
target="${CARGO_TARGET_DIR:-$root/target}"
out="$target/bench-http"
mkdir -p "$out"

if ! command -v wrk >/dev/null; then
  echo "== installing wrk" >&2
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y wrk >&2 || { apt-get update >&2 && apt-get install -y wrk >&2; }
  else
    sudo apt-get install -y wrk >&2
  fi
fi

echo "== building servers (bench profile)" >&2
cargo build --profile bench -p authkit-bench --bin emulator_bench --bin axum_bench >&2
# Run private copies: the target directory is shared, and another checkout's build can replace
# target/release/<bin> while this script runs.
bin="$out/bin"
mkdir -p "$bin"
cp "$target/release/emulator_bench" "$target/release/axum_bench" "$bin/"

server_pid=""
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
trap stop_server EXIT

# start_server NAME CMD... : runs CMD pinned to SERVER_CPU, waits for its READY line.
start_server() {
  local name="$1"; shift
  local dir="$out/$name"
  mkdir -p "$dir"
  rm -f "$dir/stdout"
  taskset -c "$SERVER_CPU" "$@" --dir "$dir" >"$dir/stdout" 2>"$dir/stderr" &
  server_pid=$!
  local waited=0
  until grep -q '^READY ' "$dir/stdout" 2>/dev/null; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      echo "$name failed to start:" >&2; cat "$dir/stderr" >&2; exit 1
    fi
    sleep 0.5; waited=$((waited + 1))
    if [ "$waited" -gt 1200 ]; then echo "$name: not ready after 600 s" >&2; exit 1; fi
  done
  base_url="$(sed -n 's/^READY //p' "$dir/stdout")"
}

vm() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$server_pid/status"; }

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# p99 in ms from wrk --latency output
p99_ms() {
  awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } print v }' "$1"
}

declare -A RPS P99 ERRS
rm -f "$out"/wrk-*.txt
# wrk_run KEY RUN CONNS URL [wrk args...]: one pinned wrk run, output in wrk-KEY-RUN.txt.
# Callers loop runs outside and cases inside, so every case samples the whole period: the
# machine is shared, and a case measured in one block would catch one moment's load.
wrk_run() {
  local key="$1" run="$2" conns="$3" url="$4"; shift 4
  local f="$out/wrk-$key-$run.txt"
  taskset -c "$WRK_CPU" wrk -t1 -c"$conns" -d"${DURATION}s" --latency "$url" "$@" >"$f" 2>&1 || true
  echo "   $key run $run: $(awk '/^Requests\/sec:/ { print $2 }' "$f") rps" >&2
}
# summarize KEY: medians over its runs into RPS/P99, non-2xx summed into ERRS.
summarize() {
  local key="$1" rps_list="" p99_list="" errs=0 f n
  for f in "$out"/wrk-"$key"-*.txt; do
    rps_list+="$(awk '/^Requests\/sec:/ { print $2 }' "$f")"$'\n'
    p99_list+="$(p99_ms "$f")"$'\n'
    n="$(awk '/Non-2xx or 3xx responses:/ { print $5 }' "$f")"
    errs=$((errs + ${n:-0}))
  done
  RPS[$key]="$(printf '%s' "$rps_list" | median)"
  P99[$key]="$(printf '%s' "$p99_list" | median)"
  ERRS[$key]="$errs"
}

fmt_rps() { printf "%.0f" "$1"; }
machine="$(date -u +%Y-%m-%dT%H:%MZ), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), nproc=$(nproc), server on cpu $SERVER_CPU, wrk -t1 on cpu $WRK_CPU, ${DURATION}s x $RUNS runs, median"

if [ "$PART" = all ] || [ "$PART" = emulator ]; then
  echo "== e. emulator: seeding $USERS users through the API and $TOKENS refresh tokens" >&2
  start_server emulator "$bin/emulator_bench" --users "$USERS" --refresh-tokens "$TOKENS" --max-secs 1800
  dir="$out/emulator"
  info="$dir/server.json"
  rm -f "$dir"/floor-*.txt
  api_key="$(jq -r .api_key "$info")"; client_id="$(jq -r .client_id "$info")"
  uid="$(jq -r .some_user_id "$info")"
  # One token file per wrk run, so no token is sent twice.
  per=$((TOKENS / RUNS))
  for i in $(seq 1 "$RUNS"); do
    sed -n "$(( (i - 1) * per + 1 )),$(( i * per ))p" "$dir/refresh_tokens.txt" >"$dir/tokens-$i.txt"
  done
  hwm_ready="$(vm VmHWM)"

  for i in $(seq 1 "$RUNS"); do
    echo "== e. run $i/$RUNS: refresh grant, list users, get user, JWKS" >&2
    wrk_run refresh "$i" "$EMU_CONNS" "$base_url/user_management/authenticate" -s "$here/refresh.lua" -- "$dir/tokens-$i.txt"
    wrk_run list64 "$i" "$EMU_CONNS" "$base_url/user_management/users?limit=100" -H "Authorization: Bearer $api_key"
    wrk_run list1 "$i" 1 "$base_url/user_management/users?limit=100" -H "Authorization: Bearer $api_key"
    wrk_run getuser "$i" "$EMU_CONNS" "$base_url/user_management/users/$uid" -H "Authorization: Bearer $api_key"
    wrk_run jwks "$i" "$EMU_CONNS" "$base_url/sso/jwks/$client_id"
    # The floors, once per run so they see the same load as the cases: RSA-2048 signatures
    # per CPU-second of openssl, and of the emulator's own signer (aws-lc, a grant's claims).
    if command -v openssl >/dev/null; then
      taskset -c "$SERVER_CPU" openssl speed -seconds 2 rsa2048 2>/dev/null \
        | awk '$1 == "rsa" && $2 == "2048" { print $(NF-1) }' | tail -1 >>"$dir/floor-openssl.txt"
    fi
    taskset -c "$SERVER_CPU" "$bin/emulator_bench" --sign-floor-secs 2 \
      | sed -n 's/^SIGN_FLOOR //p' >>"$dir/floor-emulator.txt"
    echo "   floors run $i: openssl $(tail -1 "$dir/floor-openssl.txt" 2>/dev/null), emulator signer $(tail -1 "$dir/floor-emulator.txt")" >&2
  done
  hwm_before_pw="$(vm VmHWM)"; rss_before_pw="$(vm VmRSS)"
  # Last, so its sessions show as memory growth.
  for i in $(seq 1 "$RUNS"); do
    echo "== e. run $i/$RUNS: password grant" >&2
    wrk_run password "$i" "$EMU_CONNS" "$base_url/user_management/authenticate" -s "$here/password.lua" -- \
      "$(jq -r .password_user "$info")" "$(jq -r .password "$info")" "$client_id" "$api_key"
  done
  hwm_end="$(vm VmHWM)"; rss_end="$(vm VmRSS)"
  for k in refresh list64 list1 getuser jwks password; do summarize "$k"; done
  stop_server
  # The floor of every token grant: one RSA-2048 signature on the server's core (medians of
  # the per-run measurements above).
  rsa_sign="n/a"
  if [ -s "$dir/floor-openssl.txt" ]; then rsa_sign="$(median <"$dir/floor-openssl.txt")"; fi
  emu_sign="$(median <"$dir/floor-emulator.txt")"
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }

  cat <<EOF
### e. workos-emulator (SQLite file store, $USERS users created through the API)

<!-- $machine; wrk -c$EMU_CONNS unless noted -->

| request | rps | p99 | non-2xx | workos/emulate (§A3b, Bun, -c32) |
|---|---:|---:|---:|---:|
| \`POST /user_management/authenticate\` refresh grant | $(fmt_rps "${RPS[refresh]}") | ${P99[refresh]} ms | ${ERRS[refresh]} | 1.17k |
| \`POST /user_management/authenticate\` password grant | $(fmt_rps "${RPS[password]}") | ${P99[password]} ms | ${ERRS[password]} | 1.0k |
| floor: RSA-2048 signatures/s on the server core (\`openssl speed rsa2048\`) | ${rsa_sign} | | | 4.0k |
| floor: the emulator's signer (aws-lc RSA-2048, a grant's claims, \`emulator_bench --sign-floor-secs\`) | $(fmt_rps "$emu_sign") | | | |
| \`GET /user_management/users?limit=100\` | $(fmt_rps "${RPS[list64]}") | ${P99[list64]} ms | ${ERRS[list64]} | |
| same, 1 connection | $(fmt_rps "${RPS[list1]}") | ${P99[list1]} ms | ${ERRS[list1]} | 28.5 (at 100k users) |
| \`GET /user_management/users/{id}\` | $(fmt_rps "${RPS[getuser]}") | ${P99[getuser]} ms | ${ERRS[getuser]} | 13.0k |
| \`GET /sso/jwks/{client_id}\` | $(fmt_rps "${RPS[jwks]}") | ${P99[jwks]} ms | ${ERRS[jwks]} | 15.4k |

| memory and set-up | value |
|---|---:|
| start-up to first \`/health\` answer (SQLite file, migrations, demo seed; the first signing key is generated in the background) | $(jq -r '.startup_to_first_response_ms | . * 10 | round / 10' "$info") ms |
| create $USERS users through the API, sequentially (client in the same process) | $(jq -r '.create_users_via_api_secs | . * 100 | round / 100' "$info") s |
| RSS idle (after start-up) | $(( $(jq -r .rss_kib.idle "$info") / 1024 )) MiB |
| RSS with $USERS users | $(( $(jq -r .rss_kib.after_users "$info") / 1024 )) MiB |
| peak RSS (VmHWM) after seeding + $TOKENS sessions | $(( hwm_ready / 1024 )) MiB |
| RSS before / after the password-grant runs (every request creates a session) | $(( rss_before_pw / 1024 )) / $(( rss_end / 1024 )) MiB |
| peak RSS (VmHWM) at the end | $(( hwm_end / 1024 )) MiB |

Refresh grant $(ratio "${RPS[refresh]}" "$rsa_sign")× and password grant $(ratio "${RPS[password]}" "$rsa_sign")× the openssl floor (goal ≥ 0.8); $(ratio "${RPS[refresh]}" "$emu_sign")× and $(ratio "${RPS[password]}" "$emu_sign")× the emulator's own signer, which signs at $(ratio "$emu_sign" "$rsa_sign")× openssl's rate.

EOF
fi

if [ "$PART" = all ] || [ "$PART" = axum ]; then
  echo "== f. axum bearer and cookie" >&2
  start_server axum "$bin/axum_bench" --max-secs 1200
  token="$(cat "$out/axum/token.txt")"
  cookie="wos-session=$(cat "$out/axum/cookie.txt")"
  for i in $(seq 1 "$RUNS"); do
    echo "== f. run $i/$RUNS" >&2
    wrk_run plaintext "$i" "$AXUM_CONNS" "$base_url/plaintext"
    wrk_run open "$i" "$AXUM_CONNS" "$base_url/open"
    wrk_run bearer "$i" "$AXUM_CONNS" "$base_url/bearer" -H "Authorization: Bearer $token"
    wrk_run openhdr "$i" "$AXUM_CONNS" "$base_url/open" -H "Authorization: Bearer $token"
    wrk_run layered "$i" "$AXUM_CONNS" "$base_url/open-layered" -H "Authorization: Bearer $token"
    wrk_run notoken "$i" "$AXUM_CONNS" "$base_url/bearer"
    wrk_run nocache "$i" "$AXUM_CONNS" "$base_url/bearer-nocache" -H "Authorization: Bearer $token"
    wrk_run cookie "$i" "$AXUM_CONNS" "$base_url/cookie" -H "Cookie: $cookie"
    wrk_run opencookie "$i" "$AXUM_CONNS" "$base_url/open" -H "Cookie: $cookie"
    wrk_run cookienocache "$i" "$AXUM_CONNS" "$base_url/cookie-nocache" -H "Cookie: $cookie"
  done
  for k in plaintext open openhdr layered bearer nocache notoken cookie opencookie cookienocache; do summarize "$k"; done
  hwm_axum="$(vm VmHWM)"
  stop_server
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
  cat <<EOF
### f. authkit-axum bearer and cookie routes vs the same route without auth (tokio current_thread)

<!-- $machine; wrk -c$AXUM_CONNS -->

| route | rps | p99 | non-2xx | ratio |
|---|---:|---:|---:|---|
| \`/plaintext\` (HTTP floor) | $(fmt_rps "${RPS[plaintext]}") | ${P99[plaintext]} ms | ${ERRS[plaintext]} | |
| \`/open\` (JSON handler, no auth, the same body as \`/bearer\`) | $(fmt_rps "${RPS[open]}") | ${P99[open]} ms | ${ERRS[open]} | 1.00 |
| \`/open\` sent the same 900-byte \`Authorization\` header (ignored) | $(fmt_rps "${RPS[openhdr]}") | ${P99[openhdr]} ms | ${ERRS[openhdr]} | $(ratio "${RPS[openhdr]}" "${RPS[open]}")× /open |
| \`/open-layered\` (the same behind a pass-through tower layer: \`Router::layer\` alone), same header | $(fmt_rps "${RPS[layered]}") | ${P99[layered]} ms | ${ERRS[layered]} | $(ratio "${RPS[layered]}" "${RPS[openhdr]}")× /open with the header |
| \`/bearer\` (\`AuthKitLayer::bearer\` + \`Auth\`, repeated token, cache on) | $(fmt_rps "${RPS[bearer]}") | ${P99[bearer]} ms | ${ERRS[bearer]} | **$(ratio "${RPS[bearer]}" "${RPS[openhdr]}")× /open with the header** (goal ≥ 0.9: the same request and response, without auth); $(ratio "${RPS[bearer]}" "${RPS[open]}")× /open; $(ratio "${RPS[bearer]}" "${RPS[layered]}")× /open-layered |
| \`/bearer-nocache\` (cache off: RSA every request) | $(fmt_rps "${RPS[nocache]}") | ${P99[nocache]} ms | ${ERRS[nocache]} | $(ratio "${RPS[nocache]}" "${RPS[open]}")× /open |
| \`/bearer\` without a token (401 path) | $(fmt_rps "${RPS[notoken]}") | ${P99[notoken]} ms | ${ERRS[notoken]} (expected: all) | $(ratio "${RPS[notoken]}" "${RPS[open]}")× /open |
| \`/open\` sent the same 2.3 kB session \`Cookie\` header (ignored) | $(fmt_rps "${RPS[opencookie]}") | ${P99[opencookie]} ms | ${ERRS[opencookie]} | $(ratio "${RPS[opencookie]}" "${RPS[open]}")× /open |
| \`/cookie\` (\`AuthKitLayer::web\` + \`Auth\`: unseal \`Fe26.2\` + verify, cache on) | $(fmt_rps "${RPS[cookie]}") | ${P99[cookie]} ms | ${ERRS[cookie]} | **$(ratio "${RPS[cookie]}" "${RPS[open]}")× /open**; $(ratio "${RPS[cookie]}" "${RPS[opencookie]}")× /open with the cookie |
| \`/cookie-nocache\` (unseal + RSA every request) | $(fmt_rps "${RPS[cookienocache]}") | ${P99[cookienocache]} ms | ${ERRS[cookienocache]} | $(ratio "${RPS[cookienocache]}" "${RPS[open]}")× /open |

Peak RSS of the axum server: $(( hwm_axum / 1024 )) MiB.

EOF
fi
