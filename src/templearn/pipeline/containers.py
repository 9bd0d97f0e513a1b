"""The stages' container images, and a task's command line run in one (as Nextflow does).

The images are built by `bin/build-images` from the recipes under `containers/` (each with
its own `containers/<image>/requirements.lock`) and tagged `templearn-<image>:<version>`.
`IMAGE_OF_STAGE` is the one stage → image table (the runner, the Nextflow modules and the
tests use it); `image_of` adds the backend and GPU choices.
`ContainerLauncher` runs a task's `templearn <stage> ...` command line unchanged in its
image: the run directory and every input location bind-mounted at the same paths, as the
calling user, with the run directory as the working directory.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from templearn.errors import InputError
from templearn.jaxcache import cache_dir
from templearn.pipeline.graph import Task
from templearn.pipeline.runner import Launcher, LocalLauncher
from templearn.provenance import templearn_version

ENGINES = ("podman", "docker")
IMAGES = ("structure", "jax", "unet", "unet-cuda", "parakeet", "imod")

#: The image of each command, with the default backends on CPU.
IMAGE_OF_STAGE = {
    "nma": "structure", "deform": "structure", "pseudoatoms": "structure",
    "density": "jax", "tetris": "jax", "randomize": "jax", "simulate": "jax",
    "reconstruct": "jax", "labels": "jax", "pick": "jax", "match": "jax", "evaluate": "jax",
    "report": "jax",
    "train": "unet", "segment": "unet",
}
#: (stage, its --backend) → the image that holds that backend.
BACKEND_IMAGES = {("simulate", "parakeet"): "parakeet", ("reconstruct", "imod"): "imod"}
#: An image → its build for NVIDIA GPUs.
GPU_IMAGES = {"unet": "unet-cuda"}
#: Images whose tasks are given the GPUs when GPUs are asked for.
CUDA_IMAGES = ("unet-cuda", "parakeet")
#: The engines' options that hand a container every GPU (podman through CDI).
GPU_OPTIONS = {"docker": ("--gpus", "all"), "podman": ("--device", "nvidia.com/gpu=all")}
#: Host settings of the numerical libraries, passed on so that a task computes alike in and
#: out of a container.
PASSED_ENVIRONMENT = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "XLA_FLAGS")


def image_of(stage: str, backend: str | None = None, gpu: bool = False) -> str:
    """The image a `templearn <stage>` task runs in, given its --backend and GPU use."""
    if stage not in IMAGE_OF_STAGE:
        raise InputError(f"no container image for `templearn {stage}`")
    image = BACKEND_IMAGES.get((stage, backend), IMAGE_OF_STAGE[stage])
    return GPU_IMAGES.get(image, image) if gpu else image


def image_tag(image: str, registry: str = "", version: str | None = None) -> str:
    """`[REGISTRY/]templearn-<image>:<version>`, the tag bin/build-images gives it."""
    prefix = f"{registry.rstrip('/')}/" if registry else ""
    return f"{prefix}templearn-{image}:{version or templearn_version()}"


def input_locations(argv: list[str], run_dir: Path) -> set[Path]:
    """The folders outside `run_dir` holding the files and folders a command line names
    (whole words, or parts of NAME=PATH and A,B words), symbolic links followed too."""
    found: set[Path] = set()
    for word in argv:
        for part in re.split(r"[=,]", word):
            if not part.startswith("/") or not Path(part).exists():
                continue
            for path in {Path(part), Path(part).resolve()}:
                location = path if path.is_dir() else path.parent
                if not location.is_relative_to(run_dir):
                    found.add(location)
    return found


def outermost(paths: set[Path]) -> list[Path]:
    """`paths` without those inside another one, sorted."""
    kept: list[Path] = []
    for path in sorted(paths):
        if not any(path.is_relative_to(outer) for outer in kept):
            kept.append(path)
    return kept


@dataclass
class ContainerLauncher:
    """Runs each task in its stage's image with `podman run` or `docker run`.

    Every input location seen so far stays mounted (read-only) for later tasks: files an
    earlier stage recorded by path (structure files in maps.star) are read again later.
    """

    engine: str
    registry: str = ""
    gpu: bool = False
    seen: set[Path] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise InputError(f"--containers must be one of {', '.join(ENGINES)}, "
                             f"not {self.engine!r}")

    def image(self, task: Task) -> str:
        return image_of(task.stage, getattr(task.params, "backend", None), self.gpu)

    def check(self, tasks: list[Task]) -> None:
        """InputError unless the engine is installed and (for local images) every image the
        tasks need is there."""
        if shutil.which(self.engine) is None:
            raise InputError(f"--containers {self.engine}: no {self.engine!r} on PATH")
        if self.registry:
            return  # the engine pulls what it lacks
        for image in sorted({self.image(t) for t in tasks}):
            tag = image_tag(image)
            found = subprocess.run([self.engine, "image", "inspect", tag], check=False,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if found.returncode != 0:
                raise InputError(f"no image {tag} for --containers {self.engine}; build it "
                                 f"with: bin/build-images --engine {self.engine} {image}")

    def command(self, task: Task, argv: list[str], run_dir: Path) -> list[str]:
        """`ENGINE run ... IMAGE templearn <stage> ...` for the task's command line."""
        self.seen |= input_locations(argv, run_dir)
        image = self.image(task)
        options = ["--rm", "--user", f"{os.getuid()}:{os.getgid()}"]
        if self.engine == "podman" and os.getuid() != 0:
            options.append("--userns=keep-id")  # rootless: the caller's id inside, too
        options += ["--workdir", str(run_dir), "--env", "HOME=/tmp", "--env", "TERM=dumb",
                    "--volume", f"{run_dir}:{run_dir}"]
        for location in outermost(self.seen):
            options += ["--volume", f"{location}:{location}:ro"]
        cache = cache_dir()
        if cache is not None:
            cache.mkdir(parents=True, exist_ok=True)
            options += ["--volume", f"{cache}:{cache}"]
        options += ["--env", f"TEMPLEARN_JAX_CACHE={cache or ''}"]
        for name in PASSED_ENVIRONMENT:
            if name in os.environ:
                options += ["--env", name]
        if self.gpu and image in CUDA_IMAGES:
            options += GPU_OPTIONS[self.engine]
        return [self.engine, "run", *options, image_tag(image, self.registry), *argv]


def launcher_for(engine: str | None, registry: str = "", gpu: bool = False) -> Launcher:
    """The launcher of `templearn run --containers ENGINE [--registry] [--gpu]`."""
    if engine is None:
        if registry or gpu:
            raise InputError("--registry and --gpu need --containers podman|docker")
        return LocalLauncher()
    return ContainerLauncher(engine, registry, gpu)
