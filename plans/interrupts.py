"""Interrupts the user asks for (Ctrl-C, SIGTERM, ``RE.abort()``): they reach the RunEngine at once and are no error.

When a plan is aborted (``RE.abort()`` after a pause, or from a signal handler), bluesky logs
"Run aborted" at ERROR with the ``RequestAbort`` traceback, and sometimes "No open traces left
to close!"; with no logging configured both reach the console. The user already knows: they
asked. :func:`quiet_requested_interrupts` drops exactly those records (a plan that fails still
logs its traceback), so an abort prints bluesky's one "Aborting: ..." line and nothing else.

:class:`SignalAwareDuringTask` keeps the main thread awake while a plan runs, so that a signal's
handler (bluesky's Ctrl-C pause, `xrd-agent scan`'s) runs when the signal comes, not when the run ends.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

#: bluesky's exceptions for a requested abort and stop (`bluesky.utils`), by name: checking them
#: needs no bluesky import, so every command can install the filter at start-up for free.
REQUESTED = ("RequestAbort", "RequestStop")
#: The logger the RunEngine logs through (bluesky.log.logger).
RUN_ENGINE_LOGGER = "bluesky"


def is_requested_interrupt(record: logging.LogRecord) -> bool:
    """Whether ``record`` reports an abort or stop the user requested (not a failure of the plan)."""
    error = record.exc_info[1] if record.exc_info else None
    message = record.getMessage()
    if message == "Run aborted" and type(error).__name__ in REQUESTED and type(error).__module__.startswith("bluesky"):
        return True
    return message == "No open traces left to close!"  # the abort's own tracing bookkeeping


def _keep(record: logging.LogRecord) -> bool:
    return not is_requested_interrupt(record)


def quiet_requested_interrupts() -> None:
    """Drop the RunEngine's log records of requested aborts and stops (idempotent)."""
    logger = logging.getLogger(RUN_ENGINE_LOGGER)
    if _keep not in logger.filters:
        logger.addFilter(_keep)


#: How long the main thread sleeps at a time while a plan runs, seconds: the longest a signal waits.
SIGNAL_POLL_S = 0.1


def _qt_plots() -> bool:
    """Whether matplotlib is loaded with a Qt backend (bluesky's default during_task then runs Qt)."""
    matplotlib = sys.modules.get("matplotlib")
    return matplotlib is not None and "qt" in matplotlib.get_backend().lower()


class SignalAwareDuringTask:
    """A RunEngine ``during_task`` (``RunEngine(during_task=...)``) under which signals are handled at once.

    Python runs signal handlers in the main thread only, when it next executes bytecode, and the
    kernel may deliver a process's signal to any of its threads. bluesky's default during_task
    (no Qt plots) blocks the main thread in one ``Event.wait()`` for the whole plan: a SIGINT that
    landed on another thread (the RunEngine's, a writer's) was handled only after the run ended,
    and a Ctrl-C'd `xrd-agent scan` ran 474 points to its end and closed "success". This one wakes
    every `SIGNAL_POLL_S`. With matplotlib's Qt backend it hands over to bluesky's
    ``DefaultDuringTask``, whose Qt loop already wakes for signals (a wakeup file descriptor).
    """

    def __init__(self) -> None:
        self._qt: Any = None

    def block(self, blocking_event: Any) -> None:
        """Return once ``blocking_event`` (a `threading.Event`) is set, running signal handlers meanwhile."""
        if _qt_plots():
            from bluesky.utils import DefaultDuringTask

            if self._qt is None:
                self._qt = DefaultDuringTask()
            self._qt.block(blocking_event)
            return
        while not blocking_event.wait(SIGNAL_POLL_S):
            pass  # back in the interpreter: a pending signal's handler runs here
