"""The classifier the agent, the CLI and the retrain flow use: a calibrated ensemble with CAMs.

:class:`Classifier` follows the scikit-learn estimator shape: the constructor stores the task and
the training configuration unchanged, :meth:`Classifier.fit` learns (attributes ending in ``_``),
:meth:`Classifier.predict` answers one scan with a frozen :class:`Prediction`.

Model files are a directory with ``weights.safetensors`` and ``model.json`` (task, classes, grid,
preprocessing version, architecture, temperature, training configuration, metrics, hash of the
training data, seed). The version id is a hash of both contents. Nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors.torch import load_file, save, save_file

from models.architectures import build_network, split_members, stack_members
from models.grid import GRID_SIZE, GRID_START, GRID_STEP, GRID_STOP, coverage, to_grid
from models.preprocess import PREPROCESSING_VERSION, preprocess, preprocess_torch
from models.xrdnet import FusedXRDNet, XRDNet
from patterns import DIMENSIONALITIES, SPACE_GROUPS

if TYPE_CHECKING:
    from training.fit import TrainConfig

TASK_CLASSES: dict[str, tuple[str, ...]] = {
    "space_group": tuple(SPACE_GROUPS),
    "dimensionality": tuple(DIMENSIONALITIES),
}
"""Classes of each task, in the order of the integer labels."""
FORMAT_VERSION: int = 1
WEIGHTS_FILE: str = "weights.safetensors"
METADATA_FILE: str = "model.json"
INFERENCE_CHUNK: int = 64  # patterns per module forward pass: keeps activations in cache (measured fastest on CPU)
FUSED_CHUNK: int = 32  # patterns per fused-path pass (bench/speed.py: 16-64 within noise, 128+ slower)
_UNHASHED_KEYS = ("version", "created")


def task_classes(task: str) -> tuple[str, ...]:
    """Classes of ``task`` ("space_group" or "dimensionality"); ValueError otherwise."""
    if task not in TASK_CLASSES:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASK_CLASSES)}")
    return TASK_CLASSES[task]


def select_device(device: str | None = None) -> torch.device:
    """The requested device, else CUDA when available, else CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def grid_description() -> dict[str, float | int]:
    """The grid as recorded in model files."""
    return {"start": GRID_START, "stop": GRID_STOP, "step": GRID_STEP, "size": GRID_SIZE}


@dataclass(frozen=True)
class Prediction:
    """The classifier's answer for one (possibly partial) scan.

    Attributes
    ----------
    probabilities : np.ndarray
        float64 [n_classes], calibrated (temperature-scaled ensemble), sums to 1.
    label : str
        The most probable class.
    confidence : float
        Its probability.
    cam : np.ndarray
        float32 [1376] on :data:`models.grid.GRID`: the class activation map of ``label`` (ensemble
        mean), clipped at 0 and scaled to a maximum of 1; 0 where unmeasured. 0.24-degree bins
        for XRDNet.
    coverage : float
        Fraction of the grid that was measured, 0-1.
    classes : tuple of str
        Class names in the order of ``probabilities``.
    """

    probabilities: np.ndarray
    label: str
    confidence: float
    cam: np.ndarray
    coverage: float
    classes: tuple[str, ...] = field(default_factory=tuple)

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most probable classes with their probabilities, best first."""
        order = np.argsort(self.probabilities)[::-1][:k]
        return [(self.classes[i], float(self.probabilities[i])) for i in order]

    @property
    def entropy(self) -> float:
        """Shannon entropy of the probabilities, nats."""
        p = self.probabilities[self.probabilities > 0]
        return float(-(p * np.log(p)).sum())

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (lists instead of arrays)."""
        return {
            "probabilities": [float(p) for p in self.probabilities],
            "label": self.label,
            "confidence": float(self.confidence),
            "cam": [float(c) for c in self.cam],
            "coverage": float(self.coverage),
            "classes": list(self.classes),
        }


