from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from trainers.data import DataNotFoundError, load_dataset, make_splits, resolve_data_dir

CPU = torch.device("cpu")


def test_data_root_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SWEEPS_DATA_DIR", str(tmp_path / "from-env"))
    assert resolve_data_dir(tmp_path / "given") == tmp_path / "given"
    assert resolve_data_dir() == tmp_path / "from-env"
    monkeypatch.delenv("SWEEPS_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert resolve_data_dir() == tmp_path / "cache" / "sweeps" / "data"


def test_missing_dataset_error_names_root_and_remedy(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    with pytest.raises(DataNotFoundError) as raised:
        load_dataset("fashion_mnist", root, download=False)
    message = str(raised.value)
    assert str(root) in message
    assert "FashionMNIST/raw" in message and "SWEEPS_DATA_DIR" in message
    assert "\n" not in message
    assert not root.exists()  # a failed load leaves nothing behind


def test_mnist_from_the_shared_raw_files(mnist) -> None:
    assert mnist.train_images.shape == (60_000, 28, 28)
    assert mnist.test_images.shape == (10_000, 28, 28)
    assert mnist.train_images.dtype == np.uint8 and mnist.pixel_max == 255
    assert sorted(np.unique(mnist.train_labels)) == list(range(10))


def test_digits_are_sklearns_real_images(digits) -> None:
    assert digits.train_images.shape == (1_497, 8, 8)
    assert digits.test_images.shape == (300, 8, 8)
    assert digits.train_images.max() == 16 and digits.pixel_max == 16


def test_report_a_validates_on_the_test_set(mnist) -> None:
    splits = make_splits(mnist, 0.0, seed=0, device=CPU)
    assert splits.validation is splits.test
    assert len(splits.train) == 60_000 and len(splits.test) == 10_000
    assert splits.train.images.dtype == torch.float32
    assert splits.train.images.min() == 0.0 and splits.train.images.max() == 1.0


def test_report_b_holds_out_ten_percent_by_seed(mnist) -> None:
    first = make_splits(mnist, 0.1, seed=3, device=CPU)
    again = make_splits(mnist, 0.1, seed=3, device=CPU)
    other = make_splits(mnist, 0.1, seed=4, device=CPU)
    assert (len(first.train), len(first.validation), len(first.test)) == (54_000, 6_000, 10_000)
    assert torch.equal(first.validation.images, again.validation.images)
    assert not torch.equal(first.validation.images, other.validation.images)
    # Held-out and training images are disjoint and together are the whole training set.
    all_labels = np.bincount(mnist.train_labels, minlength=10)
    parts = np.bincount(first.train.labels.numpy(), minlength=10) + np.bincount(
        first.validation.labels.numpy(), minlength=10
    )
    assert (parts == all_labels).all()
