"""How the agent's coarse step was chosen: on the prototype films, never on a set `bench.loop` reports.

The tuning set is every cited prototype structure of the seven space-group classes
(`crystals.prototypes`, 43 structures) simulated as a moderately textured film along its class's
habit (the renderer of the loop benchmark's unseen-materials set, `evaluation.beamline_films`),
twice: the beamline's default film and a weak one (`WEAK_PEAK_AREA_FACTOR` of its scattering over
the same background, as a thinner film gives: weak narrow peaks are what a coarse step can step
over), scanned on the simulated beamline and classified by the shipped model. Neither the measured
AUTO-XRD patterns nor the unseen-materials structures (the two sets `bench.loop` reports) are
scanned here; `tests/test_loop_tuning.py` checks that the tuning structures are not among the
unseen materials.

Every film is scanned by the uniform steps of the loop benchmark and by the agent at each candidate
coarse step (`CANDIDATE_STEPS`; fine step 0.04 over peaks; every point counted for the full dwell),
with the risks of the loop benchmark plus ``risk=0`` (never settles: the full path). The rule
(:func:`choose_setting`): the coarsest step whose full-path accuracy is at least a uniform
0.04-degree scan's minus 0.01, the same margin the loop issue asks of the agent;
`agent.policy.DEFAULT_COARSE_STEP` holds the result. At the chosen step the agent is then scanned
with coarse steps over background counted for a fraction of the dwell (`BACKGROUND_DWELLS`), and
the same rule picks the shortest (`agent.policy.DEFAULT_BACKGROUND_DWELL`). Last, the settling
rule's two evidence thresholds (``min_fraction``, ``stable_span``: `agent.settling`) are read from
the same full paths at the chosen step and dwell (`SETTLING_GRID`, no new scans): the pair whose
curve reaches the fine scan's accuracy minus 0.01 in the least time while no risk's wrong early
stops are significantly more than the risk promises (:func:`choose_settling`). Every curve's best
accuracy within 15 % of the uniform 0.04-degree scan's time is listed (the loop issue's line).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import loop_curves
from bench.loop_scans import RISKS, AgentPath, Scanner, ScanOutcome
from bench.loop_sets import TASK, UNSEEN_TEXTURE, Job

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CANDIDATE_STEPS: tuple[float, ...] = (0.16, 0.24, 0.32, 0.48)
"""Coarse steps tried, degrees (whole multiples of the 0.04-degree fine step)."""
BACKGROUND_DWELLS: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125)
"""Fractions of the dwell tried for coarse steps over background at the chosen step (1: the first sweep)."""
SETTLING_GRID: tuple[tuple[float, float], ...] = tuple(
    (fraction, span) for fraction in (0.1, 0.2, 0.25, 0.3, 0.35) for span in (1.0, 2.0, 3.0, 4.0, 6.0))
"""``(min_fraction, stable_span)`` pairs tried for the settling rule at the chosen step and dwell
(`agent.settling`; the shipped default is 0.35 and 4 degrees)."""
PROMISE_ALPHA = 0.05
"""A risk's promise is broken when its wrong early stops are this unlikely under an error rate of
``risk`` (one-sided binomial test)."""
FULL_PATH_RISK = 0.0
"""A risk at which nothing settles: the agent's full path, scanned to the end of the range."""
MARGIN = loop_curves.ACCURACY_MARGIN
WEAK_PEAK_AREA_FACTOR = 0.2
"""The weak films' peak area over the default film's (`sim_devices.samples.ThinFilm.peak_area`)."""
SEED_OFFSET = 20_000
"""Noise seeds of the tuning films start here (the loop benchmark's sets use 0... and 10,000...)."""


def tuning_structures() -> list[str]:
    """Names of the tuning set's structures: every cited prototype of the seven classes, sorted."""
    from crystals.prototypes import FILM_TEXTURE, PROTOTYPES

    return sorted(n for n, p in PROTOTYPES.items() if p.space_group in FILM_TEXTURE)


