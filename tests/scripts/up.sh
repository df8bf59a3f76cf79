#!/usr/bin/env bash
# `make up`: the four services as separate processes on this machine against the local Redis,
# RabbitMQ and PostgreSQL (the production shape on one machine). Ports, logs and pids go to
# .run/; base URLs to .run/endpoints.env. `make down` stops them.
#
# `make up ROOMS_REPLICAS=3` (default 1) starts that many rooms replicas, one cluster that
# shares the shards through Redis leases: rooms-1 on ROOMS_PORT (8081), rooms-2, rooms-3, ...
# on ROOMS_PORT+10, +11, ... (8091, 8092, ...). Each gets CHAT__NODE__ID=rooms-<i> (what the
# pod name is on Kubernetes) and the same bus and Redis prefixes (CHAT__AMQP__PREFIX and
# CHAT__REDIS__PREFIX, if set in the environment, reach every replica alike). In
# .run/endpoints.env ROOMS_URL is rooms-1 and ROOMS_URLS lists every replica (comma-separated).
# The cluster ops endpoint of rooms (GET /internal/v1/cluster, POST
# /internal/v1/cluster/members/{node}/drain) takes the bearer token kept in
# .run/up/cluster-admin.token (CHAT__CLUSTER__ADMIN_TOKEN, generated once).
set -euo pipefail
cd "$(dirname "$0")/../.."
run=.run/up
mkdir -p "$run"

# Whether any process of an earlier `make up` still runs (one dead replica is not "down").
still_running() {
  local pid
  [ -f "$run/pids" ] || return 1
  while read -r pid; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then return 0; fi
  done < "$run/pids"
  return 1
}
if still_running; then
  echo "already up (make down first)"; exit 1
fi

replicas=${ROOMS_REPLICAS:-1}
if ! [[ $replicas =~ ^[1-9][0-9]*$ ]]; then
  echo "ROOMS_REPLICAS must be a positive number, not '$replicas'"; exit 1
fi
rooms_port=${ROOMS_PORT:-8081}
declare -A ports=([contacts]=${CONTACTS_PORT:-8082} [line-gateway]=${LINE_GATEWAY_PORT:-8083} [authz]=${AUTHZ_PORT:-8084})
# The rooms replicas: node id, port, and the name of their log (rooms.log for a single one).
rooms_ids=() rooms_ports=() rooms_names=()
for i in $(seq 1 "$replicas"); do
  rooms_ids+=("rooms-$i")
  if [ "$i" = 1 ]; then rooms_ports+=("$rooms_port"); else rooms_ports+=("$((rooms_port + 8 + i))"); fi
  if [ "$replicas" = 1 ]; then rooms_names+=(rooms); else rooms_names+=("rooms-$i"); fi
done
duplicates=$(printf '%s\n' "${rooms_ports[@]}" "${ports[@]}" | sort | uniq -d | paste -sd ' ' -)
if [ -n "$duplicates" ]; then
  echo "port(s) $duplicates would be used twice; change ROOMS_PORT, CONTACTS_PORT, LINE_GATEWAY_PORT or AUTHZ_PORT"
  exit 1
fi
: > "$run/pids"

new_secret() { # file: 48 random bytes as base64 without /+=, unless the file has one already
  [ -s "$1" ] || (umask 077; head -c 48 /dev/urandom | base64 | tr -d '\n/+=' > "$1")
}
token_file=.run/up/internal.token
new_secret "$token_file"
internal_token=$(cat "$token_file")
# The bearer token of rooms' cluster ops endpoint (kept, like the internal token).
admin_token_file=.run/up/cluster-admin.token
new_secret "$admin_token_file"
admin_token=$(cat "$admin_token_file")
# The key LINE channel secrets are encrypted with (kept, so bound channels stay readable).
line_key_file=.run/up/line-secrets.key
[ -s "$line_key_file" ] || (umask 077; head -c 32 /dev/urandom | base64 > "$line_key_file")
line_key=$(cat "$line_key_file")
export CHAT__AMQP__SHARDS="${CHAT__AMQP__SHARDS:-16}"
export CHAT__TELEMETRY__LOG_FORMAT=json

authz_url="http://127.0.0.1:${ports[authz]}"
jwks="$authz_url/v1/auth/jwks"

# The demo tenants (idempotent): acme and globex, passwords <username>-demo-pass.
CHAT__INTERNAL__TOKEN="$internal_token" target/debug/authz seed-demo >"$run/authz-seed.log" 2>&1 \
  || { echo "authz seed-demo failed; see $run/authz-seed.log"; exit 1; }

