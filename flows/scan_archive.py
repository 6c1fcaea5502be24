"""Labelled scans in one ``.npz`` file: an export of the catalog's labelled runs, or a dataset
brought from elsewhere, that the retrain flow can train on without reading runs one by one.

Ragged scans are stored flattened with offsets; strings as unicode arrays. Loaded with
``allow_pickle=False``: the file holds plain arrays only, never objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from storage.scans import LabelledScan

_FIELDS = ("two_theta", "intensity", "offsets", "labels", "label_times", "uids", "samples")


def save_scans(path: str | Path, scans: Sequence[LabelledScan]) -> Path:
    """Write ``scans`` to ``path`` (``.npz``); the file is written under a temporary name, then renamed."""
    import os

    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"a scan archive must end in .npz, got {path}")
    lengths = np.array([s.two_theta.size for s in scans], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    arrays = {
        "two_theta": np.concatenate([s.two_theta for s in scans]).astype(np.float64) if scans else np.zeros(0),
        "intensity": np.concatenate([s.intensity for s in scans]).astype(np.float64) if scans else np.zeros(0),
        "offsets": offsets,
        "labels": np.array([s.label for s in scans], dtype=str),
        "label_times": np.array([s.label_time for s in scans], dtype=np.float64),
        "uids": np.array([s.uid for s in scans], dtype=str),
        "samples": np.array([s.sample or "" for s in scans], dtype=str),
    }
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
    return path


def load_scans(path: str | Path) -> list[LabelledScan]:
    """Read an archive written by :func:`save_scans`; ValueError if it is malformed."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [f for f in _FIELDS if f not in data.files]
            if missing:
                raise ValueError(f"{path}: not a scan archive (missing {missing})")
            arrays = {f: data[f] for f in _FIELDS}
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path}: cannot read the scan archive ({exc})") from None
    offsets = arrays["offsets"]
    n = arrays["labels"].size
    if offsets.size != n + 1 or offsets[-1] != arrays["two_theta"].size or arrays["intensity"].size != arrays["two_theta"].size:
        raise ValueError(f"{path}: inconsistent scan archive (offsets do not match the data)")
    return [
        LabelledScan(
            uid=str(arrays["uids"][i]),
            two_theta=arrays["two_theta"][offsets[i] : offsets[i + 1]],
            intensity=arrays["intensity"][offsets[i] : offsets[i + 1]],
            label=str(arrays["labels"][i]),
            label_time=float(arrays["label_times"][i]),
            sample=str(arrays["samples"][i]) or None,
        )
        for i in range(n)
    ]
