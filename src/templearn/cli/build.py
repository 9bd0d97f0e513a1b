"""Typer commands made from a stage's Inputs and Params dataclasses.

The dataclass fields are the single source of each option's name, type, default and help;
this module only turns them into a Typer signature and the parsed values back into the
dataclasses, then calls `run_stage`.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from pathlib import Path
from typing import Any

import typer

from templearn.stages.base import Record, Stage, base_type, field_types, flag_name, run_stage


def cli_type(f: dataclasses.Field, hint: Any) -> Any:
    """The type Typer parses a field as: lists as text items; numbers as text too, so that
    `from_cli` converts them like YAML values and a non-number is a one-line InputError
    naming the option (Click's own error is a multi-line box); other scalars as
    themselves."""
    kind, optional = base_type(hint)
    if kind in (int, float) and not f.metadata.get("argument"):
        return str | None if optional else str
    origin = typing.get_origin(kind)
    if f.metadata.get("repeat") or (f.metadata.get("argument") and origin is tuple):
        item = typing.get_args(kind)[0] if origin is tuple else str
        if origin is dict or f.metadata.get("parse") is not None or item not in (Path, str):
            item = str
        return list[item]  # type: ignore[valid-type]
    if origin in (tuple, dict) or f.metadata.get("parse") is not None:
        return str | None
    return hint


def cli_default(f: dataclasses.Field) -> Any:
    """A field's default as the CLI shows it (lists joined by commas)."""
    if f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    elif f.default is dataclasses.MISSING:
        return ...
    else:
        value = f.default
    if f.metadata.get("repeat"):
        if isinstance(value, dict):
            return [f"{k}={v}" for k, v in value.items()]
        return [str(v) for v in value] if value else []
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return value


def _help(f: dataclasses.Field) -> str:
    text = f.metadata.get("help", "")
    choices = f.metadata.get("choices")
    if choices and "one of" not in text:
        text += f" One of: {', '.join(choices)}."
    return text


def _parameter(f: dataclasses.Field, hint: Any) -> inspect.Parameter:
    default = cli_default(f)
    if f.metadata.get("argument"):
        info = typer.Argument(default, help=_help(f), show_default=default is not ...)
    else:
        names = [flag_name(f)] + ([f.metadata["short"]] if f.metadata.get("short") else [])
        kind, _ = base_type(hint)
        if kind is bool and not f.metadata.get("flag"):
            names = [f"{names[0]}/--no-{names[0][2:]}"] + names[1:]
        number = {int: "INTEGER", float: "FLOAT"}.get(kind)
        info = typer.Option(default, *names, help=_help(f), metavar=number)
    return inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=info,
                             annotation=cli_type(f, hint))


def from_cli(cls: type[Record], values: dict[str, Any]) -> Any:
    """The dataclass from parsed CLI values (text items converted like YAML values)."""
    hints = field_types(cls)
    data = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        value = values[f.name]
        kind, _ = base_type(hints[f.name])
        if f.metadata.get("repeat"):
            if typing.get_origin(kind) is dict:
                value = dict(_key_value(item, flag_name(f)) for item in value)
            else:
                parse = f.metadata.get("parse")
                value = tuple(parse(v) if parse else v for v in value)
        data[f.name] = value
    return cls.from_mapping(data)


def _key_value(text: str, option: str) -> tuple[str, str]:
    from templearn.errors import InputError

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise InputError(f"{option} expects NAME=VALUE, got {text!r}")
    return key, value


def make_command(stage: Stage) -> typer.models.CommandFunctionType:
    """The Typer command of a stage: arguments and options from its dataclasses, `-o DIR`."""
    input_fields = dataclasses.fields(stage.inputs)  # type: ignore[arg-type]
    param_fields = dataclasses.fields(stage.params)
    input_hints, param_hints = field_types(stage.inputs), field_types(stage.params)
    clash = {f.name for f in input_fields} & {f.name for f in param_fields}
    if clash:
        raise TypeError(f"{stage.name}: field names in both Inputs and Params: {clash}")
    parameters = [_parameter(f, input_hints[f.name]) for f in input_fields]
    parameters += [_parameter(f, param_hints[f.name]) for f in param_fields]
    parameters.append(inspect.Parameter(
        "output_dir", inspect.Parameter.KEYWORD_ONLY, annotation=Path,
        default=typer.Option(Path(stage.default_output or stage.name), "--output-dir", "-o",
                             help="Output directory (written as a whole; a rerun replaces it).")))

    def command(**values: Any) -> None:
        from templearn.progress import log

        inputs = from_cli(stage.inputs, {f.name: values[f.name] for f in input_fields})
        params = from_cli(stage.params, {f.name: values[f.name] for f in param_fields})
        summary = run_stage(stage, params, inputs, values["output_dir"])
        log(f"{stage.name}: {summary} -> {values['output_dir']}")

    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    command.__doc__ = stage.summary
    command.__name__ = stage.name
    return command
