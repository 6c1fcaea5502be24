"""Benchmark of the closed loop: does the agent save acquisition time without losing accuracy?

Held-out samples: every measured AUTO-XRD space-group pattern, replayed on the simulated beamline
with Poisson counting noise (``sim_devices`` sample ``"auto-xrd/<file stem>"``), and classified by
a grouped-cross-validation fold model that never saw that pattern nor any of its near-duplicates
(`evaluation.fold_classifiers.grouped_fold_classifiers`). Four strategies scan each sample on a fresh beamline
with the same noise seed:

* ``uniform_0.04`` -- `bluesky.plans.scan`, 5-60 degrees at 0.04 degrees (1376 points);
* ``uniform_0.16`` -- the same at 0.16 degrees (344 points);
* ``slope_adaptive`` -- bluesky's built-in slope-driven `bluesky.plans.adaptive_scan`
  (min step 0.04, max step 0.32 degrees, back-steps on); its ``target_delta`` (counts) is chosen,
  from a fixed grid, as the cheapest setting whose mean acquisition time is at least the agent's
  on a tuning subset -- a time-matched comparison that uses no labels;
* ``agent`` -- ours, `plans.adaptive.adaptive_scan` with the fold model as the in-process agent.

The final scan of every strategy is classified by the same fold model; accuracy is the fraction
of samples whose label is right. ``acq_time_s`` is the mean simulated acquisition time (moves +
exposures, the `sim_devices` clock), ``points`` the mean number of points, ``wall_s`` the mean wall
time of a scan here (simulated devices, no waiting). Decision latency is the agent's own time per
decision that ran the model (rebuilding the scan, preprocessing, model, policy) on CPU with one
thread; the remote round trip is measured against ``xrd-agent serve-agent`` in a subprocess.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.loop_collector import PrimaryCollector
from bench.loop_remote import measure_remote_roundtrip
from patterns.datasets import MEASURED_SAMPLE_PREFIX

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_OUT = RESULTS_DIR / "loop.json"
STRATEGIES: tuple[str, ...] = ("uniform_0.04", "uniform_0.16", "slope_adaptive", "agent")
SCAN_START, SCAN_STOP = 5.0, 60.0
SLOPE_MIN_STEP, SLOPE_MAX_STEP = 0.04, 0.32
SLOPE_TARGET_DELTAS: tuple[float, ...] = (50.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 6400.0)
"""Candidate ``target_delta`` values (counts) of the slope-driven baseline."""
TASK = "space_group"
REMOTE_SCANS = 3


@dataclass
class ScanOutcome:
    """One strategy on one sample."""

    strategy: str
    sample: str
    label: str
    predicted: str
    confidence: float
    correct: bool
    acq_time_s: float
    points: int
    wall_s: float
    fold: int


def held_out_folds(seed: int, cache_dir: Path) -> list[tuple[Any, list[str], int]]:
    """(classifier, held-out pattern names, fold index) for every grouped fold.

    The classifier of a fold never saw its held-out patterns nor their near-duplicates; see
    `evaluation.fold_classifiers.grouped_fold_classifiers`.
    """
    from evaluation.fold_classifiers import grouped_fold_classifiers

    folds = []
    for index, fold in enumerate(grouped_fold_classifiers(TASK, seed=seed, cache_dir=cache_dir)):
        classifier, names = _unpack_fold(fold)
        folds.append((classifier, sorted(names), index))
    return folds


def _unpack_fold(fold: Any) -> tuple[Any, list[str]]:
    """Accept a (classifier, names) pair or an object with ``classifier`` and ``test_names``/``held_out``."""
    if isinstance(fold, tuple) and len(fold) == 2:
        return fold[0], list(fold[1])
    classifier = getattr(fold, "classifier")
    for attribute in ("held_out", "test_names", "held_out_names", "names"):
        if hasattr(fold, attribute):
            return classifier, list(getattr(fold, attribute))
    raise TypeError(f"cannot read the held-out names of fold {fold!r}")


def classify(classifier: Any, two_theta: Sequence[float], counts: Sequence[float]) -> tuple[str, float]:
    """Label and confidence of the final scan (repeated positions are averaged by `to_grid`)."""
    x = np.asarray(two_theta, dtype=np.float64)
    y = np.asarray(counts, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    prediction = classifier.predict(x[order], y[order])
    return str(prediction.label), float(prediction.confidence)


def scan_once(
    strategy: str,
    sample: str,
    seed: int,
    classifier: Any,
    agent: Any,
    RE: Any,
    collector: PrimaryCollector,
    slope_target_delta: float,
) -> tuple[float, int, float, list[dict[str, Any]]]:
    """Run one strategy on a fresh beamline; (acq_time_s, points, wall_s, decision records)."""
    import bluesky.plans as bp

    from plans.adaptive import adaptive_scan
    from sim_devices import make_beamline

    beamline = make_beamline(sample=sample, seed=seed)
    detectors, motor = [beamline.detector], beamline.motor
    if strategy == "uniform_0.04":
        plan = bp.scan(detectors, motor, SCAN_START, SCAN_STOP, int(round((SCAN_STOP - SCAN_START) / 0.04)) + 1)
    elif strategy == "uniform_0.16":
        plan = bp.scan(detectors, motor, SCAN_START, SCAN_STOP, int(round((SCAN_STOP - SCAN_START) / 0.16)) + 1)
    elif strategy == "slope_adaptive":
        plan = bp.adaptive_scan(detectors, "det_counts", motor, SCAN_START, SCAN_STOP, SLOPE_MIN_STEP,
                                SLOPE_MAX_STEP, slope_target_delta, True, 0.8)
    elif strategy == "agent":
        plan = adaptive_scan(detectors, motor, start=SCAN_START, stop=SCAN_STOP, agent=agent)
    else:
        raise ValueError(f"unknown strategy {strategy!r}")
    began_clock, began_wall = beamline.clock.time(), time.perf_counter()
    RE(plan)
    wall_s = time.perf_counter() - began_wall
    return beamline.clock.time() - began_clock, len(collector.two_theta), wall_s, list(collector.decisions)


def pick_slope_target_delta(
    samples: Sequence[tuple[str, int]], agent_mean_time_s: float, scan: Callable[[str, int, float], float]
) -> tuple[float, dict[str, float]]:
    """The cheapest candidate whose mean acquisition time on `samples` is >= the agent's (else the slowest)."""
    times = {}
    for delta in SLOPE_TARGET_DELTAS:
        times[str(delta)] = float(np.mean([scan(sample, seed, delta) for sample, seed in samples]))
    eligible = [float(d) for d, t in times.items() if t >= agent_mean_time_s]
    chosen = max(eligible) if eligible else float(min(SLOPE_TARGET_DELTAS))
    return chosen, times


