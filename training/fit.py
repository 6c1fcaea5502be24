"""Training: measured (and simulated) patterns in, a calibrated ensemble :class:`Classifier` out.

Public API
----------
``TrainConfig``
    Every training setting (architecture, members, width, steps, batch size, learning rate,
    augmentation strengths, simulated patterns per class, seed, device).
``prepare_training_data(patterns_or_arrays, labels, *, task, config, simulated) -> TrainingData``
    Grid the inputs and assign each measured pattern the member that holds it out.
``fit_member(data, member_index, *, task, config) -> MemberResult``
    Train one ensemble member (a Prefect flow can map this over members).
``fit_members(data, member_indices, *, task, config) -> list[MemberResult]``
    Train several members jointly in one grouped network (same result type, less overhead).
``calibrate_members(results, data) -> float``
    Temperature fitted on the members' held-out patterns.
``train_classifier(patterns_or_arrays, labels, *, task, config, simulated) -> Classifier``
    All of the above.

How it learns
-------------
Each step draws a batch (``measured_fraction`` of it from the measured patterns when there are any,
the rest from the simulated ones, classes balanced), augments it in torch
(:func:`training.augment.augment_batch`: physics perturbations, partial scans, coarsening),
preprocesses it (:func:`models.preprocess.preprocess_torch`) and takes an AdamW step on the
cross-entropy. Member ``k`` never trains on the measured patterns of hold-out fold ``k`` (a
stratified 1/n_members of them), so every measured pattern is held out by one member and the
temperature is fitted on predictions of members that never trained on those patterns.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from models.architectures import build_network, split_members, stack_members
from training.augment import AugmentConfig, augment_batch
from models.calibrate import fit_temperature, nll
from models.classifier import Classifier, select_device, task_classes
from models.grid import GRID_SIZE, to_grid
from models.preprocess import preprocess, preprocess_torch

@dataclass(frozen=True)
class TrainConfig:
    """Training settings; stored in every model file.

    Attributes
    ----------
    architecture : str
        "xrdnet" (ours) or "acnn" (faithful a-CNN baseline).
    n_members : int
        Ensemble members (>= 5 for the calibrated product; 1 for quick tests).
    width : int
        Channels per member (XRDNet).
    steps : int
        Optimiser steps per member.
    batch_size : int
        Patterns per step.
    lr : float
        Peak AdamW learning rate (one-cycle schedule).
    weight_decay : float
        AdamW weight decay.
    measured_fraction : float
        Share of each batch drawn from measured patterns when both kinds are present.
    n_simulated_per_class : int
        When no simulated set is passed and this is > 0, simulate this many per class
        (:func:`training.simulate.simulate_training_set`) with the config's seed.
    augment : AugmentConfig
        Augmentation strengths.
    calibrate : bool
        Fit the temperature on held-out patterns (needs >= 2 members).
    seed : int
        Seeds initialisation, sampling and augmentation.
    device : str or None
        Torch device; CUDA when available, else CPU, when None.
    """

    architecture: str = "xrdnet"
    n_members: int = 5
    width: int = 16
    steps: int = 200
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    measured_fraction: float = 0.5
    n_simulated_per_class: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    calibrate: bool = True
    seed: int = 0
    device: str | None = None

    def __post_init__(self) -> None:
        if self.n_members < 1 or self.steps < 1 or self.batch_size < 1:
            raise ValueError("n_members, steps and batch_size must be >= 1")
        if not 0.0 <= self.measured_fraction <= 1.0:
            raise ValueError(f"measured_fraction must be within [0, 1], got {self.measured_fraction}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are refused."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training settings {sorted(unknown)}")
        data = dict(data)
        if isinstance(data.get("augment"), dict):
            augment = dict(data["augment"])
            if "peak_counts" in augment:
                augment["peak_counts"] = tuple(augment["peak_counts"])
            data["augment"] = AugmentConfig(**augment)
        return cls(**data)


@dataclass(frozen=True)
class TrainingData:
    """Gridded raw training patterns.

    Attributes
    ----------
    values : np.ndarray
        float32 [N, 1376] raw intensity on the grid, 0 where unmeasured.
    masks : np.ndarray
        bool [N, 1376].
    labels : np.ndarray
        int64 [N] class indices.
    is_measured : np.ndarray
        bool [N]: measured (True) or simulated.
    holdout_fold : np.ndarray
        int64 [N]: the member that never trains on this row (-1: every member may).
    """

    values: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    is_measured: np.ndarray
    holdout_fold: np.ndarray

    def __post_init__(self) -> None:
        n = self.labels.shape[0]
        for name in ("values", "masks"):
            if getattr(self, name).shape != (n, GRID_SIZE):
                raise ValueError(f"{name} must have shape [{n}, {GRID_SIZE}], got {getattr(self, name).shape}")
        if self.is_measured.shape != (n,) or self.holdout_fold.shape != (n,):
            raise ValueError("is_measured and holdout_fold must have one entry per pattern")
        if n == 0:
            raise ValueError("no training patterns")

    def content_hash(self) -> str:
        """sha256 of the values, masks and labels (the training-data hash in model files)."""
        digest = hashlib.sha256()
        for array in (self.values, self.masks, self.labels, self.is_measured):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


@dataclass(frozen=True)
class MemberResult:
    """One trained member.

    Attributes
    ----------
    member_index : int
        Its index (= its hold-out fold).
    state : dict
        State dict of the one-member network.
    heldout_rows : np.ndarray
        int64 indices into the training data of the rows it never trained on.
    heldout_logits : np.ndarray
        float32 [len(heldout_rows), n_classes] its logits for them (full, un-augmented patterns).
    """

    member_index: int
    state: dict[str, torch.Tensor]
    heldout_rows: np.ndarray
    heldout_logits: np.ndarray


def _as_label_indices(labels: Sequence[Any] | np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
    array = np.asarray(labels)
    if array.dtype.kind in "iu":
        out = array.astype(np.int64)
        if out.size and (out.min() < 0 or out.max() >= len(classes)):
            raise ValueError(f"label indices must be within [0, {len(classes)})")
        return out
    lookup = {c: i for i, c in enumerate(classes)}
    unknown = sorted({str(x) for x in array if str(x) not in lookup})
    if unknown:
        raise ValueError(f"unknown labels {unknown}; expected {list(classes)}")
    return np.array([lookup[str(x)] for x in array], dtype=np.int64)


def _grid_inputs(patterns_or_arrays: Any) -> tuple[np.ndarray, np.ndarray, list[Any] | None]:
    """(values, masks, patterns or None) from a list of Patterns or a (values, masks) pair."""
    if isinstance(patterns_or_arrays, tuple) and len(patterns_or_arrays) == 2:
        values = np.asarray(patterns_or_arrays[0], dtype=np.float32)
        masks = np.asarray(patterns_or_arrays[1], dtype=bool)
        if values.ndim != 2 or values.shape != masks.shape or values.shape[1] != GRID_SIZE:
            raise ValueError(f"expected values and masks of shape [N, {GRID_SIZE}], got {values.shape} and {masks.shape}")
        return np.where(masks, values, 0).astype(np.float32), masks, None
    patterns = list(patterns_or_arrays)
    if not patterns:
        return np.zeros((0, GRID_SIZE), np.float32), np.zeros((0, GRID_SIZE), bool), []
    gridded = [to_grid(p.two_theta, p.intensity) for p in patterns]
    return np.stack([v for v, _ in gridded]), np.stack([m for _, m in gridded]), patterns


def assign_holdout_folds(labels: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Hold-out fold per pattern, stratified: each class's patterns are dealt round-robin in random order.

    Patterns are dealt individually, not by near-duplicate group: a group can be a third of a class,
    and a member that never saw it would be a worse member, not a fairer one. The price is that a
    held-out pattern may have a near-duplicate in its member's training data, so the temperature
    fitted here errs towards over-confidence; the evaluation harness re-fits it on grouped folds.
    """
    folds = np.full(labels.size, -1, dtype=np.int64)
    if n_folds < 2 or labels.size == 0:
        return folds
    rng = np.random.default_rng(seed)
    start = 0
    for cls in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == cls))
        folds[rows] = (start + np.arange(rows.size)) % n_folds
        start = (start + rows.size) % n_folds  # spread the singletons of small classes over folds
    return folds


