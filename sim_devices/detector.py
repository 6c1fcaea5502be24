"""The simulated point detector: Poisson counts of the sample's rate over a dwell time.

On `trigger` the detector reads the 2theta motor, computes the expected counts of a window
of width ``acceptance`` centred there over ``dwell`` seconds
(`sim_devices.physics.expected_counts`), draws the counts from a Poisson distribution with
its own random generator (``noise="poisson"``; ``"none"`` records the expectation), spends
``dwell + readout_time`` seconds on the simulated clock and records the clock as
``sim_time``.

Readings (data keys for a device named ``det``): ``det_counts`` (hinted, integer counts; a
float expectation with ``noise="none"``), ``det_dwell`` (hinted, s, the counting time of that point: a
scan may change it from point to point, so it is read with each, as a scaler's count time is) and
``det_sim_time`` (s). Configuration, recorded in every descriptor of every run: ``det_acceptance`` (deg),
``det_readout_time`` (s), ``det_noise``, ``det_sample`` (library name) and
``det_sample_info`` (JSON: label, source, thin-film parameters).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ophyd import Component as Cpt
from ophyd import Device, Signal
from ophyd.status import DeviceStatus
from ophyd.utils import ReadOnlyError

from sim_devices.clock import SimClock
from sim_devices.motor import TwoThetaMotor, _PositiveSignal
from sim_devices.physics import expected_counts
from sim_devices.samples import Sample, get_sample

DEFAULT_DWELL_S: float = 1.0
DEFAULT_ACCEPTANCE_DEG: float = 0.04
NOISE_MODELS: tuple[str, ...] = ("poisson", "none")


class _SampleSignal(Signal):
    """Library name of the sample in the beam; putting a name loads that sample."""

    def put(self, value: Any, **kwargs: Any) -> None:
        sample = value if isinstance(value, Sample) else get_sample(str(value))
        self.parent._sample = sample
        super().put(sample.name, **kwargs)
        self.parent.sample_info.put(sample.describe(), internal=True)


class _NoiseSignal(Signal):
    def check_value(self, value: Any) -> None:
        super().check_value(value)
        if value not in NOISE_MODELS:
            raise ValueError(f"{self.name}: noise model must be one of {NOISE_MODELS}, got {value!r}")


class _InternalSignal(Signal):
    """A signal only the device itself writes (``internal=True``)."""

    def put(self, value: Any, *, internal: bool = False, **kwargs: Any) -> None:
        if not internal:
            raise ReadOnlyError(f"{self.name} is set by the detector, not by users")
        super().put(value, **kwargs)


class PointDetector(Device):
    """Point detector counting Poisson photons from a `Sample` at the motor's 2theta.

    Parameters
    ----------
    name : str
        Device name (e.g. ``"det"``).
    motor : TwoThetaMotor
        The 2theta axis whose position is the window centre.
    clock : SimClock
        Clock that exposures spend their time on.
    sample : str or Sample
        Library name or a `Sample`.
    dwell : float, optional
        Counting time per trigger, s (> 0). Default 1.0.
    acceptance : float, optional
        Receiving-window width, degrees 2theta (> 0). Default 0.04.
    readout_time : float, optional
        Dead time added to each exposure on the clock, s (>= 0). Default 0.
    noise : {"poisson", "none"}, optional
        Counting noise model. Default "poisson".
    random_state : numpy.random.Generator, optional
        Source of the Poisson draws (inject a seeded generator for reproducible runs).
        Default: a fresh unseeded generator.
    **kwargs
        Passed to `ophyd.Device`.
    """

    counts = Cpt(_InternalSignal, value=0, kind="hinted")  # first: a plan and every reader take the first hinted field as the counts
    sim_time = Cpt(_InternalSignal, value=0.0, kind="normal")
    dwell = Cpt(_PositiveSignal, value=DEFAULT_DWELL_S, units="s", kind="hinted")  # in the LiveTable: why counts dip
    acceptance = Cpt(_PositiveSignal, value=DEFAULT_ACCEPTANCE_DEG, units="deg", kind="config")
    readout_time = Cpt(_PositiveSignal, value=0.0, allow_zero=True, units="s", kind="config")
    noise = Cpt(_NoiseSignal, value="poisson", kind="config")
    sample = Cpt(_SampleSignal, value="", kind="config")
    sample_info = Cpt(_InternalSignal, value="{}", kind="config")

    def __init__(
        self,
        *,
        name: str,
        motor: TwoThetaMotor,
        clock: SimClock,
        sample: str | Sample,
        dwell: float = DEFAULT_DWELL_S,
        acceptance: float = DEFAULT_ACCEPTANCE_DEG,
        readout_time: float = 0.0,
        noise: str = "poisson",
        random_state: np.random.Generator | None = None,
        **kwargs: Any,
    ) -> None:
        self._motor = motor
        self._clock = clock
        self._sample: Sample | None = None
        self.random_state = random_state if random_state is not None else np.random.default_rng()
        super().__init__(name=name, **kwargs)
        self.dwell.put(dwell)
        self.acceptance.put(acceptance)
        self.readout_time.put(readout_time)
        self.noise.put(noise)
        self.sample.put(sample)

    def __repr__(self) -> str:
        # cheap on purpose: ophyd statuses and log lines call repr() on every trigger
        sample = self._sample.name if self._sample is not None else None
        return f"PointDetector(name={self.name!r}, sample={sample!r})"

    @property
    def current_sample(self) -> Sample:
        """The `Sample` in the beam."""
        assert self._sample is not None  # set in __init__
        return self._sample

    def expected(self, two_theta: float | None = None) -> float:
        """Expected counts at `two_theta` (default: the motor position) with the current config."""
        position = self._motor.position if two_theta is None else two_theta
        return float(
            expected_counts(position, self.acceptance.get(), self.dwell.get(), self.current_sample)
        )

    def trigger(self) -> DeviceStatus:
        """Expose for ``dwell`` s at the motor's position; the status finishes when counted."""
        mean = self.expected()
        if self.noise.get() == "poisson":
            value: int | float = int(self.random_state.poisson(mean))
        else:
            value = mean
        status = DeviceStatus(self)
        exposure = float(self.dwell.get()) + float(self.readout_time.get())

        def finish() -> None:
            self.counts.put(value, internal=True)
            self.sim_time.put(self._clock.time(), internal=True)
            status.set_finished()

        self._clock.elapse(exposure, finish)
        return status
