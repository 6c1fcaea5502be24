"""Vectorised, seeded augmentation of gridded raw patterns, in torch on whole batches.

Physics-motivated perturbations of a thin-film pattern (intensity on :data:`models.grid.GRID`),
after Oviedo et al. 2019 (npj Comput. Mater. 5, 60), Eqs. 1-3, plus the effects a real scan adds:

- shift (paper Eq. 3; sample height / zero offset) and strain (lattice dilation: 2-theta scaled
  about the origin), one resampling;
- peak elimination (Eq. 2): a random window is replaced by the straight line between its ends;
- periodic peak scaling (Eq. 1) and texture: the pattern is multiplied by a smooth random gain,
  a cosine of random period and phase times a slowly varying random field;
- broadening: convolution with a Gaussian of random width (crystallite size);
- background: a random amorphous hump plus a decaying low-angle background;
- Poisson noise at a random dwell: the pattern is scaled to a random peak count and sampled;
- partial scans: random truncation (only the first fraction of the range is kept), random windows
  and random masked gaps;
- coarsening: every k-th point kept (step 0.04 k degrees, k = 1..8) and linearly re-interpolated,
  with the mask semantics of :func:`models.grid.to_grid`.

Every random draw comes from the ``torch.Generator`` passed in, so a batch is reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from models.grid import GRID, GRID_SIZE, GRID_STEP

_GRID_T = torch.from_numpy(GRID.astype("float32"))
_ELIMINATION_BAND = int(math.ceil(1.0 / GRID_STEP))  # widest eliminated window (1 degree), grid points


@dataclass(frozen=True)
class AugmentConfig:
    """Strengths of each augmentation (probabilities are per pattern).

    Attributes
    ----------
    max_shift_deg : float
        Uniform zero shift in [-max, max], degrees.
    max_strain : float
        Uniform lattice strain in [-max, max] (fraction); 2-theta scales by about 1 / (1 + strain).
    p_eliminate : float
        Probability of eliminating one peak window (width 0.2-1.0 degrees).
    scaling_amplitude : float
        Amplitude of the periodic peak scaling, 0-1.
    texture_amplitude : float
        Amplitude of the slowly varying texture gain, 0-1.
    max_broadening_deg : float
        Largest Gaussian broadening sigma, degrees.
    max_background : float
        Largest background height relative to the strongest peak.
    peak_counts : tuple[float, float]
        Range of counts at the strongest peak (log-uniform): the random dwell of the Poisson noise.
    p_noise : float
        Probability of resampling the pattern with Poisson noise.
    p_truncate : float
        Probability of keeping only the first fraction (0.15-1.0) of the measured range.
    p_window : float
        Probability of keeping only a random window (at least 10 degrees) of the range.
    p_gap : float
        Probability of a masked gap (0.5-5 degrees) inside the range.
    p_coarsen : float
        Probability of coarsening to a step of 0.04 k degrees, k uniform in 2..max_coarsen.
    max_coarsen : int
        Largest coarsening factor (8: 0.32 degrees).
    """

    max_shift_deg: float = 0.25
    max_strain: float = 0.01
    p_eliminate: float = 0.3
    scaling_amplitude: float = 0.3
    texture_amplitude: float = 0.5
    max_broadening_deg: float = 0.08
    max_background: float = 0.3
    peak_counts: tuple[float, float] = (50.0, 20000.0)
    p_noise: float = 0.8
    p_truncate: float = 0.3
    p_window: float = 0.1
    p_gap: float = 0.1
    p_coarsen: float = 0.4
    max_coarsen: int = 8


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def _resample(values: torch.Tensor, source_index: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of each row of ``values`` at fractional indices ``source_index``."""
    left = source_index.floor().clamp(0, GRID_SIZE - 2)
    frac = (source_index - left).clamp(0.0, 1.0)
    left = left.long()
    return torch.gather(values, 1, left) * (1 - frac) + torch.gather(values, 1, left + 1) * frac


