"""Quick-look PNG of a packed sample: central slices of the density with instance outlines."""

from __future__ import annotations

import os

import numpy as np

from templearn.files import atomic_path


def write_slices_png(path: str | os.PathLike[str], density: np.ndarray,
                     instances: np.ndarray) -> None:
    """Central XY, XZ and YZ slices of `density`, molecule boundaries outlined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
