"""Training: measured (and simulated) patterns in, a calibrated ensemble :class:`Classifier` out.

Public API
----------
``TrainConfig``
    Every training setting (architecture, members, width, steps, batch size, learning rate,
    augmentation strengths, simulated patterns per class, seed, device).
``prepare_training_data(patterns_or_arrays, labels, *, task, config, simulated) -> TrainingData``
    Grid the inputs and assign each measured pattern the member that holds it out
    (:mod:`training.dataset`).
``fit_member(data, member_index, *, task, config) -> MemberResult``
    Train one ensemble member (a Prefect flow can map this over members).
``fit_members(data, member_indices, *, task, config) -> list[MemberResult]``
    Train several members jointly in one grouped network (same result type, less overhead).
``calibrate_members(results, data) -> float``
    Temperature fitted on the members' held-out patterns.
``assemble_classifier(results, data, *, task, config, metadata) -> Classifier``
    Calibrate, record the provenance and put the members together (the end of every training,
    the retrain flow's included).
``train_classifier(patterns_or_arrays, labels, *, task, config, simulated) -> Classifier``
    All of the above.

How it learns
-------------
Each step draws a batch (:class:`training.batches.BatchSource`: ``measured_fraction`` of it from the
measured patterns when there are any, the rest from fixed simulated patterns or new generated films),
augments it in torch
(:func:`training.augment.augment_batch`: physics perturbations, partial scans, coarsening),
preprocesses it (:func:`models.preprocess.preprocess_torch`) and takes an AdamW step on the
cross-entropy. Member ``k`` never trains on the measured patterns of hold-out fold ``k`` (a
stratified 1/n_members of them), so every measured pattern is held out by one member and the
temperature is fitted on predictions of members that never trained on those patterns.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from models.architectures import build_network, split_members, stack_members
from models.calibrate import fit_temperature, nll
from models.classifier import Classifier, select_device
from models.gate_split import gate_heldout_names, split_record
from models.preprocess import preprocess, preprocess_torch
from patterns.datasets import task_classes
from training.augment import augment_batch
from training.batches import BatchSource
from training.config import DEFAULT_SEED, DEFAULT_SIMULATED_PER_CLASS, TrainConfig, default_config
from training.dataset import TrainingData, assign_holdout_folds, prepare_training_data
from training.generator import FilmGenerator
from training.memory_fit import fit_memory, memory_stream_seed

__all__ = [
    "DEFAULT_SEED",
    "DEFAULT_SIMULATED_PER_CLASS",
    "MemberResult",
    "TrainConfig",
    "TrainingData",
    "assemble_classifier",
    "assign_holdout_folds",
    "calibrate_members",
    "default_config",
    "fit_member",
    "fit_members",
    "prepare_training_data",
    "train_classifier",
    "train_default",
]


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


#: torch's global generator is shared by the threads of a process: members trained in threads at
#: once (the retrain flow's thread pool) would draw their initial weights from each other's seeds.
_GLOBAL_SEED_LOCK = threading.Lock()


def _initial_network(task: str, config: TrainConfig, member_indices: Sequence[int]) -> torch.nn.Module:
    """A joint network whose member k is initialised from seed (config.seed, k) alone."""
    n_classes = len(task_classes(task))
    states = []
    with _GLOBAL_SEED_LOCK:  # every network built here draws from the global generator
        for k in member_indices:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(config.seed * 1009 + k)
                states.append(build_network(config.architecture, n_classes, 1, config.width).state_dict())
        network = build_network(config.architecture, n_classes, len(member_indices), config.width)
    network.load_state_dict(stack_members(config.architecture, states))
    return network


def fit_members(
    data: TrainingData,
    member_indices: Sequence[int],
    *,
    task: str,
    config: TrainConfig,
    checkpoint: Callable[[int, torch.nn.Module], None] | None = None,
    checkpoint_steps: Sequence[int] = (),
    films: FilmGenerator | None = None,
) -> list[MemberResult]:
    """Train several members jointly (one grouped network, one augmented batch per step).

    Member ``k`` is initialised from its own seed and its loss skips the rows of hold-out fold ``k``.

    Parameters
    ----------
    data : TrainingData
        From :func:`prepare_training_data` (may be empty when ``config.film_generator``).
    member_indices : sequence of int
        Which members (0 .. n_members - 1) to train.
    task : str
        The task.
    config : TrainConfig
        Settings.
    checkpoint : callable, optional
        Called as ``checkpoint(step, network)`` (network in eval mode) after each step listed in
        ``checkpoint_steps``: the learning curve of the accuracy benchmark.
    checkpoint_steps : sequence of int
        Steps (1-based) after which ``checkpoint`` is called.
    films : FilmGenerator, optional
        The film stream of the batches (see :class:`training.batches.BatchSource`); by default one
        is built from ``config.seed`` (a pool build, 15-40 s).

    Returns
    -------
    list of MemberResult
        In the order of ``member_indices``.
    """
    member_indices = list(member_indices)
    device = select_device(config.device)
    network = _initial_network(task, config, member_indices).to(device).train()
    generator = torch.Generator().manual_seed(config.seed * 7919 + 17 * sum(member_indices) + len(member_indices))
    source = BatchSource(data, task, config, generator, stream=member_indices[0], films=films)
    members = torch.tensor(member_indices, device=device)
    optimiser = torch.optim.AdamW(network.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config.lr, total_steps=config.steps, pct_start=0.15)
    checkpoints = set(checkpoint_steps)
    for step in tqdm(range(1, config.steps + 1), desc=f"training {task} members {member_indices}", unit="step",
                     disable=None, leave=False):
        batch = source.draw()
        with torch.no_grad():
            x_values, x_masks = augment_batch(batch.values, batch.masks, config.augment, generator)
            x = preprocess_torch(x_values.to(device), x_masks.to(device))
        logits = network(x)  # [B, E, K]
        target = batch.labels.to(device)
        loss_each = F.cross_entropy(logits.flatten(0, 1), target.repeat_interleave(len(member_indices)), reduction="none")
        allowed = (batch.holdout_fold.to(device)[:, None] != members[None]).flatten().float()
        loss = (loss_each * allowed).sum() / allowed.sum().clamp(min=1)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        if checkpoint is not None and step in checkpoints:
            network.eval()
            checkpoint(step, network)
            network.train()
    network.eval()
    return _member_results(network, data, task, config, member_indices, device)


def _member_results(network: torch.nn.Module, data: TrainingData, task: str, config: TrainConfig,
                    member_indices: list[int], device: torch.device) -> list[MemberResult]:
    """Split the trained network into members, each with its logits on the rows it held out."""
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
    films: FilmGenerator | None = None,
    checkpoint: Callable[[int, torch.nn.Module], None] | None = None,
    checkpoint_steps: Sequence[int] = (),
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
    films : FilmGenerator, optional
        With ``config.film_generator``: the stream the batches draw from, and (as
        ``films.with_seed(memory_stream_seed(seed))``) the memory's reference films; several models of
        one process share one pool build this way (the evaluation's fold models).
    checkpoint, checkpoint_steps : optional
        See :func:`fit_members` (the learning curve).

    Returns
    -------
    Classifier
        Fitted; ``metadata`` holds the training-data hash, counts and held-out calibration figures.
    """
    config = config or TrainConfig()
    data = prepare_training_data(patterns_or_arrays, labels, task=task, config=config, simulated=simulated)
    results = fit_members(data, range(config.n_members), task=task, config=config, films=films,
                          checkpoint=checkpoint, checkpoint_steps=checkpoint_steps)
    memory_films = films.with_seed(memory_stream_seed(config.seed)) if films is not None else None
    return assemble_classifier(results, data, task=task, config=config, metadata={"seed": config.seed},
                               films=memory_films)


