"""A run directory as a graph of stage outputs, for the report.

Every directory holding a `<stage>.params.yml` record is a stage output; they are found by
scanning the run directory (hidden work directories skipped), not by folder names, and
linked through the input paths their records name. Recorded paths may be absolute or
relative to the run directory; a run directory that was moved after the run is handled by
re-rooting an absolute path's tail under it.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from templearn.errors import InputError

RECORD_SUFFIX = ".params.yml"


@dataclass
class StageDir:
    """One stage output directory and its record."""

    stage: str
    path: Path  # resolved
    name: str  # relative to the run directory (posix), or absolute if outside it
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def result(self) -> str:
        return str(self.record.get("result") or "")

    def file(self, name: str) -> Path | None:
        """`name` inside this directory, None if it does not exist."""
        path = self.path / name
        return path if path.exists() else None


class RunIndex:
    """The stage outputs of a run directory and the links between them."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        root = Path(run_dir)
        if not root.exists():
            raise InputError("no such directory", root)
        if not root.is_dir():
            raise InputError("not a directory (expected a run directory)", root)
        self.root = root.resolve()
        self.warnings: list[str] = []
        self.dirs: list[StageDir] = sorted(self._scan(), key=lambda d: (d.name, d.stage))
        if not self.dirs:
            raise InputError(f"no stage records (<stage>{RECORD_SUFFIX}) found; is this a "
                             f"templearn run directory?", root)
        self._by_path: dict[Path, list[StageDir]] = {}
        for d in self.dirs:
            self._by_path.setdefault(d.path, []).append(d)

    def _scan(self) -> Iterator[StageDir]:
        for top, subdirs, files in os.walk(self.root):
            subdirs[:] = sorted(s for s in subdirs if not s.startswith("."))
            for file_name in sorted(files):
                if not file_name.endswith(RECORD_SUFFIX) or file_name.startswith("."):
                    continue
                path = Path(top) / file_name
                try:
                    record = yaml.safe_load(path.read_text())
                except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
                    self.warnings.append(f"{self.relative(path)}: unreadable record ({exc})")
                    continue
                if not isinstance(record, dict):
                    self.warnings.append(f"{self.relative(path)}: not a stage record")
                    continue
                stage = str(record.get("stage") or file_name.removesuffix(RECORD_SUFFIX))
                directory = Path(top).resolve()
                yield StageDir(stage, directory, self.relative(directory), record)

    # -- paths ------------------------------------------------------------------------------

    def relative(self, path: Path) -> str:
        """`path` relative to the run directory (posix), or absolute if outside it."""
        try:
            return Path(path).resolve().relative_to(self.root).as_posix() or "."
        except ValueError:
            return str(path)

    def resolve(self, value: Any) -> Path | None:
        """A recorded path (absolute, or relative to the run directory) as an existing,
        resolved path; None if it cannot be found."""
        if not isinstance(value, str | os.PathLike) or not str(value).strip():
            return None
        path = Path(value).expanduser()
        candidate = path if path.is_absolute() else self.root / path
        if candidate.exists():
            return candidate.resolve()
        parts = path.parts[1:] if path.is_absolute() else path.parts
        for start in range(len(parts) - 1):  # a moved run: the path's tail under the root
            candidate = self.root.joinpath(*parts[start:])
            if candidate.exists():
                return candidate.resolve()
        return None

    def paths_in(self, value: Any) -> list[Path]:
        """The existing paths a recorded value names: itself, its items, or for text like
        NAME=PATH or TOMOGRAM,LABELS each part."""
        if value is None:
            return []
        if isinstance(value, Mapping):
            return [p for v in value.values() for p in self.paths_in(v)]
        if isinstance(value, list | tuple):
            return [p for v in value for p in self.paths_in(v)]
        whole = self.resolve(value)
        if whole is not None or not isinstance(value, str):
            return [] if whole is None else [whole]
        parts = [p for chunk in value.split(",") for p in chunk.split("=")]
        return [p for p in map(self.resolve, parts) if p is not None]

    def inputs(self, d: StageDir) -> Mapping[str, Any]:
        """The record's inputs (older records name their input files among the params)."""
        inputs = d.record.get("inputs")
        if isinstance(inputs, Mapping) and inputs:
            return inputs
        params = d.record.get("params")
        return params if isinstance(params, Mapping) else {}

    def input_path(self, d: StageDir, key: str, file_name: str | None = None) -> Path | None:
        """The first existing path the record's input `key` names; a directory is replaced
        by its `file_name` when given."""
        for path in self.paths_in(self.inputs(d).get(key)):
            if path.is_dir() and file_name is not None:
                path = path / file_name
            if path.exists():
                return path
        return None

    # -- links ------------------------------------------------------------------------------

    def of_stage(self, stage: str) -> list[StageDir]:
        return [d for d in self.dirs if d.stage == stage]

    def owner(self, path: Path, stage: str | None = None) -> StageDir | None:
        """The stage output directory that holds `path` (the nearest enclosing one)."""
        for directory in (path, *path.parents):
            for d in self._by_path.get(directory, []):
                if stage is None or d.stage == stage:
                    return d
        return None

    def sources(self, d: StageDir) -> list[StageDir]:
        """The stage outputs `d`'s inputs come from (record order, no repeats)."""
        found: list[StageDir] = []
        for path in self.paths_in(self.inputs(d)):
            source = self.owner(path)
            if source is not None and source is not d and source not in found:
                found.append(source)
        return found

    def upstream(self, d: StageDir, stage: str) -> StageDir | None:
        """The nearest stage output of `stage` that `d` was made from (breadth first)."""
        queue, seen = deque(self.sources(d)), {id(d)}
        while queue:
            source = queue.popleft()
            if id(source) in seen:
                continue
            seen.add(id(source))
            if source.stage == stage:
                return source
            queue.extend(self.sources(source))
        return None

    def downstream(self, d: StageDir, stage: str) -> list[StageDir]:
        """Stage outputs of `stage` made directly from `d`."""
        return [other for other in self.of_stage(stage) if d in self.sources(other)]


def short_labels(names: list[str]) -> list[str]:
    """Path-like names with the path components they all share at the start and at the end
    removed (tomograms/test0/tomo, tomograms/test1/tomo → test0, test1), when that keeps
    them distinct and non-empty."""
    if len(names) < 2 or len(set(names)) < len(names):
        return list(names)
    split = [n.strip("/").split("/") for n in names]
    shortest = min(len(s) for s in split)
    head = 0
    while head < shortest - 1 and len({s[head] for s in split}) == 1:
        head += 1
    tail = 0
    while tail < shortest - 1 - head and len({s[-1 - tail] for s in split}) == 1:
        tail += 1
    short = ["/".join(s[head:len(s) - tail]) for s in split]
    return short if all(short) and len(set(short)) == len(short) else list(names)
