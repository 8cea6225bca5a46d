#!/usr/bin/env bash
# Streams, publishes and resumes by hand against a running server (`npm start`; dev login is on
# by default on its loopback address, outside production). BASE defaults to the server `npm start` runs.
set -euo pipefail
BASE=${BASE:-http://localhost:3000}
json_field() { node -pe "JSON.parse(require('fs').readFileSync(0, 'utf8'))['$1']"; }

# A development token for user u1 that may also publish.
TOKEN=$(curl -sf -X POST "$BASE/api/auth/dev-token" -H 'content-type: application/json' \
  -d '{"userId":"u1","scope":"events:publish"}' | json_field accessToken)

# Listen for 3 seconds in the background, and publish on the user's own topic meanwhile.
curl -sN --max-time 3 -H "Authorization: Bearer $TOKEN" "$BASE/api/sse/stream" &
sleep 1
FIRST=$(curl -sf -X POST "$BASE/api/events" -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d '{"topic":"user:u1","type":"notification","payload":{"title":"Hello","level":"info"}}' | json_field id)
wait || true

# Publish while nobody listens, then resume after the first event: only what was missed comes,
# then `stream.resumed`.
curl -sf -X POST "$BASE/api/events" -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d '{"topic":"user:u1","type":"notification","payload":{"title":"Missed it","level":"warning"}}' >/dev/null
curl -sN --max-time 2 -H "Authorization: Bearer $TOKEN" -H "Last-Event-ID: $FIRST" "$BASE/api/sse/stream" || true
