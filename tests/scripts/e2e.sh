#!/usr/bin/env bash
# Run the whole test suite against the local PostgreSQL, Redis and RabbitMQ, inside a RabbitMQ
# vhost of its own (quorum queues are Raft groups: they must not pile up across runs), then
# remove what the run created: the vhost, the e2e_* schemas and the e2e_* Redis keys.
set -euo pipefail
cd "$(dirname "$0")/../.."

vhost="chat-e2e-$$"
rabbitmqctl=rabbitmqctl
command -v rabbitmqctl >/dev/null || rabbitmqctl=""

cleanup() {
  if [ -n "$rabbitmqctl" ]; then
    rabbitmqctl -q delete_vhost "$vhost" >/dev/null 2>&1 || true
  fi
  schemas=$(psql -h 127.0.0.1 -U postgres -d chat -Atc \
    "select nspname from pg_namespace where nspname like 'e2e\_%'" 2>/dev/null || true)
  for s in $schemas; do
    psql -h 127.0.0.1 -U postgres -d chat -qc "drop schema \"$s\" cascade" >/dev/null 2>&1 || true
  done
  redis-cli -h 127.0.0.1 --scan --pattern 'e2e_*' 2>/dev/null | xargs -r -n 500 redis-cli -h 127.0.0.1 del >/dev/null 2>&1 || true
}
trap cleanup EXIT

if [ -n "$rabbitmqctl" ]; then
  rabbitmqctl -q add_vhost "$vhost" >/dev/null
  rabbitmqctl -q set_permissions -p "$vhost" guest '.*' '.*' '.*' >/dev/null
  export E2E_AMQP_URL="amqp://guest:guest@127.0.0.1:5672/$vhost"
fi
export E2E_DATABASE_URL="${E2E_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/chat}"
export E2E_REDIS_URL="${E2E_REDIS_URL:-redis://127.0.0.1:6379}"

echo "== unit and end-to-end tests (RabbitMQ vhost $vhost)"
out=$(mktemp)
status=0
cargo test --workspace --locked "$@" 2>&1 | tee "$out" || status=$?
# One closing line for the whole run (cargo prints one per test binary, the last often empty).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1); if ($i ~ /^ignored/) s += $(i-1) } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$out"
rm -f "$out"
exit "$status"
