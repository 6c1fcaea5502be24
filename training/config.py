"""The training settings of a classifier, recorded in every model file (``model.json`` ``config``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from training.augment import AugmentConfig

DEFAULT_SEED: int = 2019
"""Seed of the shipped default models (the year of Oviedo et al.)."""
DEFAULT_SIMULATED_PER_CLASS: int = 100
"""Simulated patterns per class in the default models' training set."""


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


def default_config(seed: int = DEFAULT_SEED) -> TrainConfig:
    """The configuration of the shipped default models."""
    return TrainConfig(seed=seed, n_simulated_per_class=DEFAULT_SIMULATED_PER_CLASS)
