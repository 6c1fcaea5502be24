"""The champion model of each task, on top of :class:`models.registry.ModelRegistry`.

The registry (``XRD_AGENT_HOME/models``) stores one directory per model version
and a ``champion.json`` pointer replaced atomically (write, then ``os.replace``).
This module adds what the retrain flow and the agent need around it:

* :func:`load_champion` - the model to use at the start of a run (never mid-scan);
  the shipped default model while nothing has been promoted;
* :class:`ChampionCache` - the same, reloaded only when the pointer moved;
* :func:`champion_cutoff` - the newest label time in the champion's training data
  (stored in its ``model.json`` as ``labels_cutoff``): runs labelled later are new;
* :func:`promote` - register + point, then one line in ``promotions.jsonl``.

The classes of a task's champion are always ``patterns.datasets.task_classes(task)``
(``Classifier.load`` refuses a model with others), so nothing here reads them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.registry import ModelRegistry, default_registry_root

if TYPE_CHECKING:
    from models.classifier import Classifier

#: Append-only log of promotions, one JSON object per line, per task.
PROMOTIONS_FILE = "promotions.jsonl"
#: Metadata key (in model.json) of the label-time cut-off of the training data, unix seconds.
CUTOFF_KEY = "labels_cutoff"


def registry_dir(root: Path | str | None = None) -> Path:
    """The registry root: ``root`` if given, else ``XRD_AGENT_HOME/models``."""
    return Path(root) if root is not None else default_registry_root()


def champion_version(task: str, root: Path | str | None = None) -> str | None:
    """Version id the registry's pointer names, None while nothing has been promoted (torch-free)."""
    return ModelRegistry(registry_dir(root)).champion(task)


def load_champion(task: str = "space_group", root: Path | str | None = None) -> Classifier:
    """Load the champion of ``task``: the registry's if one was promoted, else the shipped default.

    The agent calls this when a run starts; the returned object never changes, so
    a promotion during a scan takes effect at the next run.

    Raises
    ------
    ValueError
        If the task is unknown, the champion's files are missing or corrupt, or no default
        model exists.
    """
    return ModelRegistry(registry_dir(root)).load_champion(task)


def champion_cutoff(classifier: Classifier) -> float:
    """Newest label time (unix seconds) in a model's training data; 0 when it saw no labelled runs."""
    value = getattr(classifier, "metadata", {}).get(CUTOFF_KEY, 0.0)
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def promote(
    classifier: Classifier,
    *,
    root: Path | str | None = None,
    record: dict[str, Any] | None = None,
) -> Path:
    """Make ``classifier`` the champion of its task.

    The registry stores the version directory (temporary name, then rename) and
    replaces ``champion.json`` atomically; only after that is the promotion
    appended to ``promotions.jsonl`` (informative, not authoritative).

    Parameters
    ----------
    classifier : Classifier
        Fitted model.
    root : Path, optional
        Registry root (default ``XRD_AGENT_HOME/models``).
    record : dict, optional
        JSON-ready facts for the log (accuracies, flow-run id).

    Returns
    -------
    Path
        The champion's version directory.
    """
    registry = ModelRegistry(registry_dir(root))
    previous = registry.champion(classifier.task)
    path = registry.register(classifier, champion=True)
    entry = {
        "time": time.time(),
        "task": classifier.task,
        "version": classifier.version,
        "previous": previous,
        **(record or {}),
    }
    with open(registry.root / classifier.task / PROMOTIONS_FILE, "a") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
    return path


def registry_snapshot(root: Path | str | None = None) -> dict[str, bytes]:
    """Every file under the registry with its bytes (tests and audits: did anything change?)."""
    base = registry_dir(root)
    if not base.exists():
        return {}
    return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


class ChampionCache:
    """The champion of one task, reloaded only when the registry's pointer changes.

    Meant for the agent: call :meth:`get` when a run *starts* (the start document)
    and keep the returned model for the whole run. Checking costs one small JSON
    read; a promotion made during a scan is picked up at the next run start, never
    mid-scan.

    Parameters
    ----------
    task : str
        "space_group" or "dimensionality".
    root : Path, optional
        Registry root (default ``XRD_AGENT_HOME/models``).
    """

    def __init__(self, task: str = "space_group", root: Path | str | None = None) -> None:
        self.task = ModelRegistry(registry_dir(root)).check_task(task)
        self.root = root
        self._pointer: str | None = None
        self._classifier: Classifier | None = None

    def get(self) -> Classifier:
        """The current champion (loaded again only if the pointer names another version)."""
        pointer = champion_version(self.task, self.root)
        if self._classifier is None or pointer != self._pointer:
            self._classifier = load_champion(self.task, self.root)
            self._pointer = pointer
        return self._classifier
