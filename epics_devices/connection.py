"""Connecting the configured EPICS devices, or saying which PVs did not answer.

`connect_beamline` builds the axis and the detector from an `EpicsBeamlineConfig`, waits up
to the configured timeout for every PV they need, and raises `UnreachablePVError` naming the
PVs that did not connect: a plan never starts, so nothing moves, with a device half there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ophyd import Device

from epics_devices.beamline_file import EpicsBeamlineConfig
from epics_devices.detector import CountingDetector
from epics_devices.motor import TwoThetaAxis

#: How many unconnected PV names an error message lists before "and N more".
LISTED_PVS = 6


class UnreachablePVError(ConnectionError):
    """PVs of a configured device did not connect within the timeout (the message names them)."""


@dataclass
class EpicsBeamline:
    """The connected devices of a real beamline (the same two roles as `SimulatedBeamline`)."""

    motor: TwoThetaAxis
    detector: CountingDetector
    config: EpicsBeamlineConfig


def unconnected_pvs(device: Device) -> list[str]:
    """PV names of the device's signals that are not connected (lazy ones not yet made are skipped)."""
    names = []
    for walk in device.walk_signals(include_lazy=False):
        signal = walk.item
        if not signal.connected:
            names.append(str(getattr(signal, "pvname", signal.name)))
    return names


def wait_for_devices(devices: list[Device], timeout_s: float, source: str) -> None:
    """Wait until every signal of `devices` is connected, at most `timeout_s` seconds in all.

    Raises
    ------
    UnreachablePVError
        Naming the unconnected PVs (at most `LISTED_PVS`, then a count) and `source`.
    """
    deadline = time.monotonic() + timeout_s
    for device in devices:
        try:
            device.wait_for_connection(timeout=max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            pass  # collected below, over all devices, so one message names every missing PV
    missing = summarise_pvs([pv for device in devices for pv in unconnected_pvs(device)])
    if missing:
        listed = ", ".join(missing[:LISTED_PVS])
        more = f" and {len(missing) - LISTED_PVS} more" if len(missing) > LISTED_PVS else ""
        raise UnreachablePVError(
            f"could not connect within {timeout_s:g} s to {listed}{more} (configured in {source}); "
            "is the IOC running, and does EPICS_CA_ADDR_LIST reach it?"
        )


def summarise_pvs(pvs: list[str]) -> list[str]:
    """PV names with the fields of one record folded: ``X:tth (.RBV .VAL .DMOV and 19 more fields)``.

    A motor record that is not there leaves some 20 fields unconnected; the record's name is
    what the reader needs. Other names are kept as they are, in order.
    """
    fields: dict[str, list[str]] = {}
    for pv in pvs:
        record, dot, field = pv.partition(".")
        fields.setdefault(record if dot else pv, []).append(field if dot else "")
    lines = []
    for record, names in fields.items():
        named = [f".{n}" for n in names if n]
        if len(named) <= 1:
            lines.append(record + (named[0] if named else ""))
            continue
        extra = f" and {len(named) - 3} more fields" if len(named) > 3 else ""
        lines.append(f"{record} ({' '.join(named[:3])}{extra})")
    return lines


def connect_beamline(config: EpicsBeamlineConfig) -> EpicsBeamline:
    """Make, connect and configure the beamline's EPICS devices.

    Parameters
    ----------
    config : EpicsBeamlineConfig
        From `load_beamline_file`.

    Returns
    -------
    EpicsBeamline
        Connected; the detector's exposure time set to ``config.detector.dwell_s`` when given.

    Raises
    ------
    UnreachablePVError
        If a PV does not connect within ``config.timeout_s`` (before anything is written).
    """
    motor = TwoThetaAxis(config.motor.pv, name=config.motor.name, soft_limits=config.motor.limits_deg)
    detector_config = config.detector
    detector = CountingDetector(
        detector_config.prefix, name=detector_config.name, acquire_suffix=detector_config.acquire,
        exposure_time_suffix=detector_config.exposure_time, counts_suffix=detector_config.counts,
    )
    wait_for_devices([motor, detector], config.timeout_s, config.source)
    if detector_config.dwell_s is not None:
        detector.dwell.set(detector_config.dwell_s).wait(config.timeout_s)
    return EpicsBeamline(motor=motor, detector=detector, config=config)
