"""The one exception type for bad user input, reported by the CLI as a one-line error."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from os import PathLike


class InputError(Exception):
    """Bad user input: names the offending file (if any) and what is wrong with it.

    The CLI turns it into one line on stderr and exit status 2.
    """

    def __init__(self, message: str, path: str | PathLike[str] | None = None) -> None:
        self.path = None if path is None else str(path)
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


@contextlib.contextmanager
def about(path: str | PathLike[str]) -> Iterator[None]:
    """Attribute path-less InputErrors raised inside the block to the input file `path`."""
    try:
        yield
    except InputError as exc:
        if exc.path is not None:
            raise
        raise InputError(exc.message, path) from None


class ExternalToolError(Exception):
    """An external program (Parakeet/MULTEM, IMOD) failed; names its log.

    The CLI turns it into one line on stderr and exit status 3, so that an orchestrator
    can retry it, unlike bad input.
    """

    def __init__(self, message: str, log: str | PathLike[str] | None = None) -> None:
        self.log = None if log is None else str(log)
        super().__init__(f"{message} (log: {self.log})" if self.log else message)
