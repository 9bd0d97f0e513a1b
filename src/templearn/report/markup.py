"""HTML pieces of the run report: escaped text, numbers, tables and embedded figures."""

from __future__ import annotations

import base64
import html
from typing import Any

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def esc(value: Any) -> str:
    return html.escape(str(value))


def fmt(value: Any, digits: int = 3) -> str:
    """A number for a table cell ('n/a' for None)."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return esc(value)


def table(header: list[str], rows: list[list[Any]],
          numeric: frozenset[int] | set[int] = frozenset()) -> str:
    """An HTML table; cells are escaped unless already wrapped by `Raw`."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(
            f"<td{' class=num' if i in numeric else ''}>"
            f"{cell if isinstance(cell, Raw) else fmt(cell)}</td>"
            for i, cell in enumerate(row)) + "</tr>\n"
        for row in rows)
    return f"<table><tr>{head}</tr>\n{body}</table>\n"


class Raw(str):
    """HTML that must not be escaped again."""


def img(png: bytes, alt: str, caption: str = "") -> str:
    """A figure with the PNG embedded as base64."""
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError(f"{alt}: not a PNG image")
    data = base64.b64encode(png).decode("ascii")
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="data:image/png;base64,{data}" alt="{esc(alt)}">{cap}</figure>\n'
