"""The trained models of the comparison, behind the evaluation harness's ``fit/predict_proba``.

:class:`ClassifierFoldModel` adapts :func:`training.fit.train_classifier` (which augments inside
training, on the rows it is given and nothing else) to :class:`evaluation.protocols.FoldModel`: the
measured rows of the fold's :class:`evaluation.protocols.TrainingSet` go in as measured patterns, the
simulated rows as the simulated set. The two configurations compared are

* **ours** -- :data:`OURS_CONFIG`: the shipped recipe (:func:`training.config.default_config`: new
  films from :class:`training.generator.FilmGenerator` in place of the fold's fixed simulated rows,
  class-balanced measured rows, width 32, the memory of the fold's measured patterns and its
  out-of-distribution threshold) with one member and a shorter budget, so that the ~40 fold models
  of a task fit the benchmark's hour; its temperature is cross-fitted by the harness;
* **acnn** -- :data:`ACNN_CONFIG`: the faithful a-CNN of Oviedo et al. (one network, the paper's
  architecture), trained on exactly the same data, augmentation and number of steps.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache

import numpy as np
import torch

from evaluation.protocols import FoldModel, ModelSpec, TrainingSet
from training.config import default_config
from training.fit import TrainConfig, train_classifier
from training.generator import FilmGenerator

OURS_STEPS = 400
"""Optimiser steps of each fold model of ours (the learning curve of the grouped folds shows how
far from its plateau this budget is; the shipped models take :data:`training.config.DEFAULT_STEPS`)."""

OURS_CONFIG = replace(default_config(seed=0, steps=OURS_STEPS), n_members=1, calibrate=False)
"""Per-fold configuration of our model: the shipped recipe, one member (see the module docstring)."""

ACNN_CONFIG = TrainConfig(architecture="acnn", n_members=1, calibrate=False)
"""Per-fold configuration of the faithful a-CNN baseline: one network, no calibration."""

QUICK_STEPS = 2
"""Optimiser steps per member in ``--quick`` mode (CI: exercises the code, not the accuracy)."""


def quick_config(config: TrainConfig) -> TrainConfig:
    """A tiny version of ``config`` for CI: few steps, at most two members."""
    return replace(config, steps=QUICK_STEPS, n_members=min(config.n_members, 2),
                   calibrate=config.calibrate and min(config.n_members, 2) >= 2)


class ClassifierFoldModel:
    """:func:`training.fit.train_classifier` as a :class:`evaluation.protocols.FoldModel`.

    Parameters
    ----------
    task : str
        "space_group" or "dimensionality".
    config : TrainConfig
        Training settings (the seed is the one given by the harness).

    Attributes
    ----------
    classifier_ : Classifier
        The fitted classifier.
    """

    def __init__(self, task: str, config: TrainConfig, checkpoint_steps: Sequence[int] = (), small_pool: bool = False) -> None:
        self.task = task
        self.config = config
        self.checkpoint_steps = tuple(checkpoint_steps)
        self.small_pool = small_pool

    def fit(self, training: TrainingSet) -> ClassifierFoldModel:
        measured = training.is_measured
        simulated, films = None, None
        if self.config.film_generator:  # new films replace (film_fraction 1) or join the fold's fixed simulated rows
            films = _film_pool(self.task, self.small_pool).with_seed(self.config.seed * 1000)
        if (~measured).any() and (films is None or self.config.film_fraction < 1.0):
            simulated = (training.values[~measured], training.labels[~measured])
        self.checkpoints_: dict[int, torch.nn.Module] = {}

        def keep(step: int, network: torch.nn.Module) -> None:
            self.checkpoints_[step] = copy.deepcopy(network).cpu().eval()

        self.classifier_ = train_classifier(
            (training.values[measured], training.masks[measured]), training.labels[measured],
            task=self.task, config=self.config, simulated=simulated, films=films,
            checkpoint=keep if self.checkpoint_steps else None, checkpoint_steps=self.checkpoint_steps,
        )
        return self

    def checkpoint_probabilities(self, features: np.ndarray) -> dict[int, np.ndarray]:
        """Step -> ``[N, C]`` mean member softmax of the network at that step (no memory, T = 1).

        Read by :func:`evaluation.protocols.run_folds` for the learning curve.
        """
        x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
        with torch.inference_mode():
            return {step: net(x).softmax(-1).mean(1).numpy() for step, net in sorted(self.checkpoints_.items())}

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return self.classifier_.predict_proba(features)

    def cam(self, features: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """CAM of the given class of each pattern, ``[N, 1376]`` (max 1, >= 0)."""
        return self.classifier_.explain(features, np.asarray(classes))


@lru_cache(maxsize=4)
def _film_pool(task: str, small: bool) -> FilmGenerator:
    """One structure pool per task and process (a build costs 15-40 s); each fold model draws its
    own stream from it with :meth:`FilmGenerator.with_seed`. ``small``: the cited prototypes only
    (CI: exercises the path in a second)."""
    if small:
        return FilmGenerator(task=task, seed=0, device="cpu", structures_per_class=0, include_cifs=False)
    return FilmGenerator(task=task, seed=0, device="cpu")


def classifier_spec(name: str, config: TrainConfig, description: str, checkpoint_steps: Sequence[int] = (),
                    small_pool: bool = False) -> ModelSpec:
    """A :class:`ModelSpec` training ``config`` with the fold's seed (and keeping ``checkpoint_steps``)."""

    def factory(task: str, seed: int) -> FoldModel:
        return ClassifierFoldModel(task, replace(config, seed=seed), checkpoint_steps, small_pool)

    return ModelSpec(name, factory, description, settings=config.to_dict())


def ours_spec(quick: bool = False, config: TrainConfig = OURS_CONFIG, checkpoint_steps: Sequence[int] = ()) -> ModelSpec:
    """Our model: the shipped recipe (new films, memory, out-of-distribution threshold), see :data:`OURS_CONFIG`."""
    config = quick_config(config) if quick else config
    steps = [s for s in checkpoint_steps if s <= config.steps]
    return classifier_spec(
        "ours", config,
        f"XRDNet x{config.n_members}, width {config.width}, {config.steps} steps on measured rows and new films"
        f"{' + memory' if config.film_generator else ''}; temperature cross-fitted", steps, small_pool=quick)


def acnn_spec(quick: bool = False, config: TrainConfig = ACNN_CONFIG) -> ModelSpec:
    """The faithful a-CNN (one network), same data and training steps."""
    config = quick_config(config) if quick else config
    return classifier_spec("acnn", config,
                           f"faithful a-CNN (Oviedo et al. 2019), {config.n_members} network(s), "
                           f"{config.steps} steps, same data and augmentation")
