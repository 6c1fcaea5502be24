"""Labelling runs in the catalog, and listing them.

A label is written into the run's start metadata, under ``start.xrd_label``:
``{"space_group", "dimensionality", "by", "time" (unix seconds), "iso_time",
"classes_from"}``. Under ``start`` because bluesky-tiled-plugins'
``CatalogOfBlueskyRuns.search`` prefixes every key with ``start.``, so
``cat.search(KeyPresent("xrd_label"))`` and ``Comparison("gt", "xrd_label.time", t)``
find labelled runs server-side. tiled keeps each previous version of the metadata
as a revision, so relabelling never loses who said what before
(:func:`label_history`).

A label is checked against the classes of the champion model of its task before
anything is written: a class the model cannot learn is refused with a clear error.
"""

from __future__ import annotations

import getpass
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from storage.catalog import get_run

#: Metadata key (inside ``start``) holding the label.
LABEL_KEY = "xrd_label"
#: A full bluesky uid: partial-uid lookup is broken in tiled 0.2.20, so only full ones are accepted.
_UID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
#: Longest accepted labeller name, characters.
_MAX_NAME_LENGTH = 100


@dataclass(frozen=True)
class RunSummary:
    """One line of ``xrd-agent runs``.

    Attributes
    ----------
    uid : str
        Full uid of the run.
    scan_id : int or None
        The RunEngine's scan id.
    time : float
        Start time, unix seconds.
    plan_name : str
        Plan that made the run.
    sample : str or None
        Sample name as recorded in the start document, if any.
    label : dict or None
        ``start.xrd_label`` (see module docstring), None if unlabelled.
    exit_status : str or None
        From the stop document; None when the run never stopped.
    """

    uid: str
    scan_id: int | None
    time: float
    plan_name: str
    sample: str | None
    label: dict[str, Any] | None = field(default=None)
    exit_status: str | None = None


def _validate_uid(uid: str) -> str:
    if not isinstance(uid, str) or not _UID_PATTERN.match(uid.strip().lower()):
        raise ValueError(
            f"{uid!r} is not a full run uid (36 characters, e.g. "
            "'6f84decc-21e6-4ba9-845c-9446deadf838'); partial uids are not supported, "
            "see `xrd-agent runs`"
        )
    return uid.strip().lower()


def _validate_class(value: str | None, task: str, classes: Sequence[str]) -> str | None:
    if value is None:
        return None
    if value not in classes:
        raise ValueError(
            f"unknown {task.replace('_', ' ')} {value!r}: the champion model knows "
            f"{', '.join(classes)}; nothing was written"
        )
    return value


def _validate_by(by: str | None) -> str:
    if by is None:
        by = os.environ.get("USER") or getpass.getuser()
    by = by.strip()
    if not by or len(by) > _MAX_NAME_LENGTH or not by.isprintable():
        raise ValueError(f"labeller name must be 1-{_MAX_NAME_LENGTH} printable characters, got {by!r}")
    return by


def _default_catalog(catalog: Any) -> Any:
    if catalog is not None:
        return catalog
    from storage.catalog import open_catalog

    return open_catalog()


