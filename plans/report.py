"""The report of one adaptive run: a PNG a person reads in half a minute.

Four panels sharing the 2-theta axis:

1. the scan, each point coloured by the step that reached it (fine / coarse), back-step fills
   marked, regions the agent refined shaded;
2. the class-activation map of the final prediction (recomputed with the run's model when that
   model is at hand, else the high-CAM regions the decisions recorded);
3. the class probabilities along the scan, against the frontier position of each decision;
4. the agent's actions along the scan.
"""

from __future__ import annotations

import textwrap

from pathlib import Path
from typing import Any

import numpy as np

from agent.policy_config import COARSE_GAP_STEPS
from plans.run_record import RunRecord

STEP_COLOURS = {"fine": "tab:blue", "coarse": "tab:orange"}


def step_sizes(two_theta: np.ndarray) -> np.ndarray:
    """The step that reached each point: distance to its nearest measured neighbour, degrees."""
    if two_theta.size < 2:
        return np.zeros(two_theta.size)
    order = np.argsort(two_theta)
    sorted_positions = two_theta[order]
    gaps = np.diff(sorted_positions)
    nearest = np.minimum(np.concatenate(([np.inf], gaps)), np.concatenate((gaps, [np.inf])))
    steps = np.empty_like(nearest)
    steps[order] = nearest
    return steps


def refined_regions(record: RunRecord) -> list[tuple[float, float]]:
    """Regions measured at the fine step, as (low, high) degrees."""
    positions = np.sort(record.two_theta)
    if positions.size < 2:
        return []
    fine_step = float(record.start.get("adaptive", {}).get("policy", {}).get("fine_step", 0.04))
    fine = np.diff(positions) <= COARSE_GAP_STEPS * fine_step
    regions: list[tuple[float, float]] = []
    i = 0
    while i < fine.size:
        if fine[i]:
            j = i
            while j + 1 < fine.size and fine[j + 1]:
                j += 1
            regions.append((float(positions[i]), float(positions[j + 1])))
            i = j + 1
        else:
            i += 1
    return regions


