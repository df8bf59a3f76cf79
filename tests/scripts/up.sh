#!/usr/bin/env bash
# `make up`: the four services as separate processes on this machine against the local Redis,
# RabbitMQ and PostgreSQL (the production shape on one machine). Ports, logs and pids go to
# .run/; base URLs to .run/endpoints.env. `make down` stops them.
set -euo pipefail
cd "$(dirname "$0")/../.."
run=.run/up
mkdir -p "$run"
if [ -f "$run/pids" ] && xargs -r kill -0 < "$run/pids" 2>/dev/null; then
  echo "already up (make down first)"; exit 1
fi
: > "$run/pids"

token_file=.run/up/internal.token
[ -s "$token_file" ] || head -c 48 /dev/urandom | base64 | tr -d '\n/+=' > "$token_file"
internal_token=$(cat "$token_file")
# The key LINE channel secrets are encrypted with (kept, so bound channels stay readable).
line_key_file=.run/up/line-secrets.key
[ -s "$line_key_file" ] || (umask 077; head -c 32 /dev/urandom | base64 > "$line_key_file")
line_key=$(cat "$line_key_file")
export CHAT__AMQP__SHARDS="${CHAT__AMQP__SHARDS:-16}"
export CHAT__TELEMETRY__LOG_FORMAT=json

declare -A ports=([rooms]=${ROOMS_PORT:-8081} [contacts]=${CONTACTS_PORT:-8082} [line-gateway]=${LINE_GATEWAY_PORT:-8083} [authz]=${AUTHZ_PORT:-8084})
authz_url="http://127.0.0.1:${ports[authz]}"
jwks="$authz_url/v1/auth/jwks"

# The demo tenants (idempotent): acme and globex, passwords <username>-demo-pass.
CHAT__INTERNAL__TOKEN="$internal_token" target/debug/authz seed-demo >"$run/authz-seed.log" 2>&1 \
  || { echo "authz seed-demo failed; see $run/authz-seed.log"; exit 1; }

: > .run/endpoints.env
start() { # service, then its own environment
  local svc=$1; shift
  env "$@" CHAT__HTTP__PORT="${ports[$svc]}" "target/debug/$svc" >"$run/$svc.log" 2>&1 &
  echo $! >> "$run/pids"
  echo "$(echo "$svc" | tr 'a-z-' 'A-Z_')_URL=http://127.0.0.1:${ports[$svc]}" >> .run/endpoints.env
}
start authz CHAT__INTERNAL__TOKEN="$internal_token"
start rooms CHAT__AUTH__JWKS_URL="$jwks" CHAT__AUTHZ__URL="$authz_url" CHAT__AUTHZ__INTERNAL_TOKEN="$internal_token"
start contacts CHAT__AUTH__JWKS_URL="$jwks" CHAT__AUTHZ__URL="$authz_url" CHAT__AUTHZ__INTERNAL_TOKEN="$internal_token"
start line-gateway CHAT__AUTH__JWKS_URL="$jwks" CHAT__AUTHZ__URL="$authz_url" CHAT__AUTHZ__INTERNAL_TOKEN="$internal_token" \
  CHAT__LINE__SECRETS_KEY="$line_key"

for svc in rooms contacts line-gateway authz; do
  port=${ports[$svc]}
  for _ in $(seq 1 150); do
    curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null && break
    sleep 0.2
  done
  if curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null; then
    printf '%-13s http://127.0.0.1:%-5s log %s\n' "$svc" "$port" "$run/$svc.log"
  else
    echo "$svc did not become ready; see $run/$svc.log"; tail -5 "$run/$svc.log"; exit 1
  fi
done
echo "endpoints: .run/endpoints.env   stop with: make down"
echo "log in: curl -s -X POST $authz_url/v1/auth/login -H 'Content-Type: application/json' \\"
echo "         -d '{\"tenant\":\"acme\",\"username\":\"alice\",\"password\":\"alice-demo-pass\"}'"
