"""The memory a trained classifier ships with: its measured training patterns, and where "known" ends.

After training, :func:`fit_memory` embeds every measured training pattern with the network
(:meth:`models.classifier.Classifier.embed`) and remembers it with its label; the reference of
in-distribution embeddings adds new simulated films (:class:`training.generator.FilmGenerator`);
the out-of-distribution threshold is the ``quantile`` of the novelty of further films that are in
neither (:meth:`models.memory.EmbeddingMemory.fit_threshold`, after Sun et al. 2022), so about
``1 - quantile`` of in-distribution films are flagged.
"""

from __future__ import annotations

import numpy as np
import torch

from models.classifier import Classifier
from models.memory import EmbeddingMemory
from models.preprocess import preprocess, preprocess_torch
from training.dataset import TrainingData
from training.generator import FilmGenerator

REFERENCE_FILMS: int = 2048
"""Simulated films in the in-distribution reference (with 7 classes ~290 each)."""
THRESHOLD_FILMS: int = 512
"""Further films whose novelty sets the threshold."""
THRESHOLD_QUANTILE: float = 0.99
"""Share of in-distribution films that pass unflagged: a false flag costs a full scan, a missed one
a wrong confident answer, and the ramp (``models.memory.DEFAULT_SOFTNESS``) already lowers the
confidence of patterns approaching the threshold."""


def memory_stream_seed(seed: int) -> int:
    """Seed of the reference and threshold films of a model trained with ``seed`` (a stream apart
    from training's ``seed * 1000 + member``)."""
    return seed * 1000 + 999


def _film_embeddings(classifier: Classifier, films: FilmGenerator, n: int, chunk: int = 256) -> np.ndarray:
    out = []
    for start in range(0, n, chunk):
        values, _ = films.sample(min(chunk, n - start))
        values = values.float().cpu()
        out.append(classifier.embed(preprocess_torch(values, torch.ones_like(values, dtype=torch.bool))))
    return np.concatenate(out)


def fit_memory(classifier: Classifier, data: TrainingData, *, seed: int, films: FilmGenerator | None = None) -> Classifier:
    """``classifier`` with a memory of the measured rows of ``data`` and a fitted out-of-distribution threshold.

    Parameters
    ----------
    classifier : Classifier
        Trained on ``data``.
    data : TrainingData
        Its training data; the measured rows are remembered, the simulated ones join the reference.
    seed : int
        Seed of the reference and threshold films (streams distinct from training's).
    films : FilmGenerator, optional
        The film source (default: a new generator of the classifier's task).

    Returns
    -------
    Classifier
        A copy with the memory (another version); ``classifier`` itself when ``data`` holds no
        measured rows.
    """
    measured = np.flatnonzero(data.is_measured)
    if measured.size == 0:  # nothing measured to remember: the network answers alone
        return classifier
    films = films or FilmGenerator(task=classifier.task, seed=memory_stream_seed(seed), device="cpu")
    simulated = np.flatnonzero(~data.is_measured)
    reference = [_film_embeddings(classifier, films, REFERENCE_FILMS)]
    if simulated.size:
        reference.append(classifier.embed(preprocess(data.values[simulated], data.masks[simulated])))
    memory = EmbeddingMemory(len(classifier.classes))
    memory.fit(classifier.embed(preprocess(data.values[measured], data.masks[measured])), data.labels[measured],
               reference=np.concatenate(reference))
    memory.fit_threshold(_film_embeddings(classifier, films, THRESHOLD_FILMS), THRESHOLD_QUANTILE)
    return classifier.with_memory(memory)
