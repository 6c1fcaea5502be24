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
Symbols are normalised first (``P63/mmc``, ``pm-3m``, ``194``: :mod:`storage.label_symbols`),
and a run is named by its full uid, a unique uid prefix or its scan ID
(:mod:`storage.run_lookup`).

Why the label lives in the start document's metadata and not in a document of its own:
bluesky treats the documents of a run as immutable, and a relabel must neither rewrite
history nor lose it. tiled keeps every previous version of a node's metadata as a
*revision*, so the current label is one server-side query away and every earlier one stays
readable (:func:`label_history`); the event data are never touched.
"""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from storage.label_symbols import normalise_dimensionality, normalise_space_group
from storage.run_lookup import resolve_in_catalog_db, resolve_run, run_uid
from storage.run_outcome import (
    OutcomeCache,
    has_decisions,
    n_points,
    outcome_from_catalog_db,
    outcome_from_decisions,
    outcome_from_stop,
)

#: Metadata key (inside ``start``) holding the label.
LABEL_KEY = "xrd_label"
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
        From the stop document; None when the run never stopped (crashed or still running).
    predicted : str or None
        The agent's class at the end of the run ("" when it gave none; None for a run
        without an agent, e.g. ``bp.scan``), see :mod:`storage.run_outcome`.
    confidence : float or None
        Calibrated probability of ``predicted`` (0-1; NaN when no class was given).
    points : int or None
        Events in the primary stream (stop document); None when the run never stopped.
    """

    uid: str
    scan_id: int | None
    time: float
    plan_name: str
    sample: str | None
    label: dict[str, Any] | None = field(default=None)
    exit_status: str | None = None
    predicted: str | None = None
    confidence: float | None = None
    points: int | None = None


def _validate_class(value: str | None, task: str, classes: Sequence[str]) -> str | None:
    if value is None:
        return None
    normalise = normalise_space_group if task == "space_group" else normalise_dimensionality
    try:
        return normalise(value, classes)
    except ValueError as exc:
        raise ValueError(f"{exc}; nothing was written") from None


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


def _embedded_db(catalog: Any) -> Any:
    """The embedded catalog's database (:mod:`storage.catalog_db`) when no catalog is given and
    none is served by ``$XRD_AGENT_TILED_URI``; None when tiled itself must be asked."""
    from storage.catalog import URI_ENV, embedded_paths

    if catalog is not None or os.environ.get(URI_ENV):
        return None
    from storage.catalog_db import open_catalog_db

    return open_catalog_db(embedded_paths().catalog_db)


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
    """Label one run with its space group and/or dimensionality (:func:`label_runs` of one key).

    Returns
    -------
    dict
        The label as written under ``start.xrd_label``.
    """
    ((_, label),) = label_runs([uid], space_group, dimensionality, by, catalog, classes=classes, now=now)
    return label


