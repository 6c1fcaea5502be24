"""``RE.md`` kept on disk, so scan IDs keep counting across sessions and ``xrd-agent scan`` runs.

Facility profiles keep the RunEngine's metadata in bluesky's `bluesky.utils.PersistentDict`.
That store is zict 3's ``File`` underneath, which bluesky itself documents as reliable for one
process at a time: each write deletes the file the process last wrote under a new name, so a
session and an ``xrd-agent scan`` run side by side fail with ``FileNotFoundError`` at the next
run's start, and a reader can see two ``scan_id`` files. `PersistentMetadata` is the same mapping
(msgpack, numpy-aware, every top-level assignment written at once) in one file replaced atomically
under an exclusive lock, and `next_scan_id` increments the file's ``scan_id`` under that lock:
two processes never get the same scan ID.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: The file of ``RE.md`` under the data directory.
RUN_ENGINE_MD_FILE = "run_engine_md.msgpack"


class PersistentMetadata(MutableMapping):
    """A dict of run metadata kept in one msgpack file (the RunEngine's ``md``).

    Reads come from this process' copy, refreshed from the file at every write; every top-level
    assignment or deletion re-reads the file under an exclusive lock (``fcntl.flock`` on a
    ``.lock`` file beside it), applies the change and replaces the file atomically. Changes
    inside a value (``md["sample"]["shape"] = ...``) are not written, and the next write
    replaces them by the file's value: assign the key again (``md["sample"] = sample``).

    Parameters
    ----------
    path : Path
        The file; created at the first write (its folder must exist).

    Raises
    ------
    ValueError
        If the file exists but is not a msgpack mapping (the message names it).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._cache: dict[str, Any] = self._read()

    def _read(self) -> dict[str, Any]:
        import msgpack
        import msgpack_numpy

        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            value = msgpack.unpackb(data, object_hook=msgpack_numpy.decode, raw=False, strict_map_key=False)
        except (ValueError, msgpack.UnpackException) as exc:
            raise ValueError(f"{self.path}: not a RunEngine metadata file ({exc})") from exc
        if not isinstance(value, dict):
            raise ValueError(f"{self.path}: not a RunEngine metadata file (holds {type(value).__name__})")
        return value

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _change(self, edit: Callable[[dict[str, Any]], Any]) -> Any:
        import msgpack
        import msgpack_numpy

        with self._locked():
            current = self._read()
            result = edit(current)
            partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.partial")
            partial.write_bytes(msgpack.packb(current, default=msgpack_numpy.encode, use_bin_type=True))
            os.replace(partial, self.path)
            self._cache = current
        return result

    def __getitem__(self, key: str) -> Any:
        return self._cache[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if key in self._cache and self._cache[key] is value:
            return  # the RunEngine stores the scan ID `next_scan_id` has just written: no second write
        self._change(lambda current: current.__setitem__(key, value))

    def __delitem__(self, key: str) -> None:
        if key not in self._cache:
            raise KeyError(key)
        self._change(lambda current: current.pop(key, None))

    def __iter__(self) -> Iterator[str]:
        return iter(self._cache)

    def __len__(self) -> int:
        return len(self._cache)

    def __repr__(self) -> str:
        return f"<PersistentMetadata {self.path}: {self._cache!r}>"

    def next_scan_id(self, md: Any = None) -> int:
        """Increment the file's ``scan_id`` (0 when absent) and return it: the RunEngine's ``scan_id_source``.

        Parameters
        ----------
        md : mapping, optional
            What the RunEngine passes (this object); unused.
        """

        def increment(current: dict[str, Any]) -> int:
            current["scan_id"] = int(current.get("scan_id", 0)) + 1
            return current["scan_id"]

        return self._change(increment)


def run_engine_metadata(home: Path | None = None) -> PersistentMetadata:
    """``RE.md`` of the data directory: ``<home>/run_engine_md.msgpack``.

    Parameters
    ----------
    home : Path, optional
        The data directory; default ``XRD_AGENT_HOME`` (`patterns.data_home.xrd_agent_home`).
    """
    from patterns.data_home import xrd_agent_home

    home = home if home is not None else xrd_agent_home(create=True)
    home.mkdir(parents=True, exist_ok=True)
    return PersistentMetadata(home / RUN_ENGINE_MD_FILE)


def make_run_engine(home: Path | None = None, **kwargs: Any) -> Any:
    """A RunEngine whose metadata, and so its scan IDs, persist in the data directory.

    Every process that makes its RunEngine here (the session, ``xrd-agent scan``) continues the
    same count, also when they run at the same time.

    Parameters
    ----------
    home : Path, optional
        The data directory; default ``XRD_AGENT_HOME``.
    **kwargs
        Passed on to `bluesky.RunEngine` (e.g. ``context_managers=[]``).

    Returns
    -------
    bluesky.RunEngine
    """
    from bluesky import RunEngine

    md = run_engine_metadata(home)
    RE = RunEngine(md, scan_id_source=md.next_scan_id, **kwargs)
    md["versions"] = dict(md["versions"])  # the RunEngine filled these in place: store them
    return RE
