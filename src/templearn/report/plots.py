"""Every figure templearn draws (PNG, written atomically): sample slices, training curves,
precision-recall curves, and the run report's panels. matplotlib is imported lazily."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from templearn.files import atomic_path


def pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_slices_png(path: str | os.PathLike[str], density: np.ndarray,
                     instances: np.ndarray) -> None:
    """Central XY, XZ and YZ slices of `density`, molecule boundaries outlined."""
    plt = pyplot()

    z, y, x = (n // 2 for n in density.shape)
    views = [(f"XY (z = {z})", density[z], instances[z]),
             (f"XZ (y = {y})", density[:, y, :], instances[:, y, :]),
             (f"YZ (x = {x})", density[:, :, x], instances[:, :, x])]
    fig, axes = plt.subplots(1, 3, figsize=(15, 5), gridspec_kw={
        "width_ratios": [density.shape[2], density.shape[2], density.shape[1]]})
    for ax, (title, image, labels) in zip(axes, views, strict=True):
        ax.imshow(image, cmap="gray_r", origin="lower", interpolation="nearest")
        edges = np.zeros(labels.shape, dtype=bool)
        edges[1:, :] |= labels[1:, :] != labels[:-1, :]
        edges[:, 1:] |= labels[:, 1:] != labels[:, :-1]
        ax.contour(edges, levels=[0.5], colors="tab:orange", linewidths=0.4, origin="lower")
        ax.set_title(title)
        ax.set_axis_off()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def plot_training_curves(path: str | os.PathLike[str], rows: list[dict[str, float]],
                         class_names: list[str]) -> None:
    """Training and validation loss, and validation voxel F1 per class, by epoch (PNG)."""
    plt = pyplot()

    epochs = [r["epoch"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [r["train_loss"] for r in rows], label="training")
    left.plot(epochs, [r["val_loss"] for r in rows], label="validation")
    left.set(xlabel="epoch", ylabel="loss")
    left.legend()
    for name in class_names[1:]:
        right.plot(epochs, [r[f"val_f1_{name}"] for r in rows], label=f"{name} (voxel F1)")
    right.set(xlabel="epoch", ylabel="F1", ylim=(0, 1))
    right.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)


def plot_pr_curves(metrics: dict, path: str | os.PathLike[str]) -> None:
    """PR curve and P/R/F1 against the threshold, one line per class (PNG, atomic)."""
    plt = pyplot()

    fig, (ax_pr, ax_t) = plt.subplots(1, 2, figsize=(10, 4.2))
    for name, entry in metrics["classes"].items():
        sweep = entry["sweep"]
        line, = ax_pr.plot(sweep["recall"], sweep["precision"], marker=".", label=name)
        if entry["f1_at_p_eq_r"] is not None:
            ax_pr.plot([entry["f1_at_p_eq_r"]], [entry["f1_at_p_eq_r"]], "o", mfc="none",
                       color=line.get_color(), ms=10)
        ax_t.plot(sweep["thresholds"], sweep["f1"], color=line.get_color(),
                  label=f"{name} F1 (best {entry['best_f1']:.2f})")
        ax_t.plot(sweep["thresholds"], sweep["precision"], "--", color=line.get_color(),
                  alpha=0.6)
        ax_t.plot(sweep["thresholds"], sweep["recall"], ":", color=line.get_color(), alpha=0.6)
    ax_pr.plot([0, 1], [0, 1], color="0.8", lw=0.8)
    ax_pr.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02),
              title=f"PR (match ≤ {metrics['distance']:g} voxels; o: P = R)")
    ax_t.set(xlabel=f"{metrics['sweep']} threshold", ylabel="F1 (—), precision (--), recall (:)",
             ylim=(0, 1.02))
    ax_pr.legend(fontsize=8)
    ax_t.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


# --- Run report panels: array → PNG bytes (embedded in report.html) -----------------------

#: Colours of classes 1, 2, ... in label overlays and pick markers (tab10 without grey).
CLASS_COLOURS = ("tab:orange", "tab:blue", "tab:green", "tab:red", "tab:purple",
                 "tab:brown", "tab:pink", "tab:olive", "tab:cyan")


def class_colour(k: int) -> str:
    """The colour of class id `k` (≥ 1)."""
    return CLASS_COLOURS[(k - 1) % len(CLASS_COLOURS)]


def figure_png(fig: Any, dpi: int = 90) -> bytes:
    """A matplotlib figure as PNG bytes; the figure is closed."""
    import io

    plt = pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def _contrast(image: np.ndarray) -> tuple[float, float]:
    """Display range: 1st to 99th percentile (robust to hot pixels)."""
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(finite, [1, 99]))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def _panel_size(shape: tuple[int, ...], width: float = 5.5) -> tuple[float, float]:
    """Figure size (inches) of one image panel of `shape` (rows, columns)."""
    rows, cols = shape[:2]
    return width, max(1.5, min(3 * width, width * rows / max(cols, 1))) + 0.6


def image_png(image: np.ndarray, title: str, cmap: str = "gray") -> bytes:
    """A 2D image (y up), percentile contrast, with a title."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=_panel_size(image.shape))
    lo, hi = _contrast(image)
    ax.imshow(image, cmap=cmap, vmin=lo, vmax=hi, origin="lower", interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()
    fig.tight_layout()
    return figure_png(fig)


def labels_overlay_png(image: np.ndarray, labels: np.ndarray, class_names: dict[int, str],
                       title: str) -> bytes:
    """A tomogram slice beside the same slice with its label map in colour (outlined)."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    plt = pyplot()
    width, height = _panel_size(image.shape)
    fig, (left, right) = plt.subplots(1, 2, figsize=(2 * width, height))
    lo, hi = _contrast(image)
    present = [int(k) for k in np.unique(labels) if k > 0]
    top = max(present, default=1)
    colours = ListedColormap(["none", *(class_colour(k) for k in range(1, top + 1))])
    for ax in (left, right):
        ax.imshow(image, cmap="gray", vmin=lo, vmax=hi, origin="lower", interpolation="nearest")
        ax.set_axis_off()
    overlay = np.ma.masked_equal(labels.astype(int), 0)
    right.imshow(overlay, cmap=colours, vmin=0, vmax=top, alpha=0.45, origin="lower",
                 interpolation="nearest")
    if present:
        right.contour(labels > 0, levels=[0.5], colors="yellow", linewidths=0.5,
                      origin="lower")
        right.legend(handles=[Patch(color=class_colour(k), label=class_names.get(k, f"class {k}"))
                              for k in present], fontsize=8, loc="upper right")
    left.set_title(title, fontsize=10)
    right.set_title("ground-truth labels", fontsize=10)
    fig.tight_layout()
    return figure_png(fig)


def picks_png(image: np.ndarray, score: np.ndarray | None,
              picks: list[tuple[float, float, int]], truth: list[tuple[float, float, int]] | None,
              class_names: dict[int, str], title: str) -> bytes:
    """A tomogram slice and its score map, picks (circles, by class) and true particles
    (crosses) near the slice; (x, y, class id) in voxels of the slice."""
    from matplotlib.lines import Line2D

    plt = pyplot()
    width, height = _panel_size(image.shape)
    panels = 1 if score is None else 2
    fig, axes = plt.subplots(1, panels, figsize=(panels * width, height), squeeze=False)
    lo, hi = _contrast(image)
    axes[0, 0].imshow(image, cmap="gray", vmin=lo, vmax=hi, origin="lower",
                      interpolation="nearest")
    axes[0, 0].set_title(title, fontsize=10)
    if score is not None:
        shown = axes[0, 1].imshow(score, cmap="magma", vmin=0, vmax=max(1.0, float(score.max())),
                                  origin="lower", interpolation="nearest")
        fig.colorbar(shown, ax=axes[0, 1], fraction=0.04, label="score")
        axes[0, 1].set_title("class score (max over classes)", fontsize=10)
    classes = sorted({k for *_, k in picks} | {k for *_, k in truth or []})
    for ax in axes[0]:
        for k in classes:
            mine = np.array([(x, y) for x, y, c in picks if c == k]).reshape(-1, 2)
            ax.scatter(mine[:, 0], mine[:, 1], s=60, facecolors="none",
                       edgecolors=class_colour(k), linewidths=1.2)
            true = np.array([(x, y) for x, y, c in truth or [] if c == k]).reshape(-1, 2)
            ax.scatter(true[:, 0], true[:, 1], s=25, marker="x", color=class_colour(k),
                       linewidths=1.0)
        ax.set_xlim(-0.5, image.shape[1] - 0.5)
        ax.set_ylim(-0.5, image.shape[0] - 0.5)
        ax.set_axis_off()
    handles = [Line2D([], [], ls="", marker="o", mfc="none", mec=class_colour(k),
                      label=f"{class_names.get(k, f'class {k}')} pick") for k in classes]
    if truth is not None:
        handles += [Line2D([], [], ls="", marker="x", color=class_colour(k),
                           label=f"{class_names.get(k, f'class {k}')} true") for k in classes]
    if handles:
        axes[0, 0].legend(handles=handles, fontsize=7, loc="upper right")
    fig.tight_layout()
    return figure_png(fig)


def histogram_png(values: dict[str, np.ndarray], xlabel: str) -> bytes:
    """Overlaid histograms, one per name (e.g. conformer RMSD per template)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    finite = np.concatenate([np.asarray(v, float) for v in values.values()])
    finite = finite[np.isfinite(finite)]
    bins = np.histogram_bin_edges(finite, bins=min(30, max(5, finite.size // 3))) \
        if finite.size else 10
    for name, data in values.items():
        ax.hist(np.asarray(data, float), bins=bins, alpha=0.6, label=f"{name} (n = {len(data)})")
    ax.set(xlabel=xlabel, ylabel="count")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return figure_png(fig)


def projections_png(images: dict[str, np.ndarray]) -> bytes:
    """A grid of small images with titles (e.g. projections of the template maps)."""
    plt = pyplot()
    columns = min(len(images), 6)
    rows = -(-len(images) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.9 * columns, 2.1 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (name, image) in zip(axes.flat, images.items(), strict=False):
        ax.imshow(image, cmap="gray_r", origin="lower", interpolation="nearest")
        ax.set_title(name, fontsize=8)
    fig.tight_layout()
    return figure_png(fig)


def pr_overview_png(curves: list[tuple[str, dict, float | None]]) -> bytes:
    """Precision-recall curves of several evaluations on one plot: (label, sweep with
    precision and recall lists, F1 at P = R or None, drawn as an open circle)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    for label, sweep, cross in curves:
        line, = ax.plot(sweep["recall"], sweep["precision"], marker=".", ms=3, label=label)
        if cross is not None:
            ax.plot([cross], [cross], "o", mfc="none", color=line.get_color(), ms=9)
    ax.plot([0, 1], [0, 1], color="0.8", lw=0.8)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02),
           title="precision-recall (o: P = R)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return figure_png(fig)
