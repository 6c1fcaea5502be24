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
6. ``evaluate`` - challenger and champion on the same patterns, every one unseen by both
   (:mod:`flows.gate_evaluation`): the gate's held-out measured patterns (a fixed third of
   the AUTO-XRD near-duplicate groups, minus the groups of any pattern a labelled run
   replays; see :mod:`flows.dataset`), the films of unseen materials, and the scans labelled
   since the champion's training, which the challenger answers from the member that held
   out their sample's fold (grouped cross-validation);
7. the gate (:func:`flows.gate.promotion_gate`: the champion not better with 95 %
   confidence, exact McNemar, and the challenger better on the new scans) and, only if it
   passes, ``promote`` (registry write then atomic pointer rename);
8. artifacts: a markdown table of metrics, the confusion matrices, the model version.

Nothing touches the registry before step 7, so a crash anywhere earlier leaves the
champion exactly as it was.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

import flows  # noqa: F401  (Prefect home under XRD_AGENT_HOME)
from models.champion import CUTOFF_KEY, champion_cutoff, load_champion, promote
from flows.dataset import HeldOut, grid_scans, heldout_dataset, heldout_split_id, measured_training_part, replayed_stems
from flows.gate import DEFAULT_ALPHA, check_alpha, promotion_gate
from flows.gate_evaluation import (
    evaluate_parts,
    gate_scan_rows,
    held_out_fold_predictions,
    load_unseen_films,
    pooled_correct,
)
from flows.retrain_log import last_consumed, record_consumed
from flows.run_guard import watch_flow_run
from flows.train_members import fit_member_task, make_task_runner, train_members  # noqa: F401  (re-exported)
from flows.retrain_report import Evaluation, publish_artifacts
from storage.scans import LabelledScan

#: Defaults of a nightly retrain (CPU-sized: a few minutes on 2 cores).
DEFAULT_MEMBERS = 3
DEFAULT_BASE_PER_CLASS = 100


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
        from patterns.data_home import xrd_agent_home
        from storage.catalog import open_catalog
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
    from training.dataset import grouped_holdout_folds, stack_training_data
    from training.simulate import simulate_training_set

    gridded = grid_scans(scans, model_task)
    m_values, m_masks, m_labels, m_groups = measured_training_part(model_task)
    sim_values, sim_labels, _ = simulate_training_set(base_per_class, seed=seed, task=model_task)
    # one id space for the near-duplicate groups of scans and measured patterns
    groups = np.concatenate([gridded.groups, (gridded.groups.max() + 1 if len(gridded) else 0) + m_groups])
    real_folds, sim_folds = grouped_holdout_folds(groups, sim_labels.size, n_members, seed)
    measured = (np.concatenate([gridded.values, m_values]), np.concatenate([gridded.masks, m_masks]),
                np.concatenate([gridded.labels, m_labels]), real_folds)
    return stack_training_data(measured, (sim_values.astype(np.float32), sim_labels.astype(np.int64), sim_folds))


@task(name="assemble-challenger", cache_policy=NO_CACHE)
def assemble_challenger(
    results: list[Any], data: Any, model_task: str, config: Any, metadata: dict[str, Any]
) -> Any:
    """:func:`training.fit.assemble_classifier`: calibrated on the members' held-out rows."""
    from training.fit import assemble_classifier

    return assemble_classifier(results, data, task=model_task, config=config, metadata=metadata)


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate_models(challenger: Any, champion: Any, heldout: HeldOut, unseen: HeldOut, data: Any,
                    members: list[Any], rows: np.ndarray) -> dict[str, Evaluation]:
    """Both models on the held-out measured patterns, the films of unseen materials and the new scans.

    ``rows`` (int64 [M]) are the new scans' rows of the training ``data``; the challenger answers
    each from the member of ``members`` that held it out, and a row no member held out (one
    member) is left out for both models.
    """
    from models.preprocess import preprocess

    predicted = held_out_fold_predictions(members, rows)
    rows = rows[predicted >= 0]
    features = preprocess(data.values[rows], data.masks[rows]).astype(np.float32)
    return evaluate_parts(challenger, champion, heldout, unseen, (features, data.labels[rows], predicted[predicted >= 0]))


@task(name="promote", cache_policy=NO_CACHE)
def promote_task(challenger: Any, registry: str | None, record: dict[str, Any]) -> str:
    """Register the challenger and make it the champion (atomic pointer update)."""
    return str(promote(challenger, root=registry, record=record))


# ------------------------------------------------------------------------------- artifacts
def _flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    value = flow_run.id
    return None if value is None else str(value)


