#!/usr/bin/env python3
"""moto's server, with two locks that give it the atomicity of the real services:

- DynamoDB requests run one at a time. Real DynamoDB applies each conditional write (and each
  transaction) atomically; moto checks a condition and then writes, without a lock, and rolls a
  failed transaction back by restoring a copy of the whole table taken when it started, which
  can undo other requests' writes made meanwhile.
- SQS receives, deletes and visibility changes run one at a time per queue. moto's receive
  looks for visible messages and marks them received without a lock, so two receivers racing
  on one queue can be handed the same message, which SQS does not do.

With them the concurrency tests exercise parallax's logic rather than moto's races. Everything
else (S3, SQS sends, other queues) still runs concurrently.

Usage: moto_server.py [-H HOST] [-p PORT]   (what with-moto.sh runs)
"""

import argparse
import io
import json
import os
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

DYNAMODB_LOCK = threading.Lock()
SQS_HOLDER_ACTIONS = {
    "AmazonSQS.ReceiveMessage",
    "AmazonSQS.DeleteMessage",
    "AmazonSQS.DeleteMessageBatch",
    "AmazonSQS.ChangeMessageVisibility",
    "AmazonSQS.ChangeMessageVisibilityBatch",
}
QUEUE_LOCKS = {}
QUEUE_LOCKS_GUARD = threading.Lock()


def queue_lock(environ):
    """The lock of the queue a JSON-protocol SQS request names (its body is put back)."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    try:
        url = json.loads(body or b"{}").get("QueueUrl", "")
    except ValueError:
        url = ""
    name = url.rstrip("/").rsplit("/", 1)[-1]
    with QUEUE_LOCKS_GUARD:
        return QUEUE_LOCKS.setdefault(name, threading.Lock())


def serialise(app):
    def wrapped(environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        lock = None
        if target.startswith("DynamoDB_"):
            lock = DYNAMODB_LOCK
        elif target in SQS_HOLDER_ACTIONS:
            lock = queue_lock(environ)
        if lock is None:
            return app(environ, start_response)
        with lock:
            # Produce the whole response inside the lock.
            return list(app(environ, start_response))

    return wrapped


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-H", "--host", default="127.0.0.1")
    p.add_argument("-p", "--port", type=int, default=5000)
    a = p.parse_args()
    os.environ.setdefault("MOTO_PORT", str(a.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        a.host,
        a.port,
        serialise(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
