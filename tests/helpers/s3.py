"""A local S3: a moto server on loopback, with the test credentials it takes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.helpers.processes import free_port

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
               "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip


@contextmanager
def moto_bucket() -> Iterator[str]:
    """A moto S3 server on loopback with an empty bucket, the credentials in the environment
    while it runs; its results URI."""
    import pyarrow.fs as pafs

    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        os.environ.update(CREDENTIALS)
        s3 = pafs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http",
                               region="us-east-1", allow_bucket_creation=True)  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                s3.create_dir("sweeps-test")
                break
            except OSError:
                assert time.monotonic() < deadline, "moto_server did not start"
                time.sleep(0.3)
        yield f"s3://sweeps-test/results?endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"
    finally:
        server.terminate()
        server.wait(timeout=30)
        for key in CREDENTIALS:
            os.environ.pop(key, None)
