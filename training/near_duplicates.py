"""Near-duplicate groups among the measured patterns, so that no pattern is trained and tested on.

A near-duplicate group is a connected component of the graph whose edges join two patterns
whose Pearson correlation, after preprocessing, exceeds :data:`NEAR_DUPLICATE_THRESHOLD` on the
grid range both patterns measured (at least :data:`MIN_OVERLAP_POINTS` common grid points). The
88 space-group patterns and the 73 dimensionality patterns are grouped in one graph, with an
extra edge between each ``exp_d.csv`` column and the ``.xy`` file it was derived from
(``derived_expd_to_xy_map.csv``), so that a pattern and its copy in the other set always share
a group: a model for one task never trains on the copy of a pattern it is tested on.

The groups belong to the training data (:mod:`training.measured_set` carries them); the grouped
folds of :mod:`evaluation.folds` and the 1-NN baseline's correlation use them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

NEAR_DUPLICATE_THRESHOLD = 0.95
"""Pearson correlation above which two preprocessed patterns count as near-duplicates."""

MIN_OVERLAP_POINTS = 10
"""Fewest common measured grid points (0.4 deg at 0.04 deg) for a correlation to count."""

MIN_OVERLAP_FRACTION = 0.5
"""For grouping, the common range must also cover this fraction of the longer pattern's range.

Why: the three single-peak scans (13.75-14.40 deg, 16 grid points) correlate above 0.95 with
any film that has a reflection at 14 deg, whatever its phase (they linked I4/mcm and Pm-3m films
into one group); a correlation over a small part of one pattern measures one peak, not whether
two patterns are copies. Two patterns of the same short range are still compared.
"""



def correlation_on_common_range(
    features: np.ndarray,
    masks: np.ndarray,
    min_overlap: int = MIN_OVERLAP_POINTS,
    min_overlap_fraction: float = MIN_OVERLAP_FRACTION,
) -> np.ndarray:
    """Pearson correlation of every pair of patterns over the grid points both measured.

    Parameters
    ----------
    features : np.ndarray
        Preprocessed intensities ``[N, G]`` on the common grid (any value where unmeasured).
    masks : np.ndarray
        Measured masks ``[N, G]`` (bool).
    min_overlap : int
        Pairs with fewer common measured points get NaN.
    min_overlap_fraction : float
        Pairs whose common range covers less than this fraction of the longer pattern's
        measured points get NaN (see :data:`MIN_OVERLAP_FRACTION`).

    Returns
    -------
    np.ndarray
        ``[N, N]`` float64, symmetric, NaN where undefined (too little overlap, or a pattern
        constant on the overlap).
    """
    x = np.asarray(features, dtype=np.float64)
    m = np.asarray(masks, dtype=bool)
    if x.ndim != 2 or x.shape != m.shape:
        raise ValueError(f"features {x.shape} and masks {m.shape} must both be [N, G]")
    return cross_correlation_on_common_range(x, m, x, m, min_overlap, min_overlap_fraction)


def cross_correlation_on_common_range(
    features_a: np.ndarray,
    masks_a: np.ndarray,
    features_b: np.ndarray,
    masks_b: np.ndarray,
    min_overlap: int = MIN_OVERLAP_POINTS,
    min_overlap_fraction: float = 0.0,
) -> np.ndarray:
    """Pearson correlation of each pattern of set A with each of set B on their common range.

    For the pair ``(i, j)`` only grid points measured in both ``i`` and ``j`` enter the means,
    variances and covariance, so an unmeasured region never counts as zero intensity. All sums
    are matrix products, so the cost is five ``[N_a, G] @ [G, N_b]`` products.

    Returns
    -------
    np.ndarray
        ``[N_a, N_b]`` float64 with NaN where fewer than ``min_overlap`` points (or less than
        ``min_overlap_fraction`` of the longer pattern's measured points) are common, or where
        a variance is zero.
    """
    ma = np.asarray(masks_a, dtype=np.float64)
    mb = np.asarray(masks_b, dtype=np.float64)
    xa = np.asarray(features_a, dtype=np.float64) * ma
    xb = np.asarray(features_b, dtype=np.float64) * mb
    if xa.shape[1] != xb.shape[1]:
        raise ValueError(f"grids differ: {xa.shape[1]} vs {xb.shape[1]} points")
    n = ma @ mb.T
    sum_a = xa @ mb.T
    sum_b = ma @ xb.T
    sum_aa = (xa * xa) @ mb.T
    sum_bb = ma @ (xb * xb).T
    sum_ab = xa @ xb.T
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sum_ab - sum_a * sum_b / n
        var_a = sum_aa - sum_a**2 / n
        var_b = sum_bb - sum_b**2 / n
        denominator = np.sqrt(var_a * var_b)
        corr = cov / denominator
    # relative tolerance: a pattern flat on the overlap has round-off variance, not signal
    flat = (var_a <= 1e-12 * np.maximum(sum_aa, 1e-300)) | (var_b <= 1e-12 * np.maximum(sum_bb, 1e-300))
    longer = np.maximum(ma.sum(axis=1)[:, None], mb.sum(axis=1)[None, :])
    too_short = (n < min_overlap) | (n < min_overlap_fraction * longer)
    corr[too_short | flat | ~np.isfinite(corr)] = np.nan
    return np.clip(corr, -1.0, 1.0)


def near_duplicate_groups(
    correlation: np.ndarray,
    threshold: float = NEAR_DUPLICATE_THRESHOLD,
    links: Sequence[tuple[int, int]] = (),
) -> np.ndarray:
    """Connected components of the graph "correlation > threshold", plus explicit links.

    Parameters
    ----------
    correlation : np.ndarray
        ``[N, N]`` pairwise correlations (NaN = no edge).
    threshold : float
        Edge when the correlation is strictly greater.
    links : sequence of (int, int)
        Extra edges (e.g. a pattern and its copy in another file).

    Returns
    -------
    np.ndarray
        int64 group id per pattern, numbered 0.. in order of first appearance.
    """
    corr = np.asarray(correlation, dtype=np.float64)
    if corr.ndim != 2 or corr.shape[0] != corr.shape[1]:
        raise ValueError(f"correlation must be square, got {corr.shape}")
    n = corr.shape[0]
    with np.errstate(invalid="ignore"):
        adjacency = np.nan_to_num(corr, nan=-np.inf) > threshold
    np.fill_diagonal(adjacency, False)
    rows, cols = np.nonzero(adjacency)
    extra = np.asarray(list(links), dtype=np.int64).reshape(-1, 2)
    if extra.size and (extra.min() < 0 or extra.max() >= n):
        raise ValueError(f"a link names a pattern outside [0, {n})")
    rows = np.concatenate([rows, extra[:, 0]])
    cols = np.concatenate([cols, extra[:, 1]])
    graph = coo_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    # renumber by first appearance so ids are stable and readable
    _, first = np.unique(component, return_index=True)
    order = np.argsort(first)
    renumber = np.empty_like(order)
    renumber[order] = np.arange(order.size)
    return renumber[component].astype(np.int64)


def group_sizes(groups: np.ndarray) -> list[int]:
    """Sizes of the groups, largest first."""
    _, counts = np.unique(np.asarray(groups), return_counts=True)
    return sorted((int(c) for c in counts), reverse=True)
