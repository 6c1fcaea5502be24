"""The retrain flow: newly labelled scans -> challenger -> gate -> (maybe) a new champion.

Tasks, in order:

1. ``load-champion`` - the current champion (registry, else shipped default) and the
   label-time cut-off of its training data;
2. ``gather-labelled-runs`` - every run labelled for the task; those labelled after
   the cut-off are the *new* scans. Without new scans the flow stops (unless ``force``);
3. ``build-training-data`` - simulated base patterns + the measured training part +
   all labelled scans on the grid, with calibration hold-out folds (near-duplicates share
   a fold);
4. ``fit-member`` mapped over ensemble members, in a sub-flow whose task runner is a
   thread pool, a Dask ``LocalCluster`` (``dask="local"``) or an existing Dask
   scheduler (``dask="tcp://host:port"``);
5. ``assemble-challenger`` - calibration temperature from the members' held-out rows;
6. ``evaluate`` - challenger and champion on the fixed held-out set (a fixed third of
   the measured AUTO-XRD near-duplicate groups, never trained on by the flow, minus the
   groups of any pattern a labelled run replays; see :mod:`flows.dataset`) and on the
   new scans;
7. the gate (:func:`flows.gate.decide_promotion`) and, only if it passes,
   ``promote`` (registry write then atomic pointer rename);
8. artifacts: a markdown table of metrics, the confusion matrices, the model version.

Nothing touches the registry before step 7, so a crash anywhere earlier leaves the
champion exactly as it was.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from prefect import flow, get_run_logger, task, unmapped
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

import flows  # noqa: F401  (Prefect home under XRD_AGENT_HOME)
from models.champion import CUTOFF_KEY, champion_cutoff, load_champion, promote
from flows.dataset import (
    GriddedScans,
    HeldOut,
    grid_scans,
    heldout_dataset,
    heldout_split_id,
    measured_training_part,
    replayed_stems,
)
from flows.gate import DEFAULT_TOLERANCE, GateDecision, decide_promotion
from storage.scans import LabelledScan

#: Defaults of a nightly retrain (CPU-sized: a few minutes on 2 cores).
DEFAULT_MEMBERS = 3
DEFAULT_BASE_PER_CLASS = 100


@dataclass(frozen=True)
class Evaluation:
    """A model's scores on one set.

    Attributes
    ----------
    n : int
        Patterns evaluated.
    accuracy : float or None
        Fraction correct (None when ``n == 0``).
    f1_macro : float or None
    confusion : list of list of int
        ``[true class][predicted class]`` counts.
    """

    n: int
    accuracy: float | None
    f1_macro: float | None
    confusion: list[list[int]]


def make_task_runner(dask: str | None) -> Any:
    """The task runner of the member-training sub-flow.

    Parameters
    ----------
    dask : str or None
        None: Prefect's thread pool in this process; "local": a Dask LocalCluster of
        two single-threaded worker processes on 127.0.0.1; "tcp://host:port": an
        existing Dask scheduler.
    """
    from prefect.task_runners import ThreadPoolTaskRunner

    if dask is None or dask == "":
        return ThreadPoolTaskRunner()
    from prefect_dask import DaskTaskRunner

    if dask == "local":
        return DaskTaskRunner(
            cluster_kwargs={
                "n_workers": 2,
                "threads_per_worker": 1,
                "processes": True,
                "host": "127.0.0.1",
                "dashboard_address": None,
            }
        )
    if dask.startswith(("tcp://", "tls://")):
        return DaskTaskRunner(address=dask)
    raise ValueError(f"dask must be None, 'local' or a scheduler address like tcp://127.0.0.1:8786, got {dask!r}")


# ----------------------------------------------------------------------------------- tasks
@task(name="load-champion", cache_policy=NO_CACHE)
def load_champion_task(model_task: str, registry: str | None) -> Any:
    """The champion classifier of ``model_task``."""
    return load_champion(model_task, registry)


@task(name="gather-labelled-runs", cache_policy=NO_CACHE)
def gather_labelled_runs(model_task: str, catalog_uri: str | None, scans_file: str | None = None) -> list[LabelledScan]:
    """Every successfully finished run labelled for ``model_task``, oldest label first.

    With ``scans_file`` the labelled scans come from a scan archive
    (:mod:`flows.scan_archive`) instead of the catalog. Run data are cached under
    ``XRD_AGENT_HOME/cache/scans`` (labels are always read fresh from the catalog).
    """
    if scans_file:
        from flows.scan_archive import load_scans

        scans = load_scans(scans_file)
    else:
        from storage.catalog import open_catalog, xrd_agent_home
        from storage.scans import labelled_scans

        cache = xrd_agent_home() / "cache" / "scans"
        scans = labelled_scans(open_catalog(catalog_uri), model_task, cache_dir=cache)
    return sorted(scans, key=lambda s: s.label_time)


@task(name="build-training-data", cache_policy=NO_CACHE)
def build_training_data(
    scans: list[LabelledScan], model_task: str, base_per_class: int, n_members: int, seed: int
) -> Any:
    """Base data (simulated patterns + the measured training part) + labelled scans as ``TrainingData``.

    Calibration hold-out folds: every member leaves out one fold so the
    temperature is fitted on patterns it never trained on. Near-duplicates share
    a fold (scans of one sample; measured patterns of one group); simulated rows
    are spread at random.
    """
    from training.simulate import simulate_training_set
    from training.fit import TrainingData

    gridded = grid_scans(scans, model_task)
    m_values, m_masks, m_labels, m_groups = measured_training_part(model_task)
    sim_values, sim_labels, _ = simulate_training_set(base_per_class, seed=seed, task=model_task)
    # one id space for the near-duplicate groups of scans and measured patterns
    groups = np.concatenate([gridded.groups, (gridded.groups.max() + 1 if len(gridded) else 0) + m_groups])
    rng = np.random.default_rng(seed)
    if n_members >= 2:
        order = rng.permutation(int(groups.max()) + 1)
        real_folds = (order[groups] % n_members).astype(np.int64)
        sim_folds = rng.integers(0, n_members, sim_labels.size).astype(np.int64)
    else:
        real_folds = np.full(groups.size, -1, np.int64)
        sim_folds = np.full(sim_labels.size, -1, np.int64)
    n_real = groups.size
    return TrainingData(
        values=np.concatenate([gridded.values, m_values, sim_values.astype(np.float32)]),
        masks=np.concatenate([gridded.masks, m_masks, np.ones(sim_values.shape, dtype=bool)]),
        labels=np.concatenate([gridded.labels, m_labels, sim_labels.astype(np.int64)]),
        is_measured=np.concatenate([np.ones(n_real, bool), np.zeros(sim_labels.size, bool)]),
        holdout_fold=np.concatenate([real_folds, sim_folds]),
    )


@task(name="fit-member", cache_policy=NO_CACHE)
def fit_member_task(data: Any, member_index: int, model_task: str, config: Any, torch_threads: int | None) -> Any:
    """Train one ensemble member (``training.fit.fit_member``)."""
    import torch

    from training.fit import fit_member

    if torch_threads:
        torch.set_num_threads(torch_threads)
    return fit_member(data, member_index, task=model_task, config=config)


def train_members(data: Any, model_task: str, config: Any, dask: str | None) -> list[Any]:
    """Map ``fit-member`` over the ensemble in a sub-flow on the chosen task runner.

    The sub-flow takes no parameters (the data is closed over) so Prefect never
    tries to serialise the training arrays as flow-run parameters.
    """
    torch_threads = 1 if dask else None  # Dask workers: one thread each, no oversubscription

    @flow(name="train-members", task_runner=make_task_runner(dask), validate_parameters=False)
    def train_members_flow() -> list[Any]:
        futures = fit_member_task.map(
            data=unmapped(data),
            member_index=list(range(config.n_members)),
            model_task=unmapped(model_task),
            config=unmapped(config),
            torch_threads=unmapped(torch_threads),
        )
        return [future.result() for future in futures]

    return train_members_flow()


@task(name="assemble-challenger", cache_policy=NO_CACHE)
def assemble_challenger(
    results: list[Any], data: Any, model_task: str, config: Any, metadata: dict[str, Any]
) -> Any:
    """``Classifier.from_members`` with a temperature fitted on the members' held-out rows."""
    import math

    from models.classifier import Classifier
    from training.fit import calibrate_members

    results = sorted(results, key=lambda r: r.member_index)
    temperature, calibration = calibrate_members(results, data) if config.n_members >= 2 else (1.0, {"n_heldout": 0})
    if not math.isfinite(temperature) or temperature <= 0:
        temperature = 1.0
    metadata = {
        **metadata,
        "training_data_hash": data.content_hash(),
        "n_measured": int(data.is_measured.sum()),
        "n_simulated": int((~data.is_measured).sum()),
        "calibration": calibration,
    }
    return Classifier.from_members(
        [r.state for r in results], task=model_task, config=config, temperature=temperature, metadata=metadata
    )


