"""The training settings of a classifier, recorded in every model file (``model.json`` ``config``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from training.augment import AugmentConfig

DEFAULT_SEED: int = 2019
"""Seed of the shipped default models (the year of Oviedo et al.)."""
DEFAULT_SIMULATED_PER_CLASS: int = 100
"""Simulated patterns per class of a fixed simulated set (the a-CNN baseline and Case 1/2 protocols)."""
DEFAULT_WIDTH: int = 32
"""Channels per member of the shipped models: at 16, Case 1 (CV on simulated films) reached 0.62 after
2,000 steps, at 48 0.70 (one member, same data): the narrow net could not separate its own classes."""
DEFAULT_MEMBERS: int = 3
"""Members of the shipped ensemble: three still give every measured pattern a member that never
trained on it (the calibration hold-out), at 60 % of the cost of five."""
DEFAULT_STEPS: int = 1500
"""Optimiser steps of the shipped models (see the learning curve of ``xrd-agent bench accuracy``)."""


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
    film_generator : bool
        Draw the simulated share of every batch new from :class:`training.generator.FilmGenerator`
        (substituted prototypes and random crystals, no film seen twice: Schopmans et al. 2023)
        when the training data hold no fixed simulated rows.
    film_fraction : float
        When the training data hold fixed simulated rows AND a film stream is given: the share of
        the simulated part of each batch drawn as new films; the rest are fixed rows
        (class-balanced). 1.0: films only.
    balance_measured : bool
        Draw measured rows class-balanced (each class equally often) instead of uniformly: the
        measured set is 53 % Pm-3m, and a uniform draw teaches the prior, not the rare classes.
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
    film_generator: bool = False
    film_fraction: float = 1.0
    balance_measured: bool = False
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    calibrate: bool = True
    seed: int = 0
    device: str | None = None

    def __post_init__(self) -> None:
        if self.n_members < 1 or self.steps < 1 or self.batch_size < 1:
            raise ValueError("n_members, steps and batch_size must be >= 1")
        for name in ("measured_fraction", "film_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {getattr(self, name)}")

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


def default_config(seed: int = DEFAULT_SEED, steps: int = DEFAULT_STEPS) -> TrainConfig:
    """The configuration of the shipped default models: measured patterns and new simulated films.

    Half of every batch is measured (class-balanced), half new films from the generator.
    """
    return TrainConfig(seed=seed, width=DEFAULT_WIDTH, n_members=DEFAULT_MEMBERS, steps=steps,
                       film_generator=True, balance_measured=True)
