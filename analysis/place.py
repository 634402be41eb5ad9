"""A directory on any pyarrow filesystem: a local folder, a shared disk, an object store.

Runs are written (by sweeps) and read (by the analysis) through it, so the same code
serves a laptop's disk and a bucket a cluster's nodes share: a local path, `file://`,
`s3://` or `gs://` (options in the URI's query, e.g. `?endpoint_override=HOST:PORT`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq


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
            local = str(Path(text).expanduser().resolve())
            return cls(pafs.LocalFileSystem(), local, local)
        try:
            fs, path = pafs.FileSystem.from_uri(text)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as error:
            raise StorageError(f"results location {text!r}: {error}") from None
        if isinstance(fs, pafs.LocalFileSystem):  # file:///...: a plain local path
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

    def check_writable(self) -> None:
        """StorageError unless this directory could be made and written here: its nearest
        existing ancestor must be a writable directory. Object stores answer only when
        written to, so they pass."""
        if not self.local:
            return
        path = Path(self.path)
        while not path.exists():
            path = path.parent
        if not path.is_dir():
            raise StorageError(f"results location {self.uri!r}: {str(path)!r} is a file")
        if not os.access(path, os.W_OK | os.X_OK):
            raise StorageError(f"results location {self.uri!r}: {str(path)!r} is not writable")

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
