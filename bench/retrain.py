"""`xrd-agent bench retrain`: the nightly retrain on 5,000 labelled scans, and catalog costs.

Figures, each against its acceptance line (issue 5):

* ``wall_s``: one real Prefect run of :func:`flows.retrain.retrain_flow` (ephemeral Prefect,
  the nightly defaults: 3 members x 300 steps, 100 simulated patterns per class) on
  ``n_scans`` labelled scans, from the call to the result: gathering, gridding, training,
  evaluating challenger and champion on the held-out set and the new scans, the gate, the
  registry update and the artifacts. Target: <= 180 s for 5,000 scans on 2 CPU cores.
  The scans are simulated step scans of the beamline's samples (``sim_devices`` physics,
  Poisson counts, 0.04 or 0.16 degree steps, some stopped early), handed to the flow as a
  scan archive (``scans_file``), because writing 5,000 runs into tiled takes far longer
  than the retrain itself; the catalog's per-run read cost is measured separately:
* ``catalog_read_s_per_run``: reading one labelled run back from the embedded catalog
  (real ``bp.scan`` runs written by TiledWriter), and ``catalog_read_projected_s`` for
  ``n_scans`` of them; ``catalog_cached_s_per_run`` the same once the run's data are in the
  flow's scan cache (every later night: only labels are read from tiled).
* ``list_labelled_s``: ``list_runs(labelled=True)`` among ``n_catalog_runs`` (1,000) runs,
  a tenth of them labelled. Target: <= 2 s. These runs are created with their start/stop
  metadata only (no events): listing reads metadata alone.

The registry and catalogs live in a temporary directory; the user's are not touched.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from patterns.data_home import HOME_ENV
from patterns.datasets import MEASURED_SAMPLE_PREFIX

TARGET_WALL_S = 180.0
TARGET_LIST_S = 2.0
N_SCANS = 5000
N_CATALOG_RUNS = 1000


def simulated_scans(n_scans: int, seed: int) -> list[Any]:
    """``n_scans`` labelled step scans of the library's simulated samples (not measured replays)."""
    from patterns import SPACE_GROUPS
    from sim_devices import get_sample, list_samples
    from sim_devices.physics import expected_counts
    from storage.scans import LabelledScan

    rng = np.random.default_rng(seed)
    samples = [get_sample(n) for n in list_samples() if not n.startswith(MEASURED_SAMPLE_PREFIX)]
    samples = [s for s in samples if s.label in SPACE_GROUPS]
    now = time.time()
    scans = []
    for i in range(n_scans):
        sample = samples[int(rng.integers(len(samples)))]
        step = 0.04 if rng.random() < 0.5 else 0.16
        stop = 60.0 if rng.random() < 0.7 else float(rng.uniform(30.0, 60.0))  # some stopped early
        two_theta = np.arange(5.0, stop + 1e-9, step)
        counts = rng.poisson(expected_counts(two_theta, step, 1.0, sample)).astype(np.float64)
        scans.append(LabelledScan(f"bench-{i}", two_theta, counts, sample.label, now + i * 1e-3, sample.name))
    return scans


def _champion(registry: Path) -> str:
    """Promote the shipped default model into the bench registry, or an untrained one without it."""
    import models
    from models.champion import promote
    from training.simulate import simulate_training_set
    from training.fit import TrainConfig, train_classifier

    try:
        promote(models.load_default("space_group"), root=registry)
        return "shipped default"
    except ValueError:
        values, labels, _ = simulate_training_set(2, seed=0)
        weak = train_classifier((values, np.ones(values.shape, bool)), labels, task="space_group",
                                config=TrainConfig(n_members=1, steps=1, width=4, batch_size=4, calibrate=False))
        promote(weak, root=registry)
        return "untrained (no shipped default model)"


def catalog_read_cost(n_runs: int) -> tuple[float, float]:
    """Seconds per run to gather labelled ``bp.scan`` runs from an embedded catalog: the first
    time (read from tiled) and again (run data from the scan cache, labels from tiled)."""
    import bluesky.plans as bp
    from bluesky import RunEngine

    from sim_devices import make_beamline
    from storage.catalog import open_catalog, subscribe_writer
    from storage.labels import label_run
    from storage.scans import labelled_scans

    with tempfile.TemporaryDirectory() as home:
        previous = os.environ.get(HOME_ENV)
        os.environ[HOME_ENV] = home
        try:
            catalog = open_catalog()
            RE = RunEngine({})
            subscribe_writer(RE, catalog, batch_size=1000)
            bl = make_beamline(sample="CsPbBr3", seed=0)
            for _ in range(n_runs):
                (uid,) = RE(bp.scan([bl.detector], bl.motor, 5.0, 60.0, 344))
                label_run(uid, space_group="Pm-3m", by="bench", catalog=catalog,
                          classes={"space_group": ("Pm-3m",), "dimensionality": ("3D",)})
            cache = Path(home) / "cache"
            tic = time.perf_counter()
            scans = labelled_scans(catalog, "space_group", cache_dir=cache)
            cold = time.perf_counter() - tic
            tic = time.perf_counter()
            again = labelled_scans(catalog, "space_group", cache_dir=cache)
            warm = time.perf_counter() - tic
            assert len(scans) == len(again) == n_runs
        finally:
            if previous is None:
                os.environ.pop(HOME_ENV, None)
            else:
                os.environ[HOME_ENV] = previous
    return cold / n_runs, warm / n_runs