def summarise(outcomes: list[ScanOutcome]) -> dict[str, dict[str, float]]:
    """Per-strategy accuracy and means."""
    summary = {}
    for strategy in STRATEGIES:
        rows = [o for o in outcomes if o.strategy == strategy]
        if not rows:
            continue
        summary[strategy] = {
            "accuracy": float(np.mean([o.correct for o in rows])),
            "acq_time_s": float(np.mean([o.acq_time_s for o in rows])),
            "points": float(np.mean([o.points for o in rows])),
            "wall_s": float(np.mean([o.wall_s for o in rows])),
            "n_samples": len(rows),
        }
    if "uniform_0.04" in summary:
        reference = summary["uniform_0.04"]["acq_time_s"]
        for values in summary.values():
            values["acq_time_fraction"] = values["acq_time_s"] / reference
    return summary


def targets(summary: dict[str, dict[str, float]]) -> dict[str, bool]:
    """The acceptance lines of the closed-loop issue, evaluated."""
    if not all(s in summary for s in STRATEGIES):
        return {}
    ours, fine, coarse, slope = (summary[s] for s in ("agent", "uniform_0.04", "uniform_0.16", "slope_adaptive"))
    return {
        "accuracy_within_0.01_of_uniform_0.04": ours["accuracy"] >= fine["accuracy"] - 0.01,
        "time_at_most_20pct_of_uniform_0.04": ours["acq_time_s"] <= 0.2 * fine["acq_time_s"],
        "beats_uniform_0.16_at_equal_or_lower_time": ours["accuracy"] > coarse["accuracy"]
        and ours["acq_time_s"] <= coarse["acq_time_s"],
        "beats_slope_adaptive_at_equal_or_lower_time": ours["accuracy"] > slope["accuracy"]
        and ours["acq_time_s"] <= slope["acq_time_s"],
    }


