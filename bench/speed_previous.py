"""The shipped model timed beside the one it replaced, interleaved in one run (`xrd-agent bench speed`).

Absolute times differ between machines and with the load of a shared one; the acceptance of the
classifier issue is a ratio: the new model (with its memory) no slower than
:data:`MAX_SINGLE_RATIO` x the previous one per partial scan and at least :data:`MIN_BATCHED_RATIO`
x its batched throughput. Both are timed in alternating blocks so that a change of load hits both.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REFERENCE_DIR = Path(__file__).resolve().parent / "reference_models" / "space_group"
MAX_SINGLE_RATIO = 1.25
MIN_BATCHED_RATIO = 0.8


def _single_ms(clf: Any, two_theta: np.ndarray, intensity: np.ndarray, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        clf.predict(two_theta, intensity)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def _batched_rate(clf: Any, x: np.ndarray) -> float:
    start = time.perf_counter()
    clf.predict_proba(x)
    return x.shape[0] / (time.perf_counter() - start)


def compare_with_previous(clf: Any, two_theta: np.ndarray, intensity: np.ndarray, batch: np.ndarray, *,
                          blocks: int = 10, repeats: int = 100) -> dict[str, Any]:
    """Median single-scan latency and batched rate of ``clf`` and of the previous shipped model.

    Parameters
    ----------
    clf : Classifier
        The shipped model.
    two_theta, intensity : np.ndarray
        One partial scan (degrees, counts), as :func:`bench.speed.time_single` uses.
    batch : np.ndarray
        Preprocessed ``[N, 2, 1376]`` patterns for the batched rate.
    blocks : int
        Alternating blocks per model (the order flips every block).
    repeats : int
        Single-scan calls per block.

    Returns
    -------
    dict
        ``single_partial_scan_ms_median`` and ``batched_patterns_per_s`` of ``new`` and ``previous``,
        their ratios and whether each meets its acceptance line; one torch thread throughout.
    """
    from models.classifier import Classifier

    previous = Classifier.load(REFERENCE_DIR, device="cpu")
    models = {"new": clf, "previous": previous}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    single: dict[str, list[float]] = {name: [] for name in models}
    rates: dict[str, list[float]] = {name: [] for name in models}
    try:
        for name, model in models.items():  # warm-up: fused path, lazy imports
            _single_ms(model, two_theta, intensity, 10)
            _batched_rate(model, batch[:256])
        for block in range(blocks):
            for name in (("new", "previous") if block % 2 == 0 else ("previous", "new")):
                single[name] += _single_ms(models[name], two_theta, intensity, repeats)
                rates[name].append(_batched_rate(models[name], batch))
    finally:
        torch.set_num_threads(threads)
    ms = {name: statistics.median(values) for name, values in single.items()}
    rate = {name: statistics.median(values) for name, values in rates.items()}
    single_ratio, batched_ratio = ms["new"] / ms["previous"], rate["new"] / rate["previous"]
    return {
        "previous_model": {"version": previous.version, "n_members": previous.n_members, "width": previous.width,
                           "memory": previous.memory is not None},
        "new_model": {"version": clf.version, "n_members": clf.n_members, "width": clf.width,
                      "memory": clf.memory is not None},
        "single_partial_scan_ms_median": ms,
        "batched_patterns_per_s_median": rate,
        "batched_n": int(batch.shape[0]),
        "single_ratio_new_over_previous": single_ratio,
        "batched_ratio_new_over_previous": batched_ratio,
        "pass": {"single": single_ratio <= MAX_SINGLE_RATIO, "batched": batched_ratio >= MIN_BATCHED_RATIO},
        "targets": {"single_ratio_max": MAX_SINGLE_RATIO, "batched_ratio_min": MIN_BATCHED_RATIO},
    }
