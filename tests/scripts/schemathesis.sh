#!/usr/bin/env bash
# `make schemathesis`: property-based API tests of every service against its own OpenAPI
# document. Starts authz, rooms, contacts and line-gateway as real binaries (target/debug)
# against the local PostgreSQL, Redis and RabbitMQ, isolated from everything else (schemas
# schemathesis_*, the vhost schemathesis, Redis prefix schemathesis:), seeds the demo tenants,
# logs in as acme's admin, then for each service:
#   1. fetches /v1/openapi.json and validates it (openapi-spec-validator);
#   2. runs `schemathesis run` on it with every check (all are on unless the config below turns
#      one off for an operation, with the reason), the admin's bearer token and the
#      service token: examples, coverage, fuzzing and stateful phases.
# Any server error, response that violates the document, or invalid document fails the run.
# The standalone's merged document is validated too, and checked to hold every tested service's
# operations (when target/debug/standalone exists; it runs on SQLite files under the run dir).
#
#   EXAMPLES=25      test cases per operation (the short form; `make schemathesis EXAMPLES=500`
#                    for a long run)
#   SERVICES="authz rooms contacts line-gateway"   which services
#   SCHEMATHESIS_MAX_TIME   seconds per service (default: none)
#
# Stops everything it started on exit. Reports per service go to .run/schemathesis/.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

examples=${EXAMPLES:-25}
# authz last: its admin operations may disable or demote the user whose token the run uses.
services=${SERVICES:-rooms contacts line-gateway authz}
schemathesis_version=4.32.5
validator_version=0.9.0
venv=${SCHEMATHESIS_VENV:-$HOME/.cache/chat-schemathesis/venv-$schemathesis_version}
run=.run/schemathesis
prefix=schemathesis
database_url=${SCHEMATHESIS_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/chat}

# ----- tools -----
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$schemathesis_version" \
  || ! "$venv/bin/python" -c 'import openapi_spec_validator' 2>/dev/null; then
  echo "== installing schemathesis $schemathesis_version and openapi-spec-validator $validator_version in $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check \
    "schemathesis==$schemathesis_version" "openapi-spec-validator==$validator_version"
fi

# authz always runs (it issues the token); the others when tested.
selected() { [[ " $services " == *" $1 "* ]]; }
for bin in authz rooms contacts line-gateway; do
  if [ "$bin" = authz ] || selected "$bin"; then
    [ -x "target/debug/$bin" ] || { echo "target/debug/$bin missing: cargo build --workspace --bins first"; exit 1; }
  fi
done

# ----- isolation and cleanup -----
rm -rf "$run"
mkdir -p "$run"
pids=()
psql_q() { psql -X -w -h 127.0.0.1 -U postgres -d chat -qAtc "$1" >/dev/null 2>&1 || true; }
drop_backends() {
  for s in authz rooms contacts line; do psql_q "drop schema if exists \"${prefix}_$s\" cascade"; done
  timeout 30 rabbitmqctl -q delete_vhost "$prefix" >/dev/null 2>&1 || true
  redis-cli -h 127.0.0.1 --scan --pattern "$prefix:*" 2>/dev/null | xargs -r -n 500 redis-cli -h 127.0.0.1 del >/dev/null 2>&1 || true
}
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  drop_backends
}
trap cleanup EXIT
drop_backends
timeout 30 rabbitmqctl -q add_vhost "$prefix" >/dev/null
timeout 30 rabbitmqctl -q set_permissions -p "$prefix" guest '.*' '.*' '.*' >/dev/null

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
secret() { head -c 48 /dev/urandom | base64 | tr -d '\n/+='; }
internal_token=$(secret)
cluster_token=$(secret)
line_key=$(head -c 32 /dev/urandom | base64)
declare -A ports urls
for s in authz rooms contacts line-gateway; do ports[$s]=$(free_port); urls[$s]="http://127.0.0.1:${ports[$s]}"; done
authz_url=${urls[authz]}

common_env=(
  CHAT__AMQP__URL="amqp://guest:guest@127.0.0.1:5672/$prefix" CHAT__AMQP__SHARDS=4
  CHAT__DATABASE__URL="$database_url" CHAT__HTTP__WORKERS=2
  CHAT__TELEMETRY__LOG_FORMAT=json RUST_LOG=info
)
client_env=(
  CHAT__AUTH__JWKS_URL="$authz_url/v1/auth/jwks" CHAT__AUTHZ__URL="$authz_url"
  CHAT__AUTHZ__INTERNAL_TOKEN="$internal_token"
)
start() { # name, database schema, then its own environment
  local name=$1 schema=$2; shift 2
  env "${common_env[@]}" CHAT__DATABASE__SCHEMA="${prefix}_$schema" CHAT__HTTP__PORT="${ports[$name]}" "$@" \
    "target/debug/$name" >"$run/$name.log" 2>&1 &
  pids+=("$!")
}
ready() { # name: /health/ready within 60 s
  local _
  for _ in $(seq 1 300); do
    curl -sf "${urls[$1]}/health/ready" >/dev/null && return 0
    sleep 0.2
  done
  echo "$1 did not become ready; the end of $run/$1.log:"; tail -20 "$run/$1.log"; exit 1
}

