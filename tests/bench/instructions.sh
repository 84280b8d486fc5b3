#!/usr/bin/env bash
# Instructions the server executes per inbox response, counted by callgrind: the same for the
# same binary and data whatever else the machine is doing (docs/benchmarks.md).
#
#   tests/bench/instructions.sh [path/to/confab] [requests]
#
# Needs valgrind, curl and psql, and PostgreSQL at $CONFAB_TEST_DATABASE_URL
# (default postgres://postgres@127.0.0.1:5432/test); uses a scratch database beside it.
set -euo pipefail
bin=${1:-target/release/confab}
requests=${2:-20}
base=${CONFAB_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
db=confab_instructions
url="${base%/*}/$db"
port=8099
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

psql "$base" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
"$bin" seed --database-url "$url" --workspace bench --contacts 10000 --messages 200000 \
    --notes 2000 --tasks 5000 --appointments 2000 --opportunities 1000 --tags 20 \
    --custom-fields 5 --json >"$work/seed.json"
token=$(sed -n 's/.*"token": *"\([^"]*\)".*/\1/p' "$work/seed.json")

# The bench's INBOX query (tests/bench/main.rs).
cat >"$work/inbox.json" <<'JSON'
{"query":"{ conversations(first: 50, filter: {status: OPEN}) { totalCount edges { node { id unreadCount lastMessageAt contact { name tags owner { name email } } lastMessage { body channel sender { name } } tasks(status: OPEN, first: 3) { totalCount edges { node { title dueAt assignee { name } } } } appointments(when: UPCOMING, first: 1) { edges { node { title startsAt } } } } } } }"}
JSON

valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" \
    "$bin" serve --listen "127.0.0.1:$port" --no-demo --database-url "$url" \
    >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 240); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && break
    sleep 0.5
done
inbox() {
    curl -sf -o /dev/null -H "authorization: Bearer $token" \
        -H 'content-type: application/json' --data @"$work/inbox.json" \
        "http://127.0.0.1:$port/graphql"
}
for _ in 1 2 3; do inbox; done
callgrind_control -z "$server" >/dev/null 2>&1
for _ in $(seq 1 "$requests"); do inbox; done
callgrind_control -d "$server" >/dev/null 2>&1
sleep 1
total=$(awk '/^totals:/ {print $2}' "$work"/callgrind.out.*)
echo "instructions per inbox response: $((total / requests)) (mean of $requests)"
if [[ -n ${KEEP_PROFILE:-} ]]; then
    cp "$work"/callgrind.out.* "$KEEP_PROFILE"
    echo "profile kept in $KEEP_PROFILE (callgrind_annotate --inclusive=yes)"
fi
kill "$server"
wait "$server" 2>/dev/null || true
psql "$base" -qc "DROP DATABASE $db" >/dev/null
