"""The simulated 2theta motor: an ophyd positioner that spends simulated time moving.

A move from ``a`` to ``b`` takes ``|b - a| / velocity + settle_time`` seconds of instrument
time (no time at all when ``b == a``); acceleration ramps are neglected, as the settle time
dominates the short steps of a diffraction scan. Targets outside the soft limits are refused
with `ophyd.utils.LimitError` (a ``ValueError``) before anything moves.
"""

from __future__ import annotations

import math
import time
from typing import Any

from ophyd import Component as Cpt
from ophyd import Device, Signal
from ophyd.status import MoveStatus
from ophyd.utils import LimitError, ReadOnlyError

from sim_devices.clock import SimClock

DEFAULT_LIMITS_DEG: tuple[float, float] = (0.0, 90.0)
DEFAULT_VELOCITY_DEG_PER_S: float = 2.0
DEFAULT_SETTLE_TIME_S: float = 0.05


class _PositiveSignal(Signal):
    """A config signal that only accepts finite numbers > 0 (or >= 0 with ``allow_zero``)."""

    def __init__(self, *args: Any, allow_zero: bool = False, units: str = "", **kwargs: Any) -> None:
        self._allow_zero = allow_zero
        self._units = units
        super().__init__(*args, **kwargs)

    def check_value(self, value: Any) -> None:
        super().check_value(value)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{self.name}: expected a number, got {value!r}") from None
        lowest_ok = number >= 0 if self._allow_zero else number > 0
        if not (math.isfinite(number) and lowest_ok):
            bound = ">= 0" if self._allow_zero else "> 0"
            raise ValueError(f"{self.name}: must be finite and {bound} {self._units}, got {value!r}")

    def describe(self) -> dict[str, dict[str, Any]]:
        description = super().describe()
        if self._units:
            description[self.name]["units"] = self._units
        return description


class _Readback(Signal):
    """Read-only position of the parent motor (degrees)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._metadata.update(connected=True, write_access=False)

    def get(self, **kwargs: Any) -> float:
        return self.parent._position

    def put(self, value: Any, **kwargs: Any) -> None:
        raise ReadOnlyError(f"{self.name} is read-only; move the motor with set()")

    def describe(self) -> dict[str, dict[str, Any]]:
        description = super().describe()
        description[self.name].update(units="deg", precision=4)
        return description


class _Setpoint(Signal):
    """Target position of the parent motor (degrees); putting it moves the motor."""

    def put(self, value: Any, **kwargs: Any) -> None:
        self.parent.set(value)

    def get(self, **kwargs: Any) -> float:
        return self.parent._target

    def describe(self) -> dict[str, dict[str, Any]]:
        description = super().describe()
        description[self.name].update(units="deg", precision=4)
        return description


class TwoThetaMotor(Device):
    """A 2theta axis with soft limits, velocity and settle time, moving on a `SimClock`.

    Parameters
    ----------
    name : str
        Device name; the readback's data key is this name (e.g. ``"tth"``).
    clock : SimClock
        Clock that moves spend their time on.
    position : float, optional
        Initial position, degrees. Default 5.0.
    limits : tuple of float, optional
        Soft limits (low, high), degrees. Default (0, 90).
    velocity : float, optional
        Angular speed, deg/s (> 0). Default 2.0.
    settle_time : float, optional
        Time to settle after each non-zero move, seconds (>= 0). Default 0.05.
    **kwargs
        Passed to `ophyd.Device`.

    Raises
    ------
    ValueError
        Bad limits, or an initial position outside them.
    """

    readback = Cpt(_Readback, value=0.0, kind="hinted")
    setpoint = Cpt(_Setpoint, value=0.0, kind="normal")
    velocity = Cpt(_PositiveSignal, value=DEFAULT_VELOCITY_DEG_PER_S, units="deg/s", kind="config")
    settle_time = Cpt(
        _PositiveSignal, value=DEFAULT_SETTLE_TIME_S, allow_zero=True, units="s", kind="config"
    )
    low_limit = Cpt(Signal, value=DEFAULT_LIMITS_DEG[0], kind="config")
    high_limit = Cpt(Signal, value=DEFAULT_LIMITS_DEG[1], kind="config")

    egu = "deg"
    SUB_READBACK = "readback"
    _default_sub = SUB_READBACK

    def __init__(
        self,
        *,
        name: str,
        clock: SimClock,
        position: float = 5.0,
        limits: tuple[float, float] = DEFAULT_LIMITS_DEG,
        velocity: float = DEFAULT_VELOCITY_DEG_PER_S,
        settle_time: float = DEFAULT_SETTLE_TIME_S,
        **kwargs: Any,
    ) -> None:
        low, high = (float(limits[0]), float(limits[1]))
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"{name}: limits must be finite with low < high, got {limits!r}")
        self._clock = clock
        self._position = float(position)
        self._target = float(position)
        super().__init__(name=name, **kwargs)
        self.readback.name = self.name
        self.low_limit.put(low)
        self.high_limit.put(high)
        self.velocity.put(velocity)
        self.settle_time.put(settle_time)
        self.check_value(self._position)

    @property
    def limits(self) -> tuple[float, float]:
        """Soft limits (low, high), degrees."""
        return (float(self.low_limit.get()), float(self.high_limit.get()))

    @property
    def position(self) -> float:
        """Current position, degrees."""
        return self._position

    @property
    def clock(self) -> SimClock:
        """The clock this motor spends its move time on."""
        return self._clock

    def __repr__(self) -> str:
        # ophyd's Device repr walks every component; statuses call repr() on each move
        return f"TwoThetaMotor(name={self.name!r}, position={self._position!r}, limits={self.limits!r})"

    def check_value(self, value: Any) -> float:
        """Validate a target position.

        Returns
        -------
        float
            The target as a float, degrees.

        Raises
        ------
        ophyd.utils.LimitError
            (a ``ValueError``) if the target is not a finite number within the soft limits.
        """
        try:
            target = float(value)
        except (TypeError, ValueError):
            raise LimitError(f"{self.name}: target {value!r} is not a number of degrees") from None
        low, high = self.limits
        if not (math.isfinite(target) and low <= target <= high):
            raise LimitError(
                f"{self.name}: target {target!r} deg is outside the soft limits "
                f"[{low:g}, {high:g}] deg; refusing to move"
            )
        return target

    def move_time(self, target: float) -> float:
        """Instrument time a move from the current position to `target` takes, seconds."""
        distance = abs(float(target) - self._position)
        if distance == 0:
            return 0.0
        return distance / float(self.velocity.get()) + float(self.settle_time.get())

    def set(self, value: Any, **kwargs: Any) -> MoveStatus:
        """Move to `value` degrees; returns a status that finishes when the move is over.

        Raises
        ------
        ophyd.utils.LimitError
            If `value` is outside the soft limits (nothing moves).
        """
        target = self.check_value(value)
        duration = self.move_time(target)
        old_target, self._target = self._target, target
        self.setpoint._run_subs(
            sub_type=self.setpoint.SUB_VALUE, old_value=old_target, value=target, timestamp=time.time()
        )
        status = MoveStatus(positioner=self, target=target)

        def arrive() -> None:
            old_position, self._position = self._position, target
            self.readback._run_subs(
                sub_type=self.readback.SUB_VALUE, old_value=old_position, value=target, timestamp=time.time()
            )
            self._run_subs(
                sub_type=self.SUB_READBACK, old_value=old_position, value=target, timestamp=time.time()
            )
            status.set_finished()

        self._clock.elapse(duration, arrive)
        return status