def evaluate(model: Any, features: np.ndarray, labels: np.ndarray, n_classes: int) -> Evaluation:
    """Accuracy, macro F1 and confusion matrix of ``model`` on preprocessed ``features``."""
    from evaluation.metrics import confusion_matrix, f1_scores

    if len(labels) == 0:
        return Evaluation(0, None, None, np.zeros((n_classes, n_classes), int).tolist())
    predicted = np.asarray(model.predict_proba(features)).argmax(axis=1)
    matrix = confusion_matrix(labels, predicted, n_classes)
    return Evaluation(
        n=int(len(labels)),
        accuracy=float((predicted == labels).mean()),
        f1_macro=float(f1_scores(matrix)[1]),
        confusion=np.asarray(matrix, dtype=int).tolist(),
    )


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate_models(challenger: Any, champion: Any, heldout: HeldOut, new_scans: GriddedScans) -> dict[str, Evaluation]:
    """Both models on the held-out set and on the new scans."""
    n_classes = len(heldout.classes)
    new_features = new_scans.features() if len(new_scans) else np.zeros((0, 2, heldout.features.shape[-1]), np.float32)
    return {
        "challenger_heldout": evaluate(challenger, heldout.features, heldout.labels, n_classes),
        "champion_heldout": evaluate(champion, heldout.features, heldout.labels, n_classes),
        "challenger_new": evaluate(challenger, new_features, new_scans.labels, n_classes),
        "champion_new": evaluate(champion, new_features, new_scans.labels, n_classes),
    }


