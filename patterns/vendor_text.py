"""Text formats written by instruments and integration software: Fit2D ``.chi``, Rigaku ``.ras``,
Bruker ``.uxd``. Each reader returns a `RawScan`; `patterns.raw_scan.to_pattern` does the rest.

No kept Python library reads these correctly for us: xrayutilities' ``RASFile`` (GPL-2) drops the
wavelength and leaves the attenuator column to the caller; xylib reads ``.uxd`` and ``.chi`` but
its Python bindings (xylib-py) have had no release since 2022. The formats are small and documented by their
writers, so the readers below are short; each names the file and line in its errors.

Fit2D ``.chi`` (A. Hammersley, FIT2D reference manual, "save chi format")
    line 1 title, line 2 x-axis name (``2-Theta Angle (Degrees)``, ``Q (Angstroms-1)``, ...),
    line 3 y-axis name, line 4 number of points, then x, y (and optionally an error) per line.
Rigaku ``.ras`` (SmartLab Guidance export)
    ``*KEY "value"`` header lines between ``*RAS_HEADER_START`` / ``*RAS_HEADER_END``; the data
    between ``*RAS_INT_START`` / ``*RAS_INT_END`` are angle, counts and an attenuator factor by
    which the counts are multiplied; a file may hold several such blocks (joined). The wavelength
    is ``*HW_XG_WAVE_LENGTH_ALPHA1``; headers are often Shift-JIS (``"japanese|english"``).
Bruker ``.uxd`` (DIFFRAC-AT / FileExchange)
    ``_KEY=value`` lines (``_WL1`` the K-alpha1 wavelength), ``;`` comments, one block per range
    from ``_DRIVE``: ``_COUNTS``/``_CPS`` followed by intensities only (x = ``_START`` + i
    ``_STEPSIZE``), or ``_2THETACOUNTS``/``_2THETACPS``/``_2THETACOUNTSTIME`` followed by
    2theta-intensity pairs. Counts are divided by ``_STEPTIME`` (counts per second).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from patterns.header_hints import anode_mentioned, x_unit_from_name
from patterns.raw_scan import RawScan
from patterns.text_columns import decode_text, read_table, to_float

_RAS_TWO_THETA_AXES = ("twothetaomega", "twothetatheta", "twotheta", "2theta/omega", "2-theta/omega", "2theta")
_UXD_REFUSED_DRIVES = ("OMEGA", "THETA", "PHI", "CHI", "PSI", "X", "Y", "Z")


def read_chi(file: Path) -> RawScan:
    """Read a Fit2D ``.chi`` file (see the module docstring).

    Raises
    ------
    ValueError
        Fewer than 5 lines, an x-axis name that is not 2theta, q or d, or bad data lines.
    """
    text, encoding = decode_text(file, file.read_bytes())
    lines = text.splitlines()
    if len(lines) < 5:
        raise ValueError(f"{file}: a Fit2D .chi file has 4 header lines and data; this one has {len(lines)} lines")
    unit, refusal = x_unit_from_name(lines[1])
    if refusal is not None:
        raise ValueError(f"{file}: line 2: {refusal}")
    if unit is None:
        raise ValueError(f"{file}: line 2: x-axis name {lines[1].strip()!r} is not 2theta, q or d")
    table = read_table(file, lines[4:], 5, encoding=encoding)
    declared = to_float(lines[3].strip())
    metadata = {"format": "chi", "encoding": encoding, "n_columns": table.n_columns, "title": lines[0].strip(),
                "n_points_declared": int(declared) if declared is not None else None}
    return RawScan(table.x, table.y, unit, None, [f"line {n}" for n in table.line_numbers], metadata)


def read_ras(file: Path) -> RawScan:
    """Read a Rigaku ``.ras`` file, every data block, counts times the attenuator factor.

    Raises
    ------
    ValueError
        No ``*RAS_INT_START`` block, a scan axis other than 2theta, bad data lines.
    """
    text, encoding = decode_text(file, file.read_bytes())
    lines = text.splitlines()
    header: dict[str, str] = {}
    xs, ys, where = [], [], []
    start = None
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped.startswith("*RAS_INT_START"):
            start = number
        elif stripped.startswith("*RAS_INT_END") and start is not None:
            x, y, labels = _ras_block(file, header, lines[start:number - 1], start + 1)
            xs.append(x), ys.append(y), where.extend(labels)
            start = None
        elif start is None and stripped.startswith("*"):
            key, _, value = stripped[1:].partition(" ")
            value = value.strip().strip('"')
            header[key] = value.split("|", 1)[-1] if "|" in value else value
    if not xs:
        raise ValueError(f"{file}: no *RAS_INT_START ... *RAS_INT_END data block; not a Rigaku .ras file")
    wavelength = to_float(header.get("HW_XG_WAVE_LENGTH_ALPHA1", ""))
    metadata = {"format": "ras", "encoding": encoding, "n_scans": len(xs), "intensity_unit": "counts/s",
                "anode": header.get("HW_XG_TARGET_NAME") or anode_mentioned(list(header.values()))}
    return RawScan(np.concatenate(xs), np.concatenate(ys), "2th_deg", wavelength, where, metadata)


def _ras_block(file: Path, header: dict[str, str], lines: list[str], first: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    axis = header.get("MEAS_SCAN_AXIS_X_INTERNAL") or header.get("MEAS_SCAN_AXIS_X", "TwoThetaOmega")
    if axis.replace(" ", "").lower() not in _RAS_TWO_THETA_AXES:
        raise ValueError(f"{file}: line {first - 1}: scan axis {axis!r}: not a 2theta scan")
    unit = header.get("MEAS_SCAN_UNIT_X", "deg").lower()
    if unit not in ("deg", "degree", "degrees"):
        raise ValueError(f"{file}: line {first - 1}: scan unit {unit!r}; expected deg")
    rows = []
    for number, line in enumerate(lines, start=first):
        values = [to_float(f) for f in line.split()]
        if len(values) < 2 or any(v is None for v in values):
            raise ValueError(f"{file}: line {number}: expected angle, counts [, attenuator factor]; got {line.strip()[:60]!r}")
        rows.append((number, values[0], values[1] * (values[2] if len(values) > 2 else 1.0)))
    if not rows:
        raise ValueError(f"{file}: line {first}: empty data block")
    table = np.array(rows, dtype=np.float64)
    time = _ras_counting_time(header)
    return table[:, 1], table[:, 2] / time, [f"line {int(n)}" for n in table[:, 0]]


def _ras_counting_time(header: dict[str, str]) -> float:
    """Seconds per point: scan speed in deg/min with the step (continuous), or seconds (step mode)."""
    speed = to_float(header.get("MEAS_SCAN_SPEED", ""))
    step = to_float(header.get("MEAS_SCAN_STEP", ""))
    speed_unit = header.get("MEAS_SCAN_SPEED_UNIT", "").lower()
    if speed and step and "min" in speed_unit:
        return 60.0 * step / speed
    if speed and speed_unit in ("s", "sec", "second", "seconds"):
        return speed
    return 1.0


def read_uxd(file: Path) -> RawScan:
    """Read a Bruker ``.uxd`` file, every range, in counts per second.

    Raises
    ------
    ValueError
        No data keyword, a drive other than a coupled / 2theta scan, bad data lines.
    """
    text, encoding = decode_text(file, file.read_bytes())
    header: dict[str, str] = {}
    blocks: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(";"):
            continue
        if stripped.startswith("_"):
            key, _, value = stripped[1:].partition("=")
            key, value = key.strip().upper(), value.strip().strip("'\"")
            if key == "DRIVE" and value.upper() in _UXD_REFUSED_DRIVES:
                raise ValueError(f"{file}: line {number}: _DRIVE={value}: not a 2theta scan")
            if re.fullmatch(r"(2THETA)?(COUNTS|CPS|COUNTSTIME)", key) and not value:
                blocks.append({"kind": key, "header": dict(header), "rows": [], "line": number})
            else:
                header[key] = value
            continue
        if not blocks:
            raise ValueError(f"{file}: line {number}: data before a _COUNTS or _2THETACOUNTS keyword")
        blocks[-1]["rows"].append((number, stripped))
    if not blocks:
        raise ValueError(f"{file}: no _COUNTS, _CPS or _2THETACOUNTS data block; not a Bruker .uxd file")
    parts = [_uxd_block(file, block) for block in blocks]
    metadata = {"format": "uxd", "encoding": encoding, "n_scans": len(parts), "intensity_unit": "counts/s",
                "anode": header.get("ANODE")}
    return RawScan(
        np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), "2th_deg",
        to_float(header.get("WL1", "")), [w for p in parts for w in p[2]], metadata,
    )


def _uxd_block(file: Path, block: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    header, kind = block["header"], block["kind"]
    if not block["rows"]:
        raise ValueError(f"{file}: line {block['line']}: _{kind} is followed by no data")
    if kind.startswith("2THETA"):
        lines = [line for _, line in block["rows"]]
        table = read_table(file, lines, block["rows"][0][0])
        x, y, where = table.x, table.y, [f"line {n}" for n in table.line_numbers]
    else:
        values, where = [], []
        for number, line in block["rows"]:
            numbers = [to_float(f) for f in re.split(r"[\s,]+", line) if f]
            if any(v is None for v in numbers):
                raise ValueError(f"{file}: line {number}: expected intensities, got {line[:60]!r}")
            values.extend(numbers)
            where.extend([f"line {number}"] * len(numbers))
        start, step = to_float(header.get("START", "")), to_float(header.get("STEPSIZE", ""))
        if start is None or not step:
            raise ValueError(f"{file}: line {block['line']}: _{kind} needs _START and _STEPSIZE before it")
        y = np.asarray(values, dtype=np.float64)
        x = start + step * np.arange(y.size)
    if "CPS" not in kind:
        time = to_float(header.get("STEPTIME", "")) or 1.0
        y = y / time
    return np.asarray(x, dtype=np.float64), y, where
