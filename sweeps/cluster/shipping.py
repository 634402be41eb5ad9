"""What a submitted sweep takes to the cluster: the code its trials import.

A Ray Job's runtime_env ships a working dir (the job's current folder, on its workers'
import path) and py_modules (local packages put on the import path). `sweeps submit`
ships the spec's folder as the working dir (or --working-dir), the user's --py-modules,
and, when sweeps runs from a source checkout, its own three packages, so that the cluster
runs the code that runs here. Never shipped: secrets (SECRETS), what .gitignore and
.rayignore files ignore, bulk (EXCLUDES). Ray walks the folders itself; plan_shipment walks
them as Ray does, so that what we say goes is what goes.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Never shipped to the cluster, wherever they are in the tree (gitignore patterns; letters
# match in either case): keys, tokens, credentials and the files that usually hold them.
SECRETS = [".env", ".env.*", "*.pem", "*.key", "*.p12", "*.pfx", "id_rsa*", "id_dsa*",
           "id_ecdsa*", "id_ed25519*", ".ssh", ".aws", ".netrc", ".pypirc", ".git-credentials",
           # Token and secret files by the names they go by, not any name containing the
           # word: a trainer's tokenizer.py or secrets_test.py is code the job needs.
           "*token", "*token.txt", "*token.json", "*.token", "*secret", "*secret.txt",
           "*secret.json", "*secrets.json", "*secrets.yaml", "*secrets.yml", "credentials",
           "credentials.json", "*.credentials", "*password", "*password.txt"]  # fmt: skip
# Nor history, results, data, environments, caches, the device kit.
EXCLUDES = [".git", "results", "data", ".venv", "venv", ".device", "*.egg-info",
            "__pycache__", ".pytest_cache", ".ruff_cache"]  # fmt: skip


PACKAGES = ("sweeps", "trainers", "analysis")


class ShippingError(ValueError):
    """A folder to ship that is not one (exit 2, nothing submitted)."""


def project_root() -> Path | None:
    """The source checkout sweeps runs from, whose PACKAGES a job takes along, or None when
    sweeps is an installed package (the cluster's setup commands install it then)."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else None


@dataclass(frozen=True)
class Shipment:
    """A directory as Ray will ship it for a job's working dir: what goes, what stays."""

    root: Path
    files: int
    size_bytes: int
    # What stays, relative to root: each file or folder (a trailing /) left out whose parent
    # goes; nothing inside such a folder goes.
    excluded: tuple[str, ...]

    def describe(self, limit: int = 12) -> str:
        """One line: `shipping ROOT (N files, X MB; excluded: .env, .git/, ...)`."""
        folders = Counter(_name(path) for path in self.excluded if path.endswith("/"))
        # A folder left out in many places (__pycache__/) once, with its count; every file
        # by its path, so that a secret's place shows.
        shown = sorted({f"{name} ({folders[name]})" if folders[name := _name(path)] > 1
                        else path for path in self.excluded}, key=str.lower)  # fmt: skip
        more = f", and {len(shown) - limit} more" if len(shown) > limit else ""
        left_out = ", ".join(shown[:limit]) + more if shown else "nothing"
        return (f"shipping {self.root} ({self.files} files, {self.size_bytes / 1e6:.1f} MB;"
                f" excluded: {left_out})")  # fmt: skip


def _name(path: str) -> str:
    return Path(path).name + ("/" if path.endswith("/") else "")


def _any_case(pattern: str) -> str:
    """`pattern` matching its letters in either case (gitignore patterns are case-sensitive):
    an API_TOKEN is as secret as an api_token."""
    return re.sub(r"[A-Za-z]", lambda m: f"[{m[0].lower()}{m[0].upper()}]", pattern)


def excluded_patterns() -> list[str]:
    """SECRETS and EXCLUDES as gitignore patterns: the runtime_env's `excludes`."""
    return [*(_any_case(pattern) for pattern in SECRETS), *EXCLUDES]


def plan_shipment(root: Path) -> Shipment:
    """What Ray will ship of `root` with our excludes: the same walk as Ray's packaging
    (its default excludes, .gitignore and .rayignore files at every level unless
    RAY_RUNTIME_ENV_IGNORE_GITIGNORE=1, and ours), so that what we say is what goes."""
    from ray._private import ray_constants
    from ray._private.runtime_env.packaging import _dir_travel, _get_excludes

    root = Path(root).resolve()
    ignore_gitignore = os.environ.get(ray_constants.RAY_RUNTIME_ENV_IGNORE_GITIGNORE, "0")
    patterns = [*ray_constants.get_runtime_env_default_excludes(), *excluded_patterns()]
    kept: list[Path] = []
    _dir_travel(root, [_get_excludes(root, patterns)], kept.append,
                include_gitignore=ignore_gitignore != "1", logger=_QUIET)  # fmt: skip
    kept_set = set(kept)
    files = [path for path in kept if path.is_file()]
    excluded = sorted(
        str(child.relative_to(root)) + ("/" if child.is_dir() else "")
        for folder in kept if folder.is_dir()
        for child in folder.iterdir() if child not in kept_set
    )  # fmt: skip
    return Shipment(root=root, files=len(files),
                    size_bytes=sum(path.stat().st_size for path in files),
                    excluded=tuple(excluded))  # fmt: skip


# Ray's packaging logs each ignore file it honours at INFO; the shipment line says it all.
_QUIET = logging.getLogger("sweeps.cluster.shipping.packaging")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


@dataclass(frozen=True)
class Code:
    """What a job ships: its working dir and the local packages on its import path."""

    working_dir: Shipment | None
    py_modules: tuple[Shipment, ...]

    def runtime_env(self) -> dict[str, Any]:
        """The runtime_env fields that ship them (Ray applies `excludes` to both)."""
        env: dict[str, Any] = {}
        if self.working_dir is not None:
            env["working_dir"] = str(self.working_dir.root)
        if self.py_modules:
            env["py_modules"] = [str(module.root) for module in self.py_modules]
        if env:
            env["excludes"] = excluded_patterns()
        return env

    def import_path(self) -> list[str]:
        """The folders a job's Python imports the shipped code from: the working dir, and
        the folder holding each module."""
        dirs = [] if self.working_dir is None else [self.working_dir.root]
        return [str(folder) for folder in [*dirs, *(m.root.parent for m in self.py_modules)]]

    def lines(self) -> list[str]:
        """What goes, a line a folder, for stderr."""
        lines = [] if self.working_dir is None else [self.working_dir.describe()]
        return lines + [f"{module.describe()} as a module" for module in self.py_modules]


def plan_code(
    spec: str, working_dir: Path | None = None, py_modules: list[Path] | None = None
) -> Code:
    """The code a job for `spec` (a YAML path or a preset's name) ships: `working_dir`,
    else the spec file's folder (a preset has none), the user's `py_modules`, and
    sweeps' own packages when it runs from a source checkout."""
    if working_dir is None and Path(spec).is_file():
        working_dir = Path(spec).resolve().parent
    folders = [("--working-dir", working_dir)] if working_dir is not None else []
    folders += [("--py-modules", module) for module in py_modules or []]
    for flag, folder in folders:
        if not folder.is_dir():
            raise ShippingError(f"{flag} {str(folder)!r}: not a folder")
    root = project_root()
    ours = [root / package for package in PACKAGES] if root is not None else []
    return Code(
        working_dir=plan_shipment(working_dir) if working_dir is not None else None,
        py_modules=tuple(plan_shipment(module) for module in [*(py_modules or []), *ours]),
    )
