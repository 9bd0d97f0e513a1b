"""Running a task graph on one machine: parallel tasks, resume, a log per task.

Each task runs as its own `templearn <stage>` process (the command a Nextflow process
runs), with its output in the run directory. A task is skipped when its output folder
records the same fingerprint (stage, parameters, input contents) it would be made with,
so a rerun after a kill, or after a change, redoes exactly what is missing or affected.
`tasks.json` records every task's command, status and time. A `Launcher` decides how the
command line is started: here, or in a container (`templearn.pipeline.containers`).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from templearn.files import atomic_write_text
from templearn.pipeline.graph import Task
from templearn.progress import log
from templearn.stages.base import fingerprint, recorded_fingerprint

TASKS_FILE = "tasks.json"


@dataclass
class TaskRecord:
    """What happened to one task (one entry of tasks.json)."""

    name: str
    stage: str
    command: list[str]
    out: str
    status: str  # done, skipped (unchanged), failed, not run
    seconds: float
    log: str


class TaskFailed(Exception):
    """A task's process failed; carries its exit status and the log's last line."""

    def __init__(self, record: TaskRecord, status: int, last_line: str) -> None:
        self.status = status
        super().__init__(f"task {record.name} ({record.stage}) failed with exit status "
                         f"{status}: {last_line} (log: {record.log})")


class Launcher(Protocol):
    """How a task's `templearn <stage> ...` command line is started."""

    def check(self, tasks: list[Task]) -> None:
        """InputError if the tasks cannot be started this way (before any starts)."""

    def command(self, task: Task, argv: list[str], run_dir: Path) -> list[str]:
        """The process to start for `argv`, with the run directory as working directory."""


class LocalLauncher:
    """Each task as a child process of this Python environment."""

    def check(self, tasks: list[Task]) -> None:
        """Nothing to check: templearn is installed here."""

    def command(self, task: Task, argv: list[str], run_dir: Path) -> list[str]:
        return [sys.executable, "-m", "templearn", *argv[1:]]


def log_path(run_dir: Path, task: Task) -> Path:
    return run_dir / "logs" / f"{task.name.replace('/', '__')}.log"


def is_current(task: Task, run_dir: Path) -> bool:
    """Whether the task's output folder was made with exactly these parameters and inputs."""
    key = fingerprint(task.stage, task.params.record(), task.make_inputs().record())
    return recorded_fingerprint(run_dir / task.name, task.stage) == key


def dry_run(tasks: list[Task], run_dir: Path) -> list[str]:
    """One line per task: name, dependencies, and its command where inputs are known."""
    lines = []
    for task in tasks:
        try:
            command = " ".join(task.argv(run_dir))
        except (OSError, ValueError):
            command = f"templearn {task.stage} ... (inputs known once its dependencies ran)"
        after = f"  [after {', '.join(task.deps)}]" if task.deps else ""
        lines.append(f"{task.name}{after}\n    {command}")
    return lines


def run_graph(tasks: list[Task], run_dir: Path, jobs: int,
              launcher: Launcher | None = None) -> list[TaskRecord]:
    """Run every task not already current, up to `jobs` at a time, dependencies first, each
    started by `launcher` (default: here).

    On a failure no new task starts; running ones finish; TaskFailed is raised.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "logs").mkdir(exist_ok=True)
    records = {t.name: TaskRecord(t.name, t.stage, [], t.name, "not run", 0.0,
                                  str(log_path(run_dir, t).relative_to(run_dir)))
               for t in tasks}
    finished: set[str] = set()
    waiting = list(tasks)
    running: dict[Future, Task] = {}
    failure: TaskFailed | None = None
    total = len(tasks)
    launcher = launcher or LocalLauncher()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        while waiting or running:
            ready = [t for t in waiting if set(t.deps) <= finished] if failure is None else []
            for task in ready:
                if len(running) >= jobs:
                    break
                waiting.remove(task)
                record = records[task.name]
                record.command = task.argv(run_dir)
                if is_current(task, run_dir):
                    record.status = "skipped"
                    finished.add(task.name)
                    log(f"[{len(finished)}/{total}] {task.name}: unchanged, skipped")
                    continue
                launch = launcher.command(task, record.command, run_dir)
                running[pool.submit(_execute, record, run_dir, launch)] = task
            if not running:
                if failure is not None or not waiting:
                    break
                continue  # tasks became ready through skips
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                task = running.pop(future)
                try:
                    future.result()
                    finished.add(task.name)
                    record = records[task.name]
                    log(f"[{len(finished)}/{total}] {task.name}: done in "
                        f"{record.seconds:.1f} s")
                except TaskFailed as exc:
                    failure = failure or exc
                    log(f"{task.name}: FAILED ({exc})")
            _write_records(run_dir, records)
    _write_records(run_dir, records)
    if failure is not None:
        raise failure
    return list(records.values())


def _execute(record: TaskRecord, run_dir: Path, launch: list[str]) -> None:
    """Run one task's process, its output into the task's log (headed by the command)."""
    path = run_dir / record.log
    start = time.monotonic()
    with path.open("w") as handle:
        handle.write("$ " + shlex.join(launch) + "\n")
        handle.flush()
        done = subprocess.run(launch, cwd=run_dir, stdout=handle, stderr=subprocess.STDOUT,
                              env={**os.environ, "TERM": "dumb"}, check=False)
    record.seconds = round(time.monotonic() - start, 1)
    if done.returncode != 0:
        record.status = "failed"
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
        raise TaskFailed(record, done.returncode, lines[-1] if lines else "no output")
    record.status = "done"


def _write_records(run_dir: Path, records: dict[str, TaskRecord]) -> None:
    atomic_write_text(run_dir / TASKS_FILE,
                      json.dumps([asdict(r) for r in records.values()], indent=1) + "\n")
