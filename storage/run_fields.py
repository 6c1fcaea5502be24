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
    """The counts field: the one the run states (an adaptive scan's ``start["adaptive"]["counts_field"]``),
    else the first hinted field of a start-document detector that the stream has (the detectors
    here hint their counts first, their dwell after).

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
    adaptive = start.get("adaptive")
    stated = adaptive.get("counts_field") if isinstance(adaptive, Mapping) else None
    if stated in data_vars:
        return str(stated)
    hints = descriptor.get("hints") or {}
    for detector in start.get("detectors") or []:
        fields = (hints.get(detector) or {}).get("fields") or []
        for name in fields:
            if name in data_vars:
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

