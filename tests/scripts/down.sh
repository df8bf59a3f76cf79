#!/usr/bin/env bash
# `make down`: stop what `make up` started (SIGTERM, then SIGKILL to whatever still runs after
# 25 s: a rooms replica hands its shards over and drains within 20 s of SIGTERM).
set -euo pipefail
cd "$(dirname "$0")/../.."
pids=.run/up/pids
[ -f "$pids" ] || { echo "nothing is up"; exit 0; }
mapfile -t list < <(grep -E '^[0-9]+$' "$pids" || true)
running() { # whether any of them still runs (not only the first: rooms replicas stop at their own pace)
  local pid
  for pid in "${list[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then return 0; fi
  done
  return 1
}
if [ "${#list[@]}" -gt 0 ]; then
  kill -TERM "${list[@]}" 2>/dev/null || true
  for _ in $(seq 1 125); do
    running || break
    sleep 0.2
  done
  if running; then
    echo "still running after 25 s, killing"
    kill -KILL "${list[@]}" 2>/dev/null || true
  fi
fi
rm -f "$pids"
echo "down"
