#!/usr/bin/env bash
# Load on `docvlm serve`: wrk (Debian package wrk) keeps CONNS connections (default 16) posting
# MinerU's text-recognition request (tests/data/serve/mineru_requests/text.json with the text line
# examples/data/line.png) for SECS seconds (default 20), then prints throughput, latency
# percentiles and failures, and the server's resident memory before and after.
#   bench/serve_load.sh [DOCVLM_BINARY] [extra `docvlm serve` options...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin="${1:-build/bin/docvlm}"; shift || true
conns="${CONNS:-16}" secs="${SECS:-20}"
command -v wrk >/dev/null || { echo "bench/serve_load.sh needs wrk: apt-get install wrk" >&2; exit 1; }
export BODY; BODY="$(mktemp)"
out="$(mktemp)"
trap 'rm -f "$BODY" "$out"; [ -n "${pid:-}" ] && kill -TERM "$pid" 2>/dev/null || true' EXIT
sed "s|data:image/png;base64,[A-Za-z0-9+/=]*|data:image/png;base64,$(base64 -w0 examples/data/line.png)|" \
    tests/data/serve/mineru_requests/text.json > "$BODY"
"$bin" serve --port 0 --quiet "$@" > "$out" &
pid=$!
for _ in $(seq 100); do grep -q "http://" "$out" && break; sleep 0.1; done
url="$(grep -o 'http://[0-9.]*:[0-9]*' "$out")"
rss() { awk '/VmRSS/ {print $2 " KiB"}' /proc/"$pid"/status; }
echo "server $url, resident $(rss) before; $conns connections for $secs s"
wrk -t1 -c"$conns" -d"${secs}s" --timeout 60s -s bench/serve_load.lua "$url/v1/chat/completions" | tail -n 4
echo "resident $(rss) after"
