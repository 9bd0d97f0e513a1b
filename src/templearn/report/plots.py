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
