"""A caproto IOC serving the simulated diffractometer over Channel Access.

The IOC puts an EPICS face on the same ophyd simulation as `sim_devices.make_beamline`: the
2theta axis is a **motor record** (caproto's full field set, so ophyd's ``EpicsMotor``
connects) whose moves take ``|b - a| / VELO + settle_time`` seconds of instrument time
(`sim_devices.motor.TwoThetaMotor.move_time`), and the point detector counts Poisson photons
of the sample at the motor's position (`sim_devices.detector.PointDetector`,
`sim_devices.physics.expected_counts`). Wall-clock pacing is the instrument time divided by
``speedup``, so tests run a 25-minute scan in seconds and still see real motion.

PVs (``P`` is the prefix, default ``"XRD:"``):

==========================  =====================================================================
``P tth``                   2theta motor record, degrees: ``.VAL`` target, ``.RBV`` readback,
                            ``.DMOV`` done (0 while moving), ``.MOVN``, ``.HLM``/``.LLM`` soft
                            limits (a target outside them is refused and sets ``.LVIO``),
                            ``.VELO`` deg/s, ``.STOP`` (1 stops where the axis is), ``.EGU``
``P det:AcquireTime``       exposure (dwell) per acquisition, s
``P det:Acquire``           put 1 to count; returns to 0, and the put completes, when counted
``P det:Counts``            counts of the last acquisition (read-only)
``P det:Acceptance``        receiving-window width, degrees 2theta (read-only)
``P det:Sample``            library name of the sample in the beam (read-only)
``P SimTime``               instrument seconds spent since the IOC started (read-only)
==========================  =====================================================================

The server binds 127.0.0.1 only, on the
port of ``EPICS_CA_SERVER_PORT`` (5064 by default). Start it with ``xrd-agent ioc`` (`serve`).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from caproto import ChannelType
from caproto.server import PVGroup, pvproperty
from ophyd.utils import LimitError

from sim_devices.beamline import DEFAULT_SAMPLE, SimulatedBeamline, make_beamline

DEFAULT_PREFIX = "XRD:"
DEFAULT_SPEEDUP = 1.0
#: How often a moving axis publishes its readback, Hz (a motor record's RBV updates while moving).
READBACK_RATE_HZ = 20.0
LOOPBACK = "127.0.0.1"


class DiffractometerIOC(PVGroup):
    """PVs of one simulated diffractometer (see the module docstring for the list).

    Parameters
    ----------
    beamline : SimulatedBeamline
        The simulation the PVs drive; it must not pace itself (``real_time=False``): the IOC
        does the waiting, so other requests are served during a move or an exposure.
    speedup : float
        Wall-clock waits are instrument time / `speedup` (> 0).
    **kwargs
        Passed to `caproto.server.PVGroup` (``prefix``).
    """

    tth = pvproperty(value=0.0, name="tth", record="motor", precision=4, doc="2theta axis, deg")
    acquire_time = pvproperty(value=1.0, name="det:AcquireTime", units="s", precision=3)
    acquire = pvproperty(value=0, name="det:Acquire", dtype=ChannelType.LONG)
    counts = pvproperty(value=0, name="det:Counts", dtype=ChannelType.LONG, read_only=True)
    acceptance = pvproperty(value=0.04, name="det:Acceptance", units="deg", read_only=True, precision=4)
    sample = pvproperty(value="", name="det:Sample", dtype=ChannelType.STRING, read_only=True)
    sim_time = pvproperty(value=0.0, name="SimTime", units="s", read_only=True, precision=3)

    def __init__(self, *, beamline: SimulatedBeamline, speedup: float = DEFAULT_SPEEDUP, **kwargs: Any) -> None:
        if not speedup > 0:
            raise ValueError(f"DiffractometerIOC: speedup must be > 0, got {speedup!r}")
        if beamline.clock.real_time:
            raise ValueError("DiffractometerIOC: the beamline must not pace itself (real_time=False)")
        super().__init__(**kwargs)
        self.beamline = beamline
        self.speedup = float(speedup)
        self._move_task: asyncio.Task | None = None

    @tth.startup
    async def tth(self, instance: Any, async_lib: Any) -> None:
        """Publish the simulation's state: position, limits, velocity, detector configuration."""
        motor, detector = self.beamline.motor, self.beamline.detector
        fields = instance.field_inst
        low, high = motor.limits
        await instance.write(motor.position, verify_value=False)
        await fields.user_readback_value.write(motor.position)
        await fields.user_low_limit.write(low)
        await fields.user_high_limit.write(high)
        await fields.velocity.write(float(motor.velocity.get()))
        await fields.engineering_units.write("deg")
        await instance.write_metadata(lower_ctrl_limit=low, upper_ctrl_limit=high)
        for field in fields.pvdb.values():  # .RBV and the rest show 4 decimals, as .VAL does
            if hasattr(field, "precision"):
                await field.write_metadata(precision=instance.precision)
        await self.acquire_time.write(float(detector.dwell.get()))
        await self.acceptance.write(float(detector.acceptance.get()))
        await self.sample.write(detector.current_sample.name[:39])  # DBR_STRING holds 40 bytes

    @tth.putter
    async def tth(self, instance: Any, value: float) -> float:
        """A put to ``.VAL``: refuse a target outside the limits, else start the move."""
        fields = instance.field_inst
        motor = self.beamline.motor
        # the record's limits and speed are the truth: a client may have written HLM, LLM, VELO
        limits = (float(fields.user_low_limit.value), float(fields.user_high_limit.value))
        motor.low_limit.put(min(limits))
        motor.high_limit.put(max(limits))
        motor.velocity.put(float(fields.velocity.value))
        try:
            target = motor.check_value(value)
        except LimitError:
            await fields.limit_violation.write(1)
            raise
        await fields.limit_violation.write(0)
        if self._move_task is not None and not self._move_task.done():
            self._move_task.cancel()
        await fields.done_moving_to_value.write(0)
        await fields.motor_is_moving.write(1)
        await fields.direction_of_travel.write(1 if target >= motor.position else 0)
        self._move_task = asyncio.get_running_loop().create_task(self._move(instance, target))
        return target

    async def _move(self, instance: Any, target: float) -> None:
        """Travel to `target`, publishing the readback; a ``.STOP`` ends the move where it is."""
        fields = instance.field_inst
        motor = self.beamline.motor
        start = motor.position
        wall = motor.move_time(target) / self.speedup
        began = time.monotonic()
        end = target
        await fields.stop.write(0)
        while (elapsed := time.monotonic() - began) < wall:
            if fields.stop.value:
                end = start + (target - start) * min(1.0, elapsed / wall)
                break
            await fields.user_readback_value.write(start + (target - start) * elapsed / wall)
            await asyncio.sleep(min(1.0 / READBACK_RATE_HZ, wall - elapsed))
        motor.set(end)  # advances the simulated clock by the time this move took
        if end != target:
            await instance.write(end, verify_value=False)
            await fields.stop.write(0)
        await fields.user_readback_value.write(end)
        await fields.dial_readback_value.write(end)
        await self.sim_time.write(self.beamline.clock.time())
        await fields.motor_is_moving.write(0)
        await fields.done_moving_to_value.write(1)

    @acquire.putter
    async def acquire(self, instance: Any, value: int) -> int:
        """Count for ``AcquireTime`` at the axis position; the put completes when counted."""
        if not value:
            return 0
        detector = self.beamline.detector
        detector.dwell.put(float(self.acquire_time.value))
        started = time.monotonic()
        status = detector.trigger()  # the clock is not paced: counted at once
        status.wait(1.0)
        exposure = float(detector.dwell.get()) + float(detector.readout_time.get())
        await asyncio.sleep(max(0.0, exposure / self.speedup - (time.monotonic() - started)))
        await self.counts.write(int(detector.counts.get()))
        await self.sim_time.write(self.beamline.clock.time())
        return 0

    @acquire_time.putter
    async def acquire_time(self, instance: Any, value: float) -> float:
        """Refuse an exposure that is not a positive number of seconds."""
        self.beamline.detector.dwell.put(float(value))  # raises ValueError naming the signal
        return float(value)


