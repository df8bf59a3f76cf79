#!/usr/bin/env bash
# Run the whole test suite against the local PostgreSQL, Redis and RabbitMQ. Each end-to-end
# test makes and deletes its own RabbitMQ vhost (quorum queues are Raft groups: they must not
# pile up); afterwards this removes whatever a crashed test or benchmark left: e2e_* and
# bench_* vhosts, schemas and keys.
set -euo pipefail
cd "$(dirname "$0")/../.."

cleanup() {
  if command -v rabbitmqctl >/dev/null; then
    for v in $(timeout 30 rabbitmqctl -q list_vhosts 2>/dev/null | grep -E '^(e2e|bench)_' || true); do
      timeout 30 rabbitmqctl -q delete_vhost "$v" >/dev/null 2>&1 || true
    done
  fi
  schemas=$(psql -h 127.0.0.1 -U postgres -d chat -Atc \
    "select nspname from pg_namespace where nspname like 'e2e\_%' or nspname like 'bench\_%'" 2>/dev/null || true)
  for s in $schemas; do
    psql -h 127.0.0.1 -U postgres -d chat -qc "drop schema \"$s\" cascade" >/dev/null 2>&1 || true
  done
  for p in 'e2e_*' 'bench_*'; do redis-cli -h 127.0.0.1 --scan --pattern "$p" 2>/dev/null | xargs -r -n 500 redis-cli -h 127.0.0.1 del >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

export E2E_DATABASE_URL="${E2E_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/chat}"
export E2E_REDIS_URL="${E2E_REDIS_URL:-redis://127.0.0.1:6379}"

echo "== unit and end-to-end tests"
out=$(mktemp)
status=0
cargo test --workspace --locked "$@" 2>&1 | tee "$out" || status=$?
# One closing line for the whole run (cargo prints one per test binary, the last often empty).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1); if ($i ~ /^ignored/) s += $(i-1) } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$out"
rm -f "$out"
exit "$status"
