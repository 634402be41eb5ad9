"""Shared fixtures: the real MNIST from ../shared (or $SWEEPS_DATA_DIR), digits, a local S3."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.s3 import moto_bucket
from trainers.data import DATA_DIR_ENV, Dataset, load_dataset

SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    root = Path(os.environ.get(DATA_DIR_ENV) or SHARED_MNIST)
    if not (root / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
        message = f"real MNIST not under {root}: set ${DATA_DIR_ENV} to a folder with MNIST/raw/"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return root


@pytest.fixture(scope="session")
def mnist(mnist_dir: Path) -> Dataset:
    return load_dataset("mnist", mnist_dir, download=False)


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return load_dataset("digits")


@pytest.fixture
def s3_server() -> Iterator[str]:
    """A moto S3 server on loopback with an empty bucket; its results URI."""
    with moto_bucket() as uri:
        yield uri