def _skipped(task: str, champion_version: str, since: float, consumed: dict[str, Any] | None, n_labelled: int,
             started: float) -> dict[str, Any]:
    """Nothing new was labelled since the last retrain (or the champion's cut-off): say so, leave the champion."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(since))
    who = (f"the last retrain (flow run {consumed.get('flow_run')}, {consumed.get('status')})" if consumed
           else "the champion")
    message = (f"Skipped, no training: no run labelled for {task} after {when} UTC, and {who} trained on every "
               f"run labelled until then. Champion `{champion_version}` stays ({n_labelled} labelled runs in all; "
               f"`--force` retrains anyway).")
    get_run_logger().info(message)
    create_markdown_artifact(message, key="retrain-metrics", description="retrain skipped")
    create_markdown_artifact(f"Champion: `{champion_version}`", key="model-version", description="model version")
    return {"status": "skipped", "promoted": False, "reason": message, "champion_version": champion_version,
            "n_new": 0, "n_labelled": n_labelled, "labels_cutoff": since, "flow_run_id": _flow_run_id(),
            "wall_s": time.perf_counter() - started}


# ------------------------------------------------------------------------------------ flow
def _train_config(members: int, base_per_class: int, seed: int, alpha: float,
                  overrides: dict[str, int | None]) -> Any:
    """The members' ``training.fit.TrainConfig``, after checking the sizes and the gate's significance level.

    ``members`` and ``base_per_class`` (simulated patterns per class) must be >= 1; ``alpha`` is in
    (0, 0.5]; ``overrides`` holds ``steps``, ``width``, ``batch_size`` (None keeps the default).
    """
    from training.fit import TrainConfig

    if members < 1 or base_per_class < 1:
        raise ValueError("members and base_per_class must be >= 1")
    config = TrainConfig(n_members=members, seed=seed, **{k: v for k, v in overrides.items() if v is not None})
    check_alpha(alpha)  # before any work
    return config


def _labelled_since_last_run(model_task: str, registry: str | None, catalog_uri: str | None, scans_file: str | None
                              ) -> tuple[Any, float, dict[str, Any] | None, list[LabelledScan], list[LabelledScan]]:
    """The champion, the "new" cut-off, the last retrain's record, every labelled run and the new ones.

    The cut-off (Unix seconds) is the later of the champion's ``labels_cutoff`` and what the last
    retrain consumed, promoted or not (:mod:`flows.retrain_log`): a rejected night does not make
    the same labels new again.

    Parameters
    ----------
    model_task : str
        "space_group" or "dimensionality".
    registry : str, optional
        Model registry root; default ``XRD_AGENT_HOME/models``.
    catalog_uri : str, optional
        Served tiled catalog; default the embedded one under ``XRD_AGENT_HOME``.
    scans_file : str, optional
        Archive of labelled scans (``.npz``) used instead of the catalog's labelled runs.
    """
    champion = load_champion_task(model_task, registry)
    consumed = last_consumed(model_task, registry)
    since = max(champion_cutoff(champion), float(consumed["labels_cutoff"]) if consumed else 0.0)
    scans = gather_labelled_runs(model_task, catalog_uri, scans_file)
    new = [s for s in scans if s.label_time > since]
    get_run_logger().info("champion %s; new means labelled after %.3f; %d labelled runs, %d new", champion.version,
                          since, len(scans), len(new))
    return champion, since, consumed, scans, new


def _saw_heldout(champion: Any, split: dict[str, Any]) -> bool:
    """A champion trained on measured patterns without this held-out split has seen held-out ones.

    A challenger of this flow records the split as ``heldout_split``; the shipped models
    (``training.fit.train_default``) record the list it is drawn from as ``gate_split``.
    """
    from models.gate_split import split_record

    champion_meta = getattr(champion, "metadata", {})
    kept_out = champion_meta.get("heldout_split") == split or champion_meta.get("gate_split") == split_record()
    return not kept_out and int(champion_meta.get("n_measured", 0) or 0) > 0


def _gate_and_promote(evals: dict[str, Evaluation], alpha: float, challenger: Any, registry: str | None,
                      labels_cutoff: float) -> Any:
    """Gate the challenger on both models' held-out results (paired) and promote it when it passes; the decision.

    Parameters
    ----------
    evals : dict
        Evaluations of :func:`evaluate_models` (``challenger_heldout``, ``champion_heldout``, ...).
    alpha : float
        Significance level of the paired test (:func:`flows.gate.promotion_gate`).
    challenger : Classifier
        The model promoted when the gate passes.
    registry : str, optional
        Model registry root; default ``XRD_AGENT_HOME/models``.
    labels_cutoff : float
        Label time (Unix seconds) of the newest labelled run the challenger trained on.
    """
    decision = promotion_gate(*pooled_correct(evals), alpha)
    get_run_logger().info(decision.reason)
    if decision.promote:
        promote_task(challenger, registry, {"gate_accuracy": decision.challenger_accuracy, "labels_cutoff": labels_cutoff,
                                            "champion_gate_accuracy": decision.champion_accuracy, "n_gate": decision.n,
                                            "p_value": decision.p_value, "flow_run": _flow_run_id()})
    return decision


def _outcome(decision: Any, info: dict[str, Any], evals: dict[str, Evaluation], now_champion: str,
             started: float) -> dict[str, Any]:
    """The flow's result: the gate's decision, versions, counts, metrics; ``started`` is a perf_counter (s)."""
    return {
        "status": "promoted" if decision.promote else "rejected", "promoted": decision.promote,
        "reason": decision.reason, "challenger_version": info["challenger_version"],
        "previous_champion_version": info["champion_version"], "champion_version": now_champion,
        **{k: info[k] for k in ("n_labelled", "n_new", "n_heldout", "heldout_excluded", "champion_saw_heldout",
                                "n_unseen", "n_gate_scans", "n_gate_replays")},
        "gate": dataclasses.asdict(decision),
        "metrics": {k: dataclasses.asdict(v) for k, v in evals.items()},
        "flow_run_id": _flow_run_id(), "wall_s": time.perf_counter() - started,
    }


@flow(name="retrain", log_prints=True)
def retrain_flow(
    task: str = "space_group",
    members: int = DEFAULT_MEMBERS,
    steps: int | None = None,
    width: int | None = None,
    batch_size: int | None = None,
    base_per_class: int = DEFAULT_BASE_PER_CLASS,
    seed: int = 0,
    alpha: float = DEFAULT_ALPHA,
    dask: str | None = None,
    force: bool = False,
    catalog_uri: str | None = None,
    registry: str | None = None,
    scans_file: str | None = None,
) -> dict[str, Any]:
    """Retrain the ``task`` model on everything labelled when something new was; promote it unless worse.

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
    alpha : float
        The challenger is rejected only when the champion is better on the same held-out
        patterns at this significance level (one-sided exact McNemar test; default 0.05).
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
    started = time.perf_counter()
    watch_flow_run()
    config = _train_config(members, base_per_class, seed, alpha,
                           {"steps": steps, "width": width, "batch_size": batch_size})

    champion, since, consumed, scans, new = _labelled_since_last_run(task, registry, catalog_uri, scans_file)
    if not new and not force:
        return _skipped(task, champion.version, since, consumed, len(scans), started)

    split = heldout_split_id()
    champion_saw_heldout = _saw_heldout(champion, split)
    data = build_training_data(scans, task, base_per_class, members, seed)
    labels_cutoff = max((s.label_time for s in scans), default=since)
    member_results = train_members(data, task, config, dask)
    challenger = assemble_challenger(
        member_results, data, task, config,
        {CUTOFF_KEY: labels_cutoff, "parent_version": champion.version, "n_labelled_runs": len(scans),
         "trained_by_flow_run": _flow_run_id(), "heldout_split": split},
    )

    heldout, excluded = heldout_dataset(task, replayed_stems(scans))
    unseen = load_unseen_films(task, sorted({s.sample for s in scans if s.sample}))
    gate_rows, n_replays = gate_scan_rows(scans, champion_cutoff(champion), task)  # rows of data = scans' order
    evals = evaluate_models(challenger, champion, heldout, unseen, data, member_results, gate_rows)
    decision = _gate_and_promote(evals, alpha, challenger, registry, labels_cutoff)
    record_consumed(task, registry, {"labels_cutoff": labels_cutoff, "status": "promoted" if decision.promote
                                     else "rejected", "flow_run": _flow_run_id(), "n_labelled": len(scans),
                                     "n_new": len(new), "challenger_version": challenger.version})
    info = {
        "task": task, "challenger_version": challenger.version, "champion_version": champion.version,
        "n_labelled": len(scans), "n_new": len(new), "n_simulated": int((~data.is_measured).sum()),
        "n_measured_train": int(data.is_measured.sum()) - len(scans),
        "members": members, "n_heldout": len(heldout), "heldout_excluded": excluded,
        "champion_saw_heldout": champion_saw_heldout, "n_unseen": len(unseen),
        "n_gate_scans": evals["champion_new"].n, "n_gate_replays": n_replays,
    }
    now_champion = publish_artifacts(evals, decision, info, heldout.classes)
    return _outcome(decision, info, evals, now_champion, started)
