"""Accuracy against acquisition time: the curves of every strategy, their Pareto fronts, the acceptance lines.

A strategy's *curve* is one point per setting of its knob (uniform: the step, degrees; slope
baseline: ``target_delta``, counts; agent: ``risk``). Its *Pareto front* keeps the points no other
point of the same strategy beats on both axes (as fast or faster and as accurate or more, one of
them strictly). "The agent's accuracy at time T" is the best accuracy of an agent setting whose
mean acquisition time is at most T (its front read as a step function; -inf when none is).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from bench.loop_scans import ScanOutcome

FINE_TIME_FRACTION = 0.15
"""The agent must reach uniform-0.04 accuracy minus 0.01 within this fraction of its time."""
ACCURACY_MARGIN = 0.01


def curves(outcomes: list[ScanOutcome]) -> dict[str, list[dict[str, float]]]:
    """``{strategy: [{"knob", "accuracy", "acq_time_s", "points", "n"}]}``, each sorted by time."""
    grouped: dict[tuple[str, float], list[ScanOutcome]] = defaultdict(list)
    for outcome in outcomes:
        grouped[(outcome.strategy, outcome.knob)].append(outcome)
    result: dict[str, list[dict[str, float]]] = defaultdict(list)
    for (strategy, knob), rows in grouped.items():
        result[strategy].append({
            "knob": knob, "accuracy": float(np.mean([o.correct for o in rows])),
            "acq_time_s": float(np.mean([o.acq_time_s for o in rows])), "points": float(np.mean([o.points for o in rows])),
            "n": len(rows)})
    return {s: sorted(points, key=lambda p: (p["acq_time_s"], -p["accuracy"])) for s, points in result.items()}


def early_stops(outcomes: list[ScanOutcome]) -> list[dict[str, float]]:
    """Does ``risk`` mean what it says? Per risk: the scans the agent stopped early and how many of
    those answers were wrong (the knob promises an error rate of at most ``risk`` among them)."""
    grouped: dict[float, list[ScanOutcome]] = defaultdict(list)
    for outcome in outcomes:
        if outcome.strategy == "agent":
            grouped[outcome.knob].append(outcome)
    rows = []
    for risk in sorted(grouped):
        stopped = [o for o in grouped[risk] if o.stopped_early]
        wrong = sum(not o.correct for o in stopped)
        rows.append({"risk": risk, "scans": len(grouped[risk]), "stopped_early": len(stopped), "wrong": wrong,
                     "error_rate": wrong / len(stopped) if stopped else None})
    return rows


def pareto_front(points: list[dict[str, float]]) -> list[dict[str, float]]:
    """The points of one curve that no other point beats on both axes, by increasing time."""
    front, best = [], -np.inf
    for point in sorted(points, key=lambda p: (p["acq_time_s"], -p["accuracy"])):
        if point["accuracy"] > best:
            front.append(point)
            best = point["accuracy"]
    return front


def accuracy_at(points: list[dict[str, float]], time_s: float) -> float:
    """Best accuracy among the points with acquisition time <= `time_s` (-inf when none)."""
    eligible = [p["accuracy"] for p in points if p["acq_time_s"] <= time_s + 1e-9]
    return max(eligible) if eligible else -np.inf


def targets(curve: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    """The accuracy acceptance lines of the closed-loop issue on one set, with the numbers behind them."""
    if not all(s in curve for s in ("uniform", "slope_adaptive", "agent")):
        return {}
    agent = curve["agent"]
    uniform = {p["knob"]: p for p in curve["uniform"]}
    fine, coarse = uniform.get(0.04), uniform.get(0.16)
    slope_checks = [{"target_delta": p["knob"], "slope_accuracy": p["accuracy"], "acq_time_s": p["acq_time_s"],
                     "agent_accuracy": accuracy_at(agent, p["acq_time_s"])} for p in curve["slope_adaptive"]]
    result: dict[str, Any] = {
        "agent_at_least_slope_at_its_times": all(c["agent_accuracy"] >= c["slope_accuracy"] for c in slope_checks),
        "slope_checks": slope_checks,
    }
    if coarse is not None:
        at = accuracy_at(agent, coarse["acq_time_s"])
        result.update(agent_accuracy_at_uniform_0_16_time=at, uniform_0_16_accuracy=coarse["accuracy"],
                      agent_at_least_uniform_0_16_at_its_time=bool(at >= coarse["accuracy"]))
    if fine is not None:
        at = accuracy_at(agent, FINE_TIME_FRACTION * fine["acq_time_s"])
        result.update(agent_accuracy_at_15pct_of_uniform_0_04_time=at, uniform_0_04_accuracy=fine["accuracy"],
                      agent_reaches_uniform_0_04_minus_0_01_within_15pct=bool(at >= fine["accuracy"] - ACCURACY_MARGIN))
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in result.items()}


def plot(sets: dict[str, dict[str, list[dict[str, float]]]], path: Path) -> Path:
    """One PNG: a panel per set, accuracy against mean acquisition time, each curve with its Pareto front."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"uniform": "tab:blue", "slope_adaptive": "tab:orange", "agent": "tab:green"}
    figure, axes = plt.subplots(1, len(sets), figsize=(6.2 * len(sets), 4.6), squeeze=False)
    for ax, (name, curve) in zip(axes[0], sets.items()):
        right = max((p["acq_time_s"] for points in curve.values() for p in points), default=1.0)
        for index, (strategy, points) in enumerate(curve.items()):
            colour = colours.get(strategy, f"C{(index + 3) % 10}")  # other strategies (the tuning's steps) by order
            ax.scatter([p["acq_time_s"] for p in points], [p["accuracy"] for p in points], color=colour, s=22,
                       alpha=0.6, zorder=3)
            front = pareto_front(points)  # a step function, carried on to the panel's right edge
            ax.step([p["acq_time_s"] for p in front] + [right], [p["accuracy"] for p in front] + [front[-1]["accuracy"]],
                    where="post", color=colour, lw=1.6, alpha=0.8, label=f"{strategy} (Pareto front)")
            # settings that landed on the same point get one label ("0.55-0.8"), not a pile of them
            spots: dict[tuple[float, float], list[float]] = {}
            for p in points:
                spots.setdefault((round(p["acq_time_s"], 1), round(p["accuracy"], 4)), []).append(p["knob"])
            every = sorted(p["knob"] for p in points)
            for (time_s, accuracy), knobs in spots.items():
                knobs = sorted(knobs)
                run = every[every.index(knobs[0]): every.index(knobs[0]) + len(knobs)] == knobs  # neighbours only
                text = (f"{knobs[0]:g}" if len(knobs) == 1 else f"{knobs[0]:g}-{knobs[-1]:g}" if run
                        else ", ".join(f"{k:g}" for k in knobs))
                ax.annotate(text, (time_s, accuracy), textcoords="offset points", xytext=(3, 3), fontsize=6, color=colour)
        fine = {p["knob"]: p for p in curve.get("uniform", [])}.get(0.04)
        if fine is not None:
            ax.axvline(FINE_TIME_FRACTION * fine["acq_time_s"], color="0.5", ls=":", lw=1, label="15 % of uniform 0.04 time")
            ax.axhline(fine["accuracy"] - ACCURACY_MARGIN, color="0.5", ls="--", lw=1, label="uniform 0.04 accuracy - 0.01")
        ax.set_xscale("log")
        ax.set_xlabel("mean simulated acquisition time per sample (s)")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{name}\nknobs: step (deg), target_delta (counts), risk", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_sample(rows: list[tuple[str, ScanOutcome]], title: str, path: Path) -> Path:
    """One PNG for one user's file: a bar per setting (`bench.loop.sample_rows`), its length the
    simulated acquisition time, green where the answer is the reference's (the label, or the uniform
    0.04 scan's for a file without one), red where not; the answer and points at the bar's end."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(9.5, 0.32 * len(rows) + 1.6))
    y = list(range(len(rows)))[::-1]  # the first row on top
    times = [o.acq_time_s for _, o in rows]
    ax.barh(y, times, color=["tab:green" if o.correct else "tab:red" for _, o in rows], alpha=0.75)
    for row, (_, o) in zip(y, rows):
        ax.text(o.acq_time_s, row, f"  {o.predicted} ({o.confidence:.2f}), {o.points} pts{', stopped early' if o.stopped_early else ''}",
                va="center", fontsize=7)
    ax.set_yticks(y, [name for name, _ in rows], fontsize=7)
    ax.set_xlim(0, 1.45 * max(times, default=1.0))  # room for the answers
    ax.set_xlabel("simulated acquisition time (s)")
    ax.set_title(title, fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path

