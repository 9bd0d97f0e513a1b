"""The stage contract: one frozen Params class per stage, and running a stage into an output
directory that is committed as a unit.

A stage is described by a `Stage`: its name, its `Inputs` (files) and `Params` (options)
dataclasses, and `write(params, inputs, work_dir)`, the array → file part. `run_stage`
validates, takes the output's lock, computes in a hidden sibling directory, records
provenance (`versions.yml`, `<stage>.params.yml` with a fingerprint of the parameters and
the inputs' contents) and renames the directory into place, so a kill at any instant never
leaves a folder whose files come from two runs. The CLI, `templearn run` and the Nextflow
schema all derive from the same dataclasses.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from templearn.errors import InputError

P = TypeVar("P", bound="StageParams")
MISSING = dataclasses.MISSING


def option(default: Any = MISSING, help: str = "", *, flag: str | None = None,
           short: str | None = None, parse: Callable[[str], Any] | None = None,
           choices: tuple[str, ...] | None = None, minimum: float | None = None,
           positive: bool = False, repeat: bool = False, argument: bool = False,
           factory: Callable[[], Any] | None = None) -> Any:
    """A Params/Inputs field with what the CLI, the runner and the schema need to know.

    `parse` turns the CLI (and YAML) text form into the value (e.g. '192,192,64' → tuple);
    `choices`, `minimum` (inclusive) and `positive` are checked by `validate`; `repeat`
    makes a repeatable CLI option of a tuple field; `argument` makes a positional argument;
    `factory` makes a mutable default (a dict).
    """
    meta = {"help": help, "flag": flag, "short": short, "parse": parse, "choices": choices,
            "minimum": minimum, "positive": positive, "repeat": repeat, "argument": argument}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    if default is MISSING:
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def field_types(cls: type) -> dict[str, Any]:
    """Resolved type hints of a dataclass's fields."""
    return typing.get_type_hints(cls)


def base_type(hint: Any) -> tuple[Any, bool]:
    """(the type without Optional, whether None is allowed)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return hint, False


def flag_name(f: dataclasses.Field) -> str:
    """The CLI option name of a field: its `flag`, else --field-name."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _coerce(value: Any, hint: Any, meta: Mapping[str, Any], where: str) -> Any:
    """A YAML/CLI value converted to the field's type; InputError naming `where` otherwise."""
    kind, optional = base_type(hint)
    if value is None:
        if optional:
            return None
        raise InputError(f"{where} must not be empty")
    parse = meta.get("parse")
    origin = typing.get_origin(kind)
    if isinstance(value, str) and parse is not None:
        return parse(value)
    if isinstance(value, str) and origin is tuple:
        value = [v.strip() for v in value.replace(":", ",").split(",") if v.strip()]
    try:
        if kind is bool:
            if not isinstance(value, bool):
                raise TypeError
            return value
        if kind is int:
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise TypeError
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if kind is str:
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise TypeError
            return str(value)
        if kind is Path:
            if not isinstance(value, str | os.PathLike):
                raise TypeError
            return Path(value)
        if origin is tuple:
            items = list(value) if isinstance(value, list | tuple) else [value]
            args = typing.get_args(kind)
            if len(args) == 2 and args[1] is Ellipsis:
                item_types = [args[0]] * len(items)
            else:
                if len(items) != len(args):
                    raise InputError(f"{where} expects {len(args)} values, got {value!r}")
                item_types = list(args)
            return tuple(_coerce(v, t, {}, where) for v, t in zip(items, item_types, strict=True))
        if origin is dict:
            if not isinstance(value, Mapping):
                raise TypeError
            key_type, value_type = typing.get_args(kind)
            return {_coerce(k, key_type, {}, where): _coerce(v, value_type, {}, where)
                    for k, v in value.items()}
    except (TypeError, ValueError):
        raise InputError(f"{where} expects {_type_name(kind)}, got {value!r}") from None
    return value


def _type_name(kind: Any) -> str:
    if typing.get_origin(kind) is tuple:
        return "a list"
    if typing.get_origin(kind) is dict:
        return "a mapping"
    return {bool: "true or false", int: "an integer", float: "a number", str: "text",
            Path: "a path"}.get(kind, str(kind))


