#!/usr/bin/env bash
# Run the Node.js real-client SQS suite (JS SDK v3 over AWS JSON 1.0 and JS SDK v2
# 2.1490.0 over the query protocol) against sluice, with Node's built-in test runner.
#
#   tests/clients/node/run.sh                          # every test file
#   tests/clients/node/run.sh test/fifo_dlq.test.mjs   # some files
#   tests/clients/node/run.sh --test-name-pattern=FIFO # options go to `node --test`
#
# Installs package-lock.json with `npm ci` into tests/clients/node/node_modules when
# it is missing or the lock file changed (stamp: node_modules/.sluice-lock.sha256).
# Each test file starts its own sluice (see lib/sluice.mjs):
#   SLUICE_BIN=path            server binary (default <repo>/target/debug/sluice)
#   SLUICE_NODE_ENGINE=durable `--data-dir <tmp>` instead of `--in-memory`
#   SLUICE_ENDPOINT=http://127.0.0.1:PORT  use a running server instead
#   SLUICE_NODE_KEEP_LOGS=1    keep the server logs (paths printed on stderr)
# Exit code = the test runner's.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cd "$here"

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "$0: '$tool' not found (Node.js >= 20 with npm is needed)" >&2
    exit 2
  fi
done
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "$0: Node.js >= 20 needed (node --test with --test-concurrency/--test-timeout), found $(node --version)" >&2
  exit 2
fi

stamp="node_modules/.sluice-lock.sha256"
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -d node_modules ] || [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "installing tests/clients/node dependencies (npm ci)" >&2
  # No dependency has an install script; --ignore-scripts keeps it that way (we run as root in CI).
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

export SLUICE_BIN="${SLUICE_BIN:-$root/target/debug/sluice}"
export AWS_EC2_METADATA_DISABLED=true
export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE
export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
# Never read a developer's ~/.aws or an endpoint override from the environment
# (lib/sdk.mjs sets AWS_ENDPOINT_URL_SQS itself, per test process).
export AWS_CONFIG_FILE=/dev/null
export AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_SQS AWS_SDK_LOAD_CONFIG || true
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"
export AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE=1

opts=()
files=()
for a in "$@"; do
  case "$a" in
    -*) opts+=("$a") ;;
    *) files+=("$a") ;;
  esac
done
if [ "${#files[@]}" -eq 0 ]; then
  files=(test/*.test.mjs)
fi

set +e
# One file at a time (2 shared cores); each file runs both SDKs against its own server.
node --test --test-concurrency=1 --test-timeout=120000 "${opts[@]}" "${files[@]}"
rc=$?
set -e
exit $rc
