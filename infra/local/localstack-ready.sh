#!/bin/bash
# LocalStack "ready" init hook (mounted by docker-compose.yml): creates parallax's resources
# with create_resources.py, the same script the moto test set-up uses. LocalStack's own Python
# environment has boto3.
set -euo pipefail
python=/opt/code/localstack/.venv/bin/python
[ -x "$python" ] || python=python3
AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
  "$python" /opt/parallax/create_resources.py --endpoint http://localhost:4566