def shift_and_strain(values: torch.Tensor, mask: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Paper Eq. 3 (shift) and lattice strain in one resampling of intensity and mask."""
    n = values.shape[0]
    shift = _uniform(n, -config.max_shift_deg, config.max_shift_deg, generator)[:, None]
    strain = _uniform(n, -config.max_strain, config.max_strain, generator)[:, None]
    grid = _GRID_T.to(values.device)[None]
    source_deg = grid * (1 + strain) - shift  # a peak at 2t moves to about (2t + shift) / (1 + strain)
    index = (source_deg - float(GRID[0])) / GRID_STEP
    inside = (index >= 0) & (index <= GRID_SIZE - 1)
    values = _resample(values, index) * inside
    nearest = index.round().clamp(0, GRID_SIZE - 1).long()
    return values, torch.gather(mask, 1, nearest) & inside


def eliminate_peaks(values: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Paper Eq. 2: replace one random window by the straight line joining its end points."""
    n = values.shape[0]
    chosen = torch.rand(n, generator=generator) < config.p_eliminate
    width = _uniform(n, 0.2, 1.0, generator) / GRID_STEP
    centre = _uniform(n, 0, GRID_SIZE - 1, generator)
    lo = (centre - width / 2).clamp(0, GRID_SIZE - 1).long()
    hi = (centre + width / 2).clamp(0, GRID_SIZE - 1).long()
    rows = chosen.nonzero().squeeze(1)
    if not rows.numel():
        return values
    # only the chosen rows' windows change: work on a band of _ELIMINATION_BAND points after lo
    lo, hi = lo[rows, None], hi[rows, None]
    idx = lo + torch.arange(1, _ELIMINATION_BAND + 1, device=values.device)[None]  # [R, band]
    inside = idx < hi
    idx = idx.clamp(max=GRID_SIZE - 1)
    band = values[rows].gather(1, idx)
    v_lo, v_hi = values[rows].gather(1, lo), values[rows].gather(1, hi)
    t = (idx - lo) / (hi - lo).clamp(min=1)
    line = v_lo + (v_hi - v_lo) * t
    out = values.clone()
    out[rows] = out[rows].scatter(1, idx, torch.where(inside, torch.minimum(band, line), band))
    return out


def scale_peaks(values: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Paper Eq. 1 (periodic peak scaling) times a smooth random texture gain."""
    n = values.shape[0]
    grid = _GRID_T.to(values.device)[None]
    period = _uniform(n, 2.0, 20.0, generator)[:, None]
    phase = _uniform(n, 0, 2 * math.pi, generator)[:, None]
    amplitude = _uniform(n, 0, config.scaling_amplitude, generator)[:, None]
    periodic = 1 + amplitude * torch.cos(2 * math.pi * grid / period + phase)
    # texture: a low-frequency random field from four random cosines, in log space so gain > 0
    # (evaluated every 8th grid point and interpolated: it varies over degrees, not 0.04 degrees)
    coarse_grid = grid[:, ::8]
    freqs = _uniform(4 * n, 0.01, 0.15, generator).view(n, 4, 1)
    phases = _uniform(4 * n, 0, 2 * math.pi, generator).view(n, 4, 1)
    weights = torch.randn(n, 4, 1, generator=generator)
    coarse = (weights * torch.cos(2 * math.pi * freqs * coarse_grid[:, None] + phases)).sum(1) / 2
    field = F.interpolate(coarse[:, None], size=GRID_SIZE, mode="linear", align_corners=True)[:, 0]
    texture_strength = _uniform(n, 0, config.texture_amplitude, generator)[:, None]
    return values * periodic.clamp(min=0) * torch.exp(texture_strength * field)


def broaden(values: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Convolve each pattern with a Gaussian of random sigma in [0, max_broadening_deg]."""
    n = values.shape[0]
    half = max(1, int(math.ceil(3 * config.max_broadening_deg / GRID_STEP)))
    sigma = _uniform(n, 1e-3, config.max_broadening_deg / GRID_STEP, generator)[:, None]
    offsets = torch.arange(-half, half + 1, dtype=torch.float32, device=values.device)[None]
    kernels = torch.exp(-0.5 * (offsets / sigma.clamp(min=0.3)) ** 2)
    kernels = kernels / kernels.sum(1, keepdim=True)
    out = F.conv1d(values[None], kernels[:, None], padding=half, groups=n)  # one kernel per pattern
    return out[0]


def add_background(values: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Add an amorphous hump and a decaying low-angle background, scaled to the strongest peak."""
    n = values.shape[0]
    grid = _GRID_T.to(values.device)[None]
    peak = values.amax(1, keepdim=True).clamp(min=1e-6)
    hump_centre = _uniform(n, 15, 35, generator)[:, None]
    hump_width = _uniform(n, 3, 10, generator)[:, None]
    hump = _uniform(n, 0, config.max_background, generator)[:, None] * torch.exp(-0.5 * ((grid - hump_centre) / hump_width) ** 2)
    decay_length = _uniform(n, 3, 20, generator)[:, None]
    decay = _uniform(n, 0, config.max_background, generator)[:, None] * torch.exp(-(grid - grid[:, :1]) / decay_length)
    flat = _uniform(n, 0, config.max_background / 3, generator)[:, None]
    return values + peak * (hump + decay + flat)


def poisson_noise(values: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Scale to a random count at the strongest point (the dwell) and add counting noise.

    The noise is Poisson's normal approximation (mean lambda, variance lambda, clipped at 0):
    ``torch.poisson`` costs ten times more per pattern, and the two differ only where lambda is a
    few counts, where thin-film backgrounds rarely are.
    """
    n = values.shape[0]
    lo, hi = (math.log(c) for c in config.peak_counts)
    counts = torch.exp(_uniform(n, lo, hi, generator))[:, None]
    scale = counts / values.amax(1, keepdim=True).clamp(min=1e-6)
    expected = (values * scale).clamp(min=0)
    noisy = (expected + expected.sqrt() * torch.randn(values.shape, generator=generator)).clamp(min=0) / scale
    chosen = (torch.rand(n, generator=generator) < config.p_noise)[:, None]
    return torch.where(chosen, noisy, values)


def _span(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """First and last measured index per row (GRID_SIZE and -1 for an empty row, so lo > hi)."""
    # argmax returns the first maximal index: on a 0/1 row, the first measured point
    as_bytes = mask.to(torch.uint8)
    any_measured = as_bytes.amax(1) > 0
    lo = torch.where(any_measured, as_bytes.argmax(1), GRID_SIZE)
    hi = torch.where(any_measured, GRID_SIZE - 1 - as_bytes.flip(1).argmax(1), -1)
    return lo, hi


def partial_mask(mask: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Random truncation (first fraction), random windows and random masked gaps."""
    n = mask.shape[0]
    idx = torch.arange(GRID_SIZE, device=mask.device)[None]
    lo, hi = _span(mask)
    length = (hi - lo).clamp(min=0).float()
    # truncation: keep the first 15-100 % of the measured range, as in a scan still running
    truncate = torch.rand(n, generator=generator) < config.p_truncate
    fraction = _uniform(n, 0.15, 1.0, generator)
    new_hi = torch.where(truncate, lo + (length * fraction).long(), hi)
    # window: a random sub-range of at least 10 degrees
    window = torch.rand(n, generator=generator) < config.p_window
    min_len = int(10 / GRID_STEP)
    w_len = (min_len + torch.rand(n, generator=generator) * (length - min_len).clamp(min=0)).long()
    w_start = lo + (torch.rand(n, generator=generator) * (length - w_len.float()).clamp(min=0)).long()
    # gap: a masked stretch inside the range (a detector or motor fault, or an unvisited region)
    gap = torch.rand(n, generator=generator) < config.p_gap
    g_len = _uniform(n, 0.5, 5.0, generator) / GRID_STEP
    g_start = lo + (torch.rand(n, generator=generator) * length).long()
    # the kept points are one interval [first, last] minus the gap [g_start, g_end): per-row bounds,
    # then three comparisons per point
    first = torch.where(window, w_start, torch.full_like(w_start, -1))
    last = torch.where(window, torch.minimum(new_hi, w_start + w_len), new_hi)
    g_end = torch.where(gap, g_start + g_len.long(), g_start)  # empty gap when not chosen
    keep = (idx >= first[:, None]) & (idx <= last[:, None])
    keep &= (idx < g_start[:, None]) | (idx >= g_end[:, None])
    return mask & keep


def coarsen(values: torch.Tensor, mask: torch.Tensor, factor: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep every ``factor``-th grid point (random offset) and re-interpolate, to_grid semantics.

    Parameters
    ----------
    values, mask : torch.Tensor
        [B, 1376] intensity and measured mask.
    factor : torch.Tensor
        int64 [B], points per coarse step (1 leaves a row unchanged).
    """
    n = values.shape[0]
    k = factor.to(torch.float32)[:, None]
    offset = (torch.rand(n, 1, generator=generator) * k).floor()
    # every (factor, offset) pair has the same interpolation pattern: look it up instead of
    # recomputing the index arithmetic per row
    tables = _coarsening_tables(int(factor.max()) if n else 1, values.device)
    combo = factor * tables["stride"] + offset[:, 0].long()
    left, right = tables["left"][combo], tables["right"][combo]
    v_left, v_right = torch.gather(values, 1, left), torch.gather(values, 1, right)
    m_left, m_right = torch.gather(mask, 1, left), torch.gather(mask, 1, right)
    on_point = tables["on_point"][combo]
    new_values = torch.where(on_point, values, v_left * tables["one_minus_frac"][combo] + v_right * tables["frac"][combo])
    # between kept points a grid point is measured when both kept neighbours are (to_grid: inside
    # the measured span, not across a gap); before the first or after the last kept point it is not
    new_mask = torch.where(on_point, mask, tables["bracketed"][combo] & m_left & m_right)
    return new_values * new_mask, new_mask


_COARSENING_TABLES: dict[tuple[int, str], dict[str, torch.Tensor]] = {}


def _coarsening_tables(max_factor: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Interpolation pattern of every (factor, offset) with factor <= max_factor, rows factor * stride + offset.

    Returns
    -------
    dict
        "left", "right" (int64 [rows, 1376]): kept neighbours of each grid point; "frac",
        "one_minus_frac" (float32): interpolation weights; "on_point" (bool): the point is kept;
        "bracketed" (bool): it lies between two kept points; "stride" (int): offsets per factor.
    """
    stride = max(max_factor, 8)
    key = (stride, str(device))
    if key not in _COARSENING_TABLES:
        # index arithmetic in float32 (exact for these small integers)
        idx = torch.arange(GRID_SIZE, dtype=torch.float32)[None]
        factors = torch.arange(stride + 1, dtype=torch.float32).repeat_interleave(stride)[:, None]
        offset = torch.arange(stride, dtype=torch.float32).repeat(stride + 1)[:, None]
        k = factors.clamp(min=1)  # rows of factor 0 are never used
        steps_from_offset = torch.floor((idx - offset) / k)
        left_f = (steps_from_offset * k + offset).clamp(0, GRID_SIZE - 1)
        right_f = (left_f + k).clamp(max=GRID_SIZE - 1)
        frac = ((idx - left_f) / k).clamp(0, 1)
        tables = {
            "left": left_f.long(),
            "right": right_f.long(),
            "frac": frac,
            "one_minus_frac": 1 - frac,
            "on_point": (idx >= offset) & (idx == left_f),
            "bracketed": (idx > offset) & (left_f + k <= GRID_SIZE - 1),
            "stride": torch.tensor(stride),
        }
        _COARSENING_TABLES[key] = {name: table.to(device) for name, table in tables.items()}
    return _COARSENING_TABLES[key]


def augment_batch(values: torch.Tensor, mask: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply every augmentation to a batch of raw gridded patterns.

    Parameters
    ----------
    values : torch.Tensor
        float32 [B, 1376] raw intensity on the grid (unmeasured points may hold anything).
    mask : torch.Tensor
        bool [B, 1376] measured mask.
    config : AugmentConfig
        Strengths.
    generator : torch.Generator
        Source of every random draw.

    Returns
    -------
    values, mask : torch.Tensor
        Augmented raw intensity (0 where unmeasured) and mask, same shapes; feed them to
        :func:`models.preprocess.preprocess_torch`.
    """
    if values.ndim != 2 or values.shape != mask.shape or values.shape[1] != GRID_SIZE:
        raise ValueError(f"expected [B, {GRID_SIZE}] values and mask, got {tuple(values.shape)} and {tuple(mask.shape)}")
    mask = mask.to(torch.bool)
    values = values.to(torch.float32) * mask
    values, mask = shift_and_strain(values, mask, config, generator)
    values = eliminate_peaks(values, config, generator)
    values = scale_peaks(values, config, generator)
    values = broaden(values, config, generator)
    values = add_background(values, config, generator)
    values = poisson_noise(values, config, generator)
    mask = partial_mask(mask, config, generator)
    n = values.shape[0]
    coarse = torch.rand(n, generator=generator) < config.p_coarsen
    factor = torch.randint(2, config.max_coarsen + 1, (n,), generator=generator)
    rows = coarse.nonzero().squeeze(1)
    if rows.numel():  # only the coarsened rows pay for it
        coarse_values, coarse_mask = coarsen(values[rows], mask[rows], factor[rows], generator)
        values, mask = values.index_copy(0, rows, coarse_values), mask.index_copy(0, rows, coarse_mask)
    return values * mask, mask
