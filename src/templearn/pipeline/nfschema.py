"""`nextflow_schema.json` and `assets/schema_input.json` (nf-schema, JSON Schema 2020-12)
made from the experiment Records and the stages' Params classes.

A params file is the same for `templearn run` and `nextflow run main.nf -params-file`, so
its schema is the experiment's: top-level keys are the fields of `Experiment`, and every
stage section is an object whose properties are that stage's Params fields. Each such
object is marked with `record` (the stage or Record it describes); each stage option
carries its command-line form (`cli_flag`, `cli_negation` for booleans, `cli_repeat`),
from which the Nextflow workflow writes the same `templearn <stage>` options
`templearn run` writes (`subworkflows/local/utils_templearn`). The user's tomograms can
also come as a samplesheet (`--input`, CSV), described by `assets/schema_input.json`.

    python -m templearn.pipeline.nfschema [--check] [REPOSITORY]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
import typing
from pathlib import Path
from typing import Any

from templearn.acquisition import paper_grid
from templearn.pipeline.experiment import (
    STAGE_SECTIONS,
    Counts,
    Experiment,
    Target,
    TrainingSamples,
    UserTomogram,
)
from templearn.stages.base import Record, base_type, field_types, flag_name, plain

SCHEMA_FILE, SAMPLESHEET_SCHEMA_FILE = "nextflow_schema.json", "assets/schema_input.json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"

#: Nextflow-only parameters (defaults as in nextflow.config).
NEXTFLOW_PARAMS: dict[str, dict[str, Any]] = {
    "input": {
        "type": "string", "format": "file-path", "exists": True, "mimetype": "text/csv",
        "pattern": r"^\S+\.csv$", "schema": SAMPLESHEET_SCHEMA_FILE,
        "description": "Samplesheet (CSV) of your own tomograms to pick: name, tomogram, "
                       "and optionally targets (STAR) and mask (MRC); added to `tomograms`."},
    "outdir": {
        "type": "string", "format": "directory-path", "default": "results",
        "description": "Where outputs are published, in the layout of a `templearn run` "
                       "directory (`templearn report OUTDIR` reads it)."},
    "publish_dir_mode": {
        "type": "string", "default": "copy",
        "enum": ["symlink", "rellink", "link", "copy", "copyNoFollow", "move"],
        "description": "How outputs are published (Nextflow's publishDir mode)."},
    "container_registry": {
        "type": "string", "default": "",
        "description": "Registry (and namespace) of the templearn images, e.g. ghcr.io/lab; "
                       "empty: images as built locally (templearn-<image>:<version>)."},
}


def _scalar(kind: Any) -> dict[str, Any]:
    """The JSON type of a Python scalar type."""
    if kind is bool:
        return {"type": "boolean"}
    if kind is int:
        return {"type": "integer"}
    if kind is float:
        return {"type": "number"}
    return {"type": "string"}


def value_schema(hint: Any) -> dict[str, Any]:
    """The JSON Schema of a field's type (None allowed by leaving the key out)."""
    kind, _ = base_type(hint)
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is tuple:  # a list, or its text form '1,2' (as on the command line)
        schema: dict[str, Any] = {"type": ["array", "string"], "items": _scalar(args[0])}
        if args[-1] is not Ellipsis:
            schema.update(minItems=len(args), maxItems=len(args))
        return schema
    if origin is dict:
        return {"type": "object", "additionalProperties": _scalar(args[1])}
    return _scalar(kind)


def field_default(f: dataclasses.Field) -> Any:
    """A field's default as plain data (None when it has none)."""
    if f.default_factory is not dataclasses.MISSING:
        return plain(f.default_factory())
    return None if f.default is dataclasses.MISSING else plain(f.default)


def field_schema(f: dataclasses.Field, hint: Any) -> dict[str, Any]:
    """A field's schema: type, description, default and its checks."""
    meta = f.metadata
    schema = {**value_schema(hint), "description": meta.get("help", "")}
    if field_default(f) is not None:
        schema["default"] = field_default(f)
    checked = schema.get("items", schema)  # a list's checks apply to each item
    if meta.get("choices"):
        checked["enum"] = list(meta["choices"])
    if meta.get("minimum") is not None:
        checked["minimum"] = meta["minimum"]
    if meta.get("positive"):
        checked["exclusiveMinimum"] = 0
    return schema


