"""Batched thin-film XRD physics in torch: a pool of structures -> raw counts on the model grid.

Per pattern, from a :class:`training.peak_table.PeakTable` row set computed once per structure:

1. a lattice variation that keeps the crystal system (isotropic scale; c for tetragonal and
   hexagonal cells; a, b, c for orthorhombic and monoclinic ones, plus the oblique angle);
2. Bragg angles from the varied reciprocal metric, 2theta = 2 asin(lambda |h*| / 2), Cu K-alpha1;
3. integrated intensities: multiplicity |F|^2 x Lorentz-polarisation x an extra overall
   Debye-Waller factor exp(-2 B s^2) x March-Dollase texture (Dollase, J. Appl. Cryst. 19, 267
   (1986): W = (r^2 cos^2 a + sin^2 a / r)^(-3/2), averaged over the family's members) along a
   random low-index plane or the class's film habit x the finite-film absorption factor
   (1 - exp(-2 mu t / sin theta)) / (1 - exp(-2 mu t)) (substrates: exp(-2 mu t / sin theta));
4. an impurity phase (PbI2 in lead films, FTO = SnO2 or ITO = In2O3 substrates) and stray peaks;
5. zero shift, sample displacement (cos theta), K-alpha2 at half intensity;
6. pseudo-Voigt profiles whose FWHM adds Caglioti instrument, Scherrer size (K = 0.9) and
   microstrain (4 epsilon tan theta) widths in quadrature, by stick rendering on a grid twice as
   fine as the model grid and FFT convolution with the profiles' analytic transforms at three
   width nodes blended linearly (cost independent of the number of peaks);
7. a smooth background (level, low-angle decay, slope, glass hump) and counting noise (Poisson;
   its normal approximation above 100 counts, where the skewness is below 0.1).

Runs on the device of the table (CPU, or CUDA when present). Randomness comes from the caller's
``torch.Generator`` (CPU) only, so a seed fixes the output on a given device.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from crystals.powder import wavelength_angstrom
from crystals.profiles import caglioti_fwhm, scherrer_fwhm
from models.grid import GRID, GRID_SIZE, GRID_START, GRID_STEP
from training.film_settings import SimulationSettings
from training.peak_table import N_DIRECTIONS, lattice_matrices

__all__ = ["FilmBatch", "counting_noise", "film_absorption", "phase_peaks", "render_films", "render_profiles", "substrate_transmission", "WIDTH_NODES"]

_N_WIDTH_NODES = 3  # widths vary slowly with angle: profile heights within ~3 % of exact (4 nodes: ~2 %);
# the stick grid itself costs up to ~6 % of the height of the narrowest (0.06 deg) peaks
LAMBDA_KA1 = wavelength_angstrom("CuKa1")
LAMBDA_KA2 = wavelength_angstrom("CuKa2")
WIDTH_NODES = np.linspace(GRID_START, float(GRID[-1]), _N_WIDTH_NODES)  # degrees: widths exact here, blended between
_KERNEL_HALF = 64  # model-grid points (2.56 deg) of padding each side: peaks just outside still leak in
_OVERSAMPLE = 2  # sticks live on a grid this many times finer: narrow peaks keep their shape
_FFT_SIZE = 3072  # > (GRID_SIZE + 2 * _KERNEL_HALF) * _OVERSAMPLE = 3007: a tail wraps only after passing
# the discarded padding (3.9 deg), where a Lorentzian has fallen below 2e-4 of its peak for FWHM 0.1 deg
_VISIBLE = 5e-4  # fraction of the strongest peak below which a peak is not rendered
_POISSON_EXACT_BELOW = 100.0  # counts
_CUBIC, _TETRAGONAL, _HEXAGONAL, _ORTHORHOMBIC, _MONOCLINIC = range(5)


class FilmBatch:
    """Per-pattern random parameters of one batch (CPU tensors), kept for provenance."""

    def __init__(self, n: int, gen: torch.Generator, s: SimulationSettings) -> None:
        def uniform(lo: float, hi: float, size: tuple[int, ...] | int = n) -> torch.Tensor:
            return lo + (hi - lo) * torch.rand(size, generator=gen, dtype=torch.float64)

        def log_uniform(lo: float, hi: float) -> torch.Tensor:
            return torch.exp(uniform(math.log(lo), math.log(hi)))

        self.n = n
        self.scale = 1.0 + uniform(-s.lattice_strain, s.lattice_strain)
        self.aniso = 1.0 + uniform(-s.anisotropic_strain, s.anisotropic_strain, (n, 3))
        self.oblique = uniform(-s.monoclinic_beta_deg, s.monoclinic_beta_deg)
        self.march_r = torch.where(uniform(0, 1) < s.texture_probability, log_uniform(*s.march_r), torch.ones(n, dtype=torch.float64))
        self.direction_u = uniform(0, 1)
        self.b_extra = uniform(*s.debye_waller_extra)
        self.absorption = log_uniform(*s.film_absorption)
        self.size_nm = log_uniform(*s.size_nm)
        self.microstrain = log_uniform(*s.microstrain)
        self.uvw = torch.stack([uniform(*s.caglioti_u), uniform(*s.caglioti_v), uniform(*s.caglioti_w)], dim=1)
        self.eta = uniform(*s.eta)
        self.kalpha2 = uniform(0, 1) < s.kalpha2_probability
        self.zero_shift = uniform(-s.zero_shift_deg, s.zero_shift_deg)
        self.displacement = uniform(-s.displacement_deg, s.displacement_deg)
        self.peak_counts = log_uniform(*s.peak_counts)
        self.background_ratio = log_uniform(*s.background_ratio)
        self.decay = torch.stack([log_uniform(0.05, 5.0), uniform(2.0, 12.0)], dim=1)
        self.slope = uniform(-0.3, 0.3)
        self.hump = torch.stack([torch.where(uniform(0, 1) < s.hump_probability, uniform(0.1, 1.0), torch.zeros(n, dtype=torch.float64)),
                                 uniform(20.0, 30.0), uniform(5.0, 12.0)], dim=1)
        self.stray_n = torch.where(uniform(0, 1) < s.stray_peak_probability, torch.randint(1, 4, (n,), generator=gen), torch.zeros(n, dtype=torch.int64))


def _varied_lattices(t: dict[str, torch.Tensor], idx: torch.Tensor, p: FilmBatch, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[N, 3] abc and angles of phases ``idx`` varied without leaving their crystal system;
    the variation of pattern ``rows[i]`` applies to phase i."""
    system = t["system"][idx]
    abc = t["abc"][idx] * p.scale[rows, None].to(t["abc"])
    aniso = p.aniso[rows].to(abc)
    one = torch.ones_like(aniso[:, 0])
    c_only = torch.stack([one, one, aniso[:, 2]], dim=1)
    factor = torch.where(((system == _TETRAGONAL) | (system == _HEXAGONAL))[:, None], c_only, torch.ones_like(aniso))
    factor = torch.where((system >= _ORTHORHOMBIC)[:, None], aniso, factor)
    angles = t["angles"][idx]
    oblique = (system == _MONOCLINIC)[:, None] & ((angles - 90.0).abs() > 1e-3)
    angles = angles + oblique * p.oblique[rows, None].to(angles)
    return abc * factor, angles


