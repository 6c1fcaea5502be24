"""Which fields of a run are the 2-theta motor, the detector counts and the sample, from its own documents.

Found from the ``hints`` of the start document and of the primary stream's descriptor, so a
plain ``bp.scan`` and the agent's adaptive scan both read back without knowing device names
in advance. Used on documents as they are emitted (:mod:`storage.scan_export`) and on runs
read back from tiled (:mod:`storage.scans`): the stream's tiled metadata holds the descriptor's
``hints`` and ``configuration``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def motor_field(start: Mapping[str, Any]) -> str:
    """The scanned motor's field: the first of ``start.hints.dimensions``, else of ``start.motors``.

    Raises
    ------
    ValueError
        The start document names no motor.
    """
    dims = (start.get("hints") or {}).get("dimensions")
    if dims and dims[0] and dims[0][0]:
        return str(dims[0][0][0])
    motors = start.get("motors") or []
    if motors:
        return str(motors[0])
    raise ValueError(f"run {start.get('uid')} names no motor (no hints.dimensions, no motors)")


def detector_field(start: Mapping[str, Any], descriptor: Mapping[str, Any], data_vars: list[str]) -> str:
    """The counts field: the first hinted field of a start-document detector that the stream has.

    Parameters
    ----------
    start : mapping
        The start document.
    descriptor : mapping
        The primary stream's descriptor (or its tiled metadata): its ``hints`` are read.
    data_vars : list of str
        The fields the stream holds.

    Raises
    ------
    ValueError
        No detector field is among ``data_vars``.
    """
    hints = descriptor.get("hints") or {}
    adaptive = start.get("adaptive")
    dwell = adaptive.get("dwell_field") if isinstance(adaptive, Mapping) else None  # hinted too, never the counts
    for detector in start.get("detectors") or []:
        fields = (hints.get(detector) or {}).get("fields") or []
        for name in fields:
            if name in data_vars and name != dwell and not str(name).endswith("_dwell"):
                return str(name)
    for detector in start.get("detectors") or []:
        if detector in data_vars:
            return str(detector)
    raise ValueError(f"run {start.get('uid')}: no hinted detector field among {data_vars}")


def sample_of(start: Mapping[str, Any], configuration: Mapping[str, Any] | None = None) -> str | None:
    """Sample name: the start document's "sample", else a device's "<name>_sample" configuration value.

    ``configuration`` is the primary descriptor's (``{device: {"data": {...}}}``); None when unknown.
    """
    sample = start.get("sample")
    if isinstance(sample, str) and sample:
        return sample
    for device in (configuration or {}).values():
        for key, value in ((device or {}).get("data") or {}).items():
            if key.endswith("_sample") and isinstance(value, str) and value:
                return value
    return None


def dwell_of_points(start: Mapping[str, Any], data_vars: list[str]) -> tuple[str, float] | None:
    """The per-point dwell field and the run's dwell (s) of a run that varies its dwell, else None.

    An adaptive scan names them in ``start["adaptive"]["dwell_field"]`` / ``["dwell_s"]``; its
    counts are then rescaled to the run's dwell by every reader (`patterns.exposure.at_run_dwell`).

    Raises
    ------
    ValueError
        The run names a dwell field its stream does not hold, or no run dwell (reading such a run
        without the dwell would be a silent misread).
    """
    adaptive = start.get("adaptive")
    name = adaptive.get("dwell_field") if isinstance(adaptive, Mapping) else None
    if not name:
        return None
    if name not in data_vars:
        raise ValueError(f"run {start.get('uid')}: its points' dwell {name!r} is not among the fields {data_vars}")
    try:
        return str(name), float(adaptive["dwell_s"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"run {start.get('uid')}: names a per-point dwell but no run dwell (adaptive.dwell_s)") from exc
