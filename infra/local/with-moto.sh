#!/usr/bin/env bash
# Runs a command against a fresh moto server (an AWS emulator) and stops the server afterwards,
# also when the command fails or is interrupted.
#
#   infra/local/with-moto.sh cargo nextest run -p parallax-core --features aws
#
# It starts moto's server (moto_server.py) from the project's venv on a free loopback port, creates the resources
# the way a deployment names them (create_resources.py), exports the settings below, runs the
# command and returns its exit status.
#
#   PARALLAX_AWS_TEST_ENDPOINT / _NAME_PREFIX / _BUCKET   what the AWS conformance tests use
#   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION   dummy credentials for the emulator
#
# Environment: VENV (default .venv), MOTO_LOG (default: a temp file, printed on failure).
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${VENV:-$root/.venv}"
case "$venv" in /*) ;; *) venv="$root/$venv" ;; esac
python="$venv/bin/python"
if ! "$python" -c "import moto.server" 2>/dev/null; then
  echo "with-moto.sh: moto is not installed in $venv; run 'make venv' (requirements.txt has moto[server])" >&2
  exit 1
fi

log="${MOTO_LOG:-$(mktemp "${TMPDIR:-/tmp}/parallax-moto.XXXXXX.log")}"
pid=""
stop() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The port is free when picked; if another process takes it first, moto exits and we retry.
for attempt in 1 2 3; do
  port="$(free_port)"
  # moto's server with DynamoDB requests serialised (see moto_server.py for why).
  "$python" "$root/infra/local/moto_server.py" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  pid=$!
  endpoint="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    if "$python" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1] + '/moto-api/', timeout=1)" "$endpoint" 2>/dev/null; then
      break 2
    fi
    sleep 0.1
  done
  stop
  pid=""
  echo "with-moto.sh: moto did not start on port $port (attempt $attempt); log:" >&2
  tail -n 20 "$log" >&2
done
if [ -z "$pid" ]; then
  echo "with-moto.sh: giving up on starting moto" >&2
  exit 1
fi

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_DEFAULT_REGION="$AWS_REGION"
# The emulator needs no real credentials: keep a developer's profile out of the test run.
unset AWS_PROFILE AWS_SESSION_TOKEN
export PARALLAX_AWS_TEST_ENDPOINT="$endpoint"
export PARALLAX_AWS_TEST_NAME_PREFIX="ptest"
export PARALLAX_AWS_TEST_BUCKET="ptest-bucket"
"$python" "$root/infra/local/create_resources.py" \
  --endpoint "$endpoint" \
  --name-prefix "$PARALLAX_AWS_TEST_NAME_PREFIX" \
  --bucket "$PARALLAX_AWS_TEST_BUCKET" \
  --region "$AWS_REGION"

echo "with-moto.sh: moto at $endpoint (log: $log)"
status=0
"$@" || status=$?
if [ "$status" -ne 0 ]; then
  echo "with-moto.sh: command failed ($status); last lines of the moto log ($log):" >&2
  tail -n 30 "$log" >&2
fi
exit "$status"
