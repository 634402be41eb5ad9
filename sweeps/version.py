"""The installed sweeps' version, recorded in every run's manifest."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sweeps")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"