def prepare_training_data(
    patterns_or_arrays: Any,
    labels: Sequence[Any] | np.ndarray | None = None,
    *,
    task: str,
    config: TrainConfig,
    simulated: tuple[np.ndarray, np.ndarray] | None = None,
) -> TrainingData:
    """Grid measured patterns, add simulated ones, and assign hold-out folds.

    Parameters
    ----------
    patterns_or_arrays : list of Pattern or (values, masks)
        Measured patterns, or their raw gridded values float32 [N, 1376] and masks bool [N, 1376].
        May be empty when ``simulated`` is given.
    labels : sequence, optional
        Class names or indices; from ``pattern.metadata["label"]`` when None (Patterns only).
    task : str
        "space_group" or "dimensionality".
    config : TrainConfig
        Supplies n_members (number of hold-out folds), n_simulated_per_class and the seed.
    simulated : (X, y), optional
        Raw simulated patterns float32 [M, 1376] on the full grid and their labels.
    """
    classes = task_classes(task)
    values, masks, patterns = _grid_inputs(patterns_or_arrays)
    if labels is None:
        if patterns is None:
            raise ValueError("labels are required with (values, masks) input")
        labels = [p.metadata.get("label") for p in patterns]
    y = _as_label_indices(labels, classes)
    if y.shape[0] != values.shape[0]:
        raise ValueError(f"{values.shape[0]} patterns but {y.shape[0]} labels")
    if simulated is None and config.n_simulated_per_class > 0:
        from training.simulate import simulate_training_set

        sim_x, sim_y, _ = simulate_training_set(config.n_simulated_per_class, seed=config.seed, task=task)
        simulated = (sim_x, sim_y)
    if simulated is not None:
        sim_x = np.asarray(simulated[0], dtype=np.float32)
        sim_y = _as_label_indices(simulated[1], classes)
        if sim_x.ndim != 2 or sim_x.shape[1] != GRID_SIZE or sim_x.shape[0] != sim_y.shape[0]:
            raise ValueError(f"simulated patterns must be [M, {GRID_SIZE}] with M labels, got {sim_x.shape} and {sim_y.shape}")
    else:
        sim_x, sim_y = np.zeros((0, GRID_SIZE), np.float32), np.zeros(0, np.int64)
    n_measured = values.shape[0]
    measured_folds = (
        assign_holdout_folds(y, config.n_members, config.seed)
        if n_measured and config.calibrate
        else np.full(n_measured, -1, dtype=np.int64)
    )
    if n_measured == 0 and config.calibrate and config.n_members >= 2:
        # simulated only: hold simulated rows out instead, so the temperature is still fitted
        sim_folds = np.random.default_rng(config.seed).integers(0, config.n_members, sim_y.size)
    else:
        sim_folds = np.full(sim_y.size, -1, dtype=np.int64)
    return TrainingData(
        values=np.concatenate([values, sim_x]).astype(np.float32),
        masks=np.concatenate([masks, np.ones(sim_x.shape, dtype=bool)]),
        labels=np.concatenate([y, sim_y]),
        is_measured=np.concatenate([np.ones(n_measured, bool), np.zeros(sim_y.size, bool)]),
        holdout_fold=np.concatenate([measured_folds, sim_folds]).astype(np.int64),
    )