def render_report(record: RunRecord, path: Path, classifier: Any | None = None, *, log_counts: bool = False) -> Path:
    """Draw the report of `record` to `path` (PNG).

    Parameters
    ----------
    record : RunRecord
        The run.
    path : Path
        Output file; parent directories are created.
    classifier : optional
        A classifier with ``predict`` and ``version``; used for the CAM panel only when its
        version equals the run's model version (a different model would explain a different
        decision).
    log_counts : bool
        Counts on a log axis (one strong peak no longer flattens the weak ones).

    Returns
    -------
    Path
        `path`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if record.n_points == 0:
        raise ValueError(f"run {record.uid} has no measured points to report")
    adaptive = record.start.get("adaptive", {})
    fine_step = float(adaptive.get("policy", {}).get("fine_step", 0.04))
    figure, axes = plt.subplots(4, 1, figsize=(10, 11), sharex=True, height_ratios=[3, 1.5, 2, 1])
    scan_ax, cam_ax, proba_ax, action_ax = axes
    _draw_scan(scan_ax, record, fine_step)
    if log_counts:
        scan_ax.set_yscale("symlog", linthresh=1.0)  # symlog: zero counts stay on the axis
    for low, high in refined_regions(record):
        for ax in axes:
            ax.axvspan(low, high, color="tab:blue", alpha=0.08, lw=0)
    _draw_cam(cam_ax, record, classifier, fine_step)
    # decisions are drawn at the frontier they were made at (back-step fills lie behind it)
    frontier = np.fmax.accumulate(record.decisions.get("at_position", np.array([])).astype(float))
    _draw_probabilities(proba_ax, record, frontier)
    _draw_actions(action_ax, record, frontier)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _draw_scan(ax: Any, record: RunRecord, fine_step: float) -> None:
    """Panel 1: the scan, points coloured by the step that reached them, with the outcome as title."""
    final = record.final()
    is_fine = step_sizes(record.two_theta) <= COARSE_GAP_STEPS * fine_step
    order = np.argsort(record.two_theta)
    ax.plot(record.two_theta[order], record.counts[order], color="0.7", lw=0.8, zorder=1)
    for name, selection in (("fine", is_fine), ("coarse", ~is_fine)):
        ax.scatter(record.two_theta[selection], record.counts[selection], s=8, color=STEP_COLOURS[name],
                   label=f"{name} step ({np.count_nonzero(selection)} points)", zorder=2)
    ax.set_ylabel("counts")
    labelled = record.start.get("xrd_label") or {}  # written by `storage.labels` (start metadata)
    labels = ", ".join(f"{labelled[k]}" for k in ("space_group", "dimensionality") if labelled.get(k))
    ax.set_title(
        f"run {record.uid[:8]}  sample {record.start.get('sample', '?')}  -> {final['label'] or '?'} "
        f"(confidence {final['confidence']:.2f}), {record.n_points} points, "
        f"exit {record.stop.get('exit_status', 'open')}" + (f"  labelled {labels}" if labels else ""),
        fontsize=9,
    )
    if record.stop.get("reason"):
        # wrapped to the left half: the legend holds the upper right corner
        ax.text(0.01, 0.97, textwrap.fill(str(record.stop["reason"])[:300], 90), transform=ax.transAxes, fontsize=7,
                va="top", color="tab:red", bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1})
    ax.legend(fontsize=8, loc="upper right")


def _draw_cam(ax: Any, record: RunRecord, classifier: Any | None, fine_step: float) -> None:
    """Panel 2: the CAM of the run's own model, else the high-CAM regions the decisions recorded."""
    if classifier is not None and str(getattr(classifier, "version", "")) == str(record.start.get("adaptive", {}).get("model_version")):
        from models.grid import GRID

        prediction = classifier.predict(*_sorted(record))
        ax.fill_between(GRID, np.asarray(prediction.cam, dtype=np.float64), color="tab:red", alpha=0.5, lw=0)
        ax.set_ylabel(f"CAM ({prediction.label})", fontsize=8)
        return
    lows = record.decisions.get("cam_high_low", np.array([]))
    highs = record.decisions.get("cam_high_high", np.array([]))
    if lows.size:
        low, high = float(lows[-1]), float(highs[-1])
        if np.isfinite(low) and np.isfinite(high):
            ax.axvspan(low, high + fine_step, color="tab:red", alpha=0.5)
    peaks = record.decisions.get("cam_peak", np.array([]))
    if peaks.size:
        ax.scatter(peaks, np.linspace(0, 1, peaks.size), s=4, color="tab:red")
        ax.set_ylim(0, 1)
    ax.set_ylabel("high-CAM region\n(recorded)", fontsize=8)


def _draw_probabilities(ax: Any, record: RunRecord, frontier: np.ndarray) -> None:
    """Panel 3: the class probabilities along the scan, with the confidence threshold."""
    probabilities = record.decisions.get("probabilities")
    if probabilities is not None and probabilities.ndim == 2 and probabilities.shape[1] == len(record.classes):
        for k, name in enumerate(record.classes):
            if np.nanmax(probabilities[:, k], initial=0) > 0.05:
                ax.plot(frontier, probabilities[:, k], lw=1.2, label=name)
        ax.axhline(float(record.start.get("adaptive", {}).get("policy", {}).get("confidence", 0.9)), color="k", ls=":", lw=0.8)
        ax.legend(fontsize=7, ncol=4, loc="upper left")
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1.02)


def _draw_actions(ax: Any, record: RunRecord, frontier: np.ndarray) -> None:
    """Panel 4: the action of every decision, the plan's own (fallback) in red."""
    actions = record.decisions.get("action", np.array([]))
    kinds = ["coarse", "fine", "backstep", "stop"]
    if actions.size:
        rows = np.asarray([kinds.index(str(a)) if str(a) in kinds else -1 for a in actions])
        fallback = np.asarray(record.decisions.get("fallback", np.zeros(actions.size)), dtype=bool)
        ax.scatter(frontier[~fallback], rows[~fallback], s=6, color="k", label="agent")
        if fallback.any():
            ax.scatter(frontier[fallback], rows[fallback], s=6, color="tab:red", label="fallback")
            ax.legend(fontsize=7, loc="upper right")
    ax.set_yticks(range(len(kinds)), kinds, fontsize=7)
    ax.set_xlabel("2-theta (degrees)")


def _sorted(record: RunRecord) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(record.two_theta, kind="stable")
    return record.two_theta[order], record.counts[order]
