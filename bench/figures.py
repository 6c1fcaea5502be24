"""PNG figures of the accuracy and step-size benchmarks (matplotlib, Agg backend, no display)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # benchmarks run headless (CI, ssh)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from models.grid import GRID  # noqa: E402
from evaluation.metrics import Reliability  # noqa: E402


def confusion_png(
    matrices: Mapping[str, np.ndarray], classes: Sequence[str], path: Path, title: str
) -> Path:
    """One panel per named confusion matrix (rows true, columns predicted), counts and row %."""
    n_cols = min(3, len(matrices))
    n_rows = -(-len(matrices) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 4.0 * n_rows), squeeze=False)
    for ax in axes.flat[len(matrices):]:
        ax.set_visible(False)
    for ax, (name, matrix) in zip(axes.flat, matrices.items()):
        matrix = np.asarray(matrix)
        rows = matrix.sum(axis=1, keepdims=True)
        share = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for i in range(matrix.shape[0]):
            for j in range(matrix.shape[1]):
                if matrix[i, j]:
                    ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if share[i, j] > 0.6 else "black")
        ax.set_xticks(range(len(classes)), classes, rotation=60, fontsize=7)
        ax.set_yticks(range(len(classes)), classes, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(name, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def curve_png(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float], Sequence[float] | None]],
    path: Path,
    xlabel: str,
    title: str,
) -> Path:
    """Accuracy curves: name -> (x, mean, std or None)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for index, (name, (x, mean, std)) in enumerate(curves.items()):
        x, mean = np.asarray(x), np.asarray(mean)
        # the colour cycle has 10 colours: change the line style for each further ten curves
        ax.plot(x, mean, marker="o", ls=("-", "--", ":")[index // 10 % 3], label=name)
        if std is not None:
            ax.fill_between(x, mean - np.asarray(std), mean + np.asarray(std), alpha=0.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def reliability_png(diagrams: Mapping[str, Reliability], path: Path, title: str) -> Path:
    """Reliability diagram: accuracy vs mean confidence per bin, with the diagonal."""
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--")
    for name, rel in diagrams.items():
        filled = rel.counts > 0
        ax.plot(rel.confidence[filled], rel.accuracy[filled], marker="o", label=f"{name} (ECE {rel.ece:.3f})")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
