from __future__ import annotations

import math
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


def test_report_b_holds_out_the_last_ten_percent_as_keras(mnist) -> None:
    splits = make_splits(mnist, 0.1, seed=3, device=CPU)
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (54_000, 6_000, 10_000)
    # Keras' validation_split: the last 10% of the training images in their file order,
    # taken before any shuffling; the first 90% train, in their order too.
    pixels = torch.from_numpy(mnist.train_images).float() / 255
    labels = torch.from_numpy(mnist.train_labels)
    assert torch.equal(splits.validation.images, pixels[54_000:])
    assert torch.equal(splits.validation.labels, labels[54_000:])
    assert torch.equal(splits.train.images, pixels[:54_000])
    assert torch.equal(splits.train.labels, labels[:54_000])
    assert torch.equal(splits.test.labels, torch.from_numpy(mnist.test_labels))


def test_the_held_out_split_does_not_depend_on_the_seed(mnist) -> None:
    first = make_splits(mnist, 0.1, seed=3, device=CPU)
    other = make_splits(mnist, 0.1, seed=4, device=CPU)
    assert torch.equal(first.validation.images, other.validation.images)
    assert torch.equal(first.train.labels, other.train.labels)


@pytest.mark.parametrize(
    ("validation_split", "held_out"),
    [(0.1, 149), (0.2, 299), (0.25, 374), (0.5, 748), (0.999, 1_495)],
)
def test_digits_hold_out_the_last_fraction_by_keras_ceil_rule(
    digits, validation_split: float, held_out: int
) -> None:
    splits = make_splits(digits, validation_split, seed=0, device=CPU)
    count = len(digits.train_labels)  # 1,497
    split_at = math.ceil(count * (1 - validation_split))  # Keras' split_at
    assert (len(splits.train), len(splits.validation)) == (split_at, held_out)
    assert split_at + held_out == count
    pixels = torch.from_numpy(digits.train_images).float() / 16
    labels = torch.from_numpy(digits.train_labels)
    assert torch.equal(splits.validation.images, pixels[split_at:])
    assert torch.equal(splits.validation.labels, labels[split_at:])
    assert torch.equal(splits.train.images, pixels[:split_at])
    assert torch.equal(splits.train.labels, labels[:split_at])