def _row_sampler(data: TrainingData, config: TrainConfig, generator: torch.Generator):
    """A function drawing a batch of row indices: measured share, then class-balanced simulated."""
    measured = torch.from_numpy(np.flatnonzero(data.is_measured))
    simulated = torch.from_numpy(np.flatnonzero(~data.is_measured))
    sim_by_class = [simulated[torch.from_numpy(data.labels[simulated.numpy()] == c)] for c in np.unique(data.labels[simulated.numpy()])]
    n_meas = config.batch_size if simulated.numel() == 0 else (0 if measured.numel() == 0 else int(round(config.batch_size * config.measured_fraction)))
    n_sim = config.batch_size - n_meas

    def draw() -> torch.Tensor:
        parts = []
        if n_meas:
            parts.append(measured[torch.randint(measured.numel(), (n_meas,), generator=generator)])
        if n_sim:
            cls = torch.randint(len(sim_by_class), (n_sim,), generator=generator)
            for c, rows in enumerate(sim_by_class):
                k = int((cls == c).sum())
                if k:
                    parts.append(rows[torch.randint(rows.numel(), (k,), generator=generator)])
        return torch.cat(parts)

    return draw


def _initial_network(task: str, config: TrainConfig, member_indices: Sequence[int]) -> torch.nn.Module:
    """A joint network whose member k is initialised from seed (config.seed, k) alone."""
    n_classes = len(task_classes(task))
    states = []
    for k in member_indices:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed * 1009 + k)
            states.append(build_network(config.architecture, n_classes, 1, config.width).state_dict())
    network = build_network(config.architecture, n_classes, len(member_indices), config.width)
    network.load_state_dict(stack_members(config.architecture, states))
    return network