def label_runs(
    keys: Sequence[str],
    space_group: str | None = None,
    dimensionality: str | None = None,
    by: str | None = None,
    catalog: Any = None,
    *,
    classes: Mapping[str, Sequence[str]] | None = None,
    now: Callable[[], float] = time.time,
) -> list[tuple[str, dict[str, Any]]]:
    """Give several runs one label (space group and/or dimensionality).

    Everything is validated before the first metadata write: each key must name exactly one
    run (full uid, unique uid prefix or scan ID: :func:`storage.run_lookup.resolve_run`), each
    class is normalised (``P63/mmc`` -> ``P6_3/mmc``) and must be one the champion model of its
    task knows, and a space group and a dimensionality given together must agree (P-3m1 is
    2D). A space group given alone implies its dimensionality. Then one metadata write per run.

    Parameters
    ----------
    keys : sequence of str
        Runs: full uids, uid prefixes or scan IDs.
    space_group : str, optional
        Space group: a symbol in any usual spelling ("P-3m1", "p63/mmc") or its number.
    dimensionality : str, optional
        Dimensionality label: "0D", "2D" or "3D".
    by : str, optional
        Who labels; default the login name.
    catalog : CatalogOfBlueskyRuns, optional
        Default: the embedded catalog, through its database (:mod:`storage.catalog_db`: no tiled
        server stack to import) when no catalog is served by ``$XRD_AGENT_TILED_URI`` and its
        schema is known, else :func:`storage.catalog.open_catalog`.
    classes : mapping, optional
        Allowed classes per task (``{"space_group": [...], "dimensionality": [...]}``);
        default the task's classes (``patterns.datasets.task_classes``: every model of a task,
        the champion included, has exactly those).
    now : callable, optional
        Clock returning unix seconds (injectable for tests).

    Returns
    -------
    list of (str, dict)
        Each run's full uid and the label written under ``start.xrd_label``.

    Raises
    ------
    ValueError
        Malformed or ambiguous key, unknown class, contradicting labels or no label at all.
        Nothing is written.
    KeyError
        A key names no run. Nothing is written.
    """
    if not keys:
        raise ValueError("name at least one run; nothing was written")
    if space_group is None and dimensionality is None:
        raise ValueError("give a space group and/or a dimensionality; nothing was written")
    by = _validate_by(by)
    space_group, dimensionality = _validate_labels(space_group, dimensionality, classes)

    db = _embedded_db(catalog)
    if db is None:
        catalog = _default_catalog(catalog)
    runs: dict[str, Any] = {}
    for key in keys:
        try:
            if db is not None:
                uid, _, node_id = resolve_in_catalog_db(db, key)
                runs.setdefault(uid, node_id)
            else:
                run = resolve_run(catalog, key)
                runs.setdefault(run_uid(run), run)
        except KeyError as exc:
            raise KeyError(f"{exc.args[0]}; nothing was written") from None
        except ValueError as exc:
            raise ValueError(f"{exc}\nnothing was written") from None

    stamp = float(now())
    label = {
        "space_group": space_group,
        "dimensionality": dimensionality,
        "by": by,
        "time": stamp,
        "iso_time": datetime.fromtimestamp(stamp, tz=timezone.utc).isoformat(timespec="seconds"),
    }
    # update_metadata merges into the existing start document and keeps the
    # previous metadata as a revision (drop_revision defaults to False); the database route
    # does the same, for every run in one transaction.
    patch = {"start": {LABEL_KEY: label}}
    if db is not None:
        db.merge_metadata(list(runs.values()), patch)
    else:
        for run in runs.values():
            run.update_metadata(metadata=patch)
    return [(uid, dict(label)) for uid in runs]


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
    run = resolve_run(_default_catalog(catalog), uid)
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


def _summary(uid: str, metadata: Mapping[str, Any], decisions: Callable[[], tuple[str, float]] | None = None
             ) -> RunSummary:
    """One run's summary; ``decisions()`` (the last decision, read from the run) is called only when
    the outcome is not in the stop document."""
    start = metadata.get("start", {}) or {}
    stop = metadata.get("stop") or {}
    outcome = outcome_from_stop(stop)
    if outcome is None and decisions is not None and has_decisions(stop):
        outcome = decisions()
    predicted, confidence = outcome if outcome is not None else (None, None)
    return RunSummary(
        uid=uid,
        scan_id=start.get("scan_id"),
        time=float(start.get("time", 0.0)),
        plan_name=str(start.get("plan_name", "")),
        sample=start.get("sample") if isinstance(start.get("sample"), str) else None,
        label=start.get(LABEL_KEY),
        exit_status=stop.get("exit_status"),
        predicted=predicted,
        confidence=confidence,
        points=n_points(stop),
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
        Default: the embedded catalog, through its database (:mod:`storage.catalog_db`: no tiled
        server stack to import) when no catalog is served by ``$XRD_AGENT_TILED_URI`` and its
        schema is known, else :func:`storage.catalog.open_catalog`.
    labelled_after : float, optional
        Only runs labelled after this unix time.

    Returns
    -------
    list of RunSummary
    """
    db = _embedded_db(catalog)
    if db is not None:
        return [_summary(row.key, row.metadata, lambda row=row: outcome_from_catalog_db(db, row.node_id))
                for row in db.runs(labelled, labelled_after, LABEL_KEY)]
    from patterns.data_home import xrd_agent_home

    results = search_runs(_default_catalog(catalog), labelled, labelled_after)
    cache = OutcomeCache(xrd_agent_home() / "cache" / "run_outcomes.json")
    # items() pages through the server's answers: metadata comes with each page,
    # no request per run.
    summaries = [
        _summary(key, value.metadata, lambda key=key, value=value: cache.get(key, lambda: outcome_from_decisions(value)))
        for key, value in results.items()
    ]
    cache.save()
    return summaries