def tuning_jobs(classifier: Any, seed: int, max_samples: int | None = None) -> list[Job]:
    """Two films (default, weak) per prototype structure of the seven classes, with `classifier`;
    `max_samples` caps the structures."""
    from crystals.prototypes import FILM_TEXTURE, PROTOTYPES, get_structure
    from evaluation.beamline_films import TEXTURE_MARCH_R, film_sample
    from sim_devices.samples import ThinFilm

    names = tuning_structures()
    films = {"": ThinFilm(), " weak": ThinFilm(peak_area=ThinFilm().peak_area * WEAK_PEAK_AREA_FACTOR)}
    jobs = []
    for name in names[:max_samples] if max_samples is not None else names:
        label = PROTOTYPES[name].space_group
        for suffix, film in films.items():
            sample = film_sample(get_structure(name), f"prototype:{name}{suffix}", TEXTURE_MARCH_R[UNSEEN_TEXTURE],
                                 FILM_TEXTURE[label][0], film=film)
            jobs.append(Job(sample, sample.name, label, seed + SEED_OFFSET + len(jobs), classifier, -1))
    return jobs


def choose_setting(full_path: dict[float, float], fine_accuracy: float, margin: float = MARGIN,
                   cheapest: Callable[[list[float]], float] = max) -> float:
    """The cheapest setting whose full-path accuracy is at least `fine_accuracy` - `margin`.

    Parameters
    ----------
    full_path : dict
        ``{setting: accuracy of the agent's full path}`` (coarse step, degrees; or background
        dwell, fraction of the dwell).
    cheapest : callable
        Which of the settings that qualify is cheapest: ``max`` for a coarse step (default),
        ``min`` for a dwell.
    fine_accuracy : float
        Accuracy of the uniform 0.04-degree scan on the same films.
    margin : float
        Accuracy the cheaper setting may give up.

    Returns
    -------
    float
        The chosen setting; the most expensive candidate when none qualifies.
    """
    good = [setting for setting, accuracy in full_path.items() if accuracy >= fine_accuracy - margin]
    most_expensive = min if cheapest is max else max
    return cheapest(good) if good else most_expensive(full_path)


def settling_sweep(paths: list[AgentPath], fine: dict[str, float],
                   grid: tuple[tuple[float, float], ...] = SETTLING_GRID) -> list[dict[str, Any]]:
    """Every settling setting of `grid` read from the same full-path scans (no new scans).

    Parameters
    ----------
    paths : list of AgentPath
        The agent's full paths at the chosen step and dwell, one per film.
    fine : dict
        The uniform 0.04-degree scan's curve point (``accuracy``, ``acq_time_s``).
    grid : tuple of (float, float)
        ``(min_fraction, stable_span)`` pairs.

    Returns
    -------
    list of dict
        Per pair: ``min_fraction``, ``stable_span``, ``time_fraction_to_reach`` (the least mean
        acquisition time, as a fraction of the fine scan's, of a risk whose accuracy is at least the
        fine scan's minus the margin; None when no risk reaches it), ``promise_kept`` (no risk's
        wrong early stops significantly above ``risk``: :func:`promise_broken`), ``curve`` and
        ``early_stops``.
    """
    rows = []
    for min_fraction, stable_span in grid:
        outcomes = [o for path in paths for o in path.outcomes(RISKS, min_fraction, stable_span)]
        curve = loop_curves.curves(outcomes)["agent"]
        reached = [p["acq_time_s"] for p in curve if p["accuracy"] >= fine["accuracy"] - MARGIN]
        stops = loop_curves.early_stops(outcomes)
        rows.append({"min_fraction": min_fraction, "stable_span": stable_span,
                     "time_fraction_to_reach": min(reached) / fine["acq_time_s"] if reached else None,
                     "promise_kept": not any(promise_broken(r["wrong"], r["stopped_early"], r["risk"]) for r in stops),
                     "curve": curve, "early_stops": stops})
    return rows


