r"""A simulated area detector: Debye-Scherrer frames of the same samples the point detector sees.

The model
---------
A flat pixel detector at distance :math:`D` from the sample, its geometry a pyFAI
``AzimuthalIntegrator`` (PONI convention: ``dist``, ``poni1``, ``poni2``, rotations, pixel
sizes). Each pixel covers scattering angles :math:`[2\theta_-, 2\theta_+]` (from its four
corners) at azimuth :math:`\chi`. With the sample's rate density :math:`s(x)` (counts/s/deg of
2theta, `sim_devices.samples.Sample`, the point detector's physics) the pixel's expected counts
over a dwell :math:`t` are

.. math::

    \lambda = t\,a\,\Omega\,\bigl[\bar b + (\bar s - \bar b)\,T(\chi)\bigr],
    \qquad \bar s = \frac{S(2\theta_+) - S(2\theta_-)}{2\theta_+ - 2\theta_-},

where :math:`S` is the cumulative rate (`sim_devices.physics.cumulative_rate_at`), so
:math:`\bar s` is the density averaged over the pixel (a peak narrower than a pixel is not
aliased); :math:`\bar b` the sample's background, a lower envelope of :math:`s` (a 1.5 deg
running minimum, smoothed over the same width); :math:`\Omega` the pixel's solid angle relative
to a pixel at the PONI (pyFAI's ``solidAngleArray``); :math:`a` the **pixel acceptance** in
degrees (a pixel at the PONI counts like a point detector of that acceptance; default the
pixel's angular size :math:`p / D`). The counts are :math:`\mathrm{Poisson}(\lambda)`.

**Texture as arcs.** The diffracted (Bragg) part is weighted along each ring by

.. math::

    T(\chi) = (1 - f) + f\,\frac{e^{\kappa \cos(\chi - \chi_0)}}{I_0(\kappa)},
    \qquad \kappa = \frac{\ln 2}{1 - \cos(w/2)},

a von Mises arc of full width at half maximum :math:`w` centred at :math:`\chi_0`, holding a
fraction :math:`f` of the ring's intensity; :math:`T` averages to 1 around a full ring, so an
untextured powder (:math:`f = 0`) and a textured film diffract the same total. The background
is isotropic.

Azimuthal integration of the frame (`patterns.frames.reduce_frame`, pyFAI) divides by
:math:`\Omega` and averages over :math:`\chi`, giving back :math:`t\,a\,\bar s(2\theta)` (times the
mean of :math:`T` over the azimuths the detector covers): the 1D pattern, with the peaks where
the point detector finds them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from ophyd import Component as Cpt
from ophyd import Device
from ophyd.status import DeviceStatus
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.special import i0e

from sim_devices.detector import _InternalSignal, _SampleSignal
from sim_devices.motor import _PositiveSignal
from sim_devices.physics import cumulative_rate_at
from sim_devices.samples import Sample

if TYPE_CHECKING:  # pyFAI is imported when a geometry is made: `import sim_devices` stays light
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

CU_KALPHA1_M = 1.540598e-10
#: Width of the running minimum (and its smoothing) that estimates the background, degrees.
BACKGROUND_WINDOW_DEG = 1.5


@dataclass(frozen=True)
class ArcTexture:
    """Texture along the Debye-Scherrer rings (module docstring, :math:`T(\\chi)`).

    Parameters
    ----------
    fraction : float
        :math:`f`, share of each ring's intensity in the arc, 0 (powder) to 1.
    centre_deg : float
        :math:`\\chi_0`, azimuth of the arc's centre, degrees (pyFAI's chi).
    fwhm_deg : float
        :math:`w`, full width at half maximum of the arc along chi, degrees (0-360).
    """

    fraction: float = 0.7
    centre_deg: float = 0.0
    fwhm_deg: float = 40.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError(f"ArcTexture: fraction must lie in [0, 1], got {self.fraction!r}")
        if not 0.0 < self.fwhm_deg <= 360.0:
            raise ValueError(f"ArcTexture: fwhm_deg must lie in (0, 360], got {self.fwhm_deg!r}")

    def weight(self, chi_deg: np.ndarray) -> np.ndarray:
        """:math:`T(\\chi)` at azimuths `chi_deg` (degrees); mean 1 over a full ring."""
        kappa = np.log(2.0) / (1.0 - np.cos(np.radians(self.fwhm_deg) / 2.0))
        # i0e(k) = exp(-k) I0(k): exp(k (cos - 1)) / i0e(k) is the von Mises ratio without overflow
        arc = np.exp(kappa * (np.cos(np.radians(np.asarray(chi_deg) - self.centre_deg)) - 1.0)) / i0e(kappa)
        return (1.0 - self.fraction) + self.fraction * arc


def make_geometry(
    *, distance_m: float = 0.08, pixel_m: float = 75e-6, shape: tuple[int, int] = (640, 1900),
    beam_row: float | None = None, beam_column: float = 0.0, wavelength_m: float = CU_KALPHA1_M,
) -> AzimuthalIntegrator:
    """A flat detector perpendicular to the beam, as a pyFAI geometry.

    The default puts the direct beam at the middle of the left edge of a 640 x 1900 detector of
    75 um pixels, 80 mm from the sample: 2theta from under 2 deg to 61 deg along the rows,
    azimuths -90 to 90 deg at low angle.

    Parameters
    ----------
    distance_m : float
        Sample-detector distance, metres.
    pixel_m : float
        Square pixel size, metres.
    shape : tuple of int
        (rows, columns).
    beam_row, beam_column : float
        Where the beam meets the detector plane, in pixels (default: middle row, column 0).
    wavelength_m : float
        Wavelength, metres (default Cu K-alpha1, the model's radiation).

    Returns
    -------
    pyFAI.integrator.azimuthal.AzimuthalIntegrator
    """
    from pyFAI.detectors import Detector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    rows, columns = (int(shape[0]), int(shape[1]))
    if not (distance_m > 0 and pixel_m > 0 and rows > 0 and columns > 0):
        raise ValueError(f"make_geometry: need distance, pixel size and shape > 0, got {distance_m}, {pixel_m}, {shape}")
    beam_row = rows / 2.0 if beam_row is None else float(beam_row)
    detector = Detector(pixel1=pixel_m, pixel2=pixel_m, max_shape=(rows, columns))
    return AzimuthalIntegrator(
        dist=distance_m, poni1=beam_row * pixel_m, poni2=float(beam_column) * pixel_m,
        detector=detector, wavelength=wavelength_m,
    )


def background_envelope(sample: Sample, window_deg: float = BACKGROUND_WINDOW_DEG) -> np.ndarray:
    """The sample's background: a running minimum of its rate density, smoothed (counts/s/deg).

    Returns
    -------
    numpy.ndarray
        On ``sample.grid_deg``, <= the density within the smoothing's reach.
    """
    step = float(np.median(np.diff(sample.grid_deg)))
    size = max(3, int(round(window_deg / step)) | 1)
    return uniform_filter1d(minimum_filter1d(sample.rate_density, size, mode="nearest"), size, mode="nearest")


def expected_frame(
    integrator: AzimuthalIntegrator, sample: Sample, dwell: float, texture: ArcTexture,
    pixel_acceptance_deg: float | None = None,
) -> np.ndarray:
    """Expected counts of every pixel (module docstring, :math:`\\lambda`).

    Parameters
    ----------
    integrator : AzimuthalIntegrator
        The detector geometry (`make_geometry` or a loaded PONI).
    sample : Sample
        The sample in the beam.
    dwell : float
        Exposure, seconds (> 0).
    texture : ArcTexture
        Arcs along the rings.
    pixel_acceptance_deg : float, optional
        :math:`a`, degrees; default the angular size of a pixel at the PONI.

    Returns
    -------
    numpy.ndarray
        float64, the detector's shape (rows, columns), counts >= 0.
    """
    if not dwell > 0:
        raise ValueError(f"expected_frame: dwell must be > 0 s, got {dwell!r}")
    corners = integrator.array_from_unit(typ="corner", unit="2th_deg")[..., 0].astype(np.float64)
    low, high = corners.min(axis=-1), corners.max(axis=-1)
    width = np.maximum(high - low, 1e-9)
    mean_density = (cumulative_rate_at(high, sample) - cumulative_rate_at(low, sample)) / width
    centre = integrator.center_array(unit="2th_deg")
    background = np.minimum(np.interp(centre, sample.grid_deg, background_envelope(sample)), mean_density)
    chi = integrator.center_array(unit="chi_deg")
    if pixel_acceptance_deg is None:
        pixel_acceptance_deg = float(np.degrees(integrator.detector.pixel2 / integrator.dist))
    ring = background + (mean_density - background) * texture.weight(chi)
    return dwell * pixel_acceptance_deg * integrator.solidAngleArray() * np.maximum(ring, 0.0)


class AreaDetector(Device):
    """A 2D detector recording Debye-Scherrer frames of a `Sample` (Poisson counts per pixel).

    Parameters
    ----------
    name : str
        Device name (e.g. ``"area"``); the frame's data key is ``<name>_image``.
    sample : str or Sample
        Library name or a `Sample`.
    integrator : AzimuthalIntegrator, optional
        Geometry; default `make_geometry()`.
    dwell : float
        Exposure, s (> 0).
    texture : ArcTexture, optional
        Default ``ArcTexture()`` (70 % of each ring in a 40 deg arc at chi = 0).
    random_state : numpy.random.Generator, optional
        Source of the Poisson draws.
    **kwargs
        Passed to `ophyd.Device`.
    """

    image = Cpt(_InternalSignal, value=np.zeros((1, 1), dtype=np.int32), kind="normal")
    dwell = Cpt(_PositiveSignal, value=1.0, units="s", kind="config")
    sample = Cpt(_SampleSignal, value="", kind="config")
    sample_info = Cpt(_InternalSignal, value="{}", kind="config")
    geometry = Cpt(_InternalSignal, value="{}", kind="config")
    texture = Cpt(_InternalSignal, value="{}", kind="config")

    def __init__(
        self, *, name: str, sample: str | Sample, integrator: AzimuthalIntegrator | None = None,
        dwell: float = 1.0, texture: ArcTexture | None = None,
        random_state: np.random.Generator | None = None, **kwargs: Any,
    ) -> None:
        self._sample: Sample | None = None
        self.integrator = integrator if integrator is not None else make_geometry()
        self.arc_texture = texture if texture is not None else ArcTexture()
        self.random_state = random_state if random_state is not None else np.random.default_rng()
        super().__init__(name=name, **kwargs)
        self.dwell.put(dwell)
        self.sample.put(sample)
        config = {k: (v.name if hasattr(v, "name") else v) for k, v in self.integrator.get_config().items()}
        self.geometry.put(json.dumps(config, default=str), internal=True)
        self.texture.put(json.dumps(asdict(self.arc_texture)), internal=True)

    @property
    def current_sample(self) -> Sample:
        """The `Sample` in the beam."""
        assert self._sample is not None  # set in __init__
        return self._sample

    def expected(self) -> np.ndarray:
        """Expected counts of every pixel with the current sample, dwell and texture."""
        return expected_frame(self.integrator, self.current_sample, float(self.dwell.get()), self.arc_texture)

    def trigger(self) -> DeviceStatus:
        """Expose one frame: Poisson counts of `expected`, int32."""
        frame = self.random_state.poisson(self.expected()).astype(np.int32)
        self.image.put(frame, internal=True)
        status = DeviceStatus(self)
        status.set_finished()
        return status
