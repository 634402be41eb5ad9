"""Datasets as uint8 arrays, and the splits each report uses as float tensors on a device.

A `Dataset` holds numpy arrays so that Ray can share one copy through its object store
(zero-copy for numpy); a trial turns it into device tensors once with `make_splits`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

# torch is imported where tensors are made, on the trial's worker: the driver loads the
# data and puts it into Ray's object store as numpy arrays, without waiting for torch.
if TYPE_CHECKING:
    import torch

DATA_DIR_ENV = "SWEEPS_DATA_DIR"
NUM_CLASSES = 10
# scikit-learn's digits have no test split of their own: the last 300 images are ours.
DIGITS_TEST_SIZE = 300


class DataNotFoundError(FileNotFoundError):
    """The dataset is not under the data root and could not be downloaded."""


@dataclasses.dataclass(frozen=True)
class Dataset:
    name: str
    train_images: np.ndarray  # uint8, (N, H, W)
    train_labels: np.ndarray  # int64, (N,)
    test_images: np.ndarray
    test_labels: np.ndarray
    pixel_max: int  # the value that maps to 1.0: 255 for MNIST, 16 for digits

    @property
    def image_shape(self) -> tuple[int, int]:
        return self.train_images.shape[1], self.train_images.shape[2]


@dataclasses.dataclass(frozen=True)
class Split:
    images: torch.Tensor  # float32 in [0, 1], (N, H, W), on the trial's device
    labels: torch.Tensor  # int64, (N,)

    def __len__(self) -> int:
        return self.labels.shape[0]


@dataclasses.dataclass(frozen=True)
class Splits:
    train: Split
    validation: Split
    test: Split  # the same object as `validation` when the report validates on the test set


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data root: the argument, else $SWEEPS_DATA_DIR, else ~/.cache/sweeps/data."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "sweeps" / "data"


def load_dataset(
    name: str, data_dir: str | os.PathLike[str] | None = None, download: bool = True
) -> Dataset:
    """Load `mnist`, `fashion_mnist` (torchvision layout under the data root) or `digits`."""
    if name == "digits":
        return _load_digits()
    if name not in ("mnist", "fashion_mnist"):
        raise ValueError(f"dataset must be one of mnist, fashion_mnist, digits; got {name!r}")
    return _load_torchvision(name, resolve_data_dir(data_dir), download)


def _load_torchvision(name: str, root: Path, download: bool) -> Dataset:
    from torchvision import datasets  # imported here: slow, and digits does not need it

    cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
    # What a failed download would leave behind, to be removed: nothing written on failure.
    created = next((p for p in (root, root / cls.__name__) if not p.exists()), None)
    try:
        train = cls(str(root), train=True, download=download)
        test = cls(str(root), train=False, download=download)
    except (RuntimeError, OSError) as error:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        reason = "download failed" if download else "download=False"
        detail = " ".join(str(error).split())  # torchvision's messages span lines
        raise DataNotFoundError(
            f"{name} not found under data root {str(root)!r} ({reason}: {detail}); put the files"
            f" in {str(root / cls.__name__ / 'raw')!r}, or point --data-dir or"
            f" ${DATA_DIR_ENV} at a folder that holds {cls.__name__}/raw/"
        ) from error
    return Dataset(
        name=name,
        train_images=train.data.numpy(),
        train_labels=train.targets.numpy().astype(np.int64),
        test_images=test.data.numpy(),
        test_labels=test.targets.numpy().astype(np.int64),
        pixel_max=255,
    )


def _load_digits() -> Dataset:
    # scikit-learn's file, read as its load_digits reads it: importing sklearn.datasets
    # (SciPy and more) takes seconds, reading the 1,797 rows a few milliseconds.
    sklearn = importlib.util.find_spec("sklearn")
    if sklearn is None or not sklearn.submodule_search_locations:
        raise DataNotFoundError("the digits ship with scikit-learn, which is not installed")
    data = np.loadtxt(
        Path(sklearn.submodule_search_locations[0], "datasets", "data", "digits.csv.gz"),
        delimiter=",",
    )
    images = data[:, :-1].reshape(-1, 8, 8).astype(np.uint8)  # integer grey levels 0..16
    labels = data[:, -1].astype(np.int64)
    cut = len(labels) - DIGITS_TEST_SIZE
    return Dataset(
        name="digits",
        train_images=images[:cut],
        train_labels=labels[:cut],
        test_images=images[cut:],
        test_labels=labels[cut:],
        pixel_max=16,
    )


def make_splits(
    dataset: Dataset, validation_split: float, seed: int, device: torch.device
) -> Splits:
    """Train/validation/test on `device`, pixels scaled to [0, 1] once.

    validation_split == 0 validates on the test set (report A). Otherwise the split is
    Keras' `fit(validation_split=...)`: the training images keep their file order, the first
    ceil(N * (1 - validation_split)) of them train and the rest, the last fraction, are held
    out (report B). Nothing is drawn at random, so `seed` does not change the split; it is
    kept so that callers need not change (the weights and batch order take theirs in
    `trainers.train`).
    """
    import torch

    images = _to_device(dataset.train_images, dataset.pixel_max, device)
    labels = torch.from_numpy(np.array(dataset.train_labels)).to(device)
    test = Split(
        _to_device(dataset.test_images, dataset.pixel_max, device),
        torch.from_numpy(np.array(dataset.test_labels)).to(device),
    )
    if validation_split == 0:
        return Splits(train=Split(images, labels), validation=test, test=test)
    # Keras: split_at = int(math.ceil(num_samples * (1 - validation_split))), before shuffling.
    split_at = math.ceil(len(labels) * (1 - validation_split))
    return Splits(
        # Views of the one tensor, both contiguous: together they are the training set.
        train=Split(images[:split_at], labels[:split_at]),
        validation=Split(images[split_at:], labels[split_at:]),
        test=test,
    )


def _to_device(images: np.ndarray, pixel_max: int, device: torch.device) -> torch.Tensor:
    import torch

    # np.array copies: arrays from Ray's object store are read-only, which torch warns about.
    as_uint8 = torch.from_numpy(np.array(images, dtype=np.uint8)).to(device)
    return as_uint8.float().div_(pixel_max)