def film_absorption(sin_theta: torch.Tensor, mu_t: torch.Tensor) -> torch.Tensor:
    """Relative diffracted intensity of a film of finite thickness (symmetric Bragg-Brentano).

    ``(1 - exp(-2 mu t / sin theta)) / (1 - exp(-2 mu t))`` with ``mu_t = 2 mu t``: a thin film
    (metal-halide films of 0.3-1 um at Cu K-alpha have 2 mu t ~ 0.05-0.2) scatters relatively
    more at low angles, where the beam path through it is longer; a thick one tends to the
    constant of a bulk powder (Cullity & Stock, Elements of X-ray Diffraction, 3rd ed., Sect. 9-4).
    """
    return -torch.expm1(-mu_t / sin_theta.clamp(min=1e-6)) / -torch.expm1(-mu_t)


def substrate_transmission(sin_theta: torch.Tensor, mu_t: torch.Tensor) -> torch.Tensor:
    """Attenuation ``exp(-2 mu t / sin theta)`` of substrate reflections seen through the film."""
    return torch.exp(-mu_t / sin_theta.clamp(min=1e-6))


def phase_peaks(
    t: dict[str, torch.Tensor], idx: torch.Tensor, rows: torch.Tensor, p: FilmBatch, substrate: torch.Tensor,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Peaks of phases ``idx`` (structure indices) in patterns ``rows``: returns the phase of each
    peak [K], its 2theta [K] (degrees, K-alpha1) and its intensity [K], each phase scaled to a
    strongest peak of 1 within the rendered range."""
    device = t["hkl"].device
    count = t["count"][idx]
    phase = torch.repeat_interleave(torch.arange(idx.numel(), device=device), count)
    start = torch.cumsum(count, 0) - count
    row = (t["offset"][idx] - start).index_select(0, phase) + torch.arange(phase.numel(), device=device)
    abc, angles = _varied_lattices(t, idx, p, rows)
    matrix = lattice_matrices(abc, angles)
    metric = torch.linalg.inv(matrix @ matrix.transpose(1, 2))  # reciprocal metric G*
    h = t["hkl"].index_select(0, row)
    q2 = ((h[:, :, None] * h[:, None, :]).reshape(-1, 9) * metric.reshape(-1, 9).index_select(0, phase)).sum(dim=1)
    sin_theta = LAMBDA_KA1 * torch.sqrt(q2) / 2.0
    reachable = sin_theta < 1.0
    theta = torch.asin(sin_theta.clamp(max=1.0 - 1e-7))
    two_theta = torch.rad2deg(2.0 * theta)
    lorentz = (1.0 + torch.cos(2.0 * theta).square()) / (torch.sin(theta).square() * torch.cos(theta))
    debye_waller = torch.exp(-0.5 * p.b_extra[rows].to(q2).index_select(0, phase) * q2)  # exp(-2 B s^2), s^2 = q^2 / 4
    # texture: candidate direction by inverse CDF of the structure's direction weights
    cdf = torch.cumsum(t["direction_weights"][idx], dim=1)
    direction = (p.direction_u[rows].to(cdf)[:, None] > cdf).sum(dim=1).clamp(max=N_DIRECTIONS - 1)
    flat = row * N_DIRECTIONS + direction.index_select(0, phase)  # one index into [R * D, U] rows
    cos2 = t["cos2"].flatten(0, 1).index_select(0, flat)
    weight = t["cos2_weight"].flatten(0, 1).index_select(0, flat)
    r = p.march_r[rows].to(cos2).index_select(0, phase)[:, None]
    base = torch.rsqrt(r * r * cos2 + (1.0 - cos2) / r)
    texture = (weight * base * base * base).sum(dim=1)  # W = base^3 = (r^2 cos^2 + sin^2 / r)^(-3/2)
    mu_t = p.absorption[rows].to(q2).index_select(0, phase)
    absorption = torch.where(substrate.index_select(0, phase), substrate_transmission(sin_theta, mu_t), film_absorption(sin_theta, mu_t))
    intensity = t["strength"].index_select(0, row) * lorentz * debye_waller * texture * absorption
    inside = reachable & (two_theta > GRID_START - 2.5) & (two_theta < float(GRID[-1]) + 2.5)
    intensity = torch.where(inside, intensity, torch.zeros_like(intensity))
    top = torch.zeros(idx.numel(), device=device).scatter_reduce(0, phase, intensity, reduce="amax")
    return phase, two_theta, intensity / top.clamp(min=1e-30).index_select(0, phase)


def render_profiles(center: torch.Tensor, height: torch.Tensor, sample: torch.Tensor, n: int,
                    node_fwhm: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
    """Sum area-normalised pseudo-Voigt peaks per pattern onto the model grid.

    Parameters
    ----------
    center, height, sample : torch.Tensor [K]
        Peak position (degrees), integrated intensity and pattern index of every peak.
    n : int
        Number of patterns.
    node_fwhm : torch.Tensor [n, len(WIDTH_NODES)]
        FWHM of each pattern at :data:`WIDTH_NODES`, degrees.
    eta : torch.Tensor [n]
        Lorentzian fraction of each pattern.

    Returns
    -------
    torch.Tensor float32 [n, 1376]
        Intensity density (integrated intensity per degree) on models.grid.GRID.
    """
    device = center.device
    pad, step = _KERNEL_HALF * _OVERSAMPLE, GRID_STEP / _OVERSAMPLE
    length = (GRID_SIZE - 1) * _OVERSAMPLE + 1 + 2 * pad
    position = (center - GRID_START) / step + pad
    ok = (position >= 0) & (position < length - 1)
    position, height, sample = position[ok], height[ok].float(), sample[ok]
    lower = torch.floor(position)
    frac = (position - lower).float()
    flat = sample * length + lower.long()
    sticks = torch.zeros(n * length, device=device)
    sticks.index_add_(0, flat, height * (1.0 - frac)).index_add_(0, flat + 1, height * frac)  # area, centroid exact
    spectrum = torch.fft.rfft(sticks.view(n, length), n=_FFT_SIZE)
    nu = torch.fft.rfftfreq(_FFT_SIZE, d=step, device=device)
    # Lorentzian exp(-pi f nu), Gaussian exp(-(pi f nu)^2 / 4 ln 2), mixed eta L + (1 - eta) G;
    # in place on [n * nodes, F] rows: the two exponentials are most of the renderer's work
    nodes = node_fwhm.shape[1]
    a = torch.outer((math.pi * node_fwhm.float()).reshape(-1), nu)
    gaussian = torch.exp(a.square().mul_(-1.0 / (4.0 * math.log(2.0))))
    lorentzian = torch.exp(a.neg_())
    kernel = lorentzian.sub_(gaussian).mul_(eta.float().repeat_interleave(nodes)[:, None]).add_(gaussian).view(n, nodes, -1)
    # complex x real as one real product on the (re, im) view: no complex copy of the kernel
    product = torch.view_as_complex((torch.view_as_real(spectrum)[:, None] * kernel[..., None]).contiguous())
    convolved = torch.fft.irfft(product, n=_FFT_SIZE)
    window = convolved[:, :, pad : pad + (GRID_SIZE - 1) * _OVERSAMPLE + 1 : _OVERSAMPLE]
    return (window * _blend_weights(device)).sum(dim=1) / step


def _blend_weights(device: torch.device) -> torch.Tensor:
    """[nodes, 1376] linear-interpolation weights of each width node at each grid point."""
    nodes = len(WIDTH_NODES)
    weights = np.stack([np.interp(GRID, WIDTH_NODES, np.eye(nodes)[k]) for k in range(nodes)])
    return torch.as_tensor(weights, dtype=torch.float32, device=device)


def _node_widths(p: FilmBatch) -> torch.Tensor:
    """FWHM [n, nodes] at the width nodes: Caglioti, Scherrer and microstrain in quadrature."""
    nodes = WIDTH_NODES[None, :]
    uvw = p.uvw.numpy()
    instrument = caglioti_fwhm(nodes, uvw[:, :1], uvw[:, 1:2], uvw[:, 2:])
    size = scherrer_fwhm(nodes, p.size_nm.numpy()[:, None], wavelength_angstrom=LAMBDA_KA1)
    strain = np.degrees(4.0 * p.microstrain.numpy()[:, None] * np.tan(np.radians(nodes) / 2.0))
    return torch.as_tensor(np.maximum(np.sqrt(instrument**2 + size**2 + strain**2), 0.03))


def _background(p: FilmBatch, device: torch.device) -> torch.Tensor:
    """[n, 1376] smooth background: b0 (1 + A exp(-(2theta - 5) / tau) + slope x + hump)."""
    grid = torch.tensor(GRID, dtype=torch.float32, device=device)  # a copy: GRID is read-only
    x = (grid - GRID_START)[None, :]
    hump, decay = p.hump.float().to(device), p.decay.float().to(device)
    shape = 1.0 + decay[:, :1] * torch.exp(-x / decay[:, 1:]) + p.slope.float().to(device)[:, None] * (x / float(GRID[-1] - GRID_START))
    shape = shape + hump[:, :1] * torch.exp(-0.5 * ((grid[None, :] - hump[:, 1:2]) / (hump[:, 2:] / 2.355)).square())
    return (p.background_ratio * p.peak_counts).float().to(device)[:, None] * shape


def counting_noise(expected: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Poisson counts of ``expected`` (exact below 100 counts, normal approximation above)."""
    noise = torch.randn(expected.shape, generator=gen).to(expected.device)
    counts = torch.clamp(torch.round(expected + torch.sqrt(expected) * noise), min=0.0)
    low = expected < _POISSON_EXACT_BELOW
    counts[low] = torch.poisson(expected[low].cpu(), generator=gen).to(expected.device)
    return counts


def render_films(
    t: dict[str, torch.Tensor],
    structure: torch.Tensor,
    impurity: torch.Tensor,
    impurity_pattern: torch.Tensor,
    impurity_fraction: torch.Tensor,
    impurity_is_substrate: torch.Tensor,
    p: FilmBatch,
    gen: torch.Generator,
) -> torch.Tensor:
    """Raw thin-film patterns (counts) on models.grid.GRID.

    Parameters
    ----------
    t : dict of torch.Tensor
        :meth:`training.peak_table.PeakTable.tensors` (on the target device).
    structure : torch.Tensor int64 [n]
        Table index of each pattern's main phase.
    impurity, impurity_pattern : torch.Tensor int64 [J]
        Table index of each impurity phase and the pattern it belongs to.
    impurity_fraction : torch.Tensor [J]
        Strongest impurity peak relative to the film's strongest peak.
    impurity_is_substrate : torch.Tensor bool [J]
        Substrate phases are seen through the film (attenuated), others lie in it.
    p : FilmBatch
        The patterns' random parameters (``p.n == n``).
    gen : torch.Generator
        CPU generator for the stray peaks and the counting noise.

    Returns
    -------
    torch.Tensor float32 [n, 1376]
        Counts (background and counting noise included), on the table's device.
    """
    device = t["hkl"].device
    n = p.n
    idx = torch.cat([structure, impurity]).to(device)
    rows = torch.cat([torch.arange(n), impurity_pattern.cpu()])
    substrate = torch.cat([torch.zeros(n, dtype=torch.bool), impurity_is_substrate.cpu()]).to(device)
    scale = torch.cat([torch.ones(n, dtype=torch.float64), impurity_fraction.cpu().double()]).float().to(device)
    phase, center, height = phase_peaks(t, idx, rows, p, substrate, gen)
    height = height * scale.index_select(0, phase)
    sample = rows.to(device).index_select(0, phase)
    keep = height > _VISIBLE
    center, height, sample = center[keep], height[keep], sample[keep]
    stray_sample = torch.repeat_interleave(torch.arange(n), p.stray_n)
    stray_center = GRID_START + (float(GRID[-1]) - GRID_START) * torch.rand(stray_sample.numel(), generator=gen)
    stray_height = 0.01 + 0.09 * torch.rand(stray_sample.numel(), generator=gen)
    sample = torch.cat([sample, stray_sample.to(device)])
    center = torch.cat([center, stray_center.to(center)])
    height = torch.cat([height, stray_height.to(height)])
    # instrument: zero shift, sample displacement (~cos theta), K-alpha2 at half intensity
    shift = p.zero_shift.to(device=device, dtype=center.dtype).index_select(0, sample)
    cos_theta = torch.cos(torch.deg2rad(center) / 2.0)
    center = center + shift + p.displacement.to(device=device, dtype=center.dtype).index_select(0, sample) * cos_theta
    doubled = p.kalpha2.to(device).index_select(0, sample)
    sin2 = torch.sin(torch.deg2rad(center[doubled]) / 2.0) * (LAMBDA_KA2 / LAMBDA_KA1)
    center = torch.cat([center, torch.rad2deg(2.0 * torch.asin(sin2.clamp(max=1.0)))])
    height = torch.cat([height, 0.5 * height[doubled]])
    sample = torch.cat([sample, sample[doubled]])
    signal = render_profiles(center, height, sample, n, _node_widths(p).to(device), p.eta.to(device))
    top = signal.amax(dim=1, keepdim=True).clamp(min=1e-30)
    signal = signal / top * p.peak_counts.float().to(device)[:, None]
    expected = torch.clamp(signal + _background(p, device), min=0.0)
    return counting_noise(expected, gen)
