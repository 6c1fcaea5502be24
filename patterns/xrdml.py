"""PANalytical ``.xrdml`` (schemas 1.0-2.x): every scan, attenuators, counting times, wavelength.

Parsed with `xml.etree.ElementTree`, namespace-agnostic (the expat shipped with Python 3.11
refuses entity-expansion bombs). We keep our own reader because the one well-kept Python reader,
xrayutilities' ``XRDMLFile`` (GPL-2), needs ``<commonCountingTime>`` in every scan and so fails on
files with per-point ``<countingTimes>``, and does not report the wavelength.

Per scan (``<scan>`` of every ``<xrdMeasurement>``), following the XRDML schema
(www.xrdml.com, XRDMeasurement 2.x):

* the scan axis must be a 2theta scan (``Gonio``, ``2Theta-Omega``, ``Omega-2Theta``, ``2Theta``);
  any other (``Omega``: a rocking curve, ``Phi``, ``Chi``, ...) is refused with that reason;
* 2theta is ``<positions axis="2Theta">`` as ``<listPositions>`` or ``<startPosition>`` /
  ``<endPosition>`` (evenly spaced, inclusive); a ``<commonPosition>`` (2theta fixed) is refused;
* ``<counts>`` are raw detector counts: multiplied by ``<beamAttenuationFactors>`` when present;
  ``<intensities>`` already include that correction. Both are divided by the counting time
  (``<countingTimes>`` per point, else ``<commonCountingTime>``), so the result is counts per
  second and scans of different speed join seamlessly.

Scans are joined (`patterns.raw_scan` sorts and averages repeats). Several scans over the same
2theta range at different omega offsets (omega - 2theta/2) are a reciprocal-space map, refused:
one 2theta pattern is one offset. The wavelength is ``<usedWavelength>/<kAlpha1>``, else the
K-alpha1 of ``<anodeMaterial>``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from patterns.radiation import ANODE_WAVELENGTHS_A
from patterns.raw_scan import RawScan

#: scanAxis values that move 2theta (coupled or alone).
TWO_THETA_SCAN_AXES: tuple[str, ...] = ("Gonio", "2Theta-Omega", "Omega-2Theta", "2Theta")
_OFFSET_TOLERANCE_DEG = 0.01
_SCAN_AXIS_MEANING = {"Omega": "a rocking curve", "Phi": "an in-plane rotation", "Chi": "a tilt scan"}


def read_xrdml_scans(file: Path) -> RawScan:
    """Read every 2theta scan of an ``.xrdml`` file.

    Parameters
    ----------
    file : pathlib.Path
        The XML file.

    Returns
    -------
    RawScan
        x in 2theta degrees, y in counts per second, all scans concatenated. Metadata:
        ``format`` ("xrdml"), ``schema`` (namespace version), ``n_scans``, ``intensity_kind``
        ("counts" or "intensities"), ``intensity_unit`` ("counts/s"), ``counting_time_s`` (the
        common time, or None when per point), ``attenuated_points``, ``anode``,
        ``wavelength_intended``.

    Raises
    ------
    ValueError
        Not well-formed XML (with the line), no scan, a non-2theta scan axis, a fixed 2theta, a
        reciprocal-space map, missing or malformed positions / counts / times / factors.
    """
    raw = file.read_bytes()
    if not raw.strip():
        raise ValueError(f"{file}: file is empty")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        line, column = exc.position
        raise ValueError(f"{file}: line {line}: not well-formed XML (column {column}): {exc}") from exc
    scans = [element for element in root.iter() if _local(element.tag) == "scan"]
    if not scans:
        raise ValueError(f"{file}: no <scan> element; not an XRDML measurement")
    parts = [_read_scan(file, scan, number) for number, scan in enumerate(scans, start=1)]
    _refuse_area_map(file, parts)
    x = np.concatenate([part["two_theta"] for part in parts])
    y = np.concatenate([part["rate"] for part in parts])
    where = [f"scan {part['number']} point {i + 1}" for part in parts for i in range(part["rate"].size)]
    times = {part["counting_time_s"] for part in parts}
    wavelength, anode, intended = _wavelength(root)
    metadata: dict[str, Any] = {
        "format": "xrdml",
        "schema": root.tag.split("}", 1)[0].rsplit("/", 1)[-1] if "}" in root.tag else None,
        "n_scans": len(parts),
        "intensity_kind": parts[0]["kind"],
        "intensity_unit": "counts/s",
        "counting_time_s": times.pop() if len(times) == 1 else None,
        "attenuated_points": int(sum(part["attenuated"] for part in parts)),
        "anode": anode,
        "wavelength_intended": intended,
    }
    return RawScan(x, y, "2th_deg", wavelength, where, metadata)


def _read_scan(file: Path, scan: ET.Element, number: int) -> dict[str, Any]:
    axis = scan.get("scanAxis")
    if axis is not None and axis not in TWO_THETA_SCAN_AXES:
        meaning = _SCAN_AXIS_MEANING.get(axis, "not a 2theta scan")
        raise ValueError(f"{file}: scan {number} has scanAxis={axis!r} ({meaning}); only 2theta scans are patterns")
    points = _child(scan, "dataPoints")
    if points is None:
        raise ValueError(f"{file}: scan {number} has no <dataPoints>")
    values, kind = _child(points, "intensities"), "intensities"
    if values is None:
        values, kind = _child(points, "counts"), "counts"
    if values is None:
        raise ValueError(f"{file}: scan {number}: <dataPoints> has neither <intensities> nor <counts>")
    intensity = _numbers(file, values, f"scan {number} <{kind}>")
    n = intensity.size
    attenuated = 0
    factors = _child(points, "beamAttenuationFactors")
    if factors is not None and kind == "counts":
        factor = _numbers(file, factors, f"scan {number} <beamAttenuationFactors>", n)
        attenuated = int(np.count_nonzero(factor != 1.0))
        intensity = intensity * factor
    per_point = _child(points, "countingTimes")
    common = _child(points, "commonCountingTime")
    if per_point is not None:
        time = _numbers(file, per_point, f"scan {number} <countingTimes>", n)
    elif common is not None:
        time = np.full(n, _numbers(file, common, f"scan {number} <commonCountingTime>", 1)[0])
    else:
        raise ValueError(f"{file}: scan {number} has neither <countingTimes> nor <commonCountingTime>")
    if np.any(time <= 0):
        raise ValueError(f"{file}: scan {number} <countingTimes>: value {int(np.argmin(time)) + 1} is not > 0")
    two_theta = _positions(file, points, "2Theta", number, n)
    omega = _positions(file, points, "Omega", number, n, required=False)
    return {
        "number": number,
        "two_theta": two_theta,
        "rate": intensity / time,
        "kind": kind,
        "attenuated": attenuated,
        "counting_time_s": float(time[0]) if per_point is None else None,
        "offset": None if omega is None else float(np.median(omega - two_theta / 2.0)),
    }


def _refuse_area_map(file: Path, parts: list[dict[str, Any]]) -> None:
    """Refuse scans that repeat one 2theta range at different omega offsets (a reciprocal-space map)."""
    offsets = [part["offset"] for part in parts if part["offset"] is not None]
    if len(offsets) < 2 or max(offsets) - min(offsets) <= _OFFSET_TOLERANCE_DEG:
        return
    ranges = [(part["two_theta"].min(), part["two_theta"].max()) for part in parts]
    low, high = max(r[0] for r in ranges), min(r[1] for r in ranges)
    shortest = min(r[1] - r[0] for r in ranges)
    if high - low > 0.5 * shortest:
        raise ValueError(
            f"{file}: {len(parts)} scans over the same 2theta range at omega offsets "
            f"{min(offsets):.3f} to {max(offsets):.3f} deg: a reciprocal-space map, not one 2theta pattern"
        )


def _positions(
    file: Path, points: ET.Element, axis: str, number: int, n: int, *, required: bool = True
) -> np.ndarray | None:
    element = next((c for c in points if _local(c.tag) == "positions" and c.get("axis") == axis), None)
    if element is None:
        if required:
            raise ValueError(f"{file}: scan {number}: no <positions axis=\"{axis}\"> in <dataPoints>")
        return None
    listed = _child(element, "listPositions")
    if listed is not None:
        return _numbers(file, listed, f"scan {number} {axis} <listPositions>", n)
    start, end = _child(element, "startPosition"), _child(element, "endPosition")
    if start is not None and end is not None:
        first = _numbers(file, start, f"scan {number} {axis} <startPosition>", 1)[0]
        last = _numbers(file, end, f"scan {number} {axis} <endPosition>", 1)[0]
        return np.linspace(first, last, n)
    if _child(element, "commonPosition") is not None:
        if not required:
            return None
        raise ValueError(f"{file}: scan {number}: 2theta is fixed (<commonPosition>): not a 2theta scan")
    raise ValueError(f"{file}: scan {number}: {axis} <positions> lacks startPosition/endPosition or listPositions")


def _wavelength(root: ET.Element) -> tuple[float | None, str | None, str | None]:
    used = next((e for e in root.iter() if _local(e.tag) == "usedWavelength"), None)
    anode_element = next((e for e in root.iter() if _local(e.tag) == "anodeMaterial"), None)
    anode = (anode_element.text or "").strip() or None if anode_element is not None else None
    intended = used.get("intended") if used is not None else None
    k_alpha1 = _child(used, "kAlpha1") if used is not None else None
    if k_alpha1 is not None and k_alpha1.text and k_alpha1.text.strip():
        try:
            return float(k_alpha1.text), anode, intended
        except ValueError:
            pass
    return (ANODE_WAVELENGTHS_A.get(anode) if anode else None), anode, intended


def _local(tag: str) -> str:
    """Tag name without its ``{namespace}`` (XRDML files use several schema versions)."""
    return tag.rsplit("}", 1)[-1]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    return next((child for child in element if _local(child.tag) == name), None)


def _numbers(file: Path, element: ET.Element, what: str, expected: int | None = None) -> np.ndarray:
    fields = (element.text or "").split()
    if not fields:
        raise ValueError(f"{file}: {what} is empty")
    try:
        values = np.array([float(f) for f in fields], dtype=np.float64)
    except ValueError:
        index = next(i for i, f in enumerate(fields) if not _is_number(f))
        raise ValueError(f"{file}: {what} value {index + 1} {fields[index][:30]!r} is not a number") from None
    if expected is not None and values.size != expected:
        raise ValueError(f"{file}: {what} has {values.size} values but the scan has {expected} points")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ValueError(f"{file}: {what} value {int(bad[0]) + 1} is {float(values[bad[0]])!r}; expected a finite number")
    return values


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
