#!/usr/bin/env bash
# A ticket opens one stream, once: what a browser's EventSource (which cannot send headers) uses.
set -euo pipefail
BASE=${BASE:-http://localhost:3000}
json_field() { node -pe "JSON.parse(require('fs').readFileSync(0, 'utf8'))['$1']"; }

TOKEN=$(curl -sf -X POST "$BASE/api/auth/dev-token" -H 'content-type: application/json' \
  -d '{"userId":"u1"}' | json_field accessToken)
TICKET=$(curl -sf -X POST "$BASE/api/sse/ticket" -H "Authorization: Bearer $TOKEN" | json_field ticket)

# The ticket opens the stream (no Authorization header)...
curl -sN --max-time 1 "$BASE/api/sse/stream?ticket=$TICKET" || true
# ...and only once: presenting it again is a 401.
curl -s -w '\nHTTP %{http_code}\n' "$BASE/api/sse/stream?ticket=$TICKET"