echo "== starting the services (logs in $run/)"
env "${common_env[@]}" CHAT__DATABASE__SCHEMA="${prefix}_authz" CHAT__INTERNAL__TOKEN="$internal_token" \
  target/debug/authz seed-demo >"$run/authz-seed.log" 2>&1 || { echo "authz seed-demo failed"; cat "$run/authz-seed.log"; exit 1; }
start authz authz CHAT__INTERNAL__TOKEN="$internal_token"
ready authz
if selected rooms; then start rooms rooms "${client_env[@]}" CHAT__REDIS__PREFIX="$prefix:" CHAT__NODE__ID=rooms-schemathesis \
    CHAT__CLUSTER__ADMIN_TOKEN="$cluster_token"; fi
if selected contacts; then start contacts contacts "${client_env[@]}"; fi
if selected line-gateway; then start line-gateway line "${client_env[@]}" CHAT__REDIS__PREFIX="$prefix:" CHAT__LINE__SECRETS_KEY="$line_key" \
    CHAT__ROOMS__URL="${urls[rooms]}"; fi
for s in rooms contacts line-gateway; do if selected "$s"; then ready "$s"; fi; done

# The acme admin: a member (rooms, contacts) and an admin (authz, line-gateway admin routes).
token=$(curl -sf -X POST "$authz_url/v1/auth/login" -H 'Content-Type: application/json' \
  -d '{"tenant":"acme","username":"admin","password":"admin-demo-pass"}' \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')


# Every acme member may use LINE, so the LINE profile and invite operations get past the
# permission check (to 200, or 409 while no LINE account is bound).
curl -sf -X PUT "$authz_url/v1/admin/line-access" -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/json' -d '{"mode":"all"}' >/dev/null

# A room of the admin's with alice and bob, and a message in it: the room operations are tested
# on it (random room ids would only ever meet 404), all but leaving it.
room="" message=""
if selected rooms; then
  json_field() { python3 -c "import json, sys; print(json.load(sys.stdin)[\"$1\"])"; }
  room=$(curl -sf -X POST "${urls[rooms]}/v1/rooms" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"members":["alice@acme","bob@acme"],"name":"schemathesis"}' | json_field id)
  message=$(curl -sf -X POST "${urls[rooms]}/v1/rooms/$room/messages" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -d '{"client_msg_id":"schemathesis-1","body":{"type":"text","text":"hello"}}' \
    | json_field message_id)
fi

# The token must open each service (else every operation would only test a 401).
declare -A probe=([rooms]=/v1/notifications [contacts]=/v1/contacts [line-gateway]=/v1/admin/line/channels [authz]=/v1/me)
for s in $services; do
  code=$(curl -s -o "$run/$s.probe" -w '%{http_code}' -H "Authorization: Bearer $token" "${urls[$s]}${probe[$s]}")
  if [ "$code" != 200 ]; then
    echo "$s answers $code to GET ${probe[$s]} with the admin's token:"; cat "$run/$s.probe"; echo; tail -5 "$run/$s.log"; exit 1
  fi
done

cat > "$run/schemathesis.toml" <<EOF
# Made by tests/scripts/schemathesis.sh for this run (it holds this run's tokens).
headers = { Authorization = "Bearer $token", X-Internal-Token = "$internal_token" }

# A body over a documented limit is refused with 413 (message_too_long, payload_too_large: the
# API contract's status for it), which schemathesis does not count as a rejection by default.
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]

# rooms' cluster ops endpoints take the cluster admin token, not a user's JWT; without it they
# answer 404 like the other /internal/ endpoints (so a request without it is not a 401 either:
# ignored_auth expects 401 or 403, and a missing Authorization header, 401).
[[operations]]
include-path-regex = "^/internal/v1/cluster"
headers = { Authorization = "Bearer $cluster_token" }
checks.missing_required_header.enabled = false
checks.ignored_auth.enabled = false

# Draining rooms' only replica would leave no one to run the rooms (by design: a drained
# member takes no shards until it leaves), so the rest of the run would test a stopped service:
# the drain is tried with a pod that does not exist (404). The e2e scaling tests drain for real.
[[operations]]
include-operation-id = "cluster_drain"
parameters = { pod = "schemathesis-no-such-pod" }

# The /internal/ endpoints answer 404 to a caller without their token: they do not exist for
# anyone else (authz's decide and revocations, rooms' cluster view), by design. So a request
# without the token is expected to get 404, not 401.
[[operations]]
include-path-regex = "^/internal/"
checks.missing_required_header.expected-statuses = ["404"]

# GET /v1/ws is a WebSocket upgrade: schemathesis speaks plain HTTP, so its schema-valid GET is
# refused 400 not_a_websocket. (The WebSocket itself is covered by the end-to-end tests.)
[[operations]]
include-operation-id = "connect"
checks.positive_data_acceptance.expected-statuses = ["101", "400", "401"]

