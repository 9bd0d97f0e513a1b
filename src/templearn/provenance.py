"""Provenance files: `versions.yml` (nf-core style) and the parameters a stage ran with."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import yaml

from templearn.files import atomic_write_text


def package_versions(packages: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of templearn, Python and the given distributions."""
    found = {"templearn": _version("templearn"), "python": platform.python_version()}
    for name in packages:
        found[name] = _version(name)
    return found


def _version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not installed"


def write_provenance(out_dir: str | os.PathLike[str], stage: str, params: dict[str, Any],
                     packages: tuple[str, ...] = (), name: str | None = None) -> None:
    """Record tool versions in `out_dir/versions.yml` (merged per stage) and the parameters
    in `out_dir/<name or stage>.params.yml`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    versions_path = out / "versions.yml"
    versions: dict[str, Any] = {}
    if versions_path.exists():
        versions = yaml.safe_load(versions_path.read_text()) or {}
    versions[f"TEMPLEARN_{stage.upper()}"] = package_versions(packages)
    atomic_write_text(versions_path, yaml.safe_dump(versions, sort_keys=True))
    record = {"stage": stage, "templearn": _version("templearn"),
              "params": {k: _plain(v) for k, v in params.items()}}
    atomic_write_text(out / f"{name or stage}.params.yml", yaml.safe_dump(record, sort_keys=False))


def _plain(value: Any) -> Any:
    """Make values YAML-safe (paths to strings, tuples to lists)."""
    if isinstance(value, os.PathLike):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value
