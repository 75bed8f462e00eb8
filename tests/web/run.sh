#!/usr/bin/env bash
# End-to-end tests of `docvlm serve`: the official OpenAI SDK against its API, Chromium against its web page.
# usage: tests/web/run.sh PATH_TO_DOCVLM_BINARY [ARTIFACT_DIR]
#   ARTIFACT_DIR (default tests/web/artifacts) receives the screenshots (page.png, ...).
# Needs Node.js >= 18 with npm, and Chromium at /usr/bin/chromium (or $CHROMIUM).
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 || "$1" == -h || "$1" == --help ]]; then
    echo "usage: $0 PATH_TO_DOCVLM_BINARY [ARTIFACT_DIR]" >&2
    exit 2
fi
bin=$(realpath -- "$1") || { echo "run.sh: no such file: $1" >&2; exit 1; }
[[ -x "$bin" ]] || { echo "run.sh: not an executable: $bin" >&2; exit 1; }
artifacts=""
if [[ $# -eq 2 ]]; then mkdir -p -- "$2" && artifacts=$(realpath -- "$2"); fi
chromium=${CHROMIUM:-/usr/bin/chromium}

missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[[ -x "$chromium" ]] || missing+=(chromium)
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "run.sh: missing: ${missing[*]} (node, npm, $chromium)." >&2
    echo "        Install the Debian packages:  sudo apt-get install nodejs npm chromium" >&2
    echo "        (Node.js 18 or later is needed; set CHROMIUM=/path/to/chromium to use another Chromium.)" >&2
    exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if (( node_major < 18 )); then
    echo "run.sh: Node.js $(node --version) is too old: the tests need Node.js 18 or later (openai, playwright-core)." >&2
    exit 1
fi

cd -- "$(dirname -- "${BASH_SOURCE[0]}")"
if [[ ! -d node_modules || package-lock.json -nt node_modules ]]; then
    npm ci --no-audit --no-fund
    touch node_modules  # npm ci may keep the folder's old time; mark it as newer than the lock file
fi

export DOCVLM_BIN="$bin" CHROMIUM="$chromium"
[[ -n "$artifacts" ]] && export DOCVLM_ARTIFACTS="$artifacts"
start=$SECONDS
status=0
node --test openai_client.test.mjs browser.test.mjs || status=$?
echo "run.sh: $([[ $status -eq 0 ]] && echo passed || echo "FAILED (exit $status)") in $((SECONDS - start)) s; screenshots in ${DOCVLM_ARTIFACTS:-$PWD/artifacts}"
exit "$status"
