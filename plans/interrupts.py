"""A pause, stop or abort the user asked for is not an error: keep the RunEngine from logging it as one.

When a plan is aborted (``RE.abort()`` after a pause, or from a signal handler), bluesky logs
"Run aborted" at ERROR with the ``RequestAbort`` traceback, and sometimes "No open traces left
to close!"; with no logging configured both reach the console. The user already knows: they
asked. :func:`quiet_requested_interrupts` drops exactly those records (a plan that fails still
logs its traceback), so an abort prints bluesky's one "Aborting: ..." line and nothing else.
"""

from __future__ import annotations

import logging

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
