"""xrd-agent epics_devices: the beamline's real devices, ophyd over Channel Access.

A 2theta axis on an EPICS motor record (`TwoThetaAxis`, an ``ophyd.EpicsMotor`` with the
beamline's own soft limits on top of the record's), a counting detector driven through three
PVs (`CountingDetector`: acquire, exposure time, counts; a scaler record's ``.CNT``, ``.TP``
and ``.S<n>`` fit), and the configuration file that names them (`load_beamline_file`,
`connect_beamline`). No bluesky, no torch: plans drive these like any ophyd device.
"""

from epics_devices.beamline_file import EpicsBeamlineConfig, configured_beamline_file, load_beamline_file
from epics_devices.connection import EpicsBeamline, UnreachablePVError, connect_beamline
from epics_devices.detector import CountingDetector
from epics_devices.motor import TwoThetaAxis

__all__ = [
    "CountingDetector",
    "EpicsBeamline",
    "EpicsBeamlineConfig",
    "TwoThetaAxis",
    "UnreachablePVError",
    "configured_beamline_file",
    "connect_beamline",
    "load_beamline_file",
]
