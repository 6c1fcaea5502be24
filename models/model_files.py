"""The model directory on disk: ``weights.safetensors`` + ``model.json``, and its content hash.

``model.json`` holds the task, classes, grid, preprocessing version, architecture, number of
members, width, temperature, the training configuration (as recorded by training; opaque here),
metrics, the hash of the training data and the version id. The version id is a sha256 of the
weights and of the metadata (without ``version`` and ``created``), so two identical models have
one id. Nothing is ever unpickled: weights are safetensors, metadata JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save, save_file

from models.architectures import build_network
from models.grid import GRID_SIZE, GRID_START, GRID_STEP, GRID_STOP
from models.memory import TENSOR_PREFIX as MEMORY_PREFIX
from models.memory import EmbeddingMemory
from models.preprocess import PREPROCESSING_VERSION
from patterns.datasets import TASK_CLASSES

FORMAT_VERSION: int = 1
WEIGHTS_FILE: str = "weights.safetensors"
METADATA_FILE: str = "model.json"
_UNHASHED_KEYS = ("version", "created")
RESERVED_KEYS = frozenset(
    {"format_version", "task", "classes", "grid", "preprocessing_version", "architecture", "n_members", "width",
     "temperature", "config", "version", "memory"}
)
"""Keys of ``model.json`` written from the model itself; the rest is provenance (``Classifier.metadata``)."""


def grid_description() -> dict[str, float | int]:
    """The grid as recorded in model files."""
    return {"start": GRID_START, "stop": GRID_STOP, "step": GRID_STEP, "size": GRID_SIZE}


def content_version(weights: dict[str, torch.Tensor], metadata: dict[str, Any]) -> str:
    """Content hash id of a model: sha256 of the serialised weights and metadata, 16 hex digits."""
    digest = hashlib.sha256()
    digest.update(save({k: v.contiguous() for k, v in sorted(weights.items())}))
    hashed = {k: v for k, v in metadata.items() if k not in _UNHASHED_KEYS}
    digest.update(json.dumps(hashed, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def write_model_dir(directory: str | Path, weights: dict[str, torch.Tensor], metadata: dict[str, Any]) -> Path:
    """Write both files under temporary names and rename them, so a reader never sees half a model.

    Parameters
    ----------
    directory : str or Path
        Created when missing.
    weights : dict of str to torch.Tensor
        CPU, contiguous state dict.
    metadata : dict
        JSON-ready ``model.json`` content, ``version`` included.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp_weights = directory / (WEIGHTS_FILE + ".tmp")
    tmp_meta = directory / (METADATA_FILE + ".tmp")
    save_file(weights, str(tmp_weights), metadata={"version": str(metadata["version"])})
    tmp_meta.write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    os.replace(tmp_weights, directory / WEIGHTS_FILE)
    os.replace(tmp_meta, directory / METADATA_FILE)
    return directory


def read_model_dir(path: str | Path, task: str | None = None) -> tuple[Path, dict[str, Any], dict[str, torch.Tensor]]:
    """Read and check a model directory (or its ``model.json``) against this code.

    Parameters
    ----------
    path : str or Path
        The model directory or one of its two files.
    task : str, optional
        Expected task; a model of another task is refused.

    Returns
    -------
    directory : Path
    metadata : dict
        ``model.json``; its task, classes, grid and preprocessing version match this code's, and
        ``config`` is a JSON object.
    weights : dict of str to torch.Tensor
        The safetensors content.

    Raises
    ------
    ValueError
        Naming the file: missing or malformed files, another task, other classes, another grid or
        preprocessing version.
    """
    path = Path(path)
    directory = path.parent if path.name in (METADATA_FILE, WEIGHTS_FILE) else path
    meta_path, weights_path = directory / METADATA_FILE, directory / WEIGHTS_FILE
    if not meta_path.is_file() or not weights_path.is_file():
        raise ValueError(f"{directory} is not a model directory (needs {METADATA_FILE} and {WEIGHTS_FILE})")
    try:
        metadata = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{meta_path}: not valid JSON ({exc})") from None
    except OSError as exc:
        raise ValueError(f"{meta_path}: cannot be read ({exc.strerror or exc})") from None
    if not isinstance(metadata, dict):
        raise ValueError(f"{meta_path}: expected a JSON object")
    model_task = metadata.get("task")
    if model_task not in TASK_CLASSES:
        raise ValueError(f"{meta_path}: unknown task {model_task!r}")
    if task is not None and model_task != task:
        raise ValueError(f"{directory} is a {model_task!r} model, not {task!r}")
    if tuple(metadata.get("classes", ())) != TASK_CLASSES[model_task]:
        raise ValueError(
            f"{meta_path}: classes {metadata.get('classes')} do not match the {model_task} classes {list(TASK_CLASSES[model_task])}"
        )
    grid = metadata.get("grid", {})
    expected = grid_description()
    if not isinstance(grid, dict) or any(
        not isinstance(grid.get(k), (int, float)) or abs(float(grid[k]) - float(v)) > 1e-9 for k, v in expected.items()
    ):
        raise ValueError(f"{meta_path}: grid {grid} does not match this code's grid {expected}")
    if metadata.get("preprocessing_version") != PREPROCESSING_VERSION:
        raise ValueError(
            f"{meta_path}: preprocessing {metadata.get('preprocessing_version')!r} differs from this code's {PREPROCESSING_VERSION!r}"
        )
    temperature = metadata.get("temperature", 1.0)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 < temperature < math.inf:
        raise ValueError(f"{meta_path}: temperature must be a positive number, got {temperature!r}")
    if not isinstance(metadata.get("config"), dict):
        raise ValueError(f"{meta_path}: bad training configuration (config must be a JSON object)")
    for key in ("architecture", "n_members", "width"):
        if key not in metadata["config"]:
            raise ValueError(f"{meta_path}: bad training configuration (no {key!r})")
    try:
        weights = load_file(str(weights_path))
    except Exception as exc:  # noqa: BLE001 - safetensors' SafetensorError is not exported portably
        raise ValueError(f"{weights_path}: not a readable safetensors file ({exc})") from None
    return directory, metadata, weights


def _one_line(error: Exception, limit: int = 300) -> str:
    """torch's state-dict errors span one line per tensor: the first lines, joined, for a one-line error."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip() and not line.startswith("Error(s) in")]
    text = "; ".join(lines)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def network_and_memory(directory: Path, metadata: dict[str, Any], weights: dict[str, torch.Tensor]) -> tuple[torch.nn.Module, EmbeddingMemory | None]:
    """The trained network and the memory of measured patterns (None in models without one) of a read model.

    Raises
    ------
    ValueError
        Naming ``directory``: weights that do not fit the recorded network, or a malformed memory.
    """
    recorded = metadata["config"]
    n_classes = len(TASK_CLASSES[metadata["task"]])
    weights = dict(weights)
    memory_tensors = {k: weights.pop(k) for k in [k for k in weights if k.startswith(MEMORY_PREFIX)]}
    memory = None
    if "memory" in metadata:
        try:
            memory = EmbeddingMemory.from_saved(n_classes, metadata["memory"], memory_tensors)
        except ValueError as exc:
            raise ValueError(f"{directory}: {exc}") from None
    try:
        network = build_network(recorded["architecture"], n_classes, int(recorded["n_members"]), int(recorded["width"]))
        network.load_state_dict(weights)
    except (ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise ValueError(f"{directory}: weights do not fit the {recorded.get('architecture')} network "
                         f"({_one_line(exc)})") from None
    return network, memory