def label_run(
    uid: str,
    space_group: str | None = None,
    dimensionality: str | None = None,
    by: str | None = None,
    catalog: Any = None,
    *,
    classes: Mapping[str, Sequence[str]] | None = None,
    now: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Label one run with its space group and/or dimensionality.

    Everything is validated before the single metadata write: the uid must be a
    full uid of a run in the catalog, each class must be one the champion model
    of its task knows, and a space group and a dimensionality given together must
    agree (P-3m1 is 2D). A space group given alone implies its dimensionality.

    Parameters
    ----------
    uid : str
        Full uid of the run.
    space_group : str, optional
        Space-group label, e.g. "P-3m1".
    dimensionality : str, optional
        Dimensionality label: "0D", "2D" or "3D".
    by : str, optional
        Who labels; default the login name.
    catalog : CatalogOfBlueskyRuns, optional
        Default :func:`storage.catalog.open_catalog`.
    classes : mapping, optional
        Allowed classes per task (``{"space_group": [...], "dimensionality": [...]}``);
        default the task's classes (``patterns.datasets.task_classes``: every model of a task,
        the champion included, has exactly those).
    now : callable, optional
        Clock returning unix seconds (injectable for tests).

    Returns
    -------
    dict
        The label as written under ``start.xrd_label``.

    Raises
    ------
    ValueError
        Bad uid, unknown class, contradicting labels or no label at all. Nothing is written.
    KeyError
        No run with this uid in the catalog. Nothing is written.
    """
    uid = _validate_uid(uid)
    if space_group is None and dimensionality is None:
        raise ValueError("give a space group and/or a dimensionality; nothing was written")
    by = _validate_by(by)
    space_group, dimensionality = _validate_labels(space_group, dimensionality, classes)

    catalog = _default_catalog(catalog)
    try:
        run = get_run(catalog, uid)
    except KeyError:
        raise KeyError(f"no run with uid {uid} in the catalog; nothing was written") from None

    stamp = float(now())
    label = {
        "space_group": space_group,
        "dimensionality": dimensionality,
        "by": by,
        "time": stamp,
        "iso_time": datetime.fromtimestamp(stamp, tz=timezone.utc).isoformat(timespec="seconds"),
    }
    # update_metadata merges into the existing start document and keeps the
    # previous metadata as a revision (drop_revision defaults to False).
    run.update_metadata(metadata={"start": {LABEL_KEY: label}})
    return label


def _validate_labels(
    space_group: str | None, dimensionality: str | None, classes: Mapping[str, Sequence[str]] | None
) -> tuple[str | None, str | None]:
    """Check each class against its task's classes and the two against each other; (space group, dimensionality).

    Parameters
    ----------
    space_group : str, optional
        Space-group label, e.g. "P-3m1".
    dimensionality : str, optional
        Dimensionality label ("0D", "2D" or "3D"); None takes the one the space group implies.
    classes : mapping, optional
        Allowed classes per task; default the task's classes (``patterns.datasets.task_classes``).

    Raises
    ------
    ValueError
        Unknown class, or a dimensionality that contradicts the space group's.
    """
    from patterns import SPACE_GROUP_TO_DIMENSIONALITY
    from patterns.datasets import task_classes

    def allowed(task: str) -> Sequence[str]:
        if classes is not None and task in classes:
            return tuple(classes[task])
        return task_classes(task)

    space_group = _validate_class(space_group, "space_group", allowed("space_group") if space_group else ())
    implied = SPACE_GROUP_TO_DIMENSIONALITY.get(space_group) if space_group else None
    if dimensionality is not None:
        dimensionality = _validate_class(dimensionality, "dimensionality", allowed("dimensionality"))
        if implied is not None and implied != dimensionality:
            raise ValueError(
                f"space group {space_group} is {implied}, not {dimensionality}; nothing was written"
            )
    else:
        dimensionality = implied
    return space_group, dimensionality


def label_history(uid: str, catalog: Any = None) -> list[dict[str, Any] | None]:
    """Return every label a run has had, oldest first, ending with the current one.

    Entries are None for revisions when the run was unlabelled.
    """
    uid = _validate_uid(uid)
    run = get_run(_default_catalog(catalog), uid)
    revisions = run.metadata_revisions[:]
    history = [rev["attributes"]["metadata"].get("start", {}).get(LABEL_KEY) for rev in revisions]
    history.append(run.metadata.get("start", {}).get(LABEL_KEY))
    # The writer's own revisions (the stop document) repeat "unlabelled": keep changes only.
    changes: list[dict[str, Any] | None] = []
    for entry in history:
        if not changes or entry != changes[-1]:
            changes.append(entry)
    if changes and changes[0] is None:
        changes = changes[1:] if len(changes) > 1 else changes
    return changes


def _summary(uid: str, metadata: Mapping[str, Any]) -> RunSummary:
    start = metadata.get("start", {}) or {}
    stop = metadata.get("stop") or {}
    return RunSummary(
        uid=uid,
        scan_id=start.get("scan_id"),
        time=float(start.get("time", 0.0)),
        plan_name=str(start.get("plan_name", "")),
        sample=start.get("sample") if isinstance(start.get("sample"), str) else None,
        label=start.get(LABEL_KEY),
        exit_status=stop.get("exit_status"),
    )


def search_runs(catalog: Any, labelled: bool | None = None, labelled_after: float | None = None) -> Any:
    """Return the catalog narrowed to labelled / unlabelled runs (server-side queries).

    Parameters
    ----------
    catalog : CatalogOfBlueskyRuns
    labelled : bool or None
        True: runs with a label; False: runs without; None: all runs.
    labelled_after : float, optional
        Only runs labelled strictly after this time, unix seconds (implies labelled).
    """
    from tiled.queries import Comparison, KeyPresent

    results = catalog
    if labelled is not None:
        results = results.search(KeyPresent(f"start.{LABEL_KEY}", exists=bool(labelled)))
    if labelled_after is not None:
        results = results.search(Comparison("gt", f"start.{LABEL_KEY}.time", float(labelled_after)))
    return results


def list_runs(
    labelled: bool | None = None, catalog: Any = None, labelled_after: float | None = None
) -> list[RunSummary]:
    """List runs in the catalog, oldest first.

    Parameters
    ----------
    labelled : bool or None
        True: only labelled runs; False: only unlabelled ones; None: all.
    catalog : CatalogOfBlueskyRuns, optional
        Default :func:`storage.catalog.open_catalog`.
    labelled_after : float, optional
        Only runs labelled after this unix time.

    Returns
    -------
    list of RunSummary
    """
    results = search_runs(_default_catalog(catalog), labelled, labelled_after)
    # items() pages through the server's answers: metadata comes with each page,
    # no request per run.
    return [_summary(key, value.metadata) for key, value in results.items()]
