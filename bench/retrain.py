"""`xrd-agent bench retrain`: the nightly retrain on 5,000 labelled runs read from tiled, and catalog costs.

Figures, each against its acceptance line (issues 5 and 14):

* ``read_s``: reading the 5,000 labelled runs from the embedded tiled catalog the first time
  (never read before: no cache), as the flow reads them (:func:`storage.scans.labelled_scans`:
  the labels from one search, the scans from the catalog's columnar export,
  :mod:`storage.scan_export`). Target: <= 60 s.
* ``wall_s``: one real Prefect run of :func:`flows.retrain.retrain_flow` (ephemeral Prefect,
  the nightly defaults: 3 members x 300 steps, 100 simulated patterns per class) reading those
  runs from the same catalog, from the call to the result: reading, gridding, training,
  evaluating, the gate, the registry update and the artifacts. Target: <= 180 s on 2 CPU cores.
  The scans are simulated step scans of the beamline's samples (``sim_devices`` physics,
  Poisson counts, 0.04 or 0.16 degree steps, some stopped early). They are put into tiled as
  the writer leaves a run that the flow reads: a run node in ``raw`` with its start (label
  included) and stop metadata, created through tiled's catalog adapter, and the run's scan in
  the columnar export, appended through tiled's client. The event tables, which the flow does
  not read when the export has the run, are not written: TiledWriter takes about 0.2-1 s per
  run here, hours for 5,000 (``write_s`` is the time this set-up took).
* ``catalog_read_s_per_run``: reading one labelled run back from the embedded catalog (real
  ``bp.scan`` runs written by the spooled TiledWriter, export included), and
  ``catalog_read_projected_s`` for ``n_scans`` of them.
* ``list_labelled_s``: ``list_runs(labelled=True)`` (what ``xrd-agent runs --labelled`` calls)
  among the ``n_scans`` runs. Target: <= 2 s.

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

from patterns.data_home import data_home_set
from patterns.datasets import MEASURED_SAMPLE_PREFIX

TARGET_WALL_S = 180.0
TARGET_READ_S = 60.0
TARGET_LIST_S = 2.0
N_SCANS = 5000


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
        uid = str(uuid.UUID(bytes=rng.bytes(16), version=4))
        scans.append(LabelledScan(uid, two_theta, counts, sample.label, now + i * 1e-3, sample.name))
    return scans


def _run_metadata(scan: Any, scan_id: int) -> dict[str, Any]:
    """Start (label included) and stop metadata of a successful run of ``scan``, as the writer leaves them."""
    from storage.labels import LABEL_KEY

    label = {"space_group": scan.label, "dimensionality": None, "by": "bench", "time": scan.label_time}
    start = {"uid": scan.uid, "time": scan.label_time, "scan_id": scan_id, "plan_name": "scan",
             "sample": scan.sample, "detectors": ["det"], "motors": ["tth"], LABEL_KEY: label}
    stop = {"uid": str(uuid.uuid4()), "run_start": scan.uid, "time": scan.label_time, "exit_status": "success",
            "reason": "", "num_events": {"primary": int(scan.two_theta.size)}}
    return {"start": start, "stop": stop}


def write_runs(scans: list[Any], batch: int = 500) -> float:
    """Put ``scans`` into the embedded catalog of the current data home as the flow reads them; seconds taken.

    Each run: a node in ``raw`` (spec BlueskyRun) with its start and stop metadata, created through
    tiled's catalog adapter (one transaction per node, no HTTP); its scan appended to the columnar
    export through tiled's client, ``batch`` runs per request.
    """
    import asyncio

    from tiled.structures.core import Spec, StructureFamily

    from storage.catalog import RAW_CONTAINER, build_embedded_tree, open_catalog
    from storage.scan_export import append_scans

    tic = time.perf_counter()
    catalog = open_catalog()  # creates the catalog and its raw container

    async def create_nodes() -> None:
        tree = build_embedded_tree()
        await tree.startup()
        try:
            raw = await tree.lookup_adapter([RAW_CONTAINER])
            for i, scan in enumerate(scans):
                await raw.create_node(StructureFamily.container, _run_metadata(scan, i + 1), key=scan.uid,
                                      specs=[Spec("BlueskyRun", version="3.0")])
        finally:
            await tree.shutdown()

    asyncio.run(create_nodes())
    root = catalog.parent
    for lo in range(0, len(scans), batch):
        append_scans(root, [(s.uid, s.two_theta, s.intensity, s.sample) for s in scans[lo:lo + batch]])
    return time.perf_counter() - tic


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
    time and again (both through the columnar export: the scan cache holds only runs missing there)."""
    import bluesky.plans as bp
    from bluesky import RunEngine

    from sim_devices import make_beamline
    from storage.catalog import open_catalog, subscribe_writer
    from storage.labels import label_run
    from storage.scans import labelled_scans

    with tempfile.TemporaryDirectory() as home, data_home_set(home):
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
    return cold / n_runs, warm / n_runs


