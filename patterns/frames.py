"""Area-detector frames: written and read with fabio, reduced to I(2theta) with pyFAI.

`reduce_frame` integrates a 2D frame azimuthally (pyFAI ``integrate1d``: solid-angle corrected,
pixels split over the 2theta bins they cover, the mean over the azimuths each bin sees) and
returns a `Pattern` on the model's axis (Cu K-alpha1 2theta, degrees), converted through
d-spacings when the frame's wavelength is another (`patterns.raw_scan.to_pattern`). Bins no
pixel reaches are dropped. `read_frame` does the same for a frame file (any format fabio reads:
EDF, TIFF, CBF, ...) and the PONI file of its geometry (pyFAI calibration); `write_frame`
writes EDF with a header that records how the frame was made.

pyFAI and fabio are imported inside the functions: `import patterns` stays numpy-only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from patterns.pattern import Pattern
from patterns.raw_scan import RawScan, to_pattern

if TYPE_CHECKING:
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

#: Default 2theta bin width of the reduction, degrees (the model's grid is 0.04 deg).
DEFAULT_BIN_DEG = 0.01
#: pyFAI's pixel-splitting integrator: each pixel spread over the bins its corners span.
METHOD = ("bbox", "csr", "cython")


def reduce_frame(
    image: np.ndarray, integrator: AzimuthalIntegrator, *, radial_range_deg: tuple[float, float] | None = None,
    bin_deg: float = DEFAULT_BIN_DEG, mask: np.ndarray | None = None, source: str = "frame",
) -> Pattern:
    """Azimuthally integrate a frame into a 1D pattern.

    Parameters
    ----------
    image : numpy.ndarray
        The frame, counts, shape of the integrator's detector (rows, columns).
    integrator : pyFAI AzimuthalIntegrator
        The geometry (PONI), with its wavelength.
    radial_range_deg : tuple of float, optional
        2theta range to integrate, degrees at the frame's wavelength (default: all the detector sees).
    bin_deg : float
        Width of the 2theta bins, degrees (> 0).
    mask : numpy.ndarray of bool, optional
        True for pixels to leave out (gaps, dead pixels, beam stop).
    source : str
        Named in errors and in the pattern's metadata.

    Returns
    -------
    Pattern
        Mean counts per pixel (solid-angle corrected) against Cu K-alpha1 2theta, degrees;
        metadata ``format`` ("area-detector frame"), ``n_bins``, ``bin_deg``, ``poni`` (the
        geometry) and `to_pattern`'s radiation keys.

    Raises
    ------
    ValueError
        If the frame's shape is not the detector's, the geometry has no wavelength, or no bin
        is reached by a pixel.
    """
    image = np.asarray(image)
    shape = tuple(integrator.detector.max_shape or ())
    if image.ndim != 2 or (shape and image.shape != shape):
        raise ValueError(f"{source}: frame shape {image.shape} is not the detector's {shape}")
    if not integrator.wavelength:
        raise ValueError(f"{source}: the geometry states no wavelength; 2theta cannot be put on the model's axis")
    if not bin_deg > 0:
        raise ValueError(f"{source}: bin_deg must be > 0, got {bin_deg!r}")
    if radial_range_deg is None:
        centre = integrator.center_array(unit="2th_deg")
        radial_range_deg = (float(centre.min()), float(centre.max()))
    low, high = (float(radial_range_deg[0]), float(radial_range_deg[1]))
    n_bins = max(2, int(round((high - low) / bin_deg)))
    result = integrator.integrate1d(
        image.astype(np.float64), n_bins, unit="2th_deg", radial_range=(low, high), mask=mask,
        method=METHOD, correctSolidAngle=True,
    )
    reached = np.asarray(result.count) > 0
    if not reached.any():
        raise ValueError(f"{source}: no pixel of the frame falls in {low:g}-{high:g} deg 2theta")
    x = np.asarray(result.radial, dtype=np.float64)[reached]
    raw = RawScan(
        x=x, y=np.asarray(result.intensity, dtype=np.float64)[reached], x_unit="2th_deg",
        file_wavelength_A=float(integrator.wavelength) * 1e10, where=[f"bin at {v:.3f} deg" for v in x],
        metadata={"format": "area-detector frame", "n_bins": int(reached.sum()), "bin_deg": (high - low) / n_bins,
                  "poni": _poni_record(integrator)},
    )
    return to_pattern(Path(source), raw)


def _poni_record(integrator: AzimuthalIntegrator) -> dict[str, Any]:
    """The geometry as plain JSON-ready values."""
    record = integrator.get_config()
    record["detector_config"] = {k: (v.name if hasattr(v, "name") else v)
                                 for k, v in dict(record.get("detector_config") or {}).items()}
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in record.items()}


def write_frame(path: str | Path, image: np.ndarray, header: dict[str, Any] | None = None) -> Path:
    """Write a frame as EDF (fabio), with `header` (strings) recording how it was made.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    from fabio.edfimage import EdfImage

    path = Path(path)
    EdfImage(data=np.asarray(image), header={str(k): str(v) for k, v in (header or {}).items()}).write(str(path))
    return path


def read_frame(
    path: str | Path, poni: str | Path, *, radial_range_deg: tuple[float, float] | None = None,
    bin_deg: float = DEFAULT_BIN_DEG, mask: np.ndarray | None = None,
) -> Pattern:
    """Read a frame file (fabio) and its PONI geometry (pyFAI), and reduce it (`reduce_frame`).

    Raises
    ------
    FileNotFoundError
        Naming the frame or the PONI file that is missing.
    ValueError
        Naming the file fabio or pyFAI cannot read, or from `reduce_frame`.
    """
    import fabio
    import pyFAI

    path, poni = Path(path), Path(poni)
    for file in (path, poni):
        if not file.is_file():
            raise FileNotFoundError(f"{file}: no such file")
    try:
        image = fabio.open(str(path)).data
    except Exception as exc:  # fabio raises many types for a file it cannot parse
        raise ValueError(f"{path}: not a frame fabio can read ({type(exc).__name__}: {exc})") from exc
    try:
        integrator = pyFAI.load(str(poni))
    except Exception as exc:  # noqa: BLE001 - the same for pyFAI and a bad PONI
        raise ValueError(f"{poni}: not a PONI geometry pyFAI can read ({type(exc).__name__}: {exc})") from exc
    return reduce_frame(image, integrator, radial_range_deg=radial_range_deg, bin_deg=bin_deg, mask=mask,
                        source=str(path))
