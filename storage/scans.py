"""Labelled scans out of the catalog: (2-theta, counts, label) for training.

A run's motor and detector fields are found from its own documents (:mod:`storage.run_fields`);
the scans of many runs come from the catalog's columnar export (:mod:`storage.scan_export`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from storage.labels import LABEL_KEY, search_runs
from patterns.exposure import at_run_dwell, dwell_of_points
from storage.run_fields import detector_field, motor_field, sample_of

logger = logging.getLogger("xrd_agent.storage")

#: Label fields per task, as stored under ``start.xrd_label``.
TASK_LABEL_FIELD = {"space_group": "space_group", "dimensionality": "dimensionality"}


@dataclass(frozen=True)
class LabelledScan:
    """One labelled run, ready to be put on the model grid.

    Attributes
    ----------
    uid : str
        Run uid.
    two_theta : np.ndarray
        Motor positions in measurement order, degrees (may repeat: re-measured steps).
    intensity : np.ndarray
        Detector counts at those positions.
    label : str
        Class name for the task.
    label_time : float
        When the label was written, unix seconds.
    sample : str or None
        Sample name from the start document (a replayed measured pattern is
        "auto-xrd/<file stem>").
    """

    uid: str
    two_theta: np.ndarray
    intensity: np.ndarray
    label: str
    label_time: float
    sample: str | None


def run_sample(run: Any, stream: Any = None) -> str | None:
    """Sample name of a run: the start document's "sample", else a detector's "<name>_sample" configuration.

    ``stream`` is the run's primary stream when the caller already has it (saves a request).
    """
    start = run.metadata["start"]
    if sample_of(start) is None and stream is None:
        try:
            stream = run["primary"]
        except KeyError:
            return None
    return sample_of(start, stream.metadata.get("configuration") if stream is not None else None)


def scan_arrays(run: Any, stream: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (2-theta in degrees, detector counts) of a run's primary stream, in measurement order.

    Reads the stream's event table in one request when the run was written by
    TiledWriter (several times faster than assembling the xarray Dataset); other
    layouts go through ``primary.read()``. A run that varied its dwell per point has its counts
    rescaled to the run's dwell (`patterns.exposure.dwell_of_points`, `patterns.exposure`).

    Raises
    ------
    ValueError
        No primary stream, no motor or detector field, mismatched columns, or a per-point dwell
        the run names but does not hold.
    """
    start = run.metadata["start"]
    if stream is None:
        try:
            stream = run["primary"]
        except KeyError:
            raise ValueError(f"run {start.get('uid')} has no primary stream") from None
    x_name = motor_field(start)
    base = getattr(stream, "base", None)
    try:
        table = base["internal"] if base is not None else None
    except KeyError:
        table = None
    if table is not None:
        columns = list(table.structure().columns)
        y_name = detector_field(start, stream.metadata, columns)
        if x_name in columns:
            # The whole table in one request is faster here than a column selection.
            frame = table.read()
            return _at_run_dwell(start, frame, columns, np.asarray(frame[x_name], dtype=np.float64),
                                 np.asarray(frame[y_name], dtype=np.float64))
    data = stream.read()
    data_vars = list(data.data_vars)
    y_name = detector_field(start, stream.metadata, data_vars)
    x = np.asarray(data[x_name], dtype=np.float64)
    y = np.asarray(data[y_name], dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"run {start.get('uid')}: {x_name} and {y_name} are not matching 1D columns")
    return _at_run_dwell(start, data, data_vars, x, y)


def _at_run_dwell(start: Any, table: Any, columns: list[str], x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) with y rescaled to the run's dwell when the run varied it per point."""
    dwell = dwell_of_points(start, columns)
    if dwell is None:
        return x, y
    return x, at_run_dwell(y, np.asarray(table[dwell[0]], dtype=np.float64), dwell[1])


def _cached_arrays(cache_dir: Path | None, uid: str) -> tuple[np.ndarray, np.ndarray, str | None] | None:
    if cache_dir is None:
        return None
    path = cache_dir / f"{uid}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            sample = str(data["sample"]) or None
            return data["two_theta"].copy(), data["intensity"].copy(), sample
    except (OSError, KeyError, ValueError, EOFError):
        return None  # unreadable cache entry: read the run again


def _store_arrays(cache_dir: Path | None, uid: str, two_theta: np.ndarray, intensity: np.ndarray, sample: str | None) -> None:
    if cache_dir is None:
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".{uid}.tmp.npz"
    np.savez(tmp, two_theta=two_theta, intensity=intensity, sample=np.array(sample or ""))
    os.replace(tmp, cache_dir / f"{uid}.npz")


def labelled_scans(
    catalog: Any, task: str, labelled_after: float | None = None, cache_dir: Path | None = None
) -> list[LabelledScan]:
    """Read every run labelled for ``task`` (optionally only those labelled after a time).

    Runs that did not finish successfully or carry no label for the task are
    skipped: a half-measured scan is not training data.

    Parameters
    ----------
    catalog : CatalogOfBlueskyRuns
    task : str
        "space_group" or "dimensionality".
    labelled_after : float, optional
        Unix seconds; only labels written strictly later.
    cache_dir : Path, optional
        Keep each run's (2-theta, counts, sample) here as ``<uid>.npz``. A finished run's
        data never change (only its metadata, where the label lives, is re-read), so a
        nightly retrain reads from the catalog only the runs it has not seen before.

    Notes
    -----
    The labels come from one search (metadata pages, no request per run); the scans from
    ``cache_dir`` when there, else from the catalog's columnar export (:mod:`storage.scan_export`,
    two requests for all runs), else (a run missing from the export) from the run itself.
    """
    if task not in TASK_LABEL_FIELD:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASK_LABEL_FIELD)}")
    field = TASK_LABEL_FIELD[task]
    chosen = []
    for uid, run in search_runs(catalog, labelled=True, labelled_after=labelled_after).items():
        label = run.metadata["start"].get(LABEL_KEY) or {}
        if label.get(field) and (run.metadata.get("stop") or {}).get("exit_status") == "success":
            chosen.append((uid, run, label))
    cached = {uid: found for uid, _, _ in chosen if (found := _cached_arrays(cache_dir, uid)) is not None}
    # the export is read (whole) only when some run is not in the cache: a session's run start
    # that finds every labelled run cached reads no scan at all
    exported = _exported(catalog, [uid for uid, _, _ in chosen if uid not in cached])
    scans = []
    for uid, run, label in chosen:
        found = cached.get(uid)
        if found is None:
            found = exported.get(uid)
            if found is None:
                stream = run["primary"]
                found = (*scan_arrays(run, stream), run_sample(run, stream))
            _store_arrays(cache_dir, uid, *found)
        two_theta, intensity, sample = found
        scans.append(LabelledScan(uid=uid, two_theta=two_theta, intensity=intensity, label=str(label[field]),
                                  label_time=float(label["time"]), sample=sample))
    return scans


def _exported(catalog: Any, uids: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray, str | None]]:
    """The runs of ``uids`` found whole in the catalog's columnar export (:mod:`storage.scan_export`)."""
    from storage.scan_export import read_exported

    if not uids:
        return {}
    try:
        return read_exported(catalog.parent, uids)
    except Exception as exc:  # noqa: BLE001 - an unreadable export only makes the read slower
        logger.warning("the scan export was not read (%s: %s); reading the runs one by one", type(exc).__name__, exc)
        return {}
