"""A simulated diffractometer: one clock, a 2theta motor and a point detector.

>>> bl = make_beamline(sample="CsPbBr3", seed=0)
>>> # RE(bp.scan([bl.detector], bl.motor, 5, 60, 1376)); bl.clock.time() -> simulated seconds
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim_devices.clock import SimClock
from sim_devices.detector import DEFAULT_ACCEPTANCE_DEG, DEFAULT_DWELL_S, PointDetector
from sim_devices.motor import (
    DEFAULT_LIMITS_DEG,
    DEFAULT_SETTLE_TIME_S,
    DEFAULT_VELOCITY_DEG_PER_S,
    TwoThetaMotor,
)
from sim_devices.samples import Sample

DEFAULT_SAMPLE = "CsPbBr3"


@dataclass
class SimulatedBeamline:
    """The devices of one simulated diffractometer, sharing one clock.

    Attributes
    ----------
    clock : SimClock
        Simulated seconds since the beamline was made.
    motor : TwoThetaMotor
        The 2theta axis, ophyd name ``"tth"`` by default.
    detector : PointDetector
        The point detector, ophyd name ``"det"`` by default.
    """

    clock: SimClock
    motor: TwoThetaMotor
    detector: PointDetector

    @property
    def sample(self) -> Sample:
        """The sample in the beam."""
        return self.detector.current_sample

    def set_sample(self, sample: str | Sample) -> Sample:
        """Put another sample in the beam (a library name or a `Sample`) between runs.

        Raises
        ------
        ValueError
            If the name is not in the sample library.
        """
        self.detector.sample.put(sample)
        return self.sample


def make_beamline(
    sample: str | Sample = DEFAULT_SAMPLE,
    seed: int | None = 0,
    real_time: bool = False,
    *,
    dwell: float = DEFAULT_DWELL_S,
    acceptance: float = DEFAULT_ACCEPTANCE_DEG,
    velocity: float = DEFAULT_VELOCITY_DEG_PER_S,
    settle_time: float = DEFAULT_SETTLE_TIME_S,
    limits: tuple[float, float] = DEFAULT_LIMITS_DEG,
    position: float = 5.0,
    noise: str = "poisson",
    speedup: float = 1.0,
    motor_name: str = "tth",
    detector_name: str = "det",
) -> SimulatedBeamline:
    """Build a simulated diffractometer.

    Parameters
    ----------
    sample : str or Sample
        Library name (see `sim_devices.list_samples`) or a `Sample`. Default "CsPbBr3".
    seed : int or None
        Seed of the detector's Poisson generator (None: unseeded). Default 0.
    real_time : bool
        Pace moves and exposures in wall-clock time too (divided by `speedup`). Default False.
    dwell : float
        Counting time per point, s. Default 1.0.
    acceptance : float
        Detector window width, degrees 2theta. Default 0.04.
    velocity : float
        Motor speed, deg/s. Default 2.0.
    settle_time : float
        Motor settle time per move, s. Default 0.05.
    limits : tuple of float
        Motor soft limits, degrees. Default (0, 90).
    position : float
        Initial motor position, degrees. Default 5.0.
    noise : {"poisson", "none"}
        Detector noise model. Default "poisson".
    speedup : float
        Real-time pacing factor (only with `real_time`).
    motor_name, detector_name : str
        ophyd names (data keys ``tth`` and ``det_counts`` with the defaults).

    Returns
    -------
    SimulatedBeamline
    """
    clock = SimClock(real_time=real_time, speedup=speedup)
    motor = TwoThetaMotor(
        name=motor_name, clock=clock, position=position, limits=limits,
        velocity=velocity, settle_time=settle_time,
    )
    detector = PointDetector(
        name=detector_name, motor=motor, clock=clock, sample=sample, dwell=dwell,
        acceptance=acceptance, noise=noise, random_state=np.random.default_rng(seed),
    )
    return SimulatedBeamline(clock=clock, motor=motor, detector=detector)