def fit_members(data: TrainingData, member_indices: Sequence[int], *, task: str, config: TrainConfig) -> list[MemberResult]:
    """Train several members jointly (one grouped network, one augmented batch per step).

    Member ``k`` is initialised from its own seed and its loss skips the rows of hold-out fold ``k``.

    Parameters
    ----------
    data : TrainingData
        From :func:`prepare_training_data`.
    member_indices : sequence of int
        Which members (0 .. n_members - 1) to train.
    task : str
        The task.
    config : TrainConfig
        Settings.

    Returns
    -------
    list of MemberResult
        In the order of ``member_indices``.
    """
    member_indices = list(member_indices)
    device = select_device(config.device)
    network = _initial_network(task, config, member_indices).to(device).train()
    generator = torch.Generator().manual_seed(config.seed * 7919 + 17 * sum(member_indices) + len(member_indices))
    draw = _row_sampler(data, config, generator)
    values = torch.from_numpy(data.values)
    masks = torch.from_numpy(data.masks)
    labels = torch.from_numpy(data.labels)
    folds = torch.from_numpy(data.holdout_fold)
    members = torch.tensor(member_indices)
    optimiser = torch.optim.AdamW(network.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config.lr, total_steps=config.steps, pct_start=0.15)
    for _ in range(config.steps):
        rows = draw()
        with torch.no_grad():
            x_values, x_masks = augment_batch(values[rows], masks[rows], config.augment, generator)
            x = preprocess_torch(x_values, x_masks).to(device)
        logits = network(x)  # [B, E, K]
        target = labels[rows].to(device)
        loss_each = F.cross_entropy(logits.flatten(0, 1), target.repeat_interleave(len(member_indices)), reduction="none")
        allowed = (folds[rows][:, None] != members[None]).flatten().to(device).float()
        loss = (loss_each * allowed).sum() / allowed.sum().clamp(min=1)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
    network.eval()
    states = split_members(config.architecture, {k: v.detach().cpu() for k, v in network.state_dict().items()}, len(member_indices))
    results = []
    with torch.inference_mode():
        for position, k in enumerate(member_indices):
            rows = np.flatnonzero(data.holdout_fold == k)
            if rows.size:
                x = torch.from_numpy(preprocess(data.values[rows], data.masks[rows])).to(device)
                heldout = torch.cat([network(chunk)[:, position] for chunk in x.split(256)]).float().cpu().numpy()
            else:
                heldout = np.zeros((0, len(task_classes(task))), np.float32)
            results.append(MemberResult(k, states[position], rows, heldout))
    return results


def fit_member(data: TrainingData, member_index: int, *, task: str, config: TrainConfig) -> MemberResult:
    """Train ensemble member ``member_index`` alone (for a Prefect task mapped over members)."""
    if not 0 <= member_index < config.n_members:
        raise ValueError(f"member_index must be within [0, {config.n_members}), got {member_index}")
    return fit_members(data, [member_index], task=task, config=config)[0]