def promise_broken(wrong: int, stopped: int, risk: float, alpha: float = PROMISE_ALPHA) -> bool:
    """Whether `wrong` wrong answers among `stopped` early stops are significantly more than `risk`
    promises: the one-sided binomial test's p-value below `alpha` (`scipy.stats.binomtest`)."""
    from scipy.stats import binomtest

    return stopped > 0 and binomtest(wrong, stopped, risk, alternative="greater").pvalue < alpha


def choose_settling(rows: list[dict[str, Any]]) -> tuple[float, float]:
    """The settling thresholds whose curve reaches the fine scan's accuracy (minus the margin) soonest,
    among those that keep every risk's promise; ties go to the larger ``min_fraction``, then the
    larger ``stable_span`` (more evidence before a stop). When none qualifies, the most cautious pair.

    Parameters
    ----------
    rows : list of dict
        :func:`settling_sweep` output.

    Returns
    -------
    tuple of float
        ``(min_fraction, stable_span)``.
    """
    good = [r for r in rows if r["promise_kept"] and r["time_fraction_to_reach"] is not None]
    if not good:
        return max((r["min_fraction"], r["stable_span"]) for r in rows)
    best = min(good, key=lambda r: (round(r["time_fraction_to_reach"], 9), -r["min_fraction"], -r["stable_span"]))
    return best["min_fraction"], best["stable_span"]


