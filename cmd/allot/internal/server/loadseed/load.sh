#!/usr/bin/env bash
# Load test of the SDK config endpoint (BENCHMARKS.md, "Server"): starts
# `allot serve` on loopback with a fresh SQLite file, seeds 1,000 flags, then
# runs wrk (apt-get install -y wrk) against it: a matching If-None-Match
# (304), then the full gzip body. Bounded: DURATION per run (default 10s).
set -euo pipefail
cd "$(dirname "$0")/../../../../.."
duration="${DURATION:-10s}"
port="${PORT:-18081}"
work="$(mktemp -d)"
token="allot_admin_loadtest-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
go build -o "$work/allot" ./cmd/allot
ALLOT_ADMIN_TOKEN="$token" GOMAXPROCS=2 "$work/allot" serve --db "$work/load.db" --addr "127.0.0.1:$port" --log-level warn &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
key="$(go run ./cmd/allot/internal/server/loadseed -server "http://127.0.0.1:$port" -token "$token" -flags 1000)"
url="http://127.0.0.1:$port/api/flag-config/v1/config?apiKey=$key&sdkName=node-server-sdk&sdkVersion=3.10.2"
etag="$(curl -s -o /dev/null -D - -H 'Accept-Encoding: gzip' "$url" | tr -d '\r' | awk 'tolower($1)=="etag:"{print $2}')"
echo "== 304 (If-None-Match: $etag)"
wrk -t1 -c16 -d"$duration" --latency -H 'Accept-Encoding: gzip' -H "If-None-Match: $etag" "$url"
echo "== 200, full gzip body"
wrk -t1 -c16 -d"$duration" --latency -H 'Accept-Encoding: gzip' "$url"
