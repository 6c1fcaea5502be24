"""The trained models of the comparison, behind the evaluation harness's ``fit/predict_proba``.

:class:`ClassifierFoldModel` adapts :func:`training.fit.train_classifier` (which augments inside
training, on the rows it is given and nothing else) to :class:`evaluation.protocols.FoldModel`: the
measured rows of the fold's :class:`evaluation.protocols.TrainingSet` go in as measured patterns, the
simulated rows as the simulated set. The two configurations compared are

* **ours** -- :data:`OURS_CONFIG`: the XRDNet ensemble, temperature fitted inside training on the
  members' held-out measured patterns (an inner split of the training fold);
* **acnn** -- :data:`ACNN_CONFIG`: the faithful a-CNN of Oviedo et al. (one network, the paper's
  architecture), trained on exactly the same data, augmentation and number of steps.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from evaluation.protocols import FoldModel, ModelSpec, TrainingSet
from training.fit import TrainConfig, train_classifier

OURS_CONFIG = TrainConfig()
"""Per-fold configuration of our model (the classifier's defaults)."""

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

    def __init__(self, task: str, config: TrainConfig) -> None:
        self.task = task
        self.config = config

    def fit(self, training: TrainingSet) -> ClassifierFoldModel:
        measured = training.is_measured
        simulated = None
        if (~measured).any():
            simulated = (training.values[~measured], training.labels[~measured])
        self.classifier_ = train_classifier(
            (training.values[measured], training.masks[measured]), training.labels[measured],
            task=self.task, config=self.config, simulated=simulated,
        )
        return self

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return self.classifier_.predict_proba(features)

    def cam(self, features: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """CAM of the given class of each pattern, ``[N, 1376]`` (max 1, >= 0)."""
        return self.classifier_.explain(features, np.asarray(classes))


def classifier_spec(name: str, config: TrainConfig, description: str) -> ModelSpec:
    """A :class:`ModelSpec` training ``config`` with the fold's seed."""

    def factory(task: str, seed: int) -> FoldModel:
        return ClassifierFoldModel(task, replace(config, seed=seed))

    return ModelSpec(name, factory, description, settings=config.to_dict())


def ours_spec(quick: bool = False, config: TrainConfig = OURS_CONFIG) -> ModelSpec:
    """Our model (XRDNet ensemble, calibrated on inner held-out patterns)."""
    config = quick_config(config) if quick else config
    return classifier_spec(
        "ours", config,
        f"XRDNet ensemble of {config.n_members}, width {config.width}, {config.steps} steps, "
        "temperature fitted on the members' held-out training patterns")


def acnn_spec(quick: bool = False, config: TrainConfig = ACNN_CONFIG) -> ModelSpec:
    """The faithful a-CNN (one network), same data and training steps."""
    config = quick_config(config) if quick else config
    return classifier_spec("acnn", config,
                           f"faithful a-CNN (Oviedo et al. 2019), {config.n_members} network(s), "
                           f"{config.steps} steps, same data and augmentation")
