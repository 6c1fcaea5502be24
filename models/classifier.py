"""The classifier the agent, the CLI and the retrain flow use: a calibrated ensemble with CAMs.

:class:`Classifier` is the runtime model, not a scikit-learn estimator: it has no ``fit``
(training makes one, :func:`training.fit.train_classifier`, and assembles it with
:meth:`Classifier.from_members`) and no fitted-attribute underscores, because nothing here is
learned. :meth:`Classifier.predict` answers one scan with a frozen :class:`Prediction`;
:meth:`Classifier.predict_proba` keeps scikit-learn's name because it means exactly what
scikit-learn's does (rows of class probabilities, columns in ``classes`` order), so the
evaluation harness treats it and the 1-NN baseline alike.

Model files (:mod:`models.model_files`): ``weights.safetensors`` + ``model.json``, with a content
hash as version id. Nothing is ever unpickled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from models.architectures import build_network, split_members, stack_members
from models.grid import GRID_SIZE, coverage, to_grid
from models.memory import EmbeddingMemory
from models.model_files import (
    FORMAT_VERSION,
    RESERVED_KEYS,
    content_version,
    grid_description,
    network_and_memory,
    read_model_dir,
    write_model_dir,
)
from models.prediction import Prediction, scaled_cam
from models.preprocess import PREPROCESSING_VERSION, preprocess_torch
from models.xrdnet import FusedXRDNet, XRDNet
from patterns.datasets import task_classes

INFERENCE_CHUNK: int = 64  # patterns per module forward pass: keeps activations in cache (measured fastest on CPU)
FUSED_CHUNK: int = 32  # patterns per fused-path pass (bench/speed.py: 16-64 within noise, 128+ slower)


def select_device(device: str | None = None) -> torch.device:
    """The one device rule: the requested device, else CUDA when available, else CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class EnsembleConfig(Protocol):
    """What :meth:`Classifier.from_members` reads of a training configuration (``training.fit.TrainConfig``)."""

    architecture: str
    width: int
    device: str | None

    def to_dict(self) -> dict[str, Any]: ...


