"""A directory of model versions per task with an atomically updated champion pointer.

Layout under ``root`` (default ``$XRD_AGENT_HOME/models``, XRD_AGENT_HOME defaulting to
``~/.local/share/xrd-agent``)::

    <task>/<version>/weights.safetensors, model.json    one directory per content-hash version
    <task>/champion.json                                {"version": ..., "previous": ...}

A version directory is written under a temporary name and renamed into place, and the champion
pointer is written to a temporary file and ``os.replace``d, so a reader (the agent, the retrain
flow) never sees a half-written model or pointer.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from patterns.data_home import xrd_agent_home
from patterns.datasets import task_classes

if TYPE_CHECKING:  # torch only when a model is loaded: label validation reads JSON alone
    from models.classifier import Classifier

CHAMPION_FILE: str = "champion.json"
"""Name of the champion pointer file in each task's directory."""


def default_registry_root() -> Path:
    """``$XRD_AGENT_HOME/models`` (see :mod:`patterns.data_home`)."""
    return xrd_agent_home() / "models"


class ModelRegistry:
    """Model versions and champions on disk.

    Parameters
    ----------
    root : str or Path, optional
        Registry directory; :func:`default_registry_root` when None.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_registry_root()

    @staticmethod
    def check_task(task: str) -> str:
        """``task`` itself when it is a known task (``patterns.datasets.TASK_CLASSES``); ValueError otherwise."""
        task_classes(task)
        return task

    def _task_dir(self, task: str) -> Path:
        return self.root / self.check_task(task)

    def register(self, classifier: Classifier, *, champion: bool = False) -> Path:
        """Store ``classifier`` under its version id (idempotent); optionally make it champion.

        Returns
        -------
        Path
            The version directory.
        """
        task_dir = self._task_dir(classifier.task)
        task_dir.mkdir(parents=True, exist_ok=True)
        final = task_dir / classifier.version
        if not final.exists():
            staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=task_dir))
            try:
                classifier.save(staging)
                os.replace(staging, final)
            except OSError:
                shutil.rmtree(staging, ignore_errors=True)
                if not final.exists():
                    raise
        if champion:
            self.set_champion(classifier.task, classifier.version)
        return final

    def versions(self, task: str) -> list[str]:
        """Stored version ids of ``task``, oldest first (by modification time)."""
        task_dir = self._task_dir(task)
        if not task_dir.is_dir():
            return []
        dirs = [d for d in task_dir.iterdir() if d.is_dir() and not d.name.startswith(".")]
        return [d.name for d in sorted(dirs, key=lambda d: d.stat().st_mtime)]

    def load(self, task: str, version: str) -> Classifier:
        """Load one stored version (ValueError if absent or invalid)."""
        from models.classifier import Classifier

        directory = self._task_dir(task) / version
        if not directory.is_dir():
            raise ValueError(f"no {task} model version {version!r} in {self.root}")
        return Classifier.load(directory, task=task)

    def champion(self, task: str) -> str | None:
        """Version id of the current champion of ``task``, None when none is set."""
        pointer = self._task_dir(task) / CHAMPION_FILE
        if not pointer.is_file():
            return None
        try:
            return str(json.loads(pointer.read_text())["version"])
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{pointer}: malformed champion pointer ({exc})") from None

    def set_champion(self, task: str, version: str) -> None:
        """Point the champion of ``task`` at a stored ``version`` (write then os.replace)."""
        task_dir = self._task_dir(task)
        if not (task_dir / version).is_dir():
            raise ValueError(f"cannot promote {version!r}: not stored in {task_dir}")
        previous = self.champion(task)
        tmp = task_dir / (CHAMPION_FILE + ".tmp")
        tmp.write_text(json.dumps({"version": version, "previous": previous}) + "\n")
        os.replace(tmp, task_dir / CHAMPION_FILE)

    def load_champion(self, task: str, *, fallback_to_default: bool = True) -> Classifier:
        """The champion of ``task``; the shipped default model when none is set (if allowed)."""
        version = self.champion(task)
        if version is not None:
            return self.load(task, version)
        if not fallback_to_default:
            raise ValueError(f"no champion {task} model in {self.root}")
        from models import load_default

        return load_default(task)