def run(quick: bool = False, out: Path | None = None, *, seed: int = 0, max_samples: int | None = None,
        steps: tuple[float, ...] = CANDIDATE_STEPS, log: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Scan the tuning films with every candidate step and write JSON (and a PNG beside it).

    Parameters
    ----------
    quick : bool
        Two structures only (four films).
    out : Path, optional
        JSON path; default ``bench/results/loop_tuning.json``.
    seed : int
        Seed offset of the counting noise.
    max_samples : int, optional
        Cap on the films.
    steps : tuple of float
        Candidate coarse steps, degrees.
    log : callable, optional
        Progress lines.

    Returns
    -------
    dict
        The JSON written: ``curves`` per strategy (``"agent coarse 0.32"``...), ``full_path``
        accuracy and time per step, ``uniform_0_04``, ``chosen_coarse_step`` and the rule.
    """
    import torch

    import models
    from bench.accuracy import _git_commit

    torch.set_num_threads(1)
    log = log or (lambda line: None)
    out = Path(out) if out is not None else RESULTS_DIR / "loop_tuning.json"
    began, load_start = time.perf_counter(), os.getloadavg()[0]
    jobs = tuning_jobs(models.load_default(TASK), seed, 2 if quick else max_samples)
    scanner = Scanner()
    outcomes: list[ScanOutcome] = []
    paths: dict[tuple[float, float], list[AgentPath]] = {}  # (step, dwell): full paths, for the settling sweep
    for index, job in enumerate(jobs):
        outcomes += scanner.uniform(job)
        for step in steps:
            path = scanner.agent_path(job, coarse_step=step, background_dwell=1.0)
            paths.setdefault((step, 1.0), []).append(path)
            outcomes += _named_outcomes(path, f"agent coarse {step:g}")
        if (index + 1) % 10 == 0 or index + 1 == len(jobs):
            log(f"  tuning: {index + 1}/{len(jobs)} films ({time.perf_counter() - began:.0f} s)")
    curve = loop_curves.curves(outcomes)
    fine = next(p for p in curve["uniform"] if p["knob"] == 0.04)
    full_path = {step: next(p for p in curve[f"agent coarse {step:g}"] if p["knob"] == FULL_PATH_RISK) for step in steps}
    chosen = choose_setting({s: p["accuracy"] for s, p in full_path.items()}, fine["accuracy"])
    for index, job in enumerate(jobs):  # the chosen step with shorter dwells over background
        for dwell in BACKGROUND_DWELLS[1:]:
            path = scanner.agent_path(job, background_dwell=dwell, coarse_step=chosen)
            paths.setdefault((chosen, dwell), []).append(path)
            outcomes += _named_outcomes(path, _dwell_strategy(chosen, dwell))
        if (index + 1) % 10 == 0 or index + 1 == len(jobs):
            log(f"  background dwell: {index + 1}/{len(jobs)} films ({time.perf_counter() - began:.0f} s)")
    curve = loop_curves.curves(outcomes)
    dwell_path = {d: next(p for p in curve[f"agent coarse {chosen:g}" if d == 1.0 else _dwell_strategy(chosen, d)]
                          if p["knob"] == FULL_PATH_RISK) for d in BACKGROUND_DWELLS}
    chosen_dwell = choose_setting({d: p["accuracy"] for d, p in dwell_path.items()}, fine["accuracy"], cheapest=min)
    settling = settling_sweep(paths[(chosen, chosen_dwell)], fine)
    chosen_settling = choose_settling(settling)
    budget = loop_curves.FINE_TIME_FRACTION * fine["acq_time_s"]
    at_budget = {strategy: loop_curves.accuracy_at(points, budget) for strategy, points in curve.items()}
    by_film = {}  # the same two lines on the default and on the weak films alone
    for kind, keep in (("default", lambda o: not o.sample.endswith(" weak")), ("weak", lambda o: o.sample.endswith(" weak"))):
        part = loop_curves.curves([o for o in outcomes if keep(o)])
        by_film[kind] = {"uniform_0_04_accuracy": next(p["accuracy"] for p in part["uniform"] if p["knob"] == 0.04),
                         "full_path_accuracy": {f"{step:g}": next(p["accuracy"] for p in part[f"agent coarse {step:g}"]
                                                                   if p["knob"] == FULL_PATH_RISK) for step in steps}}
    result = {
        "set": {"films": len(jobs), "what": "cited prototype structures (crystals.prototypes), moderately textured "
                f"films, each as the default film and a weak one (peak area x {WEAK_PEAK_AREA_FACTOR:g})",
                "model": "shipped", "task": TASK},
        "uniform_0_04": fine,
        "full_path": {f"{s:g}": {**p, "acq_time_fraction": p["acq_time_s"] / fine["acq_time_s"]} for s, p in full_path.items()},
        "by_film": by_film,
        "accuracy_within_15pct_of_uniform_0_04_time": {k: (v if v > -1 else None) for k, v in at_budget.items()},
        "chosen_coarse_step": chosen,
        "full_path_background_dwell": {f"{d:g}": {**p, "acq_time_fraction": p["acq_time_s"] / fine["acq_time_s"]}
                                       for d, p in dwell_path.items()},
        "chosen_background_dwell": chosen_dwell,
        "settling": settling,
        "chosen_settling": {"min_fraction": chosen_settling[0], "stable_span": chosen_settling[1]},
        "rule": f"the coarsest step, then the shortest background dwell (fraction of the dwell), whose full-path "
                f"accuracy >= uniform 0.04 accuracy - {MARGIN}; then the settling thresholds whose curve reaches "
                f"that accuracy in the least time with every risk's promise kept (choose_settling)",
        "curves": curve,
        "config": {"quick": quick, "seed": seed, "steps": list(steps), "risks": [FULL_PATH_RISK, *RISKS],
                   "git_commit": _git_commit(), "bench_wall_s": time.perf_counter() - began},
        "load_average": {"start_1min": load_start, "end_1min": os.getloadavg()[0], "cpus": os.cpu_count()},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    loop_curves.plot({"prototype films (tuning set)": curve}, out.with_suffix(".png"))
    log(f"loop tuning: chosen coarse step {chosen:g} deg, background dwell {chosen_dwell:g} of the dwell, "
        f"min_fraction {chosen_settling[0]:g}, stable_span {chosen_settling[1]:g} deg; wrote {out}")
    return result


def _named_outcomes(path: AgentPath, strategy: str) -> list[ScanOutcome]:
    """A full path's outcomes at the full path and every risk, under the settling rule it ran, named `strategy`."""
    outcomes = path.outcomes((FULL_PATH_RISK, *RISKS), path.config.min_fraction, path.config.stable_span)
    for outcome in outcomes:
        outcome.strategy = strategy
    return outcomes


def _dwell_strategy(step: float, dwell: float) -> str:
    return f"agent coarse {step:g}, background dwell {dwell:g}"