def calibrate_members(results: Sequence[MemberResult], data: TrainingData) -> tuple[float, dict[str, float]]:
    """Temperature from the members' held-out logits, and what it did to their NLL.

    Returns
    -------
    temperature : float
        1.0 when no member held anything out.
    report : dict
        n_heldout, heldout_accuracy, nll_before, nll_after (nats).
    """
    rows = np.concatenate([r.heldout_rows for r in results]) if results else np.zeros(0, np.int64)
    if rows.size == 0:
        return 1.0, {"n_heldout": 0}
    logits = np.concatenate([r.heldout_logits for r in results])
    labels = data.labels[rows]
    temperature = fit_temperature(logits, labels)
    return temperature, {
        "n_heldout": int(rows.size),
        "heldout_accuracy": float((logits.argmax(1) == labels).mean()),
        "nll_before": nll(logits, labels, 1.0),
        "nll_after": nll(logits, labels, temperature),
    }


def train_classifier(
    patterns_or_arrays: Any,
    labels: Sequence[Any] | np.ndarray | None = None,
    *,
    task: str,
    config: TrainConfig | None = None,
    simulated: tuple[np.ndarray, np.ndarray] | None = None,
) -> Classifier:
    """Train a calibrated ensemble classifier.

    Parameters
    ----------
    patterns_or_arrays : list of Pattern or (values, masks)
        Measured training patterns (may be empty with ``simulated``).
    labels : sequence, optional
        Class names or indices (from the Patterns' metadata when None).
    task : str
        "space_group" or "dimensionality".
    config : TrainConfig, optional
        Settings (defaults when None).
    simulated : (X, y), optional
        Simulated raw patterns [M, 1376] and labels.

    Returns
    -------
    Classifier
        Fitted; ``metadata_`` holds the training-data hash, counts and held-out calibration figures.
    """
    config = config or TrainConfig()
    data = prepare_training_data(patterns_or_arrays, labels, task=task, config=config, simulated=simulated)
    results = fit_members(data, range(config.n_members), task=task, config=config)
    temperature, calibration = calibrate_members(results, data) if config.calibrate else (1.0, {"n_heldout": 0})
    metadata = {
        "training_data_hash": data.content_hash(),
        "n_measured": int(data.is_measured.sum()),
        "n_simulated": int((~data.is_measured).sum()),
        "seed": config.seed,
        "calibration": calibration,
    }
    if not math.isfinite(temperature):
        temperature = 1.0
    return Classifier.from_members([r.state for r in results], task=task, config=config, temperature=temperature, metadata=metadata)


__all__ = [
    "MemberResult",
    "TrainConfig",
    "TrainingData",
    "assign_holdout_folds",
    "calibrate_members",
    "fit_member",
    "fit_members",
    "prepare_training_data",
    "train_classifier",
]



DEFAULT_SEED: int = 2019
"""Seed of the shipped default models (the year of Oviedo et al.)."""
DEFAULT_SIMULATED_PER_CLASS: int = 100
"""Simulated patterns per class in the default models' training set."""


def default_config(seed: int = DEFAULT_SEED) -> TrainConfig:
    """The configuration of the shipped default models."""
    return TrainConfig(seed=seed, n_simulated_per_class=DEFAULT_SIMULATED_PER_CLASS)


def train_default(task: str, *, seed: int = DEFAULT_SEED, config: TrainConfig | None = None) -> Classifier:
    """Train the default model of ``task``: simulated patterns plus every measured pattern.

    The measured sets are the 88 space-group patterns (:func:`patterns.load_space_group_set`) and
    the 73 dimensionality patterns (:func:`patterns.load_dimensionality_set`) from the repository copy
    in ``data/auto-xrd``.
    """
    from patterns import load_dimensionality_set, load_space_group_set

    config = config or default_config(seed)
    measured = load_space_group_set() if task == "space_group" else load_dimensionality_set()
    return train_classifier(measured, task=task, config=config)
