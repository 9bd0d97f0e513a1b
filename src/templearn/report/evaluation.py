"""The report's evaluation section: the trained picker's precision, recall and F1 per
tomogram and class, template matching (the baseline) next to it where it ran, and the
precision-recall curves of both."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from templearn.report.compare import (
    TL,
    TM,
    Evaluation,
    means,
    read_evaluations,
    side_by_side,
    tomogram_labels,
)
from templearn.report.markup import Raw, esc, img, table
from templearn.report.run import RunIndex

#: Builds a part of the page, or notes why it could not ('' then).
Guard = Callable[[str, Callable[[], str]], str]


def evaluation_section(index: RunIndex, notes: list[str], guard: Guard) -> str:
    """The section's HTML ('' when nothing was evaluated)."""
    found = read_evaluations(index, notes)
    if not found:
        return ""
    learned = [e for e in found if not e.matching]
    first = found[0].metrics
    several = len(learned) > 1
    out = [f"<p>Picks matched one-to-one to true particles of the same class within "
           f"{esc(first.get('distance', '?'))} voxels; best F1 and F1 at P = R over the "
           f"{esc(first.get('sweep', ''))} threshold"
           + ("; mean: unweighted over the tomograms (F1 at P = R over those where the "
              "curves cross)" if several else "") + ".</p>"]
    rows = learned_rows(index, learned)
    if rows:
        out.append(table(["tomogram", "class", "F1 (all picks)", "precision", "recall",
                          "picks / true", "best F1", "F1 at P = R"], rows, {2, 3, 4, 5, 6, 7}))
    out.append(comparison(index, found))
    out.append(curves(index, found, guard, matched=len(learned) < len(found)))
    return "".join(out)


def learned_rows(index: RunIndex, evaluations: list[Evaluation]) -> list[list[Any]]:
    """One row per tomogram and class, and per class the mean over several tomograms."""
    rows, per_class = [], {}
    for label, e in zip(tomogram_labels(index, evaluations), evaluations, strict=True):
        for name, c in e.classes().items():
            rows.append([label, name, c.get("f1"), c.get("precision"), c.get("recall"),
                         f"{c.get('n_picks')} / {c.get('n_true')}", c.get("best_f1"),
                         c.get("f1_at_p_eq_r")])
            per_class.setdefault(name, []).append(c)
    if len(evaluations) > 1:
        for name, entries in per_class.items():
            rows.append([Raw("<b>mean</b>"), name, *(_mean(entries, k) for k in
                         ("f1", "precision", "recall")),
                         f"{sum(e.get('n_picks', 0) for e in entries)} / "
                         f"{sum(e.get('n_true', 0) for e in entries)}",
                         _mean(entries, "best_f1"), _mean(entries, "f1_at_p_eq_r")])
    return rows


def comparison(index: RunIndex, evaluations: list[Evaluation]) -> str:
    """The trained picker next to template matching, where template matching ran."""
    rows = side_by_side(index, evaluations)
    if not rows:
        return ""
    cells = []
    for row, label in [*((r, r.tomogram) for r in rows),
                       *((r, Raw("<b>mean</b>")) for r in means(rows))]:
        pair = (row.learned or {}, row.matched or {})
        cells.append([label, row.name,
                      *(m.get(k) for k in ("f1", "precision", "recall") for m in pair),
                      *(f"{m['n_picks']} / {m['n_true']}" if m else None for m in pair),
                      *(m.get("f1_at_p_eq_r") for m in pair)])
    header = [f"{what} {who}" for what in ("F1 (all picks)", "precision", "recall",
                                           "picks / true", "F1 at P = R")
              for who in ("TL", "TM")]
    return (f"<h3>{esc(TL)} and {esc(TM)}</h3>\n<p>The baseline: template matching "
            f"(<code>templearn match</code>) with the first target's map, its peaks above "
            f"an automatic threshold, evaluated against the same targets as the trained "
            f"picker's picks (F1 at P = R over its score).</p>\n"
            + table(["tomogram", "class", *header], cells, set(range(2, 12))))


def curves(index: RunIndex, evaluations: list[Evaluation], guard: Guard,
           matched: bool) -> str:
    """Precision-recall of every evaluation on one plot, and each one's own figure."""
    from templearn.report.plots import pr_overview_png

    labels = [f"{label}{' (TM)' if e.matching else ''}"
              for label, e in zip(tomogram_labels(index, evaluations), evaluations,
                                  strict=True)]
    lines = [(f"{label}: {name}", c["sweep"], c.get("f1_at_p_eq_r"))
             for label, e in zip(labels, evaluations, strict=True)
             for name, c in e.classes().items() if isinstance(c.get("sweep"), dict)]
    out = []
    if lines:
        out.append(img(pr_overview_png(lines), "precision-recall curves",
                       "Precision-recall over the threshold sweep, all evaluated tomograms"
                       + (" (TM: template matching, over its score)" if matched else "")
                       + "."))
    more = [(label, e.directory.file("pr_curve.png"))
            for label, e in zip(labels, evaluations, strict=True)]
    more = [(label, p) for label, p in more if p is not None]
    if more:
        out.append("<details><summary>precision, recall and F1 against the threshold, "
                   "per tomogram</summary>"
                   + "".join(guard(f"pr_curve {label}", lambda p=p, label=label: img(
                       p.read_bytes(), f"PR {label}", label)) for label, p in more)
                   + "</details>\n")
    return "".join(out)


def _mean(entries: list[dict], key: str) -> float | None:
    values = [e[key] for e in entries if e.get(key) is not None]
    return float(np.mean(values)) if values else None
