"""A signal the kernel hands to a thread other than the main one still reaches its handler while a plan runs.

Python runs signal handlers in the main thread, and the RunEngine's main thread sleeps while the
plan runs on the RunEngine's own thread. `xrd-agent scan` once ran a Ctrl-C'd scan to its end this
way. Here the signal is sent to the RunEngine's thread on purpose (``pthread_kill``), which is what
the kernel sometimes does with a process's SIGINT.
"""

from __future__ import annotations

import signal
import threading
import time

import bluesky.plan_stubs as bps
from bluesky import RunEngine

from plans.interrupts import SIGNAL_POLL_S, SignalAwareDuringTask


def test_a_signal_landing_on_the_run_engine_thread_is_handled_while_the_plan_runs() -> None:
    RE = RunEngine({}, context_managers=[], during_task=SignalAwareDuringTask())
    sent: list[float] = []
    handled: list[float] = []

    def plan():
        yield from bps.sleep(0.2)
        sent.append(time.monotonic())
        signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)  # this is the RunEngine's thread
        yield from bps.sleep(3.0)

    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: handled.append(time.monotonic()))
    try:
        RE(plan())
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert handled, "the handler never ran"
    assert handled[0] - sent[0] < 1.0 + SIGNAL_POLL_S, f"handled {handled[0] - sent[0]:.1f} s after the signal"
