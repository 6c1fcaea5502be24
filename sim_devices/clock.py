"""A simulated clock: the instrument time that moves and exposures would take.

Devices call `SimClock.elapse` instead of sleeping. In simulated mode (the default) the
clock jumps forward at once, so a scan that would take 25 minutes on the instrument runs in
seconds and still reports its true acquisition time. With ``real_time=True`` the clock also
paces the caller: the completion callback runs on a worker thread after the corresponding
wall-clock delay (divided by `speedup`), which is how an ophyd status completes late without
blocking the RunEngine's event loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class SimClock:
    """Simulated seconds since the clock was made.

    Parameters
    ----------
    real_time : bool, optional
        If True, `elapse` also waits the corresponding wall-clock time (on a thread) before
        calling its callback. Default False: no waiting.
    speedup : float, optional
        Real-time pacing runs this many times faster than the instrument (> 0). Only used when
        `real_time` is True. Default 1.0.
    """

    def __init__(self, *, real_time: bool = False, speedup: float = 1.0) -> None:
        if not speedup > 0:
            raise ValueError(f"SimClock: speedup must be > 0, got {speedup!r}")
        self.real_time = bool(real_time)
        self.speedup = float(speedup)
        self._seconds = 0.0
        self._lock = threading.Lock()

    def time(self) -> float:
        """Simulated time in seconds since the clock was made (or last reset)."""
        with self._lock:
            return self._seconds

    def advance(self, seconds: float) -> float:
        """Move simulated time forward by `seconds` (>= 0, finite) without any pacing.

        Returns
        -------
        float
            The new simulated time, seconds.
        """
        seconds = float(seconds)
        if not seconds >= 0 or seconds == float("inf"):
            raise ValueError(f"SimClock: cannot advance by {seconds!r} s; need a finite value >= 0")
        with self._lock:
            self._seconds += seconds
            return self._seconds

    def elapse(self, seconds: float, on_done: Callable[[], None]) -> None:
        """Let `seconds` of instrument time pass, then call `on_done`.

        The simulated time is advanced immediately (so a reading taken in `on_done` carries
        the time at the end of the action). In simulated mode `on_done` runs before this
        returns; in real-time mode it runs on a daemon thread after ``seconds / speedup`` of
        wall-clock time.

        Parameters
        ----------
        seconds : float
            Duration of the action on the instrument, seconds, finite and >= 0.
        on_done : callable
            Called with no arguments when the action is over (e.g. finishing an ophyd status).
        """
        self.advance(seconds)
        if not self.real_time or seconds == 0:
            on_done()
            return
        delay = seconds / self.speedup

        def wait_then_finish() -> None:
            time.sleep(delay)
            on_done()

        threading.Thread(target=wait_then_finish, name="sim-clock-pacing", daemon=True).start()

    def reset(self) -> None:
        """Set the simulated time back to 0 s."""
        with self._lock:
            self._seconds = 0.0

    def __repr__(self) -> str:
        mode = f"real_time, speedup={self.speedup}" if self.real_time else "simulated"
        return f"SimClock(t={self.time():.3f} s, {mode})"