class Classifier:
    """A calibrated ensemble classifier of XRD patterns for one task.

    Made by :meth:`from_members` (training) or :meth:`load` (a model directory).

    Parameters
    ----------
    task : str
        "space_group" (7 classes) or "dimensionality" (0D / 2D / 3D).
    network : torch.nn.Module
        The ensemble (``n_members`` members of ``architecture``), trained.
    temperature : float
        Temperature dividing the mean member logits (calibration, > 0).
    training_config : mapping
        The training configuration as recorded in ``model.json`` (JSON-ready; ``architecture``,
        ``n_members`` and ``width`` describe ``network``).
    metadata : dict, optional
        Training provenance: training-data hash, metrics, counts.
    device : str, optional
        Torch device; :func:`select_device` when None.
    memory : EmbeddingMemory, optional
        Nearest-neighbour memory of measured and labelled patterns in the network's embedding
        (:mod:`models.memory`): combined with the network's probabilities, and the source of the
        out-of-distribution flag. Without one the network answers alone and nothing is flagged.

    Attributes
    ----------
    task, classes, network, temperature, training_config, metadata, device, memory
    version : str
        Content hash id of weights and metadata (16 hex digits).
    """

    def __init__(
        self,
        task: str,
        network: torch.nn.Module,
        *,
        temperature: float,
        training_config: Mapping[str, Any],
        metadata: dict[str, Any] | None = None,
        device: str | None = None,
        memory: EmbeddingMemory | None = None,
    ) -> None:
        if temperature <= 0 or not np.isfinite(temperature):
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.task = task
        self.classes: tuple[str, ...] = task_classes(task)
        self.training_config = dict(training_config)
        self.architecture = str(self.training_config["architecture"])
        self.n_members = int(self.training_config["n_members"])
        self.width = int(self.training_config["width"])
        self.device = select_device(device or self.training_config.get("device"))
        self.network = network.to(self.device).eval()
        self.temperature = float(temperature)
        self.metadata = dict(metadata or {})
        self.memory = memory
        self.version = content_version(self._weights(), self._metadata())

    @classmethod
    def from_members(
        cls,
        members: list[dict[str, torch.Tensor]],
        *,
        task: str,
        config: EnsembleConfig,
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
        config : EnsembleConfig
            The configuration they were trained with (recorded with ``n_members = len(members)``).
        temperature : float
            Calibration temperature (:func:`models.calibrate.fit_temperature`).
        metadata : dict, optional
            Provenance to record (training-data hash, metrics, ...).
        """
        recorded = {**json.loads(json.dumps(config.to_dict())), "n_members": len(members)}
        network = build_network(config.architecture, len(task_classes(task)), len(members), config.width)
        network.load_state_dict(stack_members(config.architecture, members))
        return cls(task, network, temperature=temperature, training_config=recorded, metadata=metadata)

    def members(self) -> list[dict[str, torch.Tensor]]:
        """Per-member state dicts (inverse of :meth:`from_members`)."""
        return split_members(self.architecture, self.network.state_dict(), self.n_members)

    def with_temperature(self, temperature: float) -> Classifier:
        """A copy sharing the network with another calibration temperature (another version)."""
        return Classifier(self.task, self.network, temperature=temperature, training_config=self.training_config,
                          metadata=self.metadata, device=str(self.device), memory=self.memory)

    def with_memory(self, memory: EmbeddingMemory | None) -> Classifier:
        """A copy sharing the network with another memory of measured patterns (another version)."""
        return Classifier(self.task, self.network, temperature=self.temperature, training_config=self.training_config,
                          metadata=self.metadata, device=str(self.device), memory=memory)

    # -- inference ----------------------------------------------------------------------------
    @torch.inference_mode()
    def _logits_and_embedding(self, features: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Member logits [N, E, K] and embedding [N, E * W] from one forward pass (the fused path when built)."""
        x, fused, network = self._as_batch(features), self._fused(), self.network
        pooled_of = getattr(network, "pooled_features", lambda c: c.new_zeros(c.shape[0], 0))  # the a-CNN has none
        outs = [fused.logits_and_pooled(c) if fused is not None else (network(c), pooled_of(c))
                for c in (chunk.to(self.device) for chunk in x.split(FUSED_CHUNK if fused is not None else INFERENCE_CHUNK))]
        if not outs:
            return np.zeros((0, self.n_members, len(self.classes)), np.float32), np.zeros((0, self.n_members * self.width), np.float32)
        return tuple(torch.cat([o[i].float().cpu() for o in outs]).numpy() for i in (0, 1))  # type: ignore[return-value]

    def member_logits(self, features: np.ndarray | torch.Tensor) -> np.ndarray:
        """Uncalibrated per-member logits [N, n_members, n_classes] for preprocessed [N, 2, 1376]."""
        return self._logits_and_embedding(features)[0]

    def decision_logits(self, features: np.ndarray | torch.Tensor) -> np.ndarray:
        """Mean member logits (before temperature), [N, n_classes]: what calibration fits."""
        return self.member_logits(features).mean(axis=1)

    def embed(self, features: np.ndarray | torch.Tensor) -> np.ndarray:
        """The network's embedding [N, n_members * width] (the head's pooled input) of preprocessed [N, 2, 1376]."""
        return self._logits_and_embedding(features)[1]

    def _calibrated(self, decision_logits: np.ndarray) -> np.ndarray:
        p = np.exp((decision_logits - decision_logits.max(axis=1, keepdims=True)).astype(np.float64) / self.temperature)
        return p / p.sum(axis=1, keepdims=True)

    def network_proba(self, features: np.ndarray | torch.Tensor) -> np.ndarray:
        """The network's calibrated probabilities [N, n_classes] alone (no memory)."""
        return self._calibrated(self.decision_logits(features))

    def predict_proba_and_novelty(self, features: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Probabilities [N, K] (network and memory, see :meth:`models.memory.EmbeddingMemory.adjust`),
        novelty [N] and the out-of-distribution flag bool [N] (all False, novelty NaN, without a memory).
        One forward pass gives both the logits and the embedding the memory reads."""
        logits, embedding = self._logits_and_embedding(features)
        p = self._calibrated(logits.mean(axis=1))
        if self.memory is None:
            return p, np.full(p.shape[0], np.nan), np.zeros(p.shape[0], bool)
        return self.memory.adjust(p, embedding)

    def predict_proba(self, features: np.ndarray | torch.Tensor) -> np.ndarray:
        """Probabilities [N, n_classes] for a preprocessed batch [N, 2, 1376]: calibrated network,
        combined with the memory of measured patterns and pulled to uniform when out of distribution."""
        return self.predict_proba_and_novelty(features)[0]

    def remember(self, two_theta: np.ndarray, intensity: np.ndarray, label: str) -> Classifier:
        """A copy whose memory also holds this labelled scan (recognised from the next prediction on).

        Raises
        ------
        ValueError
            For a label outside the classes, a scan off the grid, or a model without a memory.
        """
        if label not in self.classes:
            raise ValueError(f"label {label!r} is not one of the {self.task} classes {list(self.classes)}")
        if self.memory is None:
            raise ValueError("this model has no memory of measured patterns (trained before it existed)")
        values, mask = to_grid(two_theta, intensity)
        embedding = self.embed(preprocess_torch(torch.from_numpy(values[None]), torch.from_numpy(mask[None])))
        memory = self.memory.copy()
        return self.with_memory(memory.add(embedding, np.array([self.classes.index(label)])))

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
        x = self._as_batch(features)
        chosen = None
        if class_index is not None:
            chosen = torch.as_tensor(np.broadcast_to(np.asarray(class_index), (x.shape[0],)).copy(), dtype=torch.long)
        fused = self._fused()
        if fused is not None:
            maps = []
            for start in range(0, x.shape[0], FUSED_CHUNK):
                index = None if chosen is None else chosen[start : start + FUSED_CHUNK].to(self.device)
                maps.append(fused.logits_and_class_cam(x[start : start + FUSED_CHUNK].to(self.device), index)[1].float().cpu())
            cam = (torch.cat(maps) if maps else torch.zeros(0, GRID_SIZE)).clamp(min=0)
        else:
            all_maps, all_logits = [], []
            for chunk in x.split(INFERENCE_CHUNK):
                chunk_logits, chunk_maps = self.network.logits_and_cam(chunk.to(self.device))
                all_logits.append(chunk_logits.mean(1).float().cpu())
                all_maps.append(chunk_maps.mean(1).float().cpu())
            stacked = torch.cat(all_maps)
            if chosen is None:
                chosen = torch.cat(all_logits).argmax(1)
            cam = stacked[torch.arange(x.shape[0]), chosen].clamp(min=0)
        peak = cam.amax(1, keepdim=True) if cam.shape[0] else cam[:, :1]
        return (cam / torch.where(peak > 0, peak, torch.ones_like(peak))).numpy()

    def _predict_features(self, x: torch.Tensor, mask: np.ndarray) -> Prediction:
        """Prediction for one preprocessed pattern [1, 2, 1376] (inference mode, validated input)."""
        x = x.to(self.device)
        fused = self._fused()
        pooled = class_cams = None
        if fused is not None:
            logits, pooled, all_cams = fused.logits_pooled_and_cams(x)
            top_cam = all_cams[int(logits[0].mean(0).argmax())][None]
            class_cams = all_cams.float().cpu().numpy()
        elif hasattr(self.network, "logits_and_top_cam"):
            logits, top_cam = self.network.logits_and_top_cam(x)
        else:
            logits, maps = self.network.logits_and_cam(x)
            top_cam = maps.mean(1)[:, int(logits.mean(1)[0].argmax())]
        # softmax in float64 numpy: cheaper than torch ops for a handful of classes
        mean_logits = logits[0].float().cpu().numpy().mean(0).astype(np.float64) / self.temperature
        probabilities = np.exp(mean_logits - mean_logits.max())
        probabilities /= probabilities.sum()
        novelty, novel = float("nan"), False
        if self.memory is not None:
            if pooled is None:
                pooled = self.network.pooled_features(x)
            adjusted, novelties, flags = self.memory.adjust(probabilities[None], pooled.float().cpu().numpy())
            probabilities, novelty, novel = adjusted[0], float(novelties[0]), bool(flags[0])
        best = int(probabilities.argmax())
        cam = scaled_cam(top_cam[0].float().cpu().numpy())
        return Prediction(
            probabilities=probabilities,
            label=self.classes[best],
            confidence=float(probabilities[best]),
            cam=cam,
            coverage=coverage(mask),
            classes=self.classes,
            measured=mask,
            out_of_distribution=novel,
            novelty=novelty,
            class_cams=class_cams,
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
        network = self.network
        if not isinstance(network, XRDNet) or network.training:
            return None
        cache = self.__dict__.get("_fused_cache")
        if cache is None or cache[0] is not network:
            tensors = [*network.parameters(), *network.buffers()]
            cache = (network, tensors, None, None)
        # in-place updates of any weight (an optimiser step, load_state_dict) bump its version counter
        stamp = tuple(t._version for t in cache[1])
        if cache[2] != stamp:
            cache = (network, cache[1], stamp, FusedXRDNet.from_network(network).to(self.device))
        self._fused_cache = cache
        return cache[3]

    def _as_batch(self, features: np.ndarray | torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(features, dtype=torch.float32)
        if x.ndim != 3 or x.shape[1] != 2 or x.shape[2] != GRID_SIZE:
            raise ValueError(f"expected preprocessed features of shape [N, 2, {GRID_SIZE}], got {tuple(x.shape)}")
        return x

    # -- files --------------------------------------------------------------------------------
    def _weights(self) -> dict[str, torch.Tensor]:
        weights = {k: v.detach().cpu().contiguous() for k, v in self.network.state_dict().items()}
        return weights if self.memory is None else {**weights, **self.memory.tensors()}

    def _metadata(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "task": self.task,
            "classes": list(self.classes),
            "grid": grid_description(),
            "preprocessing_version": PREPROCESSING_VERSION,
            "architecture": self.architecture,
            "n_members": self.n_members,
            "width": self.width,
            "temperature": self.temperature,
            "config": self.training_config,
            **({} if self.memory is None else {"memory": self.memory.settings()}),
            **{k: v for k, v in self.metadata.items() if k not in ("version",)},
        }

    def save(self, directory: str | Path) -> Path:
        """Write ``weights.safetensors`` and ``model.json`` into ``directory``; returns it."""
        return write_model_dir(directory, self._weights(), {**self._metadata(), "version": self.version})

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
            Torch device; :func:`select_device` when None.

        Raises
        ------
        ValueError
            If the files are missing or malformed, or the task, classes, grid or preprocessing
            version differ from this code's, or the content does not match its version id.
        """
        directory, metadata, weights = read_model_dir(path, task)
        network, memory = network_and_memory(directory, metadata, weights)
        extra = {k: v for k, v in metadata.items() if k not in RESERVED_KEYS}
        clf = cls(metadata["task"], network, temperature=float(metadata.get("temperature", 1.0)),
                  training_config=metadata["config"], metadata=extra, device=device, memory=memory)
        if metadata.get("version") and metadata["version"] != clf.version:
            raise ValueError(f"{directory}: content does not match its version id {metadata['version']} (modified or corrupt)")
        return clf

    def __repr__(self) -> str:
        return f"Classifier(task={self.task!r}, version={self.version!r})"
