"""A directory on any pyarrow filesystem: a local folder, a shared disk, an object store.

Runs are written (by sweeps) and read (by the analysis) through it, so the same code
serves a laptop's disk and a bucket a cluster's nodes share: a local path, `file://`,
`s3://` or `gs://` (options in the URI's query, e.g. `?endpoint_override=HOST:PORT`).
"""

from __future__ import annotations

import dataclasses
import errno
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

# An object store's first answer (its region, a first look at the path) comes within this,
# or it is taken for none: its SDK would otherwise retry for minutes (GCS: 15).
REACH_TIMEOUT_S = 30.0
# The schemes sweeps reads and writes (gcs:// is pyarrow's other name for gs://). pyarrow
# knows others (hdfs://, abfs://), whose clients print to stderr from C++ when a JVM or the
# Azure CLI is missing: refused before they start, so that a mistake there is one line too.
SCHEMES = ("file", "s3", "gs", "gcs")
SCHEMES_TEXT = "a local path, file://, s3:// or gs://"
T = TypeVar("T")


class StorageError(ValueError):
    """A results location that cannot be used (bad URI, unknown scheme, no access)."""


@dataclasses.dataclass(frozen=True)
class Place:
    """A directory: its filesystem, the path within it, and the URI a user (and Tune) sees."""

    fs: pafs.FileSystem
    path: str
    base: str  # the URI without its query (or the local path)
    query: str = ""  # filesystem options, e.g. endpoint_override=HOST:PORT&scheme=http

    @classmethod
    def of(cls, location: str | os.PathLike[str]) -> Place:
        text = str(location)
        if "://" not in text:
            local = _resolve(text)
            return cls(pafs.LocalFileSystem(), local, local)
        fs, path = _answer(text, lambda: _from_uri(text))
        if isinstance(fs, pafs.LocalFileSystem):  # file:///...: a plain local path
            _check_no_loop(path, text)
            return cls(fs, path, path)
        base, _, query = text.partition("?")
        return cls(fs, path.rstrip("/"), base.rstrip("/"), query)

    @property
    def uri(self) -> str:
        """What a user passes back to us (`sweeps resume`): with the options, if any."""
        return f"{self.base}?{self.query}" if self.query else self.base

    @property
    def local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def for_tune(self) -> tuple[str, pafs.FileSystem | None]:
        """As Tune's storage_path and storage_filesystem take it: the filesystem object
        carries options (an S3 endpoint_override) that Tune would not read from a URI."""
        return (self.uri, None) if self.local else (self.path, self.fs)

    def __truediv__(self, name: str) -> Place:
        return Place(self.fs, f"{self.path}/{name}", f"{self.base}/{name}", self.query)

    def __str__(self) -> str:
        return self.uri

    def _type(self) -> pafs.FileType:
        return self.fs.get_file_info(self.path).type

    def exists(self) -> bool:
        return self._type() != pafs.FileType.NotFound

    def is_dir(self) -> bool:
        return self._type() == pafs.FileType.Directory

    def is_file(self) -> bool:
        return self._type() == pafs.FileType.File

    def check_reachable(self) -> None:
        """StorageError unless an object store answers a first look at this path within
        REACH_TIMEOUT_S: no network, no credentials or no bucket is one line before anything
        starts, not a traceback (or minutes of retries) at the first read or write."""
        if not self.local:
            _answer(self.uri, lambda: self.fs.get_file_info(self.path))

    def check_writable(self) -> None:
        """StorageError unless this directory could be made and written here."""
        reason = self.unwritable()
        if reason is not None:
            raise StorageError(f"results location {self.uri!r}: {reason}")

    def unwritable(self) -> str | None:
        """Why this directory could not be made and written here, naming the folder in the
        way (its nearest existing ancestor must be a writable directory), or None. Object
        stores answer only when written to, so they pass."""
        if not self.local:
            return None
        path = Path(self.path)
        while not path.exists():
            path = path.parent
        if not path.is_dir():
            return f"{str(path)!r} is a file"
        why = not_writable(str(path))
        return None if why is None else f"{str(path)!r} is {why}"

    def mkdir(self) -> None:
        try:
            self.fs.create_dir(self.path, recursive=True)
        except OSError as error:
            raise StorageError(f"cannot create {self.uri!r}: {error}") from None

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def parent(self) -> Place:
        return Place(self.fs, self.path.rsplit("/", 1)[0], self.base.rsplit("/", 1)[0],
                     self.query)  # fmt: skip

    def subdirectories(self) -> list[Place]:
        """The directories in this one, by name; none if it is not a directory."""
        if not self.is_dir():
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(self.path))
        names = sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)
        return [self / name for name in names]

    def read_bytes(self) -> bytes:
        with self.fs.open_input_stream(self.path) as stream:
            return stream.read()

    def read_text(self) -> str:
        return self.read_bytes().decode()

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode())

    def write_bytes(self, data: bytes) -> None:
        self._write(lambda path: self._put(path, data))

    def write_parquet(self, table: pa.Table) -> None:
        self._write(lambda path: pq.write_table(table, path, filesystem=self.fs))

    def _put(self, path: str, data: bytes) -> None:
        with self.fs.open_output_stream(path) as stream:
            stream.write(data)

    def _write(self, write: Callable[[str], object]) -> None:
        """Write whole or not at all: locally to a dot-name renamed into place; an object
        store's PUT is already all-or-nothing."""
        if not self.local:
            write(self.path)
            return
        folder, name = os.path.split(self.path)
        os.makedirs(folder, exist_ok=True)
        temporary = f"{folder}/.{name}.tmp"
        write(temporary)
        os.replace(temporary, self.path)

    def parquet_files(self) -> list[str]:
        """The folder's finished Parquet files (dot-files are being written)."""
        if not self.is_dir():
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(self.path))
        return sorted(i.path for i in infos if i.base_name.endswith(".parquet")
                      and not i.base_name.startswith((".", "_")))  # fmt: skip

    def read_parquet(self) -> pd.DataFrame:
        """The folder's Parquet files as one frame (empty if there are none)."""
        files = self.parquet_files()
        if not files:
            return pd.DataFrame()
        return pq.ParquetDataset(files, filesystem=self.fs).read().to_pandas()