def plot(summary: dict[str, dict[str, float]], path: Path) -> Path:
    """Accuracy against mean acquisition time, one marker per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(6.5, 4.5))
    for strategy, values in summary.items():
        ax.scatter(values["acq_time_s"], values["accuracy"], s=60, label=strategy, zorder=3)
        ax.annotate(strategy, (values["acq_time_s"], values["accuracy"]), textcoords="offset points", xytext=(5, 5),
                    fontsize=8)
    if "uniform_0.04" in summary:
        fine = summary["uniform_0.04"]
        ax.axvline(0.2 * fine["acq_time_s"], color="0.5", ls=":", lw=1, label="20 % of uniform 0.04 time")
        ax.axhline(fine["accuracy"] - 0.01, color="0.5", ls="--", lw=1, label="uniform 0.04 accuracy - 0.01")
    ax.set_xlabel("mean simulated acquisition time per sample (s)")
    ax.set_ylabel("accuracy (held-out measured patterns)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("closed loop: accuracy vs acquisition time", fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _held_out_jobs(folds: list[tuple[Any, list[str], int]], seed: int, quick: bool,
                   max_samples: int | None) -> list[tuple[str, int, Any, int]]:
    """The held-out scans to run: (sample, noise seed, classifier, fold) per replayable held-out pattern.

    Parameters
    ----------
    folds : list
        (classifier, held-out pattern names, fold index) of :func:`held_out_folds`.
    seed : int
        Base noise seed; each job gets ``seed + its index``.
    quick : bool
        Keep only the first two held-out samples per fold.
    max_samples : int, optional
        Cap on the number of jobs (after the quick subset).
    """
    from sim_devices import list_samples

    available = set(list_samples())
    jobs: list[tuple[str, int, Any, int]] = []
    for classifier, names, fold in folds:
        chosen = names[:2] if quick else names
        for name in chosen:
            sample = f"{MEASURED_SAMPLE_PREFIX}{name}"
            if sample in available:
                jobs.append((sample, seed + len(jobs), classifier, fold))
    if max_samples is not None:
        jobs = jobs[:max_samples]
    if not jobs:
        raise ValueError("no held-out samples to benchmark")
    return jobs


class _Scanner:
    """One RunEngine, its collector and one in-process agent per fold model; records agent timings."""

    def __init__(self, folds: list[tuple[Any, list[str], int]]) -> None:
        from bluesky import RunEngine

        from agent.callback import LocalAgent

        self.RE = RunEngine({})
        self.collector = PrimaryCollector()
        self.RE.subscribe(self.collector)
        self.agents = {id(classifier): LocalAgent(classifier) for classifier, _, _ in folds}
        self.latencies: list[float] = []  # ms, decisions that ran the model
        self.agent_seconds: list[float] = []  # agent time per agent scan, s

    def outcome(self, strategy: str, sample: str, noise_seed: int, classifier: Any, fold: int,
                delta: float) -> ScanOutcome:
        """Scan ``sample`` with ``strategy`` (slope ``delta`` in counts) and classify the final scan."""
        from sim_devices import get_sample

        acq, points, wall, decisions = scan_once(strategy, sample, noise_seed, classifier,
                                                 self.agents[id(classifier)], self.RE, self.collector, delta)
        if strategy == "agent":
            used = [float(d["decision_latency_ms"]) for d in decisions if d["decision_label"]]
            self.latencies.extend(used)
            self.agent_seconds.append(sum(float(d["decision_latency_ms"]) for d in decisions) / 1e3)
        predicted, confidence = classify(classifier, self.collector.two_theta, self.collector.counts)
        label = str(get_sample(sample).label)
        return ScanOutcome(strategy, sample, label, predicted, confidence, predicted == label, acq, points, wall, fold)

    def slope_time(self, sample: str, noise_seed: int, delta: float) -> float:
        """Acquisition time (s) of the slope-driven baseline at ``target_delta`` ``delta`` (counts)."""
        acq, *_ = scan_once("slope_adaptive", sample, noise_seed, None, None, self.RE, self.collector, delta)
        return acq


def _run_slope_adaptive(
    scanner: _Scanner, jobs: list[tuple[str, int, Any, int]], outcomes: list[ScanOutcome], quick: bool,
    log: Callable[[str], None],
) -> tuple[float, dict[str, float], list[tuple[str, int]]]:
    """Time-match the slope-driven baseline to the agent on a tuning subset, then scan every job with it.

    Appends to ``outcomes``; returns the chosen ``target_delta`` (counts), the candidates' mean
    acquisition times (s) and the tuning (sample, noise seed) pairs.
    """
    agent_mean_time = float(np.mean([o.acq_time_s for o in outcomes if o.strategy == "agent"]))
    tuning = [(sample, noise_seed) for sample, noise_seed, _, _ in jobs[:: max(1, len(jobs) // (4 if quick else 8))]]
    chosen_delta, candidate_times = pick_slope_target_delta(tuning, agent_mean_time, scanner.slope_time)
    log(f"  slope_adaptive: target_delta {chosen_delta} counts (candidate mean times {candidate_times})")
    for sample, noise_seed, classifier, fold in jobs:
        outcomes.append(scanner.outcome("slope_adaptive", sample, noise_seed, classifier, fold, chosen_delta))
    return chosen_delta, candidate_times, tuning


def _report(outcomes: list[ScanOutcome], scanner: _Scanner, slope: tuple[float, dict[str, float], list],
            config: dict[str, Any]) -> dict[str, Any]:
    """The JSON of the benchmark (without the remote round trip and the wall time)."""
    import torch

    chosen_delta, candidate_times, tuning = slope
    summary = summarise(outcomes)
    agent_rows = [o for o in outcomes if o.strategy == "agent"]
    overhead_acq = [s / o.acq_time_s for s, o in zip(scanner.agent_seconds, agent_rows, strict=True)]
    overhead_wall = [s / o.wall_s for s, o in zip(scanner.agent_seconds, agent_rows, strict=True)]
    latency = np.asarray(scanner.latencies)
    return {
        "strategies": summary,
        "decision_latency_ms": {
            "median": float(np.median(latency)) if latency.size else None,
            "p99": float(np.percentile(latency, 99)) if latency.size else None,
            "n": int(latency.size),
            "device": "cpu",
            "torch_threads": torch.get_num_threads(),
        },
        "remote_roundtrip_ms": {"median": None, "n": 0, "skipped": True},
        "agent_overhead": {
            "fraction_of_acquisition_time_mean": float(np.mean(overhead_acq)),
            "fraction_of_simulated_wall_time_mean": float(np.mean(overhead_wall)),
            "note": "agent time per scan over the scan's acquisition time (a real scan's wall time), and over "
                    "the wall time of the simulated scan here (devices do not wait, so RunEngine overhead dominates)",
        },
        "targets": targets(summary),
        "slope_adaptive": {"min_step": SLOPE_MIN_STEP, "max_step": SLOPE_MAX_STEP, "backstep": True,
                           "threshold": 0.8, "target_delta": chosen_delta,
                           "candidate_mean_acq_time_s": candidate_times, "tuning_samples": [s for s, _ in tuning]},
        "config": config,
        "per_sample": [asdict(o) for o in outcomes],
    }


def run(quick: bool = False, out: Path | None = None, *, seed: int = 0, max_samples: int | None = None,
        remote: bool = True, log: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Run the benchmark and write JSON (and a PNG beside it).

    Parameters
    ----------
    quick : bool
        A subset: two held-out samples per fold and fewer slope candidates.
    out : Path, optional
        JSON path; default ``bench/results/loop.json``.
    seed : int
        Seed of the fold models and of the counting noise.
    max_samples : int, optional
        Cap on the number of held-out samples (after the quick subset).
    remote : bool
        Also measure the remote round trip (starts ``xrd-agent serve-agent``).
    log : callable, optional
        Progress lines.

    Returns
    -------
    dict
        The JSON written.
    """
    import torch

    torch.set_num_threads(1)
    log = log or (lambda line: None)
    out = Path(out) if out is not None else DEFAULT_OUT
    began = time.perf_counter()
    folds = held_out_folds(seed, RESULTS_DIR.parent / ".cache" / "loop")
    jobs = _held_out_jobs(folds, seed, quick, max_samples)
    log(f"bench loop: {len(jobs)} held-out samples over {len(folds)} folds")

    scanner = _Scanner(folds)
    outcomes: list[ScanOutcome] = []
    for strategy in ("agent", "uniform_0.04", "uniform_0.16"):
        for sample, noise_seed, classifier, fold in jobs:
            outcomes.append(scanner.outcome(strategy, sample, noise_seed, classifier, fold, 0.0))
        log(f"  {strategy}: done ({time.perf_counter() - began:.0f} s)")
    slope = _run_slope_adaptive(scanner, jobs, outcomes, quick, log)
    log(f"  slope_adaptive: done ({time.perf_counter() - began:.0f} s)")

    result = _report(outcomes, scanner, slope, {
        "quick": quick, "seed": seed, "task": TASK, "n_samples": len(jobs), "n_folds": len(folds),
        "range_deg": [SCAN_START, SCAN_STOP], "python": platform.python_version(), "machine": platform.machine()})
    if remote:
        remote_samples = [sample for sample, *_ in jobs[:REMOTE_SCANS]]
        result["remote_roundtrip_ms"] = measure_remote_roundtrip(remote_samples, seed)
    result["config"]["bench_wall_s"] = time.perf_counter() - began
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    plot(summary=result["strategies"], path=out.with_suffix(".png"))
    log(f"bench loop: wrote {out} and {out.with_suffix('.png')}")
    return result