# The room operations on the room made above (leaving it would end the others' tests there).
[[operations]]
include-path-regex = "^/v1/rooms/[{]room_id[}](?!/leave)"
parameters = { room_id = "$room", message_id = "$message" }

# A LINE profile's website is checked by the WHATWG URL parser (the url crate: http or https,
# with a host), which no JSON Schema pattern matches exactly: the documented pattern is a safe
# subset, and a URL outside it the parser takes (`http://a.b*`) is accepted. So schema-violating
# data is not expected to be refused here; every other check stays.
[[operations]]
include-operation-id = "update_line_profile"
checks.negative_data_rejection.enabled = false

# Granting trust to the caller's own tenant is refused (400 invalid_tenant): which tenant that
# is depends on the token, so the schema cannot exclude it.
[[operations]]
include-operation-id = "grant_trust"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429"]

# Creating a room with the caller as its only other member is refused (400 invalid_members):
# the caller's id comes from the token, so the schema cannot exclude it.
[[operations]]
include-operation-id = "create"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429"]

# A dead-letter cursor is opaque, made by the API: one made up is refused (400 invalid_field).
[[operations]]
include-operation-id = "list_dead_letters"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429"]
EOF

# ----- per service -----
failed=()
summary=()
for s in $services; do
  url=${urls[$s]}
  echo
  echo "== $s: $url/v1/openapi.json"
  curl -sf "$url/v1/openapi.json" -o "$run/$s.openapi.json"
  if ! "$venv/bin/openapi-spec-validator" "$run/$s.openapi.json"; then
    failed+=("$s (invalid document)")
    continue
  fi
  args=(
    --config-file "$root/$run/schemathesis.toml"
    run "$url/v1/openapi.json"
    --max-examples "$examples"
    --workers 1
    --seed "${SCHEMATHESIS_SEED:-1}"
    --report junit,ndjson --report-dir "$root/$run/$s"
    --suppress-health-check too_slow
  )
  [ -n "${SCHEMATHESIS_MAX_TIME:-}" ] && args+=(--max-time "$SCHEMATHESIS_MAX_TIME")
  status=0
  # From the run directory: schemathesis keeps its cache (.schemathesis/) in the current one.
  (cd "$run" && "$venv/bin/schemathesis" "${args[@]}") 2>&1 | tee "$run/$s.out" || status=$?
  tested=$(grep -Eo 'Tested: [0-9]+' "$run/$s.out" | tail -1 || true)
  cases=$(grep -E '[0-9]+ generated' "$run/$s.out" | tail -1 | sed 's/^ *//' || true)
  summary+=("$(printf '%-13s %s operations; %s' "$s:" "${tested#Tested: }" "${cases:-no cases: see $run/$s.out}")")
  [ "$status" = 0 ] || failed+=("$s")
done

# The standalone's merged document: valid, and every service's operations in it.
if [ -x target/debug/standalone ]; then
  echo
  echo "== standalone: the merged document"
  port=$(free_port)
  mkdir -p "$run/standalone-data"
  CHAT_RUN_DIR="$run/standalone-data" CHAT__HTTP__PORT="$port" \
    CHAT__DATABASE__URL="sqlite://$run/standalone-data/rooms.sqlite?mode=rwc" \
    target/debug/standalone >"$run/standalone.log" 2>&1 &
  pids+=("$!")
  urls[standalone]="http://127.0.0.1:$port"
  ready standalone
  curl -sf "${urls[standalone]}/v1/openapi.json" -o "$run/standalone.openapi.json"
  if ! "$venv/bin/openapi-spec-validator" "$run/standalone.openapi.json"; then
    failed+=("standalone (invalid document)")
  elif ! python3 - "$run" $services <<'PY'
import json, sys
run, services = sys.argv[1], sys.argv[2:]
ops = lambda doc: {(m, p) for p, item in doc["paths"].items() for m in item}
merged = ops(json.load(open(f"{run}/standalone.openapi.json")))
missing = set().union(*(ops(json.load(open(f"{run}/{s}.openapi.json"))) for s in services)) - merged
print(f"standalone: {len(merged)} operations" + (f"; missing {sorted(missing)}" if missing else ", each service's in it"))
sys.exit(1 if missing else 0)
PY
  then
    failed+=("standalone (operations missing)")
  fi
  summary+=("$(printf '%-13s %s' "standalone:" "merged document valid ($(python3 -c "import json; d = json.load(open('$run/standalone.openapi.json')); print(sum(len(i) for i in d['paths'].values()))") operations)")")
fi

echo
echo "== summary (examples per operation: $examples)"
for line in "${summary[@]}"; do echo "  $line"; done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "schemathesis failed: ${failed[*]} (logs and reports in $run/)"
  exit 1
fi
echo "schemathesis: 0 server errors, 0 schema violations"