# What was started, in the order readiness is awaited and printed.
names=() urls=() pids=()
start() { # name (its log), binary, port, then its own environment
  local name=$1 bin=$2 port=$3; shift 3
  env "$@" CHAT__HTTP__PORT="$port" "target/debug/$bin" >"$run/$name.log" 2>&1 &
  echo $! >> "$run/pids"
  names+=("$name") urls+=("http://127.0.0.1:$port") pids+=("$!")
}
# Whether $1 answers $2 (e.g. /health/ready) within 30 s, giving up early when pid $3 exits.
answers() {
  local _
  for _ in $(seq 1 150); do
    curl -sf "$1$2" >/dev/null && return 0
    kill -0 "$3" 2>/dev/null || break
    sleep 0.2
  done
  curl -sf "$1$2" >/dev/null
}
start_rooms() { # index into rooms_*
  start "${rooms_names[$1]}" rooms "${rooms_ports[$1]}" CHAT__NODE__ID="${rooms_ids[$1]}" \
    CHAT__CLUSTER__ADMIN_TOKEN="$admin_token" \
    CHAT__AUTH__JWKS_URL="$jwks" CHAT__AUTHZ__URL="$authz_url" CHAT__AUTHZ__INTERNAL_TOKEN="$internal_token"
}
start authz authz "${ports[authz]}" CHAT__INTERNAL__TOKEN="$internal_token"
start_rooms 0
if [ "$replicas" -gt 1 ]; then
  # The other replicas once rooms-1 has created the schema and run the migrations (it answers
  # /health/live only after that): replicas booting at once on a fresh database race on
  # CREATE SCHEMA IF NOT EXISTS, and the loser exits.
  answers "${urls[-1]}" /health/live "${pids[-1]}" || true
  for i in $(seq 1 $((replicas - 1))); do start_rooms "$i"; done
fi
start contacts contacts "${ports[contacts]}" \
  CHAT__AUTH__JWKS_URL="$jwks" CHAT__AUTHZ__URL="$authz_url" CHAT__AUTHZ__INTERNAL_TOKEN="$internal_token"
start line-gateway line-gateway "${ports[line-gateway]}" \
  CHAT__AUTH__JWKS_URL="$jwks" CHAT__AUTHZ__URL="$authz_url" CHAT__AUTHZ__INTERNAL_TOKEN="$internal_token" \
  CHAT__LINE__SECRETS_KEY="$line_key"

rooms_url="http://127.0.0.1:${rooms_ports[0]}"
rooms_urls=$(printf 'http://127.0.0.1:%s\n' "${rooms_ports[@]}" | paste -sd ',' -)
{
  echo "AUTHZ_URL=$authz_url"
  echo "ROOMS_URL=$rooms_url"
  echo "ROOMS_URLS=$rooms_urls"
  echo "CONTACTS_URL=http://127.0.0.1:${ports[contacts]}"
  echo "LINE_GATEWAY_URL=http://127.0.0.1:${ports[line-gateway]}"
} > .run/endpoints.env

# Every process (each rooms replica too) must answer /health/ready within 30 s.
for i in "${!names[@]}"; do
  name=${names[$i]} url=${urls[$i]} pid=${pids[$i]}
  if answers "$url" /health/ready "$pid"; then
    printf '%-13s %-22s log %s\n' "$name" "$url" "$run/$name.log"
  else
    if kill -0 "$pid" 2>/dev/null; then
      echo "$name did not become ready within 30 s; see $run/$name.log"
    else
      echo "$name exited; see $run/$name.log"
    fi
    tail -5 "$run/$name.log"
    echo "make down stops the others"
    exit 1
  fi
done
echo "endpoints: .run/endpoints.env   stop with: make down"
echo "log in: curl -s -X POST $authz_url/v1/auth/login -H 'Content-Type: application/json' \\"
echo "         -d '{\"tenant\":\"acme\",\"username\":\"alice\",\"password\":\"alice-demo-pass\"}'"
echo "cluster view ($replicas rooms replica(s)):"
echo "  curl -s -H \"Authorization: Bearer \$(cat $admin_token_file)\" $rooms_url/internal/v1/cluster"
if [ "$replicas" -gt 1 ]; then
  echo "drain a replica (its shards move to the others):"
  echo "  curl -s -X POST -H \"Authorization: Bearer \$(cat $admin_token_file)\" $rooms_url/internal/v1/cluster/members/${rooms_ids[1]}/drain"
fi
