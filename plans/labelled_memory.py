"""A scan labelled today is recognised on the next run, before any retraining.

The agent asks its model source for a model at every run start (`agent.callback.LocalAgent`).
:class:`LabelledMemorySource` wraps that source: each model it hands out also remembers every run
labelled in the tiled catalog after the model's training cut-off (``labels_cutoff`` in its
metadata, `models.champion.champion_cutoff`), through :meth:`models.classifier.Classifier.remember`
(the nearest-neighbour memory of `models.memory`; the network is shared, nothing is retrained).
Runs the model trained on are not added twice. A run labelled again replaces its earlier label.

A catalog that cannot be read costs the memory of new labels, never the scan: the model comes back
as it is, with one logged warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class LabelledMemorySource:
    """Model source whose models also remember the runs labelled since they were trained.

    Parameters
    ----------
    source : callable
        ``source() -> Classifier`` (e.g. `models.champion.ChampionCache(task).get`).
    task : str
        "space_group" or "dimensionality": which label of a run is read.
    catalog : callable
        ``catalog() -> CatalogOfBlueskyRuns`` (called at each run start; e.g. `storage.catalog.open_catalog`).
    cache_dir : Path, optional
        Where each labelled run's arrays are kept after the first read (`storage.scans.labelled_scans`).

    Attributes
    ----------
    remembered_ : dict of str to str
        uid -> label of the runs in the last model's memory that it did not train on.
    """

    def __init__(self, source: Callable[[], Any], task: str, catalog: Callable[[], Any],
                 cache_dir: Path | None = None) -> None:
        self.source, self.task, self.catalog, self.cache_dir = source, task, catalog, cache_dir
        self.remembered_: dict[str, str] = {}
        self._base: Any = None
        self._model: Any = None
        self._warned = False

    def __call__(self) -> Any:
        from models.champion import champion_cutoff
        from storage.scans import labelled_scans

        base = self.source()
        if base is not self._base:  # another model (a promotion): remember from scratch
            self._base, self._model, self.remembered_ = base, base, {}
        if getattr(base, "memory", None) is None:
            return base
        try:
            scans = labelled_scans(self.catalog(), self.task, labelled_after=champion_cutoff(base),
                                   cache_dir=self.cache_dir)
        except Exception as exc:  # noqa: BLE001 -- any catalog failure: scan on with what the model knows
            if not self._warned:
                logger.warning("labelled runs not read from the catalog (%s): the model remembers none "
                               "labelled since it was trained", exc)
                self._warned = True
            return self._model
        labels = {scan.uid: scan.label for scan in scans}
        if labels != self.remembered_:
            model = base
            for scan in scans:
                try:
                    model = model.remember(scan.two_theta, scan.intensity, scan.label)
                except ValueError as exc:  # off the model's grid, or a class it does not have
                    logger.warning("run %s not remembered: %s", scan.uid[:8], exc)
            self._model, self.remembered_ = model, labels
            logger.info("model remembers %d run(s) labelled since it was trained", len(labels))
        return self._model
