"""A counting detector at a real beamline, driven through three PVs.

Acquire, exposure time and counts are the whole interface a step scan needs: `trigger` puts
1 to the acquire PV with put-completion (the IOC completes the put when counting is over,
as a scaler record's ``.CNT`` or an areaDetector ``Acquire`` does), and `read` then gets the
counts. The PV names come from the beamline configuration, so the same class drives the
simulated IOC (``det:Acquire``, ``det:AcquireTime``, ``det:Counts``) and a scaler record
(``.CNT``, ``.TP``, ``.S2``).

Readings (device named ``det``): ``det_counts`` (hinted) and ``det_dwell`` (hinted, s, the exposure-time
PV, read with every point: ``adaptive_scan`` counts background steps shorter and sets it per point).
"""

from __future__ import annotations

from typing import Any

from ophyd import Device, EpicsSignal, EpicsSignalRO
from ophyd import FormattedComponent as FCpt
from ophyd.status import StatusBase


class CountingDetector(Device):
    """A point detector: put 1 to acquire, wait for the put to complete, read the counts.

    Parameters
    ----------
    prefix : str
        Common PV prefix (e.g. ``"XRD:det:"`` or ``"XF:31ID:scaler1"``).
    name : str
        ophyd name (e.g. ``"det"``).
    acquire_suffix, exposure_time_suffix, counts_suffix : str
        PV names after the prefix (``"Acquire"``, ``"AcquireTime"``, ``"Counts"``; for a
        scaler record ``".CNT"``, ``".TP"``, ``".S2"``).
    **kwargs
        Passed to `ophyd.Device`.
    """

    # counts first: a plan and every reader take the first hinted field as the counts
    counts = FCpt(EpicsSignalRO, "{prefix}{_counts_suffix}", kind="hinted")
    acquire = FCpt(EpicsSignal, "{prefix}{_acquire_suffix}", put_complete=True, kind="omitted")
    dwell = FCpt(EpicsSignal, "{prefix}{_exposure_time_suffix}", kind="hinted")  # in the LiveTable: why counts dip

    def __init__(self, prefix: str, *, name: str, acquire_suffix: str = "Acquire",
                 exposure_time_suffix: str = "AcquireTime", counts_suffix: str = "Counts",
                 **kwargs: Any) -> None:
        self._acquire_suffix = acquire_suffix
        self._exposure_time_suffix = exposure_time_suffix
        self._counts_suffix = counts_suffix
        super().__init__(prefix, name=name, **kwargs)

    def trigger(self) -> StatusBase:
        """Start one acquisition; the status finishes when the IOC completes the put."""
        return self.acquire.set(1)