def content_version(weights: dict[str, torch.Tensor], metadata: dict[str, Any]) -> str:
    """Content hash id of a model: sha256 of the serialised weights and metadata, 16 hex digits."""
    digest = hashlib.sha256()
    digest.update(save({k: v.contiguous() for k, v in sorted(weights.items())}))
    hashed = {k: v for k, v in metadata.items() if k not in _UNHASHED_KEYS}
    digest.update(json.dumps(hashed, sort_keys=True).encode())
    return digest.hexdigest()[:16]


class Classifier:
    """A calibrated ensemble classifier of XRD patterns for one task.

    Parameters
    ----------
    task : str
        "space_group" (7 classes) or "dimensionality" (0D / 2D / 3D).
    config : TrainConfig, optional
        Architecture and training settings (:class:`training.fit.TrainConfig`); default settings
        when None.

    Attributes
    ----------
    network_ : torch.nn.Module
        The trained ensemble (after :meth:`fit`, :meth:`load` or :meth:`from_members`).
    temperature_ : float
        Temperature dividing the mean member logits.
    metadata_ : dict
        Training provenance: training-data hash, metrics, counts.
    version_ : str
        Content hash id.
    """

    def __init__(self, task: str = "space_group", config: TrainConfig | None = None) -> None:
        self.task = task
        self.config = config

    # -- properties ---------------------------------------------------------------------------
    @property
    def classes(self) -> tuple[str, ...]:
        """Class names in label order."""
        return task_classes(self.task)

    @property
    def version(self) -> str:
        """Content hash id of the fitted model."""
        self._check_fitted()
        return self.version_

    def _resolved_config(self) -> TrainConfig:
        from training.fit import TrainConfig  # deferred: train imports this module

        return self.config if self.config is not None else TrainConfig()

    def _check_fitted(self) -> None:
        if not hasattr(self, "network_"):
            raise RuntimeError("the classifier is not fitted: call fit(), load() or from_members() first")

    # -- learning -----------------------------------------------------------------------------
    def fit(
        self,
        values: np.ndarray,
        masks: np.ndarray,
        labels: np.ndarray,
        *,
        simulated: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> Classifier:
        """Train on gridded measured patterns (plus simulated ones); see :func:`training.fit.train_classifier`.

        Parameters
        ----------
        values : np.ndarray
            float32 [N, 1376] raw intensity on the grid.
        masks : np.ndarray
            bool [N, 1376] measured masks.
        labels : np.ndarray
            int [N] class indices (or class names).
        simulated : tuple, optional
            (X float32 [M, 1376], y int [M]) simulated raw patterns (fully measured).
        """
        from training.fit import train_classifier

        fitted = train_classifier((values, masks), labels, task=self.task, config=self._resolved_config(), simulated=simulated)
        self.__dict__.update({k: v for k, v in fitted.__dict__.items() if k.endswith("_")})
        return self

    @classmethod
    def from_members(
        cls,
        members: list[dict[str, torch.Tensor]],
        *,
        task: str,
        config: TrainConfig,
        temperature: float = 1.0,
        metadata: dict[str, Any] | None = None,
    ) -> Classifier:
        """Assemble a classifier from separately trained members (:func:`training.fit.fit_member`).

        Parameters
        ----------
        members : list of dict
            Member state dicts (each for the one-member network of ``config.architecture``).
        task : str
            The task the members were trained for.
        config : TrainConfig
            The configuration they were trained with.
        temperature : float
            Calibration temperature (:func:`models.calibrate.fit_temperature`).
        metadata : dict, optional
            Provenance to record (training-data hash, metrics, ...).
        """
        from dataclasses import replace

        if temperature <= 0 or not np.isfinite(temperature):
            raise ValueError(f"temperature must be positive, got {temperature}")
        clf = cls(task, replace(config, n_members=len(members)))
        network = build_network(config.architecture, len(clf.classes), len(members), config.width)
        network.load_state_dict(stack_members(config.architecture, members))
        clf._set_fitted(network, float(temperature), dict(metadata or {}))
        return clf

    def members(self) -> list[dict[str, torch.Tensor]]:
        """Per-member state dicts (inverse of :meth:`from_members`)."""
        self._check_fitted()
        cfg = self._resolved_config()
        return split_members(cfg.architecture, self.network_.state_dict(), cfg.n_members)

    def _set_fitted(
        self, network: torch.nn.Module, temperature: float, metadata: dict[str, Any], device: str | None = None
    ) -> None:
        self.device_ = select_device(device or self._resolved_config().device)
        self.network_ = network.to(self.device_).eval()
        self.temperature_ = float(temperature)
        self.metadata_ = metadata
        self.version_ = content_version(self._weights(), self._metadata())

    def with_temperature(self, temperature: float) -> Classifier:
        """A copy sharing the network with another calibration temperature."""
        self._check_fitted()
        clf = Classifier(self.task, self.config)
        clf._set_fitted(self.network_, temperature, dict(self.metadata_))
        return clf

    # -- inference ----------------------------------------------------------------------------
    @torch.inference_mode()
    def member_logits(self, features: np.ndarray | torch.Tensor) -> np.ndarray:
        """Uncalibrated per-member logits [N, n_members, n_classes] for preprocessed [N, 2, 1376]."""
        self._check_fitted()
        x = self._as_batch(features)
        fused = self._fused()
        if fused is not None:
            out = [fused(chunk.to(self.device_)).float().cpu() for chunk in x.split(FUSED_CHUNK)]
        else:
            out = [self.network_(chunk.to(self.device_)).float().cpu() for chunk in x.split(INFERENCE_CHUNK)]
        return torch.cat(out).numpy() if out else np.zeros((0, self._resolved_config().n_members, len(self.classes)), np.float32)

    def decision_logits(self, features: np.ndarray | torch.Tensor) -> np.ndarray:
        """Mean member logits (before temperature), [N, n_classes]: what calibration fits."""
        return self.member_logits(features).mean(axis=1)

    def predict_proba(self, features: np.ndarray | torch.Tensor) -> np.ndarray:
        """Calibrated probabilities [N, n_classes] for a preprocessed batch [N, 2, 1376]."""
        logits = self.decision_logits(features) / self.temperature_
        logits = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(logits.astype(np.float64))
        return p / p.sum(axis=1, keepdims=True)

    @torch.inference_mode()
    def explain(self, features: np.ndarray | torch.Tensor, class_index: int | np.ndarray | None = None) -> np.ndarray:
        """Class activation maps [N, 1376] on the grid (ensemble mean, clipped at 0, max 1).

        Parameters
        ----------
        features : array
            Preprocessed [N, 2, 1376].
        class_index : int or array of int, optional
            Class whose map to return per pattern; the predicted class when None.
        """
        self._check_fitted()
        x = self._as_batch(features)
        chosen = None
        if class_index is not None:
            chosen = torch.as_tensor(np.broadcast_to(np.asarray(class_index), (x.shape[0],)).copy(), dtype=torch.long)
        fused = self._fused()
        if fused is not None:
            maps = []
            for start in range(0, x.shape[0], FUSED_CHUNK):
                index = None if chosen is None else chosen[start : start + FUSED_CHUNK].to(self.device_)
                maps.append(fused.logits_and_class_cam(x[start : start + FUSED_CHUNK].to(self.device_), index)[1].float().cpu())
            cam = (torch.cat(maps) if maps else torch.zeros(0, GRID_SIZE)).clamp(min=0)
        else:
            all_maps, all_logits = [], []
            for chunk in x.split(INFERENCE_CHUNK):
                chunk_logits, chunk_maps = self.network_.logits_and_cam(chunk.to(self.device_))
                all_logits.append(chunk_logits.mean(1).float().cpu())
                all_maps.append(chunk_maps.mean(1).float().cpu())
            stacked = torch.cat(all_maps)
            if chosen is None:
                chosen = torch.cat(all_logits).argmax(1)
            cam = stacked[torch.arange(x.shape[0]), chosen].clamp(min=0)
        peak = cam.amax(1, keepdim=True) if cam.shape[0] else cam[:, :1]
        return (cam / torch.where(peak > 0, peak, torch.ones_like(peak))).numpy()

    @torch.inference_mode()
    def predict_grid(self, values: np.ndarray, mask: np.ndarray) -> Prediction:
        """Classify one gridded raw pattern (values float[1376], mask bool[1376])."""
        self._check_fitted()
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            raise ValueError("the scan covers no point of the model grid (5-60 degrees 2-theta)")
        return self._predict_features(torch.from_numpy(preprocess(values, mask)[None]), mask)

    def _predict_features(self, x: torch.Tensor, mask: np.ndarray) -> Prediction:
        """Prediction for one preprocessed pattern [1, 2, 1376] (inference mode, validated input)."""
        x = x.to(self.device_)
        fused = self._fused()
        if fused is not None:
            logits, top_cam = fused.logits_and_class_cam(x)
        elif hasattr(self.network_, "logits_and_top_cam"):
            logits, top_cam = self.network_.logits_and_top_cam(x)
        else:
            logits, maps = self.network_.logits_and_cam(x)
            top_cam = maps.mean(1)[:, int(logits.mean(1)[0].argmax())]
        # softmax in float64 numpy: cheaper than torch ops for a handful of classes
        mean_logits = logits[0].float().cpu().numpy().mean(0).astype(np.float64) / self.temperature_
        probabilities = np.exp(mean_logits - mean_logits.max())
        probabilities /= probabilities.sum()
        best = int(probabilities.argmax())
        cam = top_cam[0].float().cpu().numpy().clip(min=0)
        peak = cam.max()
        return Prediction(
            probabilities=probabilities,
            label=self.classes[best],
            confidence=float(probabilities[best]),
            cam=cam / peak if peak > 0 else cam,
            coverage=coverage(mask),
            classes=self.classes,
        )

    @torch.inference_mode()
    def predict(self, two_theta: np.ndarray, intensity: np.ndarray) -> Prediction:
        """Classify one measured (possibly partial, coarse or mixed-step) scan.

        Parameters
        ----------
        two_theta : np.ndarray
            Measured angles, degrees.
        intensity : np.ndarray
            Counts at those angles.
        """
        self._check_fitted()
        values, mask = to_grid(two_theta, intensity)  # validates; values finite, 0 where unmeasured
        if not mask.any():
            raise ValueError("the scan covers no point of the model grid (5-60 degrees 2-theta)")
        # straight to the torch preprocessing: to_grid output needs none of preprocess()'s checks
        x = preprocess_torch(torch.from_numpy(values[None]), torch.from_numpy(mask[None]))
        return self._predict_features(x, mask)

    def predict_pattern(self, pattern: Any) -> Prediction:
        """Classify a :class:`patterns.Pattern`."""
        return self.predict(pattern.two_theta, pattern.intensity)

    def _fused(self) -> FusedXRDNet | None:
        """The inference-only form of the network (built once, rebuilt if the weights change); None
        when the network has none (the a-CNN) or is in training mode (batch statistics)."""
        network = self.network_
        if not isinstance(network, XRDNet) or network.training:
            return None
        cache = self.__dict__.get("_fused_cache")
        if cache is None or cache[0] is not network:
            tensors = [*network.parameters(), *network.buffers()]
            cache = (network, tensors, None, None)
        # in-place updates of any weight (an optimiser step, load_state_dict) bump its version counter
        stamp = tuple(t._version for t in cache[1])
        if cache[2] != stamp:
            cache = (network, cache[1], stamp, FusedXRDNet.from_network(network).to(self.device_))
        self._fused_cache = cache
        return cache[3]

    def _as_batch(self, features: np.ndarray | torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(features, dtype=torch.float32)
        if x.ndim != 3 or x.shape[1] != 2 or x.shape[2] != GRID_SIZE:
            raise ValueError(f"expected preprocessed features of shape [N, 2, {GRID_SIZE}], got {tuple(x.shape)}")
        return x

    # -- files --------------------------------------------------------------------------------
    def _weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().contiguous() for k, v in self.network_.state_dict().items()}

    def _metadata(self) -> dict[str, Any]:
        from dataclasses import asdict

        cfg = self._resolved_config()
        return {
            "format_version": FORMAT_VERSION,
            "task": self.task,
            "classes": list(self.classes),
            "grid": grid_description(),
            "preprocessing_version": PREPROCESSING_VERSION,
            "architecture": cfg.architecture,
            "n_members": cfg.n_members,
            "width": cfg.width,
            "temperature": self.temperature_,
            "config": json.loads(json.dumps(asdict(cfg))),
            **{k: v for k, v in self.metadata_.items() if k not in ("version",)},
        }

    def save(self, directory: str | Path) -> Path:
        """Write ``weights.safetensors`` and ``model.json`` into ``directory``; returns it.

        Files are written under temporary names and renamed, so a reader never sees half a model.
        """
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        metadata = {**self._metadata(), "version": self.version_}
        tmp_weights = directory / (WEIGHTS_FILE + ".tmp")
        tmp_meta = directory / (METADATA_FILE + ".tmp")
        save_file(self._weights(), str(tmp_weights), metadata={"version": self.version_})
        tmp_meta.write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
        os.replace(tmp_weights, directory / WEIGHTS_FILE)
        os.replace(tmp_meta, directory / METADATA_FILE)
        return directory

    @classmethod
    def load(cls, path: str | Path, *, task: str | None = None, device: str | None = None) -> Classifier:
        """Load a model directory (or its ``model.json``) written by :meth:`save`.

        Parameters
        ----------
        path : str or Path
            The model directory.
        task : str, optional
            Expected task; a model of another task is refused.
        device : str, optional
            Torch device; CUDA when available, else CPU, when None.

        Raises
        ------
        ValueError
            If the files are missing or malformed, or the task, classes, grid or preprocessing
            version differ from this code's, or the content does not match its version id.
        """
        from training.fit import TrainConfig

        path = Path(path)
        directory = path.parent if path.name in (METADATA_FILE, WEIGHTS_FILE) else path
        meta_path, weights_path = directory / METADATA_FILE, directory / WEIGHTS_FILE
        if not meta_path.is_file() or not weights_path.is_file():
            raise ValueError(f"{directory} is not a model directory (needs {METADATA_FILE} and {WEIGHTS_FILE})")
        try:
            metadata = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{meta_path}: not valid JSON ({exc})") from None
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
        try:
            config = TrainConfig.from_dict(metadata["config"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{meta_path}: bad training configuration ({exc})") from None
        try:
            weights = load_file(str(weights_path))
        except Exception as exc:  # noqa: BLE001 - safetensors' SafetensorError is not exported portably
            raise ValueError(f"{weights_path}: not a readable safetensors file ({exc})") from None
        try:
            network = build_network(config.architecture, len(TASK_CLASSES[model_task]), config.n_members, config.width)
            network.load_state_dict(weights)
        except (ValueError, RuntimeError) as exc:
            raise ValueError(f"{directory}: weights do not fit the {config.architecture} network ({exc})") from None
        extra = {k: v for k, v in metadata.items() if k not in _RESERVED_KEYS}
        clf = cls(model_task, config)
        clf._set_fitted(network, float(metadata.get("temperature", 1.0)), extra, device=device)
        if metadata.get("version") and metadata["version"] != clf.version_:
            raise ValueError(f"{directory}: content does not match its version id {metadata['version']} (modified or corrupt)")
        return clf

    def __repr__(self) -> str:
        state = f"version={self.version_!r}" if hasattr(self, "version_") else "unfitted"
        return f"Classifier(task={self.task!r}, {state})"


_RESERVED_KEYS = frozenset(
    {"format_version", "task", "classes", "grid", "preprocessing_version", "architecture", "n_members", "width", "temperature", "config", "version"}
)