def plot(summary: dict[str, Any], png: Path) -> Path:
    """Bar chart of the figures against their targets (seconds, log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [
        f"retrain {summary['n_scans']} runs (read from tiled)",
        f"read {summary['n_scans']} never-read runs",
        f"list labelled of {summary['n_catalog_runs']}",
    ]
    values = [summary["wall_s"], summary["read_s"], summary["list_labelled_s"]]
    targets = [summary["target_wall_s"], summary["target_read_s"], summary["target_list_s"]]
    fig, ax = plt.subplots(figsize=(7, 3.0))
    ax.barh(names, values, color=["C0", "C2", "C0"])
    for i, target in enumerate(targets):
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
        CI settings: 300 runs, a 2-member 20-step model, 3 real runs for the per-run cost (figures
        not meaningful).
    out : Path
        JSON output path.
    """
    import torch

    from bench.accuracy import _git_commit
    from flows.retrain import DEFAULT_BASE_PER_CLASS, DEFAULT_MEMBERS, retrain_flow
    from storage.catalog import open_catalog
    from storage.labels import list_runs
    from storage.scans import labelled_scans

    torch.set_num_threads(2)  # the acceptance line is for 2 CPU cores
    n_scans = 300 if quick else N_SCANS
    params: dict[str, Any] = (
        {"members": 2, "steps": 20, "base_per_class": 10}
        if quick
        else {"members": DEFAULT_MEMBERS, "base_per_class": DEFAULT_BASE_PER_CLASS}
    )
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp, data_home_set(Path(tmp) / "home"):
        registry = Path(tmp) / "models"
        champion = _champion(registry)
        tic = time.perf_counter()
        scans = simulated_scans(n_scans, seed=0)
        simulate_s = time.perf_counter() - tic
        write_s = write_runs(scans)
        tic = time.perf_counter()
        read = labelled_scans(open_catalog(), "space_group")  # never read before: no cache
        read_s = time.perf_counter() - tic
        assert len(read) == n_scans, f"read {len(read)} of {n_scans} labelled runs"
        tic = time.perf_counter()
        listed = list_runs(labelled=True)
        list_s = time.perf_counter() - tic
        load_flow = os.getloadavg()
        tic = time.perf_counter()
        result = retrain_flow(task="space_group", registry=str(registry), seed=0, **params)
        wall_s = time.perf_counter() - tic
    read_per_run, cached_per_run = catalog_read_cost(3 if quick else 20)
    summary = {
        "n_scans": n_scans,
        "read_s": round(read_s, 2),
        "wall_s": round(wall_s, 2),
        "promoted": bool(result.get("promoted")),
        "target_read_s": TARGET_READ_S,
        "meets_read_target": read_s <= TARGET_READ_S,
        "target_wall_s": TARGET_WALL_S,
        "meets_wall_target": wall_s <= TARGET_WALL_S,
        "flow_inner_s": round(float(result.get("wall_s", float("nan"))), 2),
        "n_new_scans": result.get("n_new"),
        "status": result.get("status"),
        "reason": result.get("reason"),
        "metrics": {k: v.get("accuracy") for k, v in (result.get("metrics") or {}).items() if isinstance(v, dict)},
        "champion": champion,
        "training": params | {"steps": params.get("steps", "TrainConfig default")},
        "simulate_scans_s": round(simulate_s, 2),
        "write_s": round(write_s, 1),
        "catalog_read_s_per_run": round(read_per_run, 4),
        "catalog_read_projected_s": round(read_per_run * n_scans, 1),
        "catalog_cached_s_per_run": round(cached_per_run, 4),
        "n_catalog_runs": n_scans,
        "n_labelled_listed": len(listed),
        "list_labelled_s": round(list_s, 3),
        "target_list_s": TARGET_LIST_S,
        "meets_list_target": list_s <= TARGET_LIST_S,
        "quick": quick,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "loadavg_before": load_before,
        "loadavg_flow_start": load_flow,
        "loadavg_after": os.getloadavg(),
        "git_commit": _git_commit(),
        "platform": platform.platform(),
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    plot(summary, out.with_suffix(".png"))
    return summary
