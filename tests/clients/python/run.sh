#!/usr/bin/env bash
# Run the Python real-client SQS suite against a freshly started sluice.
#
#   tests/clients/python/run.sh query [pytest args...]   # boto3 1.34.89: SQS query protocol
#   tests/clients/python/run.sh json  [pytest args...]   # current boto3: SQS JSON 1.0
#
# Creates target/pyenv-<kind> (relative to the repo root) when missing and
# installs requirements-<kind>.txt into it (again whenever that file changes).
# SLUICE_BIN overrides the server binary (default target/debug/sluice);
# SLUICE_ENDPOINT=http://127.0.0.1:PORT runs against an already running server.
# Exit code = pytest's.
set -euo pipefail

kind="${1:-}"
case "$kind" in
  query|json) shift ;;
  *) echo "usage: $0 <query|json> [pytest args...]" >&2; exit 2 ;;
esac

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
venv="$root/target/pyenv-$kind"
req="$here/requirements-$kind.txt"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv" >&2
  "$python" -m venv "$venv"
fi
stamp="$venv/.sluice-requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "installing $req into $venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
fi

export SLUICE_PY_PROTOCOL="$kind"
export SLUICE_BIN="${SLUICE_BIN:-$root/target/debug/sluice}"
export AWS_EC2_METADATA_DISABLED=true
export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE
export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
export AWS_DEFAULT_REGION=us-east-1
export AWS_REGION=us-east-1
# Never read a developer's ~/.aws or an endpoint override from the environment.
export AWS_CONFIG_FILE=/dev/null
export AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_SQS || true
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"
export PYTHONDONTWRITEBYTECODE=1

cd "$here"
set +e
"$venv/bin/python" -m pytest -p no:cacheprovider "$@"
rc=$?
set -e
exit $rc
