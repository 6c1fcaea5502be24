"""The classifier's answer for one scan: a frozen record the agent's policy reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


def scaled_cam(cam: np.ndarray) -> np.ndarray:
    """A raw class activation map as `Prediction.cam` holds one: clipped at 0, scaled to a maximum
    of 1 (left at 0 when nothing is positive)."""
    cam = np.clip(cam, 0.0, None)
    peak = cam.max()
    return cam / peak if peak > 0 else cam


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
    measured : np.ndarray or None
        bool [1376]: the grid points backed by measurement (:func:`models.grid.to_grid`'s mask,
        the one definition of "measured" from the grid to the policy); None for a hand-made
        prediction.
    out_of_distribution : bool
        The pattern is farther from everything the model knows than the memory's threshold
        (:class:`models.memory.EmbeddingMemory`): its class is a guess, never a reason to stop.
    novelty : float
        ``1 - cos`` to the k-th nearest known embedding (NaN when the model has no memory).
    class_cams : np.ndarray or None
        float32 [n_classes, 1376]: every class's activation map from the same forward pass
        (ensemble mean, unclipped, unscaled, 0 where unmeasured), read by :meth:`cam_of`; None
        when the network does not give them in one pass.
    """

    probabilities: np.ndarray
    label: str
    confidence: float
    cam: np.ndarray
    coverage: float
    classes: tuple[str, ...] = field(default_factory=tuple)
    measured: np.ndarray | None = None
    out_of_distribution: bool = False
    novelty: float = float("nan")
    class_cams: np.ndarray | None = field(default=None, repr=False)

    def cam_of(self, class_index: int) -> np.ndarray | None:
        """float [1376] CAM of any class as ``cam`` is of ``label`` (clipped at 0, maximum 1, 0 where
        unmeasured); None without ``class_cams``."""
        return None if self.class_cams is None else scaled_cam(self.class_cams[class_index])

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
            "out_of_distribution": bool(self.out_of_distribution),
            "novelty": None if np.isnan(self.novelty) else float(self.novelty),
        }
