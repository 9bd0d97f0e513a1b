"""Parakeet's steps in a child process: `python -m templearn.simulate.parakeet_worker DIR STEP...`.

The backend (`templearn.simulate.multislice`) runs the unfinished steps of Parakeet's
pipeline (sample, exit wave, optics, image, export) in one child process, so that a
crash inside MULTEM cannot take templearn down and Parakeet's slow imports are paid
once. Every step reads and writes fixed file names in DIR and renames its output into
place only when it succeeded, so a killed run resumes at the first unfinished step; the
global numpy random state Parakeet draws its noise from is seeded before each step.
Parakeet's own log and the traceback of a failed step go to stdout (the backend keeps it
in DIR/parakeet.log); one progress line per step and per image goes to stderr; the
seconds per step are added to DIR/step_seconds.json. The worker runs with DIR as its
current directory, so files that MULTEM writes there (`fftwf_2d.wisdom`) stay in it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from templearn.files import atomic_path

CONFIG = "config.yaml"
SAMPLE, EXIT_WAVE, OPTICS, IMAGE = "sample.h5", "exit_wave.h5", "optics.h5", "image.h5"
IMAGES, HEADER = "images.npy", "header.json"
TIMINGS = "step_seconds.json"
#: Step name -> the file it produces, in pipeline order.
STEPS = {"sample": SAMPLE, "exit_wave": EXIT_WAVE, "optics": OPTICS, "image": IMAGE,
         "export": IMAGES}


class _ImageProgress(logging.Filter):
    """Pass only Parakeet's "Simulating image N" records, rewritten as progress lines."""

    def __init__(self, step: str, n_images: int) -> None:
        super().__init__()
        self.step, self.n_images = step, n_images

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.startswith("Simulating image"):
            return False
        record.msg, record.args = (f"simulate (parakeet {self.step}): image "
                                   f"{message.split()[-1]}/{self.n_images}"), ()
        return True


def _configure_logging(step: str, n_images: int) -> None:
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    full = logging.StreamHandler(sys.stdout)
    full.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    progress = logging.StreamHandler(sys.stderr)
    progress.addFilter(_ImageProgress(step, n_images))
    root.handlers[:] = [full, progress]


def _device(requested: str) -> str:
    """'gpu' or 'cpu'; 'auto' picks the GPU when MULTEM was built for one and sees it."""
    if requested != "auto":
        return requested
    import multem

    return "gpu" if multem.is_gpu_available() else "cpu"


def _header_records(header: np.ndarray) -> list[dict]:
    """Parakeet's per-image metadata (a structured array) as JSON-ready dicts."""
    records = []
    for row in header:
        record = {}
        for name in header.dtype.names:
            value = row[name]
            record[name] = value.decode() if isinstance(value, bytes) else value.item()
        records.append(record)
    return records


def run_step(step: str, directory: Path, device: str) -> None:
    """Run one step; its output appears in `directory` only if it completes."""
    import parakeet.io
    import parakeet.sample
    import parakeet.simulate

    config = str(directory / CONFIG)
    if step == "sample":
        with atomic_path(directory / SAMPLE) as tmp:
            parakeet.sample.new(config, str(tmp))
            parakeet.sample.add_molecules(config, str(tmp))
            sample = parakeet.sample.load(str(tmp))
            (directory / "atoms.txt").write_text(f"{sample.number_of_atoms}\n")
            sample.close()
    elif step == "exit_wave":
        with atomic_path(directory / EXIT_WAVE) as tmp:
            parakeet.simulate.exit_wave(config, str(directory / SAMPLE), str(tmp),
                                        device=_device(device))
    elif step == "optics":
        with atomic_path(directory / OPTICS) as tmp:
            parakeet.simulate.optics(config, str(directory / EXIT_WAVE), str(tmp),
                                     device=_device(device))
    elif step == "image":
        with atomic_path(directory / IMAGE) as tmp:
            parakeet.simulate.image(config, str(directory / OPTICS), str(tmp))
    elif step == "export":
        reader = parakeet.io.open(str(directory / IMAGE))
        images = np.asarray(reader.data, dtype=np.float32)
        records = _header_records(np.asarray(reader.header))
        with atomic_path(directory / HEADER) as tmp:
            tmp.write_text(json.dumps(records))
        with atomic_path(directory / IMAGES) as tmp, open(tmp, "wb") as stream:
            np.save(stream, images)
    else:
        raise ValueError(f"unknown step {step!r}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("steps", nargs="+", choices=tuple(STEPS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", type=int, default=0, help="number of images (progress)")
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    args = parser.parse_args(argv)
    args.directory = args.directory.resolve()
    os.chdir(args.directory)
    timings_path = args.directory / TIMINGS
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    for step in args.steps:
        _configure_logging(step, args.images)
        print(f"simulate (parakeet): {step}", file=sys.stderr, flush=True)
        # Parakeet draws its noise from numpy's legacy global state.
        np.random.seed((args.seed * len(STEPS) + list(STEPS).index(step)) % 2**32)  # noqa: NPY002
        start = time.perf_counter()
        try:
            run_step(step, args.directory, args.device)
        except Exception:  # the traceback belongs in the log (stdout), beside Parakeet's
            traceback.print_exc(file=sys.stdout)
            sys.stdout.flush()
            print(f"simulate (parakeet): {step} failed", file=sys.stderr, flush=True)
            sys.exit(1)
        timings[step] = round(time.perf_counter() - start, 2)
        with atomic_path(timings_path) as tmp:
            tmp.write_text(json.dumps(timings))


if __name__ == "__main__":
    main()
