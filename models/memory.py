"""A memory of measured patterns: nearest neighbours in the network's embedding, and their distance.

The network's softmax knows the classes; it does not know *this* sample. The memory holds the
embedding (the pooled last-layer features, one unit vector per pattern) of every measured training
pattern and of every labelled scan, so that

* a pattern close to a remembered one votes for that one's label (:meth:`EmbeddingMemory.predict_proba`),
  and a scan labelled today is recognised on the next run, before any retraining
  (:meth:`EmbeddingMemory.add`);
* a pattern far from everything the model was trained on is flagged out of distribution by the
  distance to its k-th nearest neighbour in a reference set of in-distribution embeddings
  (Sun, Ming, Zhu & Li 2022, "Out-of-distribution detection with deep nearest neighbors",
  ICML, PMLR 162: 20827-20840): the score is ``1 - cos`` to the k-th neighbour, and the threshold
  is the quantile of that score on held-out in-distribution patterns (:meth:`fit_threshold`).

Everything is a cosine similarity between unit vectors, so a query costs one [1, D] x [D, N]
product: ~20 microseconds for N = 2,000 and D = 80 on one core.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

DEFAULT_NEIGHBOURS: int = 5
"""Neighbours that vote, and the k of the k-th-neighbour distance (Sun et al. 2022 use k = 50 on
ImageNet-sized banks; with a few hundred remembered patterns per class, 5 keeps the vote local)."""
DEFAULT_SHARPNESS: float = 20.0
"""Inverse temperature of the similarity-weighted vote: a neighbour at cos 0.95 outweighs one at
0.90 by e^1 ~ 2.7."""
DEFAULT_WEIGHT: float = 0.5
"""Exponent of the memory's vote in the product with the network's probabilities
(``p ~ p_net * p_memory ** weight``): the network leads, a close remembered pattern tips the balance."""
DEFAULT_SOFTNESS: float = 0.25
"""Width of the out-of-distribution ramp as a fraction of the threshold: at the threshold the
probabilities are halfway to uniform, one width beyond it 73 % of the way (a logistic ramp)."""
TENSOR_PREFIX: str = "memory."
"""Prefix of the memory's arrays in a model's ``weights.safetensors``."""


def _finite_rows(embeddings: np.ndarray) -> np.ndarray:
    array = np.asarray(embeddings, dtype=np.float32)
    if array.ndim != 2 or not np.isfinite(array).all():
        raise ValueError(f"embeddings must be finite [N, D], got shape {array.shape}")
    return array


def unit_rows(embeddings: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, float32 [N, D]; zero rows stay zero.

    Raises
    ------
    ValueError
        When ``embeddings`` is not 2-D or holds a non-finite value.
    """
    array = np.asarray(embeddings, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"embeddings must be [N, D], got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("embeddings hold NaN or inf")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.where(norms > 0, norms, 1.0)


class EmbeddingMemory:
    """Labelled unit embeddings with a similarity-weighted nearest-neighbour vote and a novelty score.

    Parameters
    ----------
    n_classes : int
        Number of classes of the task.
    n_neighbours : int
        Neighbours that vote and whose k-th similarity gives the novelty.
    sharpness : float
        Inverse temperature of the vote (weights ``exp(sharpness * cos)``).

    Attributes
    ----------
    embeddings_ : np.ndarray
        float32 [N, D] remembered unit embeddings.
    labels_ : np.ndarray
        int64 [N] their class indices.
    reference_ : np.ndarray
        float32 [M, D] in-distribution unit embeddings the novelty is measured against
        (the remembered ones plus, typically, simulated training films).
    threshold_ : float
        Novelty above which a pattern is out of distribution (inf until :meth:`fit_threshold`).
    """

    def __init__(self, n_classes: int, n_neighbours: int = DEFAULT_NEIGHBOURS, sharpness: float = DEFAULT_SHARPNESS,
                 weight: float = DEFAULT_WEIGHT, softness: float = DEFAULT_SOFTNESS) -> None:
        if n_classes < 2 or n_neighbours < 1 or sharpness <= 0 or weight < 0 or softness <= 0:
            raise ValueError("n_classes must be >= 2, n_neighbours >= 1, sharpness > 0, weight >= 0 and softness > 0")
        self.n_classes = n_classes
        self.n_neighbours = n_neighbours
        self.sharpness = sharpness
        self.weight = weight
        self.softness = softness

    def fit(self, embeddings: np.ndarray, labels: np.ndarray, reference: np.ndarray | None = None) -> EmbeddingMemory:
        """Remember labelled embeddings [N, D] (and an in-distribution reference [M, D], same D)."""
        self.embeddings_ = unit_rows(embeddings)
        self.labels_ = self._checked_labels(labels, self.embeddings_.shape[0])
        extra = np.zeros((0, self.embeddings_.shape[1]), np.float32) if reference is None else unit_rows(reference)
        if extra.shape[1] != self.embeddings_.shape[1]:
            raise ValueError(f"reference has {extra.shape[1]} dimensions, the memory {self.embeddings_.shape[1]}")
        self.reference_ = np.concatenate([self.embeddings_, extra])
        self.threshold_ = float("inf")
        return self

    def copy(self) -> EmbeddingMemory:
        """An independent copy: the arrays are shared, which is safe because nothing changes them in
        place (:meth:`add` and :meth:`fit` assign new arrays)."""
        return copy.copy(self)

    def add(self, embeddings: np.ndarray, labels: np.ndarray) -> EmbeddingMemory:
        """Remember more labelled patterns (a scan labelled today); they join the reference too."""
        self._check_fitted()
        new = unit_rows(embeddings)
        if new.shape[1] != self.embeddings_.shape[1]:
            raise ValueError(f"embeddings have {new.shape[1]} dimensions, the memory {self.embeddings_.shape[1]}")
        self.embeddings_ = np.concatenate([self.embeddings_, new])
        self.labels_ = np.concatenate([self.labels_, self._checked_labels(labels, new.shape[0])])
        self.reference_ = np.concatenate([self.reference_, new])
        return self

    def predict_proba(self, embeddings: np.ndarray) -> np.ndarray:
        """Vote of the nearest remembered patterns, float64 [Q, n_classes], rows summing to 1.

        Each of the ``n_neighbours`` most similar remembered patterns adds ``exp(sharpness * cos)``
        to its class; one pseudo-count spread over all classes keeps every probability positive.
        """
        self._check_fitted()
        return self._vote(unit_rows(embeddings))

    def novelty(self, embeddings: np.ndarray) -> np.ndarray:
        """``1 - cos`` to the k-th most similar reference embedding, float64 [Q], within [0, 2]."""
        self._check_fitted()
        return self._novelty(unit_rows(embeddings))

    # the two scores on rows already scaled to unit length (adjust scales them once for both: the
    # agent calls it at every decision, where numpy's per-call overhead is most of the time)
    def _vote(self, unit: np.ndarray) -> np.ndarray:
        similarity = unit @ self.embeddings_.T  # [Q, N]
        q, k = similarity.shape[0], min(self.n_neighbours, similarity.shape[1])
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        weights = np.exp(self.sharpness * (np.take_along_axis(similarity, nearest, axis=1) - 1.0))
        # every neighbour's weight added to its class (one bincount over (row, class) cells)
        cells = (np.arange(q)[:, None] * self.n_classes + self.labels_[nearest]).ravel()
        votes = np.bincount(cells, weights.ravel().astype(np.float64), q * self.n_classes).reshape(q, self.n_classes)
        votes += np.exp(-self.sharpness) / self.n_classes
        return votes / votes.sum(axis=1, keepdims=True)

    def _novelty(self, unit: np.ndarray) -> np.ndarray:
        similarity = unit @ self.reference_.T
        k = min(self.n_neighbours, similarity.shape[1])
        kth = -np.partition(-similarity, k - 1, axis=1)[:, k - 1]
        return 1.0 - kth.astype(np.float64)

    def fit_threshold(self, heldout_embeddings: np.ndarray, quantile: float = 0.95) -> float:
        """Set :attr:`threshold_` so that ``quantile`` of held-out in-distribution patterns pass.

        The held-out patterns must not be in the reference (their own distance would be 0).
        """
        if not 0.5 <= quantile < 1.0:
            raise ValueError(f"quantile must be within [0.5, 1), got {quantile}")
        scores = self.novelty(heldout_embeddings)
        if scores.size == 0:
            raise ValueError("no held-out embeddings to set the threshold on")
        self.threshold_ = float(np.quantile(scores, quantile, method="higher"))  # "higher": at least `quantile` pass
        return self.threshold_

    def is_out_of_distribution(self, embeddings: np.ndarray) -> np.ndarray:
        """bool [Q]: novelty above the fitted threshold."""
        return self.novelty(embeddings) > self.threshold_

    def adjust(self, probabilities: np.ndarray, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The network's probabilities combined with the memory, and pulled to uniform when novel.

        ``p ~ p_net * p_memory ** weight`` (renormalised), then ``(1 - r) p + r / K`` with the
        logistic ramp ``r = 1 / (1 + exp(-(novelty - threshold) / (softness * threshold)))``, so a
        pattern far from everything the model knows comes back near 1 / K, never confident.

        Parameters
        ----------
        probabilities : np.ndarray
            float [N, K], the network's calibrated probabilities.
        embeddings : np.ndarray
            float [N, D], the same patterns' embeddings.

        Returns
        -------
        probabilities : np.ndarray
            float64 [N, K], rows summing to 1.
        novelty : np.ndarray
            float64 [N] (:meth:`novelty`).
        out_of_distribution : np.ndarray
            bool [N], novelty above the threshold.
        """
        self._check_fitted()
        unit = unit_rows(embeddings)
        combined = np.log(np.clip(np.asarray(probabilities, np.float64), 1e-300, None)) + self.weight * np.log(self._vote(unit))
        combined = np.exp(combined - combined.max(axis=1, keepdims=True))
        combined /= combined.sum(axis=1, keepdims=True)
        novelty = self._novelty(unit)
        if np.isfinite(self.threshold_) and self.threshold_ > 0:
            ramp = 1.0 / (1.0 + np.exp(-np.clip((novelty - self.threshold_) / (self.softness * self.threshold_), -50, 50)))
        else:
            ramp = np.zeros_like(novelty)
        adjusted = (1.0 - ramp[:, None]) * combined + ramp[:, None] / self.n_classes
        return adjusted, novelty, novelty > self.threshold_

    def settings(self) -> dict[str, float | int]:
        """The JSON part of a saved memory (``model.json`` ``memory``)."""
        return {"n_neighbours": self.n_neighbours, "sharpness": self.sharpness, "weight": self.weight,
                "softness": self.softness, "threshold": self.threshold_ if np.isfinite(self.threshold_) else None}

    def tensors(self) -> dict[str, torch.Tensor]:
        """The arrays of a saved memory, keyed with :data:`TENSOR_PREFIX` (for safetensors)."""
        self._check_fitted()
        return {f"{TENSOR_PREFIX}embeddings": torch.from_numpy(self.embeddings_.copy()),
                f"{TENSOR_PREFIX}labels": torch.from_numpy(self.labels_.copy()),
                f"{TENSOR_PREFIX}reference": torch.from_numpy(self.reference_.copy())}

    @classmethod
    def from_saved(cls, n_classes: int, settings: dict, tensors: dict[str, torch.Tensor]) -> EmbeddingMemory:
        """Inverse of :meth:`settings` + :meth:`tensors`.

        Raises
        ------
        ValueError
            When an array or setting is missing or malformed.
        """
        try:
            memory = cls(n_classes, int(settings["n_neighbours"]), float(settings["sharpness"]), float(settings["weight"]),
                         float(settings["softness"]))
            # stored rows are unit vectors already: kept bit for bit, so the content hash holds
            memory.embeddings_ = _finite_rows(tensors[f"{TENSOR_PREFIX}embeddings"].numpy())
            memory.labels_ = memory._checked_labels(tensors[f"{TENSOR_PREFIX}labels"].numpy(), memory.embeddings_.shape[0])
            memory.reference_ = _finite_rows(tensors[f"{TENSOR_PREFIX}reference"].numpy())
        except (KeyError, TypeError) as exc:
            raise ValueError(f"incomplete memory of measured patterns ({exc!r} missing or malformed)") from None
        threshold = settings.get("threshold")
        memory.threshold_ = float("inf") if threshold is None else float(threshold)
        return memory

    def _checked_labels(self, labels: np.ndarray, n: int) -> np.ndarray:
        array = np.asarray(labels)
        if array.shape != (n,) or array.dtype.kind not in "iu":
            raise ValueError(f"labels must be {n} integer class indices, got shape {array.shape} dtype {array.dtype}")
        if n and (array.min() < 0 or array.max() >= self.n_classes):
            raise ValueError(f"labels must be within [0, {self.n_classes})")
        return array.astype(np.int64)

    def _check_fitted(self) -> None:
        if not hasattr(self, "embeddings_"):
            raise RuntimeError("the memory is empty: call fit() first")
