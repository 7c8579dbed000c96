#!/usr/bin/env bash
# scripts/fuzz.sh — fuzz both OpenAPI documents with Schemathesis (issue 13).
#
# Starts the embedded platform (`server.ts`: platform API and the example application) on spare loopback ports
# with a temporary DATA_DIR, runs Schemathesis against the platform's /api/openapi.json and the application's,
# positive and negative data, and fails on any 5xx or response that violates its documented schema. Each
# document gets at least FUZZ_MIN_CASES generated cases (counted from Schemathesis' summary), else it fails too.
#
# Environment:
#   SCHEMATHESIS_VERSION  pinned version from PyPI (default below); installed by pip into a venv under the cache
#   TASKPOOL_CACHE        cache directory (default ~/.cache/taskpool)
#   FUZZ_PORT, FUZZ_APP_PORT   ports of the platform and the application (default 18581, 18580)
#   FUZZ_MAX_EXAMPLES, FUZZ_APP_MAX_EXAMPLES   examples per operation (defaults 200 platform, 320 application)
#   FUZZ_MIN_CASES        cases a document must at least get (default 2000)
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCHEMATHESIS_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
CACHE="${TASKPOOL_CACHE:-$HOME/.cache/taskpool}"
VENV="$CACHE/fuzz-venv-$SCHEMATHESIS_VERSION"
PORT="${FUZZ_PORT:-18581}"
APP_PORT="${FUZZ_APP_PORT:-18580}"
MAX_EXAMPLES="${FUZZ_MAX_EXAMPLES:-200}"
# The application has half the operations: more examples each to reach the same number of cases.
APP_MAX_EXAMPLES="${FUZZ_APP_MAX_EXAMPLES:-320}"
MIN_CASES="${FUZZ_MIN_CASES:-2000}"

if [ ! -x "$VENV/bin/schemathesis" ]; then
  echo "== installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== embedded platform on 127.0.0.1:$PORT (application :$APP_PORT), data in $WORK"
# Demo authentication (the header) so that generated requests reach the actions; a rate limit the fuzzer cannot
# reach; no cluster, no external database: everything embedded, nothing shared with other runs.
(
  cd "$REPO_DIR"
  exec env -u DATABASE_URL -u MONGO_URL -u TRANSPORTER -u ENGINE_URL -u JWT_SECRET -u JWT_PUBLIC_KEY -u JWT_PUBLIC_KEY_FILE -u JWT_JWKS_URL \
    HOST=127.0.0.1 PORT="$PORT" APP_PORT="$APP_PORT" DATA_DIR="$WORK/data" NODE_ID="fuzz-$$" \
    AUTH_HEADER_ENABLED=true RATE_LIMIT=100000000 LOG_LEVEL="${FUZZ_LOG_LEVEL:-warn}" \
    TASKLIST_URL="http://127.0.0.1:$PORT/" \
    "$REPO_DIR/node_modules/.bin/node" --import ./lib/compile-cache.mjs server.ts
) > "$WORK/server.log" 2>&1 &
SERVER_PID=$!

for _ in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:$PORT/api/ready" > /dev/null 2>&1 && curl -fsS "http://127.0.0.1:$APP_PORT/api/openapi.json" > /dev/null 2>&1; then break; fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "the platform did not start:"; cat "$WORK/server.log"; exit 1
  fi
  sleep 1
done
curl -fsS "http://127.0.0.1:$PORT/api/ready" > /dev/null

failed=0
# fuzz <name> <base url> [schemathesis options…]
fuzz() {
  local name="$1" base="$2"
  shift 2
  echo "== schemathesis $SCHEMATHESIS_VERSION: $name ($base/api/openapi.json)"
  local out="$WORK/$name.txt"
  set +e
  # One worker: with several, Python 3.11's ast.parse inside Hypothesis races ("AST constructor recursion depth
  # mismatch") and ends operations with a runtime error that is Schemathesis', not the API's.
  "$VENV/bin/schemathesis" run "$base/api/openapi.json" --url "$base" \
    --header "X-Current-User-ID: kermit" \
    --checks not_a_server_error,response_schema_conformance \
    --mode all --phases examples,coverage,fuzzing \
    --continue-on-failure --wait-for-schema 120 --request-timeout 60 --workers 1 --seed 13 --no-color \
    --suppress-health-check all --warnings off "$@" 2>&1 | tee "$out"
  local status=${PIPESTATUS[0]}
  set -e
  # "Test cases:" summary: "<n> generated, <m> found <k> unique failures, …"
  local cases
  cases="$(grep -Eo '[0-9]+ generated' "$out" | tail -1 | grep -Eo '[0-9]+' || echo 0)"
  echo "== $name: $cases generated cases; schemathesis exit $status"
  if [ "$status" -ne 0 ]; then failed=1; fi
  if [ "$cases" -lt "$MIN_CASES" ]; then
    echo "== $name: fewer than $MIN_CASES cases"; failed=1
  fi
}

# Schemathesis keeps a cache (.schemathesis/) in its working directory: not in the repository.
cd "$WORK"
# The event stream never ends by design: it is not a request/response operation a fuzzer can wait for.
fuzz platform "http://127.0.0.1:$PORT" --max-examples "$MAX_EXAMPLES" --exclude-path /api/events
fuzz application "http://127.0.0.1:$APP_PORT" --max-examples "$APP_MAX_EXAMPLES"

if grep -q "INTERNAL_ERROR\|failed: " "$WORK/server.log"; then
  echo "== the platform logged internal errors:"; grep -n "INTERNAL_ERROR\|failed: " "$WORK/server.log" | head -20
  failed=1
fi
exit "$failed"
