"""Preprocessing shared by training and the live agent: smoothing, background, normalisation.

Every step is masked: a grid point that was not measured (mask False) never enters any result, so a
partial scan preprocesses the same whatever is stored at its unmeasured points.

1. Savitzky-Golay smoothing (polynomial order 2, window 7 points = 0.28 degrees), computed as a
   local least-squares quadratic fit over the *measured* points of each window. On a fully measured
   window this is exactly the classical Savitzky-Golay filter; near the edge of a partial scan it
   fits only the measured side instead of padding with unmeasured values.
2. Background: a morphological opening (erosion then dilation over 3 degrees) of the smoothed
   pattern over measured points only, then subtracted, negative values clipped to 0.
3. Normalisation to a maximum of 1 over the measured points.

The output has two channels: the processed intensity (0 where unmeasured) and the mask (1/0).
One torch implementation serves both the batched training path and single patterns, so training and
inference cannot drift apart; :data:`PREPROCESSING_VERSION` is stored in every model file.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from models.grid import GRID_SIZE

PREPROCESSING_VERSION: str = "masked-sg7-open75-max/1"
"""Identifies this preprocessing; model files record it and refuse a mismatch."""
SMOOTHING_HALF_WINDOW: int = 3
"""Savitzky-Golay half window, grid points (window 7 = 0.28 degrees)."""
BACKGROUND_WINDOW: int = 75
"""Width of the background opening, grid points (3 degrees: wider than any thin-film peak)."""
_MIN_DET = 0.5  # determinant of the 3x3 moment matrix below which a quadratic fit is ill-posed


def _power_matrix(half_window: int, powers: int) -> torch.Tensor:
    """[powers, window] matrix of x**k, x the offset in grid points from the window centre."""
    x = torch.arange(-half_window, half_window + 1, dtype=torch.float32)
    return torch.stack([x**k for k in range(powers)])


_POWERS = _power_matrix(SMOOTHING_HALF_WINDOW, 5)


def _window_moments(values: torch.Tensor, powers: int) -> torch.Tensor:
    """Sums over each window of values * x**k for k < powers, [powers, B, L].

    Stacking the shifted copies and multiplying by a small matrix is one GEMM, several times faster
    on CPU than a single-input-channel conv1d.
    """
    h = SMOOTHING_HALF_WINDOW
    length = values.shape[1]
    padded = F.pad(values, (h, h))
    shifted = torch.stack([padded[:, j : j + length] for j in range(2 * h + 1)]).reshape(2 * h + 1, -1)
    return (_POWERS[:powers].to(values.device) @ shifted).reshape(powers, *values.shape)


def _masked_savgol(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Local quadratic least-squares fit evaluated at each centre, measured points only.

    Parameters
    ----------
    values, weight : torch.Tensor
        [B, L] intensities and 1/0 measured weights.
    """
    s0, s1, s2, s3, s4 = _window_moments(weight, 5)  # sums of w x^k over each window
    t0, t1, t2 = _window_moments(values * weight, 3)  # sums of w y x^k
    # Normal equations [[s0 s1 s2][s1 s2 s3][s2 s3 s4]] a = t; the fitted value at x = 0 is a0
    # (Cramer's rule, vectorised over every point).
    det = s0 * (s2 * s4 - s3 * s3) - s1 * (s1 * s4 - s2 * s3) + s2 * (s1 * s3 - s2 * s2)
    det0 = t0 * (s2 * s4 - s3 * s3) - s1 * (t1 * s4 - t2 * s3) + s2 * (t1 * s3 - t2 * s2)
    well_posed = det > _MIN_DET
    quadratic = det0 / torch.where(well_posed, det, torch.ones_like(det))
    local_mean = t0 / s0.clamp(min=1.0)  # fewer than 3 points in the window: average them
    return torch.where(well_posed, quadratic, local_mean)


def _masked_opening(values: torch.Tensor, measured: torch.Tensor, width: int) -> torch.Tensor:
    """Grey opening (min filter then max filter) over measured points only, [B, L]."""
    pad = width // 2
    inf = torch.finfo(values.dtype).max
    eroded = -F.max_pool1d(
        torch.where(measured, -values, torch.full_like(values, -inf)).unsqueeze(1), width, 1, pad
    ).squeeze(1)
    eroded = torch.where(measured, eroded, torch.full_like(values, -inf))
    return F.max_pool1d(eroded.unsqueeze(1), width, 1, pad).squeeze(1)


def preprocess_torch(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Preprocess a batch of gridded patterns.

    Parameters
    ----------
    values : torch.Tensor
        [B, 1376] intensity on :data:`models.grid.GRID` (any non-negative scale).
    mask : torch.Tensor
        [B, 1376] measured mask (bool or 0/1).

    Returns
    -------
    torch.Tensor
        float32 [B, 2, 1376]: channel 0 processed intensity in [0, 1] (0 where unmeasured),
        channel 1 the mask as 0/1.
    """
    if values.ndim != 2 or values.shape != mask.shape or values.shape[1] != GRID_SIZE:
        raise ValueError(f"expected values and mask of shape [B, {GRID_SIZE}], got {tuple(values.shape)} and {tuple(mask.shape)}")
    values = values.to(torch.float32)
    measured = mask.to(torch.bool)
    weight = measured.to(torch.float32)
    smooth = _masked_savgol(values, weight)
    background = _masked_opening(smooth, measured, BACKGROUND_WINDOW)
    signal = torch.clamp(smooth - background, min=0.0) * weight
    peak = signal.amax(dim=1, keepdim=True)
    signal = signal / torch.where(peak > 0, peak, torch.ones_like(peak))
    return torch.stack([signal, weight], dim=1)


def preprocess(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Preprocess one gridded pattern (or a batch) with numpy in and out.

    Parameters
    ----------
    values : np.ndarray
        float[1376] or float[N, 1376], intensity on the grid.
    mask : np.ndarray
        bool array of the same shape, True where measured.

    Returns
    -------
    np.ndarray
        float32 [2, 1376] (or [N, 2, 1376]); see :func:`preprocess_torch`.
    """
    values = np.asarray(values)
    mask = np.asarray(mask)
    single = values.ndim == 1
    if single:
        values, mask = values[None], mask[None]
    if not np.all(np.isfinite(values[mask.astype(bool)])):
        raise ValueError("measured intensities must be finite")
    values = np.where(mask.astype(bool), values, 0.0)  # unmeasured contents may be anything
    with torch.inference_mode():  # fewer bookkeeping costs than no_grad; the result leaves as numpy
        out = preprocess_torch(torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)), torch.from_numpy(mask.astype(bool)))
    result = out.numpy()
    return result[0] if single else result
