"""xrd-agent models: the runtime model the agent loads (grid, preprocessing, networks, Classifier, calibration, CAMs, registry).

``models.load_default(task)`` loads the model shipped in ``models/default/<task>/``. Heavy modules
(torch) are imported only when a function here is called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from models.classifier import Classifier

DEFAULT_MODELS_DIR: Path = Path(__file__).resolve().parent / "default"
"""Shipped default models, one directory per task (written by ``xrd-agent train --default``)."""


def default_model_dir(task: str = "space_group") -> Path:
    """Directory of the shipped default model of ``task``."""
    return DEFAULT_MODELS_DIR / task


def load_default(task: str = "space_group", *, device: str | None = None) -> Classifier:
    """Load the shipped default model of ``task`` ("space_group" or "dimensionality").

    Raises
    ------
    ValueError
        If the task is unknown or the model files are missing or do not match this code.
    """
    from models.classifier import Classifier
    from patterns.datasets import task_classes

    task_classes(task)
    directory = default_model_dir(task)
    if not directory.is_dir():
        raise ValueError(f"no default {task} model at {directory}: run `xrd-agent train --default`")
    return Classifier.load(directory, task=task, device=device)


__all__ = ["DEFAULT_MODELS_DIR", "default_model_dir", "load_default"]
