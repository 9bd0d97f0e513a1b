"""Progress feedback: a rich bar on a terminal, periodic log lines otherwise (Nextflow logs)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console

T = TypeVar("T")

#: Messages go to stderr so that stdout stays clean for piping.
console = Console(stderr=True, highlight=False)


def log(message: str) -> None:
    """One informational line on stderr."""
    console.print(message, soft_wrap=True)


def track(items: Iterable[T], description: str, total: int | None = None,
          log_every_s: float = 10.0) -> Iterator[T]:
    """Iterate over `items` with progress feedback suited to where stderr goes."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if sys.stderr.isatty():
        from rich.progress import track as rich_track

        yield from rich_track(items, description=description, total=total, console=console)
        return
    start = last = time.monotonic()
    for done, item in enumerate(items, start=1):
        yield item
        now = time.monotonic()
        if now - last >= log_every_s or done == total:
            of = f"/{total}" if total else ""
            log(f"{description} {done}{of} ({now - start:.0f} s)")
            last = now


class Counter:
    """Feedback for loops of unknown length: a live count on a terminal, else log lines."""

    def __init__(self, description: str, log_every_s: float = 10.0) -> None:
        self.description, self.log_every_s = description, log_every_s
        self.start = self.last = time.monotonic()
        self.status = console.status(description) if sys.stderr.isatty() else None
        if self.status is not None:
            self.status.start()

    def update(self, count: int) -> None:
        now = time.monotonic()
        if self.status is not None:
            self.status.update(f"{self.description} {count} ({now - self.start:.0f} s)")
        elif now - self.last >= self.log_every_s:
            log(f"{self.description} {count} ({now - self.start:.0f} s)")
            self.last = now

    def close(self) -> None:
        if self.status is not None:
            self.status.stop()
