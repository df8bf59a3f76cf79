#!/usr/bin/env bash
# `make run`: the standalone engine on http://127.0.0.1:8080 with demo data, and beside it the
# LINE platform simulator (tests/line-sim) on http://127.0.0.1:8090 playing LINE for alice's
# demo LINE Official Account, so that one can act as a LINE user. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/../.."
sim_port="${LINE_SIM_PORT:-8090}"
sim="http://127.0.0.1:$sim_port"
run_dir="${CHAT_RUN_DIR:-.run}"
mkdir -p "$run_dir"
rm -f "$run_dir/demo.env"

CHAT__HTTP__PORT="$sim_port" CHAT__TELEMETRY__LOG_FORMAT=json ./target/debug/line-sim >"$run_dir/line-sim.log" 2>&1 &
sim_pid=$!
CHAT_LINE_API_BASE_URL="$sim" ./target/debug/standalone &
engine_pid=$!
trap 'kill "$engine_pid" "$sim_pid" 2>/dev/null || true' EXIT INT TERM

# Once the engine wrote its demo data: tell the simulator about alice's demo channel (the
# credentials the engine bound her to, from demo.env), the demo LINE user's profile and the
# demo LINE group.
for _ in $(seq 1 600); do
  [ -s "$run_dir/demo.env" ] && curl -sf "$sim/health/live" >/dev/null 2>&1 && break
  kill -0 "$engine_pid" 2>/dev/null || { echo "the standalone engine stopped"; exit 1; }
  kill -0 "$sim_pid" 2>/dev/null || { echo "line-sim stopped; see $run_dir/line-sim.log"; exit 1; }
  sleep 0.2
done
# shellcheck disable=SC1091
. "$run_dir/demo.env"
curl -sf -X POST "$sim/_sim/channels" -H 'Content-Type: application/json' -d "{
  \"channel_id\": \"$LINE_CHANNEL_ID\", \"channel_secret\": \"$LINE_CHANNEL_SECRET\",
  \"access_token\": \"$LINE_CHANNEL_ACCESS_TOKEN\", \"basic_id\": \"$LINE_BASIC_ID\",
  \"bot_user_id\": \"$LINE_BOT_USER_ID\", \"display_name\": \"Alice (Acme)\"}" >/dev/null
curl -sf -X POST "$sim/_sim/profiles" -H 'Content-Type: application/json' -d "{
  \"channel_id\": \"$LINE_CHANNEL_ID\", \"user_id\": \"$LINE_DEMO_USER\", \"display_name\": \"Taro Yamada\"}" >/dev/null
# The demo LINE group (its name as DemoChannel::LINE_GROUP_NAME says).
curl -sf -X POST "$sim/_sim/groups" -H 'Content-Type: application/json' -d "{
  \"channel_id\": \"$LINE_CHANNEL_ID\", \"group_id\": \"$LINE_DEMO_GROUP\", \"group_name\": \"Tokyo shop\"}" >/dev/null
wait "$engine_pid"