def assemble_classifier(
    results: Sequence[MemberResult],
    data: TrainingData,
    *,
    task: str,
    config: TrainConfig,
    metadata: dict[str, Any] | None = None,
    films: FilmGenerator | None = None,
) -> Classifier:
    """The end of every training: calibrate on held-out rows, record provenance, assemble members.

    Parameters
    ----------
    results : sequence of MemberResult
        The trained members, any order (sorted by member index here).
    data : TrainingData
        What they were trained on (hold-out rows and the training-data hash).
    task : str
        Their task.
    config : TrainConfig
        Their configuration; no calibration when ``config.calibrate`` is False.
    metadata : dict, optional
        Further provenance (seed, label cut-off, flow-run id).
    films : FilmGenerator, optional
        Reference films of the memory (see :func:`training.memory_fit.fit_memory`).

    Returns
    -------
    Classifier
        ``metadata`` holds the training-data hash, the counts and the calibration report.
    """
    results = sorted(results, key=lambda r: r.member_index)
    temperature, calibration = calibrate_members(results, data) if config.calibrate else (1.0, {"n_heldout": 0})
    if not math.isfinite(temperature) or temperature <= 0:
        temperature = 1.0
    recorded = {
        **(metadata or {}),
        "training_data_hash": data.content_hash(),
        "n_measured": int(data.is_measured.sum()),
        "n_simulated": int((~data.is_measured).sum()),
        "calibration": calibration,
    }
    classifier = Classifier.from_members([r.state for r in results], task=task, config=config, temperature=temperature,
                                         metadata=recorded)
    # the product recipe ships with its memory of measured patterns and the out-of-distribution
    # threshold; the baselines' fixed-set configurations answer with the network alone
    return fit_memory(classifier, data, seed=config.seed, films=films) if config.film_generator else classifier


def train_default(task: str, *, seed: int = DEFAULT_SEED, config: TrainConfig | None = None) -> Classifier:
    """Train the default model of ``task``: new simulated films plus the measured patterns the gate does not hold out.

    The measured sets are the 88 space-group patterns (:func:`patterns.load_space_group_set`) and
    the 73 dimensionality patterns (:func:`patterns.load_dimensionality_set`) from the repository copy
    in ``data/auto-xrd``, less the retrain gate's held-out part (:mod:`models.gate_split`, recorded in
    the model's metadata as ``gate_split``), so the gate compares every challenger with the shipped
    model on patterns neither trained on.
    """
    from patterns import load_dimensionality_set, load_space_group_set

    config = config or default_config(seed)
    measured = load_space_group_set() if task == "space_group" else load_dimensionality_set()
    held = gate_heldout_names(task)
    training = [p for p in measured if p.metadata["name"] not in held]
    data = prepare_training_data(training, task=task, config=config)
    results = fit_members(data, range(config.n_members), task=task, config=config)
    return assemble_classifier(results, data, task=task, config=config,
                               metadata={"seed": config.seed, "gate_split": split_record()})