def record_schema(record: str, cls: type[Record], description: str,
                  nested: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """An object with one property per field of `cls` (`nested` replaces some)."""
    hints = field_types(cls)
    properties = {f.name: (nested or {}).get(f.name) or field_schema(f, hints[f.name])
                  for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return {"type": "object", "record": record, "description": description,
            "additionalProperties": False, "properties": properties}


def stage_schema(stage: str) -> dict[str, Any]:
    """The options of `templearn <stage>` as a params-file section."""
    spec = importlib.import_module(f"templearn.stages.{stage}").STAGE
    schema = record_schema(stage, spec.params, f"Options of `templearn {stage}`.")
    hints = field_types(spec.params)
    for f in dataclasses.fields(spec.params):
        option = schema["properties"][f.name]
        option["cli_flag"] = flag_name(f)
        if base_type(hints[f.name])[0] is bool and not f.metadata.get("flag"):
            option["cli_negation"] = "--no-" + flag_name(f)[2:]
        if f.metadata.get("repeat"):
            option["cli_repeat"] = True
        if f.name == "grid" and stage == "randomize":
            option["table_rows"] = {mode: len(paper_grid(mode)) for mode in option["enum"]}
    return schema


def _summary(cls: type) -> str:
    return (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")


def tomogram_schema() -> dict[str, Any]:
    """One of the user's tomograms (a `tomograms` item, a samplesheet row)."""
    schema = record_schema("tomogram", UserTomogram, _summary(UserTomogram))
    for name in ("tomogram", "targets", "mask"):
        schema["properties"][name].update(format="file-path", exists=True)
    schema["required"] = [f.name for f in dataclasses.fields(UserTomogram)
                          if f.default is dataclasses.MISSING]
    return schema


def experiment_properties() -> dict[str, dict[str, Any]]:
    """Every top-level key of a params file."""
    target = record_schema("target", Target, _summary(Target), {
        stage: stage_schema(stage) for stage in ("nma", "deform", "pseudoatoms")})
    target["properties"]["map"].update(format="file-path", exists=True)
    target["oneOf"] = [{"required": ["structure"]}, {"required": ["map"]}]
    sections = {
        "targets": {"type": "object", "additionalProperties": target, "minProperties": 1},
        "samples": record_schema("samples", Counts, ""),
        "acquisitions": {"type": "object", "additionalProperties": False, "properties": {
            kind: stage_schema("randomize") for kind in ("train", "test")}},
        "training_samples": record_schema("training_samples", TrainingSamples, "",
                                          {"tetris": stage_schema("tetris")}),
        "tomograms": {"type": "array", "items": tomogram_schema()},
        **{stage: stage_schema(stage) for stage in STAGE_SECTIONS},
    }
    properties = record_schema("experiment", Experiment, "", sections)["properties"]
    for f in dataclasses.fields(Experiment):
        if f.name in sections:
            properties[f.name].update(description=f.metadata["help"], default=field_default(f))
    return properties


def nextflow_schema() -> dict[str, Any]:
    """The pipeline's parameter schema: Nextflow options, the experiment, stage options."""
    experiment = experiment_properties()
    stages = {k: v for k, v in experiment.items() if k in STAGE_SECTIONS}
    groups = {
        "input_output_options": ("Input/output options", "Where the user's tomograms come "
                                 "from, where outputs go, where images come from.",
                                 NEXTFLOW_PARAMS),
        "experiment": ("Experiment", _summary(Experiment) + " Top-level keys of a params "
                       "file (the same file `templearn run` reads).",
                       {k: v for k, v in experiment.items() if k not in stages}),
        "stage_options": ("Stage options", "Options of each `templearn <stage>` command "
                          "(names as in `templearn <stage> --help`, with _ for -).", stages),
    }
    return {
        "$schema": DIALECT,
        "$id": SCHEMA_FILE,
        "title": "templearn pipeline parameters",
        "description": "Particle picking in cryo-ET tomograms learned from atomic templates.",
        "type": "object",
        "$defs": {key: {"title": title, "type": "object", "description": text,
                        "properties": props}
                  for key, (title, text, props) in groups.items()},
        "allOf": [{"$ref": f"#/$defs/{key}"} for key in groups],
    }


def samplesheet_schema() -> dict[str, Any]:
    """`--input`: one row per tomogram, the name becoming the task's meta.id."""
    row = tomogram_schema()
    del row["record"]
    row["properties"]["name"]["meta"] = ["id"]
    return {"$schema": DIALECT, "$id": SAMPLESHEET_SCHEMA_FILE,
            "title": "templearn samplesheet",
            "description": "Your own tomograms to pick (and evaluate, given targets).",
            "type": "array", "items": row}


def rendered() -> dict[str, str]:
    """File (relative to the repository) → its text."""
    return {name: json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
            for name, schema in ((SCHEMA_FILE, nextflow_schema()),
                                 (SAMPLESHEET_SCHEMA_FILE, samplesheet_schema()))}


def main(argv: list[str] | None = None) -> int:
    """Write the schemas into the repository, or with --check report stale ones (exit 1)."""
    parser = argparse.ArgumentParser(prog="python -m templearn.pipeline.nfschema",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("repository", nargs="?", type=Path, default=Path("."))
    parser.add_argument("--check", action="store_true",
                        help="Only compare with the files; exit 1 if they differ.")
    args = parser.parse_args(argv)
    stale = []
    for name, text in rendered().items():
        path = args.repository / name
        if path.is_file() and path.read_text() == text:
            continue
        stale.append(name)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    verb = "out of date" if args.check else "written"
    for name in stale:
        print(f"{name}: {verb}", file=sys.stderr)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
