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

secret_file=.run/up/jwt.secret
[ -s "$secret_file" ] || head -c 48 /dev/urandom | base64 | tr -d '\n/+=' > "$secret_file"
export CHAT__AUTH__JWT_SECRET; CHAT__AUTH__JWT_SECRET=$(cat "$secret_file")
export CHAT__AMQP__SHARDS="${CHAT__AMQP__SHARDS:-16}"
export CHAT__TELEMETRY__LOG_FORMAT=json

declare -A ports=([rooms]=${ROOMS_PORT:-8081} [contacts]=${CONTACTS_PORT:-8082} [line-gateway]=${LINE_GATEWAY_PORT:-8083} [authz]=${AUTHZ_PORT:-8084})
: > .run/endpoints.env
for svc in rooms contacts line-gateway authz; do
  port=${ports[$svc]}
  log="$run/$svc.log"
  # authz receives no JWT secret (it will sign with its own keys); the others verify with it.
  if [ "$svc" = authz ]; then
    env -u CHAT__AUTH__JWT_SECRET CHAT__HTTP__PORT="$port" "target/debug/$svc" >"$log" 2>&1 &
  else
    CHAT__HTTP__PORT="$port" "target/debug/$svc" >"$log" 2>&1 &
  fi
  echo $! >> "$run/pids"
  var=$(echo "$svc" | tr 'a-z-' 'A-Z_')_URL
  echo "$var=http://127.0.0.1:$port" >> .run/endpoints.env
done

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
echo "mint a token for tests with the secret in $secret_file (authz login replaces this)"
