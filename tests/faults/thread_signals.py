"""Send a signal to one thread of another process, as the kernel sometimes delivers a process's signal.

Python runs every signal handler in the main thread; a signal that lands on another thread reaches
the handler only when the main thread next runs Python code. The tests send SIGINT or SIGTERM
this way on purpose to show that a waiting RunEngine still handles it at once.
"""

from __future__ import annotations

import ctypes
from pathlib import Path


def worker_thread(pid: int, sig: int) -> int:
    """A thread id of process ``pid``, not its main thread, that does not block ``sig`` (from /proc)."""
    for task in sorted(Path(f"/proc/{pid}/task").iterdir(), key=lambda path: int(path.name)):
        blocked = next(line for line in (task / "status").read_text().splitlines() if line.startswith("SigBlk:"))
        if int(task.name) != pid and not int(blocked.split()[1], 16) >> (sig - 1) & 1:
            return int(task.name)
    raise AssertionError(f"process {pid} has no thread besides the main one that takes signal {sig}")


def signal_worker_thread(pid: int, sig: int) -> int:
    """Send ``sig`` to a `worker_thread` of ``pid`` (glibc's tgkill); its thread id."""
    tid = worker_thread(pid, sig)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.tgkill(pid, tid, sig) != 0:
        raise OSError(ctypes.get_errno(), f"tgkill({pid}, {tid}, {sig}) failed")
    return tid