@task(name="promote", cache_policy=NO_CACHE)
def promote_task(challenger: Any, registry: str | None, record: dict[str, Any]) -> str:
    """Register the challenger and make it the champion (atomic pointer update)."""
    return str(promote(challenger, root=registry, record=record))


# ------------------------------------------------------------------------------- artifacts
def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def metrics_markdown(evals: dict[str, Evaluation], decision: GateDecision, info: dict[str, Any]) -> str:
    """The metrics table artifact."""
    rows = [
        "| model | version | held-out accuracy | held-out macro F1 | new-scan accuracy | new scans |",
        "|---|---|---|---|---|---|",
    ]
    for who in ("challenger", "champion"):
        held, new = evals[f"{who}_heldout"], evals[f"{who}_new"]
        rows.append(
            f"| {who} | `{info[who + '_version']}` | {_fmt(held.accuracy)} (n={held.n}) | {_fmt(held.f1_macro)} "
            f"| {_fmt(new.accuracy)} | {new.n} |"
        )
    lines = [
        f"## Retrain of the {info['task']} model",
        "",
        *rows,
        "",
        f"**Gate:** {decision.reason}.",
        "",
        f"Training data: {info['n_labelled']} labelled scans ({info['n_new']} new since the champion's cut-off) "
        f"+ {info['n_measured_train']} measured (training part) + {info['n_simulated']} simulated patterns; "
        f"{info['members']} members.",
        f"Held-out set: {info['n_heldout']} measured AUTO-XRD patterns"
        + (f" ({len(info['heldout_excluded'])} excluded: replayed by labelled runs)" if info["heldout_excluded"] else "")
        + ".",
        "The challenger was trained on the new scans, so its new-scan accuracy is in-sample; "
        "the gate uses the held-out set only.",
    ]
    if info["champion_saw_heldout"]:
        lines.append(
            "**Caution:** the champion was trained on measured patterns without this held-out split, so its "
            "held-out score is (partly) in-sample and optimistic; the gate then favours keeping it."
        )
    return "\n".join(lines)


