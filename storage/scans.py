"""Labelled scans out of the catalog: (2-theta, counts, label) for training.

A run's motor and detector fields are found from its own documents (the
``hints`` of the start document and of the primary stream's descriptor), so a
plain ``bp.scan`` and the agent's adaptive scan both read back without
knowing device names in advance.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from storage.labels import LABEL_KEY, search_runs

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


def _motor_field(start: Mapping[str, Any]) -> str:
    dims = (start.get("hints") or {}).get("dimensions")
    if dims and dims[0] and dims[0][0]:
        return str(dims[0][0][0])
    motors = start.get("motors") or []
    if motors:
        return str(motors[0])
    raise ValueError(f"run {start.get('uid')} names no motor (no hints.dimensions, no motors)")


def _detector_field(start: Mapping[str, Any], descriptor_md: Mapping[str, Any], data_vars: list[str]) -> str:
    hints = descriptor_md.get("hints") or {}
    for detector in start.get("detectors") or []:
        fields = (hints.get(detector) or {}).get("fields") or []
        for name in fields:
            if name in data_vars:
                return str(name)
    for detector in start.get("detectors") or []:
        if detector in data_vars:
            return str(detector)
    raise ValueError(f"run {start.get('uid')}: no hinted detector field among {data_vars}")


def run_sample(run: Any, stream: Any = None) -> str | None:
    """Sample name of a run: the start document's "sample", else a detector's "<name>_sample" configuration.

    ``stream`` is the run's primary stream when the caller already has it (saves a request).
    """
    sample = run.metadata["start"].get("sample")
    if isinstance(sample, str) and sample:
        return sample
    if stream is None:
        try:
            stream = run["primary"]
        except KeyError:
            return None
    configuration = stream.metadata.get("configuration") or {}
    for device in configuration.values():
        for key, value in ((device or {}).get("data") or {}).items():
            if key.endswith("_sample") and isinstance(value, str) and value:
                return value
    return None


def scan_arrays(run: Any, stream: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (2-theta in degrees, detector counts) of a run's primary stream, in measurement order.

    Reads the stream's event table in one request when the run was written by
    TiledWriter (several times faster than assembling the xarray Dataset); other
    layouts go through ``primary.read()``.
    """
    start = run.metadata["start"]
    if stream is None:
        try:
            stream = run["primary"]
        except KeyError:
            raise ValueError(f"run {start.get('uid')} has no primary stream") from None
    x_name = _motor_field(start)
    base = getattr(stream, "base", None)
    try:
        table = base["internal"] if base is not None else None
    except KeyError:
        table = None
    if table is not None:
        columns = list(table.structure().columns)
        y_name = _detector_field(start, stream.metadata, columns)
        if x_name in columns:
            # The whole table in one request is faster here than a column selection.
            frame = table.read()
            return np.asarray(frame[x_name], dtype=np.float64), np.asarray(frame[y_name], dtype=np.float64)
    data = stream.read()
    data_vars = list(data.data_vars)
    y_name = _detector_field(start, stream.metadata, data_vars)
    x = np.asarray(data[x_name], dtype=np.float64)
    y = np.asarray(data[y_name], dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"run {start.get('uid')}: {x_name} and {y_name} are not matching 1D columns")
    return x, y


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
    """
    if task not in TASK_LABEL_FIELD:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASK_LABEL_FIELD)}")
    field = TASK_LABEL_FIELD[task]
    scans = []
    for uid, run in search_runs(catalog, labelled=True, labelled_after=labelled_after).items():
        start = run.metadata["start"]
        label = start.get(LABEL_KEY) or {}
        if not label.get(field) or (run.metadata.get("stop") or {}).get("exit_status") != "success":
            continue
        cached = _cached_arrays(cache_dir, uid)
        if cached is None:
            stream = run["primary"]
            two_theta, intensity = scan_arrays(run, stream)
            sample = run_sample(run, stream)
            _store_arrays(cache_dir, uid, two_theta, intensity, sample)
        else:
            two_theta, intensity, sample = cached
        scans.append(
            LabelledScan(
                uid=uid,
                two_theta=two_theta,
                intensity=intensity,
                label=str(label[field]),
                label_time=float(label["time"]),
                sample=sample,
            )
        )
    return scans
