"""Write the retrain gate's unseen-materials films: ``data/unseen-materials/films-<task>.npz``.

The retrain flow scores champion and challenger on the unseen-materials set
(:func:`evaluation.unseen_materials.unseen_films`: 46 literature structures, each measured by the
simulated beamline under 3 textures x 2 count levels). The flow may not import ``evaluation``
(``flows`` sits beside it, not above it), and rendering the films takes about a minute per task on
the 2 cores, too long for every night; so the films are rendered once, here, and shipped as
data. ``tests/test_flows_gate_evaluation.py`` re-renders some of them and fails if the files and
the renderer or the structure table drift apart.

Run ``python -m bench.gate_films`` after changing the table or the renderer.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

#: Seed of the films' counting noise (the accuracy benchmark's default).
FILMS_SEED = 0


def films_path(task: str) -> Path:
    """``<repo>/data/unseen-materials/films-<task>.npz``."""
    from patterns import repo_data_dir

    return repo_data_dir() / "unseen-materials" / f"films-{task}.npz"


def table_sha256() -> str:
    """SHA-256 of ``data/unseen-materials/structures.json``: which table the films were rendered from."""
    from evaluation.unseen_materials import table_path

    return hashlib.sha256(table_path().read_bytes()).hexdigest()


def write_films(task: str, path: Path | None = None) -> Path:
    """Render every unseen-materials film of ``task`` and write them (counts as uint32, no pickle).

    Arrays: ``counts`` uint32 [N, 1376] (Poisson counts on :data:`models.grid.GRID`, every point
    measured), ``labels`` int64 [N] (indices into the task's classes), ``names`` str [N]
    (``structure|texture|count level``), ``structures`` str [N], ``classes`` str [K], ``task``,
    ``seed``, ``table_sha256``.
    """
    from evaluation.unseen_materials import unseen_films
    from patterns.datasets import task_classes

    films = unseen_films(task, seed=FILMS_SEED)
    if not np.array_equal(films.values, np.round(films.values)) or films.values.min() < 0:
        raise ValueError("the unseen films are not counts: store them as float32 instead")
    path = path or films_path(task)
    np.savez_compressed(
        path, counts=films.values.astype(np.uint32), labels=films.labels.astype(np.int64),
        names=np.asarray(films.names, dtype=str), structures=np.asarray(films.structures, dtype=str),
        classes=np.asarray(task_classes(task), dtype=str), task=np.asarray(task), seed=np.asarray(FILMS_SEED),
        table_sha256=np.asarray(table_sha256()),
    )
    return path


def main() -> None:
    for task in ("space_group", "dimensionality"):
        print(write_films(task))


if __name__ == "__main__":
    main()