def confusion_markdown(evals: dict[str, Evaluation], classes: tuple[str, ...]) -> str:
    """Confusion matrices (rows: true class, columns: predicted) of both models on the held-out set."""
    out = []
    for who in ("challenger", "champion"):
        matrix = evals[f"{who}_heldout"].confusion
        out += [f"### {who}: held-out confusion matrix (rows true, columns predicted)", ""]
        out.append("| true \\ predicted | " + " | ".join(classes) + " |")
        out.append("|---" * (len(classes) + 1) + "|")
        for name, row in zip(classes, matrix):
            out.append(f"| **{name}** | " + " | ".join(str(v) for v in row) + " |")
        out.append("")
    return "\n".join(out)


def _flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    value = flow_run.id
    return None if value is None else str(value)


# ------------------------------------------------------------------------------------ flow
@flow(name="retrain", log_prints=True)
def retrain_flow(
    task: str = "space_group",
    members: int = DEFAULT_MEMBERS,
    steps: int | None = None,
    width: int | None = None,
    batch_size: int | None = None,
    base_per_class: int = DEFAULT_BASE_PER_CLASS,
    seed: int = 0,
    tolerance: float = DEFAULT_TOLERANCE,
    dask: str | None = None,
    force: bool = False,
    catalog_uri: str | None = None,
    registry: str | None = None,
    scans_file: str | None = None,
) -> dict[str, Any]:
    """Retrain the ``task`` model on newly labelled runs and promote it only if not worse.

    Parameters
    ----------
    task : str
        "space_group" or "dimensionality".
    members : int
        Ensemble members (each one mapped ``fit-member`` task).
    steps, width, batch_size : int, optional
        Override ``training.fit.TrainConfig`` (optimiser steps per member, channels, batch).
    base_per_class : int
        Simulated base training patterns per class.
    seed : int
        Seed of the simulated data, the folds and the training.
    tolerance : float
        The challenger may be at most this much less accurate on the held-out set (fraction).
    dask : str, optional
        None (threads), "local" (Dask LocalCluster) or a Dask scheduler address.
    force : bool
        Retrain even when no run was labelled since the champion's cut-off.
    catalog_uri : str, optional
        Served tiled catalog; default the embedded one under ``XRD_AGENT_HOME``.
    registry : str, optional
        Model registry root; default ``XRD_AGENT_HOME/models``.
    scans_file : str, optional
        Train on the labelled scans of this archive (``.npz``, see :mod:`flows.scan_archive`)
        instead of the catalog's labelled runs.

    Returns
    -------
    dict
        ``status`` ("promoted", "rejected" or "skipped"), ``promoted``, versions, metrics.
    """
    from training.fit import TrainConfig

    logger = get_run_logger()
    started = time.perf_counter()
    if members < 1 or base_per_class < 1:
        raise ValueError("members and base_per_class must be >= 1")
    overrides = {k: v for k, v in {"steps": steps, "width": width, "batch_size": batch_size}.items() if v is not None}
    config = TrainConfig(n_members=members, seed=seed, **overrides)
    decide_promotion(0.0, 0.0, tolerance)  # validates the tolerance before any work

    champion = load_champion_task(task, registry)
    cutoff = champion_cutoff(champion)
    scans = gather_labelled_runs(task, catalog_uri, scans_file)
    new = [s for s in scans if s.label_time > cutoff]
    logger.info("champion %s (label cut-off %.3f); %d labelled runs, %d new", champion.version, cutoff, len(scans), len(new))
    if not new and not force:
        message = (
            f"No run labelled for {task} since the champion's cut-off "
            f"({time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(cutoff))} UTC): nothing to retrain; "
            f"champion `{champion.version}` stays."
        )
        create_markdown_artifact(message, key="retrain-metrics", description="retrain skipped")
        create_markdown_artifact(f"Champion: `{champion.version}`", key="model-version", description="model version")
        return {"status": "skipped", "promoted": False, "champion_version": champion.version, "n_new": 0,
                "n_labelled": len(scans), "flow_run_id": _flow_run_id(), "wall_s": time.perf_counter() - started}

    split = heldout_split_id()
    champion_meta = getattr(champion, "metadata_", {})
    # A champion trained on measured patterns without this split has seen held-out ones.
    champion_saw_heldout = champion_meta.get("heldout_split") != split and int(champion_meta.get("n_measured", 0) or 0) > 0
    data = build_training_data(scans, task, base_per_class, members, seed)
    results = train_members(data, task, config, dask)
    labels_cutoff = max((s.label_time for s in scans), default=cutoff)
    challenger = assemble_challenger(
        results, data, task, config,
        {CUTOFF_KEY: labels_cutoff, "parent_version": champion.version, "n_labelled_runs": len(scans),
         "trained_by_flow_run": _flow_run_id(), "heldout_split": split},
    )

    heldout, excluded = heldout_dataset(task, replayed_stems(scans))
    evals = evaluate_models(challenger, champion, heldout, grid_scans(new, task))
    decision = decide_promotion(
        evals["challenger_heldout"].accuracy, evals["champion_heldout"].accuracy, tolerance
    )
    logger.info(decision.reason)
    previous_version = champion.version
    if decision.promote:
        promote_task(
            challenger,
            registry,
            {"heldout_accuracy": decision.challenger_accuracy, "champion_heldout_accuracy": decision.champion_accuracy,
             "flow_run": _flow_run_id(), "labels_cutoff": labels_cutoff},
        )

    info = {
        "task": task, "challenger_version": challenger.version, "champion_version": previous_version,
        "n_labelled": len(scans), "n_new": len(new), "n_simulated": int((~data.is_measured).sum()),
        "n_measured_train": int(data.is_measured.sum()) - len(scans),
        "members": members, "n_heldout": len(heldout), "heldout_excluded": excluded,
        "champion_saw_heldout": champion_saw_heldout,
    }
    create_markdown_artifact(metrics_markdown(evals, decision, info), key="retrain-metrics", description="retrain metrics")
    create_markdown_artifact(confusion_markdown(evals, heldout.classes), key="retrain-confusion-matrix",
                             description="held-out confusion matrices")
    now_champion = challenger.version if decision.promote else previous_version
    create_markdown_artifact(
        f"Champion ({task}): `{now_champion}`\n\nChallenger: `{challenger.version}` "
        f"({'promoted' if decision.promote else 'rejected'}); previous champion: `{previous_version}`.",
        key="model-version",
        description="model version",
    )
    return {
        "status": "promoted" if decision.promote else "rejected",
        "promoted": decision.promote,
        "reason": decision.reason,
        "challenger_version": challenger.version,
        "previous_champion_version": previous_version,
        "champion_version": now_champion,
        "n_labelled": len(scans),
        "n_new": len(new),
        "n_heldout": len(heldout),
        "heldout_excluded": excluded,
        "champion_saw_heldout": champion_saw_heldout,
        "metrics": {k: dataclasses.asdict(v) for k, v in evals.items()},
        "flow_run_id": _flow_run_id(),
        "wall_s": time.perf_counter() - started,
    }