def serve(
    *, prefix: str = DEFAULT_PREFIX, sample: str = DEFAULT_SAMPLE, seed: int | None = 0,
    port: int | None = None, speedup: float = DEFAULT_SPEEDUP,
) -> None:
    """Serve the diffractometer's PVs on the loopback interface until interrupted.

    Parameters
    ----------
    prefix : str
        PV prefix.
    sample : str
        Library name of the sample (`sim_devices.list_samples`).
    seed : int or None
        Seed of the Poisson counting noise.
    port : int, optional
        Channel Access port (TCP and UDP); default ``EPICS_CA_SERVER_PORT`` or 5064.
    speedup : float
        Instrument time / wall time (> 0).

    Raises
    ------
    ValueError
        An unknown sample or a bad speedup.
    """
    from caproto.asyncio.server import run

    if port is not None:
        os.environ["EPICS_CA_SERVER_PORT"] = str(int(port))
    interfaces = [LOOPBACK]  # never another interface, whatever EPICS_CAS_INTF_ADDR_LIST says
    ioc = DiffractometerIOC(prefix=prefix, beamline=make_beamline(sample=sample, seed=seed), speedup=speedup)
    ca_port = os.environ.get("EPICS_CA_SERVER_PORT", "5064")

    async def announce(async_lib: Any) -> None:
        # one line a supervising process (or a person) waits for before connecting
        print(f"xrd-agent ioc: serving PVs {prefix}tth, {prefix}det:* on "
              f"{' '.join(interfaces)} port {ca_port} (speedup {speedup:g})", flush=True)
        print(f"xrd-agent ioc: clients need EPICS_CA_ADDR_LIST=127.0.0.1 EPICS_CA_AUTO_ADDR_LIST=NO "
              f"EPICS_CA_SERVER_PORT={ca_port}", flush=True)

    run(ioc.pvdb, interfaces=interfaces, startup_hook=announce)
