"""The one exception type for bad user input, reported by the CLI as a one-line error."""

from __future__ import annotations

from os import PathLike


class InputError(Exception):
    """Bad user input: names the offending file (if any) and what is wrong with it.

    The CLI turns it into one line on stderr and exit status 2.
    """

    def __init__(self, message: str, path: str | PathLike[str] | None = None) -> None:
        self.path = None if path is None else str(path)
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)
