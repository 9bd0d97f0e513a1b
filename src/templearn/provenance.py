"""Provenance files: `versions.yml` (nf-core style) and `<stage>.params.yml`, the record of
a stage's run (its parameters, inputs, fingerprint and one-line result)."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import yaml

from templearn.files import atomic_write_text


def package_versions(packages: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of templearn, Python and the given distributions."""
    found = {"templearn": templearn_version(), "python": platform.python_version()}
    for name in packages:
        found[name] = _version(name)
    return found


def templearn_version() -> str:
    """The installed templearn version."""
    return _version("templearn")


def _version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not installed"


def write_provenance(out_dir: Path, stage: str, params: dict[str, Any],
                     inputs: dict[str, Any], fingerprint: str,
                     packages: tuple[str, ...] = (), result: str | None = None) -> None:
    """Write `versions.yml` and `<stage>.params.yml` into `out_dir` (plain data only)."""
    atomic_write_text(out_dir / "versions.yml", yaml.safe_dump(
        {f"TEMPLEARN_{stage.upper()}": package_versions(packages)}, sort_keys=True))
    record = {"stage": stage, "templearn": templearn_version(), "fingerprint": fingerprint,
              "inputs": inputs, "params": params, "result": result}
    atomic_write_text(out_dir / f"{stage}.params.yml",
                      yaml.safe_dump(record, sort_keys=False, allow_unicode=True))


def read_record(out_dir: Path, stage: str) -> dict[str, Any]:
    """The `<stage>.params.yml` record of an output directory ({} if absent)."""
    path = out_dir / f"{stage}.params.yml"
    if not path.is_file():
        return {}
    return yaml.safe_load(path.read_text()) or {}
