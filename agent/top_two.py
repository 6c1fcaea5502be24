"""The second most probable class's CAM beside a prediction, computed only when the policy asks.

The policy's back-step rule (`agent.policy`, rule 3) refines a weak feature where the class
activation maps of the two most probable classes disagree: that is where the evidence separating
them lies. A `models.classifier.Classifier` prediction of the fused network carries every class's
map from its one forward pass (`models.prediction.Prediction.cam_of`); for any other network a
second map costs one more forward pass, so `TopTwoCams` returns predictions whose ``second_cam``
is computed on first access -- in practice only when a coarse interval behind the frontier ends on
a weak feature, a few times per scan.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class TopTwoPrediction:
    """A prediction with a lazily computed ``second_cam`` (every other attribute is the prediction's).

    Parameters
    ----------
    prediction : models.prediction.Prediction
        The classifier's answer.
    explain : callable
        ``explain(class_index) -> float[1376]``: the CAM of a class for the same scan.
    """

    def __init__(self, prediction: Any, explain: Any) -> None:
        self.prediction = prediction
        self._explain = explain
        self._second_cam: np.ndarray | None = None

    @property
    def second_label(self) -> str:
        """The second most probable class."""
        return str(self.prediction.classes[self._second_index()])

    @property
    def second_cam(self) -> np.ndarray:
        """float[1376] CAM of the second most probable class on the model grid (max 1, 0 where unmeasured)."""
        if self._second_cam is None:
            self._second_cam = np.asarray(self._explain(self._second_index()), dtype=np.float64)
        return self._second_cam

    def _second_index(self) -> int:
        return int(np.argsort(np.asarray(self.prediction.probabilities))[-2])

    def __getattr__(self, name: str) -> Any:
        return getattr(self.prediction, name)


class TopTwoCams:
    """A classifier whose predictions also offer the second class's CAM (`TopTwoPrediction`).

    Parameters
    ----------
    classifier : models.classifier.Classifier
        ``predict(two_theta, intensity)`` and ``explain(features, class_index)``; every other
        attribute (``version``, ``classes``, ``task``, ``device``) is the classifier's.
    """

    def __init__(self, classifier: Any) -> None:
        self.classifier = classifier

    def predict(self, two_theta: np.ndarray, intensity: np.ndarray) -> TopTwoPrediction:
        """Classify a (partial) scan: angles in degrees, counts; as ``Classifier.predict``."""
        prediction = self.classifier.predict(two_theta, intensity)
        if getattr(prediction, "class_cams", None) is not None:  # every class's map came with it: no second pass
            return TopTwoPrediction(prediction, prediction.cam_of)

        def explain(class_index: int) -> np.ndarray:
            import torch

            from models.grid import to_grid
            from models.preprocess import preprocess_torch

            values, mask = to_grid(two_theta, intensity)
            features = preprocess_torch(torch.from_numpy(values[None]), torch.from_numpy(mask[None]))
            return self.classifier.explain(features, class_index)[0] * mask  # 0 where unmeasured, as CAM1

        return TopTwoPrediction(prediction, explain)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.classifier, name)
