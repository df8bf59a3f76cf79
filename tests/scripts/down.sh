#!/usr/bin/env bash
# `make down`: stop what `make up` started (SIGTERM, then SIGKILL after 15 s).
set -euo pipefail
cd "$(dirname "$0")/../.."
pids=.run/up/pids
[ -f "$pids" ] || { echo "nothing is up"; exit 0; }
xargs -r kill -TERM < "$pids" 2>/dev/null || true
for _ in $(seq 1 75); do
  xargs -r kill -0 < "$pids" 2>/dev/null || break
  sleep 0.2
done
xargs -r kill -KILL < "$pids" 2>/dev/null || true
rm -f "$pids"
echo "down"