def not_writable(path: str) -> str | None:
    """Why this process cannot write the local directory or file `path` ("not writable",
    "on a read-only filesystem"), or None. As access(2) answers it: root passes the
    permission bits, never a read-only filesystem."""
    if os.access(path, os.W_OK | (os.X_OK if os.path.isdir(path) else 0)):
        return None
    try:
        read_only = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    return "on a read-only filesystem" if read_only else "not writable"


def _resolve(text: str) -> str:
    """A local path made absolute, its symlinks followed; StorageError naming it for a
    symlink loop, which Python up to 3.12 raises as RuntimeError and 3.13 leaves in the
    path for the first stat to meet."""
    try:
        path = Path(text).expanduser()
    except RuntimeError as error:  # ~user of no such user
        raise StorageError(f"results location {text!r}: {error}") from None
    try:
        resolved = str(path.resolve())
    except RuntimeError:
        raise StorageError(f"results location {text!r}: a symlink loop") from None
    _check_no_loop(resolved, text)
    return resolved


def _check_no_loop(path: str, text: str) -> None:
    try:
        os.stat(path)
    except OSError as error:  # a path yet to be made is not our concern here
        if error.errno == errno.ELOOP:
            raise StorageError(f"results location {text!r}: a symlink loop") from None


def _from_uri(text: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem of a URI and the path in it; for s3:// without a region, pyarrow asks
    the bucket's region over the network."""
    scheme = text.split("://", 1)[0]
    if scheme not in SCHEMES:  # as pyarrow reads it: S3:// is no s3://
        raise StorageError(
            f"results location {text!r}: no filesystem for {scheme}:// ({SCHEMES_TEXT})"
        )
    try:
        fs, path = pafs.FileSystem.from_uri(text)
    # A malformed URI, or "... Arrow compiled without S3 support".
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise StorageError(f"results location {text!r}: {_first_line(error)}") from None
    return fs, path


def _answer(text: str, call: Callable[[], T]) -> T:
    """What `call` returns, if the store it asks answers within REACH_TIMEOUT_S; else, or
    if it fails, StorageError naming the location `text`. It runs in a thread of its own,
    left behind (a daemon) when it does not answer, since pyarrow's calls cannot be cut
    short."""
    outcome: list[T | BaseException] = []

    def ask() -> None:
        try:
            outcome.append(call())
        except BaseException as error:  # raised again in the caller's thread
            outcome.append(error)

    asker = threading.Thread(target=ask, name="sweeps-reach", daemon=True)
    asker.start()
    asker.join(REACH_TIMEOUT_S)
    if not outcome:
        raise StorageError(
            f"results location {text!r}: no answer in {REACH_TIMEOUT_S:g} s"
            " (no network, or no credentials for it?)"
        )
    (result,) = outcome
    if isinstance(result, StorageError):
        raise result
    if isinstance(result, OSError | pa.ArrowException):
        raise StorageError(f"results location {text!r}: cannot reach it: {_first_line(result)}")
    if isinstance(result, BaseException):
        raise result
    return result


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines() or [type(error).__name__]
    return lines[0].strip()