def list_labelled_cost(n_runs: int) -> tuple[float, int]:
    """Seconds for ``list_runs(labelled=True)`` among ``n_runs`` runs (a tenth labelled)."""
    from tiled.structures.core import Spec

    from storage.catalog import open_catalog
    from storage.labels import LABEL_KEY, list_runs

    with tempfile.TemporaryDirectory() as home:
        previous = os.environ.get(HOME_ENV)
        os.environ[HOME_ENV] = home
        try:
            catalog = open_catalog()
            now = time.time()
            for i in range(n_runs):
                uid = str(uuid.uuid4())
                start: dict[str, Any] = {"uid": uid, "time": now + i, "scan_id": i + 1, "plan_name": "adaptive_scan",
                                         "sample": "CsPbBr3"}
                if i % 10 == 0:
                    start[LABEL_KEY] = {"space_group": "Pm-3m", "dimensionality": "3D", "by": "bench", "time": now + i}
                catalog.create_container(key=uid, metadata={"start": start, "stop": {"exit_status": "success"}},
                                         specs=[Spec("BlueskyRun", version="3.0")])
            tic = time.perf_counter()
            labelled = list_runs(labelled=True, catalog=catalog)
            elapsed = time.perf_counter() - tic
        finally:
            if previous is None:
                os.environ.pop(HOME_ENV, None)
            else:
                os.environ[HOME_ENV] = previous
    return elapsed, len(labelled)


def plot(summary: dict[str, Any], png: Path) -> Path:
    """Bar chart of the figures against their targets (seconds, log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [
        f"retrain {summary['n_scans']} scans",
        f"read {summary['n_scans']} runs (first time)",
        f"read {summary['n_scans']} runs (cached)",
        f"list labelled of {summary['n_catalog_runs']}",
    ]
    values = [summary["wall_s"], summary["catalog_read_projected_s"], summary["catalog_cached_projected_s"],
              summary["list_labelled_s"]]
    targets = [summary["target_wall_s"], None, None, summary["target_list_s"]]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.barh(names, values, color=["C0", "C3", "C2", "C0"])
    for i, target in enumerate(targets):
        if target is not None:
            ax.plot([target, target], [i - 0.4, i + 0.4], "k--", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("seconds (dashed: acceptance target)")
    ax.set_title(f"xrd-agent retrain bench (load {summary['loadavg_before'][0]:.1f}, {summary['cpu_count']} CPUs)")
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return png


def run(quick: bool, out: Path) -> dict[str, Any]:
    """Run the benchmark and write its JSON to ``out``.

    Parameters
    ----------
    quick : bool
        CI settings: 300 scans, a 2-member 20-step model, 100 catalog runs (figures not meaningful).
    out : Path
        JSON output path.
    """
    import torch

    from flows.retrain import DEFAULT_BASE_PER_CLASS, DEFAULT_MEMBERS, retrain_flow
    from flows.scan_archive import save_scans

    torch.set_num_threads(2)  # the acceptance line is for 2 CPU cores
    n_scans = 300 if quick else N_SCANS
    params: dict[str, Any] = (
        {"members": 2, "steps": 20, "base_per_class": 10}
        if quick
        else {"members": DEFAULT_MEMBERS, "base_per_class": DEFAULT_BASE_PER_CLASS}
    )
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        registry = Path(tmp) / "models"
        champion = _champion(registry)
        tic = time.perf_counter()
        scans = simulated_scans(n_scans, seed=0)
        simulate_s = time.perf_counter() - tic
        archive = save_scans(Path(tmp) / "scans.npz", scans)
        tic = time.perf_counter()
        result = retrain_flow(task="space_group", registry=str(registry), scans_file=str(archive), seed=0, **params)
        wall_s = time.perf_counter() - tic
    read_per_run, cached_per_run = catalog_read_cost(3 if quick else 20)
    n_catalog = 100 if quick else N_CATALOG_RUNS
    list_s, n_labelled = list_labelled_cost(n_catalog)
    summary = {
        "n_scans": n_scans,
        "wall_s": round(wall_s, 2),
        "promoted": bool(result["promoted"]),
        "target_wall_s": TARGET_WALL_S,
        "meets_wall_target": wall_s <= TARGET_WALL_S,
        "flow_inner_s": round(float(result["wall_s"]), 2),
        "status": result["status"],
        "reason": result.get("reason"),
        "challenger_heldout_accuracy": result["metrics"]["challenger_heldout"]["accuracy"],
        "champion_heldout_accuracy": result["metrics"]["champion_heldout"]["accuracy"],
        "challenger_new_scan_accuracy_in_sample": result["metrics"]["challenger_new"]["accuracy"],
        "champion_new_scan_accuracy": result["metrics"]["champion_new"]["accuracy"],
        "champion": champion,
        "training": params | {"steps": params.get("steps", "TrainConfig default")},
        "simulate_scans_s": round(simulate_s, 2),
        "catalog_read_s_per_run": round(read_per_run, 4),
        "catalog_read_projected_s": round(read_per_run * n_scans, 1),
        "catalog_cached_s_per_run": round(cached_per_run, 4),
        "catalog_cached_projected_s": round(cached_per_run * n_scans, 1),
        "n_catalog_runs": n_catalog,
        "n_labelled_listed": n_labelled,
        "list_labelled_s": round(list_s, 3),
        "target_list_s": TARGET_LIST_S,
        "meets_list_target": list_s <= TARGET_LIST_S,
        "quick": quick,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "platform": platform.platform(),
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    plot(summary, out.with_suffix(".png"))
    return summary
