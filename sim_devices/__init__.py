"""xrd-agent sim_devices: a simulated X-ray diffractometer built from ophyd devices.

A `SimClock` that moves and exposures advance instead of sleeping, a `TwoThetaMotor`, a
`PointDetector` counting Poisson photons through an acceptance window
(`sim_devices.physics.expected_counts`), and a sample library of replayed AUTO-XRD
measurements and simulated thin films (`sim_devices.samples`). No bluesky, no torch.
"""

from sim_devices.beamline import SimulatedBeamline, make_beamline
from sim_devices.clock import SimClock
from sim_devices.detector import PointDetector
from sim_devices.motor import TwoThetaMotor
from sim_devices.samples import (
    Sample,
    ThinFilm,
    get_sample,
    list_samples,
    replay_measured,
    sample_library,
    simulate_thin_film,
)

__all__ = [
    "PointDetector",
    "Sample",
    "SimClock",
    "SimulatedBeamline",
    "ThinFilm",
    "TwoThetaMotor",
    "get_sample",
    "list_samples",
    "make_beamline",
    "replay_measured",
    "sample_library",
    "simulate_thin_film",
]
