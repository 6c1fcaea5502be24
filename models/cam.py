"""Class activation maps: the per-class average (paper Eq. 6) and the CAM-over-pattern figure.

Per-pattern CAMs come from :meth:`models.classifier.Classifier.explain` (0.24-degree bins for
XRDNet, zero where unmeasured). This module averages them per class and draws them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.grid import GRID


def class_average_cams(cams: np.ndarray, labels: np.ndarray, n_classes: int, masks: np.ndarray | None = None) -> np.ndarray:
    """Average CAM of each class over its patterns (Oviedo et al. 2019, Eq. 6).

    Parameters
    ----------
    cams : np.ndarray
        float [N, 1376], each pattern's CAM of its own class.
    labels : np.ndarray
        int [N] class of each pattern.
    n_classes : int
        Number of classes.
    masks : np.ndarray, optional
        bool [N, 1376]: when given, each grid point is averaged only over the patterns that
        measured it (partial scans do not pull the average towards 0).

    Returns
    -------
    np.ndarray
        float [n_classes, 1376]; NaN for a class without patterns (or an unmeasured point).
    """
    cams = np.asarray(cams, dtype=np.float64)
    weights = np.ones_like(cams) if masks is None else np.asarray(masks, dtype=np.float64)
    out = np.full((n_classes, cams.shape[1]), np.nan)
    for k in range(n_classes):
        rows = labels == k
        if rows.any():
            total = weights[rows].sum(0)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[k] = np.where(total > 0, (cams[rows] * weights[rows]).sum(0) / total, np.nan)
    return out


def plot_cam(
    two_theta: np.ndarray,
    intensity: np.ndarray,
    cam: np.ndarray,
    path: str | Path,
    *,
    title: str = "",
) -> Path:
    """Draw the pattern with its CAM (on :data:`GRID`) as a shaded band beneath; write a PNG.

    Parameters
    ----------
    two_theta, intensity : np.ndarray
        The measured pattern (degrees, counts).
    cam : np.ndarray
        float [1376] class activation map on the grid, 0-1.
    path : str or Path
        Output PNG.
    title : str
        Figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax_pattern, ax_cam) = plt.subplots(2, 1, figsize=(9, 4.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax_pattern.plot(two_theta, intensity, lw=0.8, color="black")
    ax_pattern.set_ylabel("counts")
    top = float(np.max(intensity)) if np.size(intensity) else 1.0
    ax_pattern.fill_between(GRID, 0, np.asarray(cam) * top, color="tab:red", alpha=0.25, step="mid", label="CAM (scaled)")
    ax_pattern.legend(loc="upper right", fontsize=8)
    ax_cam.fill_between(GRID, 0, cam, color="tab:red", step="mid")
    ax_cam.set_ylim(0, 1.05)
    ax_cam.set_ylabel("CAM")
    ax_cam.set_xlabel("2θ (degrees)")
    ax_cam.set_xlim(GRID[0], GRID[-1])
    if title:
        ax_pattern.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_class_average_cams(
    average_cams: np.ndarray,
    classes: tuple[str, ...] | list[str],
    path: str | Path,
    *,
    average_patterns: np.ndarray | None = None,
    counts: Sequence[int] | None = None,
    title: str | None = None,
) -> Path:
    """One panel per class: its average CAM (Eq. 6), optionally over its average pattern; a PNG.

    Parameters
    ----------
    average_cams : np.ndarray
        float [n_classes, 1376] from :func:`class_average_cams` (NaN rows are drawn empty).
    classes : sequence of str
        Class names.
    path : str or Path
        Output PNG.
    average_patterns : np.ndarray, optional
        float [n_classes, 1376] mean preprocessed intensity per class, drawn as a line.
    counts : sequence of int, optional
        Patterns averaged per class, shown beside the class name.
    title : str, optional
        Figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(classes)
    fig, axes = plt.subplots(n, 1, figsize=(9, 1.3 * n + 0.6), sharex=True, squeeze=False)
    for k, ax in enumerate(axes[:, 0]):
        cam = np.nan_to_num(average_cams[k], nan=0.0)
        cam = cam / cam.max() if cam.max() > 0 else cam  # same 0-1 scale as the processed pattern
        ax.fill_between(GRID, 0, cam, color="tab:red", alpha=0.6, step="mid", label="mean CAM")
        if average_patterns is not None:
            ax.plot(GRID, np.nan_to_num(average_patterns[k]), color="black", lw=0.6, label="mean pattern")
        label = classes[k] if counts is None else f"{classes[k]}\n(n={counts[k]})"
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
        ax.set_yticks([])
    axes[0, 0].legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel("2θ (degrees)")
    axes[-1, 0].set_xlim(GRID[0], GRID[-1])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