def plain(value: Any) -> Any:
    """A value as YAML/JSON-safe data (paths to strings, tuples to lists)."""
    if isinstance(value, os.PathLike):
        return str(value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    return value


class Record:
    """Mixin for the Params and Inputs dataclasses: built from mappings, recorded as data."""

    @classmethod
    def from_mapping(cls: type[P], data: Mapping[str, Any] | None, where: str = "") -> P:
        """Build from a YAML/JSON mapping; unknown keys and ill-typed values are errors
        naming the key (`where` prefixes it, e.g. 'samples.tetris'; without `where`, as
        from the command line, errors name the option)."""
        data = dict(data or {})
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        prefix = f"{where}." if where else ""
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise InputError(f"{prefix}{unknown[0]}: unknown key (known: "
                             f"{', '.join(fields)})")
        hints = field_types(cls)
        values = {name: _coerce(value, hints[name], fields[name].metadata,
                                prefix + name if where else flag_name(fields[name]))
                  for name, value in data.items()}
        try:
            made = cls(**values)
        except TypeError as exc:
            raise InputError(f"{where or cls.__name__}: {exc}") from None
        return made.validate(where or None)

    def validate(self: P, where: str | None = None) -> P:
        """Check every field against its `choices`/`minimum`/`positive`, then `check`.
        Errors name the CLI option, or `where.field` for a params-file section."""
        for f in dataclasses.fields(self):
            value, meta = getattr(self, f.name), f.metadata
            name = flag_name(f) if where is None else f"{where}.{f.name}"
            values = value if isinstance(value, tuple) else (value,)
            for v in values:
                if v is None or isinstance(v, bool):
                    continue
                if meta.get("choices") and v not in meta["choices"]:
                    raise InputError(f"{name} must be one of {', '.join(meta['choices'])}, "
                                     f"got {v!r}")
                if meta.get("minimum") is not None and v < meta["minimum"]:
                    raise InputError(f"{name} must be at least {meta['minimum']}, got {v}")
                if meta.get("positive") and not v > 0:
                    raise InputError(f"{name} must be positive, got {v}")
        self.check()
        return self

    def check(self) -> None:
        """Rules across fields (override); raise InputError naming the options."""

    def record(self) -> dict[str, Any]:
        """The fields as plain data, in declaration order."""
        return {f.name: plain(getattr(self, f.name))
                for f in dataclasses.fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class StageParams(Record):
    """Base of every stage's options. Subclasses add fields made with `option` and may
    override `check` for rules that involve several fields."""


@dataclass(frozen=True)
class NoInputs(Record):
    """For stages that read no files (randomize)."""


@dataclass(frozen=True)
class Stage:
    """What the CLI, the runner and the pipeline need to know about a stage."""

    name: str
    summary: str  # one line, the CLI's help
    params: type[StageParams]
    inputs: type[Record]
    #: (params, inputs, work_dir) -> one-line result; writes the stage's files in work_dir.
    write: Callable[[Any, Any, Path], str]
    #: Packages whose versions `versions.yml` records, or a function of the params giving
    #: them where they depend on an option (the simulator backend).
    packages: tuple[str, ...] | Callable[[Any], tuple[str, ...]] = ()
    #: A killed run leaves its work directory for the next identical run to resume from.
    resumable: bool = False
    default_output: str = ""

    def run(self, params: StageParams, inputs: Record, out_dir: str | os.PathLike[str]) -> str:
        """Run the stage into `out_dir` (committed as a unit); the one-line summary."""
        return run_stage(self, params, inputs, out_dir)


def fingerprint(stage: str, params: Mapping[str, Any], inputs: Mapping[str, Any]) -> str:
    """SHA-256 of a stage's name, parameters and the contents of its input files."""
    digest = hashlib.sha256()
    digest.update(json.dumps([stage, plain(params)], sort_keys=True).encode())
    for name, value in sorted(inputs.items()):
        digest.update(name.encode())
        for path in _paths(value):
            _hash_path(digest, Path(path))
    return digest.hexdigest()


def _paths(value: Any) -> list[Any]:
    """The paths an input value names: itself, its items, or for text like NAME=PATH or
    TOMOGRAM,LABELS each comma- or '='-separated part that exists."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [p for v in value.values() for p in _paths(v)]
    if isinstance(value, list | tuple):
        return [p for v in value for p in _paths(v)]
    if isinstance(value, str) and not Path(value).exists():
        parts = [p for chunk in value.split(",") for p in chunk.split("=")]
        return [p for p in parts if p and Path(p).exists()]
    return [value]


def _hash_path(digest: Any, path: Path) -> None:
    """Hash a file's bytes, or every file under a directory (sorted, hidden ones skipped)."""
    digest.update(str(path).encode())
    if path.is_dir():
        for child in sorted(path.rglob("*")):
            relative = child.relative_to(path)
            if child.is_file() and not any(p.startswith(".") for p in relative.parts):
                digest.update(str(relative).encode())
                _hash_file(digest, child)
    elif path.is_file():
        _hash_file(digest, path)


def _hash_file(digest: Any, path: Path) -> None:
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)


def recorded_fingerprint(out_dir: Path, stage: str) -> str | None:
    """The fingerprint a committed output directory was made with, None if none."""
    import yaml

    from templearn.provenance import read_record

    try:
        return read_record(out_dir, stage).get("fingerprint")
    except (yaml.YAMLError, AttributeError):
        return None


@contextmanager
def output_lock(out_dir: Path) -> Iterator[None]:
    """Refuse a second writer to the same output directory (an flock on a hidden sibling,
    removed when done; a lock file replaced under us means another writer won)."""
    lock_path = out_dir.parent / f".{out_dir.name}.lock"
    try:
        handle = lock_path.open("a")
    except OSError as exc:
        raise InputError(f"cannot write here ({exc.strerror})", out_dir.parent) from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if not lock_path.exists() or lock_path.stat().st_ino != os.fstat(
                    handle.fileno()).st_ino:
                raise BlockingIOError
        except BlockingIOError:
            raise InputError("another templearn process is writing this output",
                             out_dir) from None
        try:
            yield
        finally:
            lock_path.unlink(missing_ok=True)


def check_output_dir(out_dir: Path) -> None:
    """Fail before any work if `out_dir` cannot become a directory we write."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("exists and is not a directory", out_dir)
    parent = out_dir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output's parent ({exc.strerror})", parent) from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError("not writable", parent)


def work_dir_of(out_dir: Path) -> Path:
    """The hidden sibling where a stage builds its output before the rename."""
    return out_dir.parent / f".{out_dir.name}.partial"


def commit(work: Path, out_dir: Path) -> None:
    """Put the finished `work` directory in place of `out_dir`, replacing an older one whole."""
    old = out_dir.parent / f".{out_dir.name}.old"
    if old.exists():
        shutil.rmtree(old)
    if out_dir.exists():
        os.replace(out_dir, old)
    os.replace(work, out_dir)
    shutil.rmtree(old, ignore_errors=True)


def run_stage(stage: Stage, params: StageParams, inputs: Record,
              out_dir: str | os.PathLike[str]) -> str:
    """Validate, compute in a work directory, record provenance and commit; the summary."""
    from templearn.provenance import write_provenance

    out = Path(out_dir)
    params.validate()
    check_output_dir(out)
    key = fingerprint(stage.name, params.record(), inputs.record())
    with output_lock(out):
        work = work_dir_of(out)
        if work.exists() and not (stage.resumable and recorded_fingerprint(work, stage.name)
                                  == key):
            shutil.rmtree(work)
        work.mkdir(exist_ok=True)
        packages = stage.packages(params) if callable(stage.packages) else stage.packages
        record = (work, stage.name, params.record(), inputs.record(), key, packages)
        write_provenance(*record)
        try:
            summary = stage.write(params, inputs, work)
        except BaseException as exc:
            if isinstance(exc, InputError) or not stage.resumable:
                shutil.rmtree(work, ignore_errors=True)
            raise
        write_provenance(*record, result=summary)
        commit(work, out)
    return summary
