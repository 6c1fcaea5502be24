"""The 2theta axis at a real beamline: an EPICS motor record with the beamline's soft limits.

``ophyd.EpicsMotor`` speaks the motor record (``.VAL``, ``.RBV``, ``.DMOV``, ``.HLM``,
``.LLM``, ``.VELO``, ``.STOP``); `TwoThetaAxis` adds limits from the beamline configuration
that can only narrow the record's (a diffractometer's safe range for this sample and set-up
is often smaller than the axis' travel), checked before any put to ``.VAL``.
"""

from __future__ import annotations

import math
from typing import Any

from ophyd import EpicsMotor
from ophyd.utils import LimitError


class TwoThetaAxis(EpicsMotor):
    """A 2theta axis on an EPICS motor record, degrees.

    Parameters
    ----------
    prefix : str
        The motor record's name (e.g. ``"XRD:tth"``).
    name : str
        ophyd name; the readback's data key (e.g. ``"tth"``).
    soft_limits : tuple of float, optional
        (low, high) degrees allowed by the beamline configuration; the axis' limits are the
        intersection with the record's ``.LLM``/``.HLM``. None: the record's alone.
    **kwargs
        Passed to `ophyd.EpicsMotor`.

    Raises
    ------
    ValueError
        If `soft_limits` are not finite with low < high.
    """

    def __init__(self, prefix: str, *, name: str, soft_limits: tuple[float, float] | None = None,
                 **kwargs: Any) -> None:
        if soft_limits is not None:
            low, high = (float(soft_limits[0]), float(soft_limits[1]))
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise ValueError(f"{name} ({prefix}): soft limits must be finite with low < high, got {soft_limits!r}")
            soft_limits = (low, high)
        self.soft_limits = soft_limits
        super().__init__(prefix, name=name, **kwargs)

    @property
    def limits(self) -> tuple[float, float]:
        """(low, high) degrees: the record's limits narrowed by `soft_limits`."""
        record_low, record_high = (float(v) for v in super().limits)
        if self.soft_limits is None:
            return (record_low, record_high)
        low, high = self.soft_limits
        if record_low < record_high:  # (0, 0) is the motor record's 'no limits'
            low, high = max(low, record_low), min(high, record_high)
        return (low, high)

    def check_value(self, pos: Any) -> None:
        """Refuse a target outside `limits` before anything is put to ``.VAL``.

        Raises
        ------
        ophyd.utils.LimitError
            (a ``ValueError``) naming the record and the limits.
        """
        low, high = self.limits
        try:
            target = float(pos)
        except (TypeError, ValueError):
            raise LimitError(f"{self.name} ({self.prefix}): target {pos!r} is not a number of degrees") from None
        if not (math.isfinite(target) and low <= target <= high):
            raise LimitError(
                f"{self.name} ({self.prefix}): target {target!r} deg is outside the limits "
                f"[{low:g}, {high:g}] deg; refusing to move"
            )
        super().check_value(target)
