#!/usr/bin/env bash
# What an operator looks at first: liveness, readiness (ok / degraded / 503) and the metrics that
# say why. Set METRICS_TOKEN when the server has one.
set -euo pipefail
BASE=${BASE:-http://localhost:3000}
AUTH=()
if [ -n "${METRICS_TOKEN:-}" ]; then AUTH=(-H "Authorization: Bearer $METRICS_TOKEN"); fi

curl -s "$BASE/healthz"; echo
curl -s -w '\nHTTP %{http_code}\n' "$BASE/readyz"
curl -s "${AUTH[@]}" "$BASE/metrics" |
  grep -E '^(readiness_state|readiness_component_state|dependency_breaker_state|sse_connections_active|bus_local_publishes_total)'
