"""Readers for diffraction pattern files: two-column text and PANalytical .xrdml.

Every reader returns a validated `Pattern` whose ``metadata["source"]`` is the file path,
and every malformed file raises ``ValueError`` whose message starts with the file path and,
where the file has lines, names the first bad line (1-based), e.g.
``"/data/a.xy: line 12: two_theta 10.02 does not increase after 10.04"``.

Two-column text (.xy, .txt, .csv, .dat)
---------------------------------------
* Columns are separated by whitespace (spaces, tabs) or commas; or by semicolons, in which
  case a comma inside a field is a decimal comma (``10,5;1200`` = 10.5 deg, 1200 counts).
  Line endings may be LF, CRLF or CR; a UTF-8 byte-order mark is ignored.
* Blank lines and comment lines starting with ``#``, ``;`` or ``!`` are skipped anywhere.
* Header lines (lines whose first two fields are not numbers, e.g. ``2theta,intensity``) are
  allowed only before the first data line; a non-numeric line after data started is an error.
* Columns beyond the second (e.g. a fit or an esd column) are ignored; their count is
  recorded in ``metadata["n_columns"]``.
* Fixed-width glued lines: some instrument exports write 2theta in a 7-character field and
  the counts right after it; when the counts overflow their field the two numbers touch, e.g.
  ``14.11851260`` = 2theta 14.1185 deg, 1260 counts (see the AUTO-XRD I4/mcm files
  "... SnPerovskite at 0.5M 4to1 dmftodmso.xy"). A line with a single field is split after its
  7th character **only** when the file also has ordinary two-column data lines and the line
  matches ``^[ 0-9.]{7}[0-9]+(\\.[0-9]*)?$``; the number of such lines is recorded in
  ``metadata["n_fixed_width_lines"]``. A file whose data lines all have one field is rejected
  as single-column.
* Every data value must be finite, intensity >= 0, and 2theta strictly increasing; the first
  line breaking this is named in the error.

PANalytical .xrdml
------------------
Parsed with `xml.etree.ElementTree` (namespace-agnostic; the expat shipped with Python 3.11
refuses entity-expansion bombs). The first ``<scan>`` is read (``metadata["n_scans"]`` says
how many there are). 2theta comes from ``<positions axis="2Theta">``: either
``<listPositions>`` or ``<startPosition>``/``<endPosition>`` (points spaced evenly between
them, inclusive). Intensity is ``<intensities>`` or ``<counts>`` **as stored, not divided by
the counting time**; the counting time per point (s) is kept in
``metadata["counting_time_s"]`` (from ``<commonCountingTime>``) so a caller can convert to a
rate. The Cu K-alpha1 wavelength (Angstrom), when present, is ``metadata["wavelength_angstrom"]``.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from patterns.pattern import Pattern

#: File suffixes (lower case) read as two-column text.
TEXT_SUFFIXES: tuple[str, ...] = (".xy", ".txt", ".csv", ".dat")
#: File suffixes read as PANalytical XML.
XRDML_SUFFIXES: tuple[str, ...] = (".xrdml",)

COMMENT_PREFIXES: tuple[str, ...] = ("#", ";", "!")
_FIELD_SEPARATORS = re.compile(r"[\s,;]+")
#: Width of the 2theta field in fixed-width exports whose counts can touch the angle.
FIXED_WIDTH_ANGLE_CHARS: int = 7
_FIXED_WIDTH_LINE = re.compile(r"^[ 0-9.]{%d}[0-9]+(?:\.[0-9]*)?$" % FIXED_WIDTH_ANGLE_CHARS)

PathArg = str | PathLike[str]


def read_pattern(path: PathArg) -> Pattern:
    """Read a pattern file, choosing the reader from the file suffix.

    Parameters
    ----------
    path : str or path-like
        A ``.xy``, ``.txt``, ``.csv`` or ``.dat`` two-column text file, or a ``.xrdml`` file.

    Returns
    -------
    Pattern
        2theta in degrees, intensity as stored in the file.

    Raises
    ------
    ValueError
        Unknown suffix, or a malformed file (the message names the file and first bad line).
    FileNotFoundError
        If `path` does not exist.
    """
    file = Path(path)
    suffix = file.suffix.lower()
    reader: Callable[[PathArg], Pattern]
    if suffix in TEXT_SUFFIXES:
        reader = read_xy
    elif suffix in XRDML_SUFFIXES:
        reader = read_xrdml
    else:
        known = ", ".join(TEXT_SUFFIXES + XRDML_SUFFIXES)
        raise ValueError(f"{file}: unknown pattern file suffix {file.suffix!r} (known: {known})")
    return reader(file)


def read_xy(path: PathArg) -> Pattern:
    """Read a two-column text pattern (2theta in degrees, intensity).

    See the module docstring for the accepted layout (separators, comments, headers,
    fixed-width glued lines).

    Parameters
    ----------
    path : str or path-like
        The text file.

    Returns
    -------
    Pattern
        With metadata ``source`` (path), ``name`` (file stem), ``format`` ("xy"),
        ``n_columns`` and ``n_fixed_width_lines``.

    Raises
    ------
    ValueError
        Empty or binary file, no data, a single column, a non-numeric, non-finite or negative
        value, or 2theta not strictly increasing; the message names the file and the line.
    """
    file = Path(path)
    text = _read_text(file)
    rows = _classify_lines(file, text)
    two_column = [row for row in rows if row.kind == "pair"]
    single = [row for row in rows if row.kind == "single"]
    if not rows:
        raise ValueError(f"{file}: no data lines (only blank, comment or header lines)")
    if not two_column:
        raise ValueError(
            f"{file}: line {single[0].line_number}: only one column; expected 2theta and intensity"
        )
    two_theta: list[float] = []
    intensity: list[float] = []
    n_fixed_width = 0
    for row in rows:
        if row.kind == "pair":
            angle, value = row.values
        else:
            angle, value = _split_fixed_width(file, row)
            n_fixed_width += 1
        _check_point(file, row.line_number, angle, value, two_theta[-1] if two_theta else None)
        two_theta.append(angle)
        intensity.append(value)
    metadata: dict[str, Any] = {
        "source": str(file),
        "name": file.stem,
        "format": "xy",
        "n_columns": max(row.n_fields for row in two_column),
        "n_fixed_width_lines": n_fixed_width,
    }
    return Pattern(np.asarray(two_theta), np.asarray(intensity), metadata)


def read_xrdml(path: PathArg) -> Pattern:
    """Read a PANalytical ``.xrdml`` file (first scan, 2theta axis).

    Parameters
    ----------
    path : str or path-like
        The XML file.

    Returns
    -------
    Pattern
        2theta in degrees; intensity as stored (counts per point, not divided by the counting
        time). Metadata: ``source``, ``name``, ``format`` ("xrdml"), ``n_scans``,
        ``counting_time_s`` (None if absent), ``wavelength_angstrom`` (None if absent),
        ``intensity_kind`` ("counts" or "intensities").

    Raises
    ------
    ValueError
        Not well-formed XML (with the line), missing 2theta positions or intensities, counts
        that are not finite non-negative numbers, or a positions/intensities length mismatch.
    """
    file = Path(path)
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
    data_points = _first_child(scans[0], "dataPoints")
    if data_points is None:
        raise ValueError(f"{file}: first <scan> has no <dataPoints>")
    values_element = _first_child(data_points, "intensities")
    kind = "intensities"
    if values_element is None:
        values_element = _first_child(data_points, "counts")
        kind = "counts"
    if values_element is None:
        raise ValueError(f"{file}: <dataPoints> has neither <intensities> nor <counts>")
    intensity = _parse_numbers(file, values_element.text or "", f"<{kind}>")
    two_theta = _xrdml_two_theta(file, data_points, intensity.size)
    bad = np.flatnonzero(~np.isfinite(intensity) | (intensity < 0))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{file}: <{kind}> value {i + 1} is {intensity[i]!r}; expected finite >= 0")
    counting_time = _first_child(data_points, "commonCountingTime")
    wavelength = next((e for e in root.iter() if _local(e.tag) == "kAlpha1"), None)
    metadata: dict[str, Any] = {
        "source": str(file),
        "name": file.stem,
        "format": "xrdml",
        "n_scans": len(scans),
        "intensity_kind": kind,
        "counting_time_s": _optional_float(counting_time),
        "wavelength_angstrom": _optional_float(wavelength),
    }
    return Pattern(two_theta, intensity, metadata)


def write_xy(pattern: Pattern, path: PathArg, *, header: str | None = None) -> Path:
    """Write `pattern` as a two-column ``.xy`` text file that `read_xy` reads back exactly.

    Parameters
    ----------
    pattern : Pattern
        The pattern (2theta in degrees, intensity).
    path : str or path-like
        Output file; parent folders must exist.
    header : str, optional
        Comment text written first, each line prefixed with ``# ``.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    file = Path(path)
    lines = [f"# {line}" for line in (header.splitlines() if header else [])]
    lines.append("# 2theta_deg intensity")
    # repr() of a float round-trips exactly
    lines.extend(f"{a!r} {b!r}" for a, b in zip(pattern.two_theta.tolist(), pattern.intensity.tolist(), strict=True))
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return file


# ----------------------------------------------------------------------------- text helpers


class _Row:
    """One data line of a text file: either a parsed pair or a single field."""

    __slots__ = ("line_number", "kind", "values", "raw", "n_fields")

    def __init__(
        self, line_number: int, kind: str, values: tuple[float, float], raw: str, n_fields: int
    ) -> None:
        self.line_number = line_number
        self.kind = kind  # "pair" or "single"
        self.values = values
        self.raw = raw
        self.n_fields = n_fields


def _read_text(file: Path) -> str:
    raw = file.read_bytes()
    if not raw:
        raise ValueError(f"{file}: file is empty")
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise ValueError(f"{file}: line {line}: binary data (NUL byte); not a text pattern file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        text = raw.decode("latin-1")
        # Legacy 8-bit headers (e.g. a degree sign) are fine; control bytes mean binary.
        control = re.search(r"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", text)
        if control is not None:
            line = text.count("\n", 0, control.start()) + 1
            raise ValueError(f"{file}: line {line}: binary data; not a text pattern file") from exc
        return text


def _classify_lines(file: Path, text: str) -> list[_Row]:
    rows: list[_Row] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(COMMENT_PREFIXES):
            continue
        if ";" in stripped:
            # semicolon-separated exports (European locale) write decimal commas: "10,5;1200"
            fields = [f.strip().replace(",", ".") for f in stripped.split(";") if f.strip()]
        else:
            fields = [f for f in _FIELD_SEPARATORS.split(stripped) if f]
        numbers = [_to_float(f) for f in fields[:2]]
        if len(fields) >= 2 and numbers[0] is not None and numbers[1] is not None:
            rows.append(_Row(line_number, "pair", (numbers[0], numbers[1]), line, len(fields)))
        elif len(fields) == 1 and numbers[0] is not None:
            rows.append(_Row(line_number, "single", (numbers[0], math.nan), line, 1))
        elif not rows:
            continue  # a header line before the data
        else:
            raise ValueError(
                f"{file}: line {line_number}: expected two numbers (2theta, intensity), "
                f"got {stripped[:60]!r}"
            )
    return rows


def _split_fixed_width(file: Path, row: _Row) -> tuple[float, float]:
    line = row.raw.rstrip()
    angle = _to_float(line[:FIXED_WIDTH_ANGLE_CHARS])
    value = _to_float(line[FIXED_WIDTH_ANGLE_CHARS:])
    if _FIXED_WIDTH_LINE.match(line) is None or angle is None or value is None:
        raise ValueError(
            f"{file}: line {row.line_number}: only one column ({line.strip()[:60]!r}); expected "
            f"2theta and intensity"
        )
    return angle, value


def _check_point(
    file: Path, line_number: int, angle: float, value: float, previous_angle: float | None
) -> None:
    if not math.isfinite(angle) or not math.isfinite(value):
        raise ValueError(
            f"{file}: line {line_number}: non-finite value (2theta {angle!r}, intensity {value!r})"
        )
    if value < 0:
        raise ValueError(f"{file}: line {line_number}: negative intensity {value!r}")
    if previous_angle is not None and angle <= previous_angle:
        raise ValueError(
            f"{file}: line {line_number}: two_theta {angle!r} does not increase after "
            f"{previous_angle!r}"
        )
    if not 0.0 <= angle <= 180.0:
        raise ValueError(f"{file}: line {line_number}: two_theta {angle!r} outside [0, 180] deg")


def _to_float(field: str) -> float | None:
    try:
        return float(field)
    except ValueError:
        return None


# ---------------------------------------------------------------------------- XRDML helpers


def _local(tag: str) -> str:
    """Tag name without its ``{namespace}`` (XRDML files use several schema versions)."""
    return tag.rsplit("}", 1)[-1]


def _first_child(element: ET.Element, name: str) -> ET.Element | None:
    return next((child for child in element if _local(child.tag) == name), None)


def _parse_numbers(file: Path, text: str, what: str) -> np.ndarray:
    fields = text.split()
    if not fields:
        raise ValueError(f"{file}: {what} is empty")
    try:
        return np.array([float(f) for f in fields], dtype=np.float64)
    except ValueError:
        index = next(i for i, f in enumerate(fields) if _to_float(f) is None)
        raise ValueError(f"{file}: {what} value {index + 1} {fields[index][:30]!r} is not a number") from None


def _xrdml_two_theta(file: Path, data_points: ET.Element, n_points: int) -> np.ndarray:
    positions = next(
        (
            child
            for child in data_points
            if _local(child.tag) == "positions" and child.get("axis") == "2Theta"
        ),
        None,
    )
    if positions is None:
        raise ValueError(f"{file}: no <positions axis=\"2Theta\"> in <dataPoints>")
    listed = _first_child(positions, "listPositions")
    if listed is not None:
        two_theta = _parse_numbers(file, listed.text or "", "<listPositions>")
        if two_theta.size != n_points:
            raise ValueError(
                f"{file}: {two_theta.size} 2theta positions but {n_points} intensity values"
            )
        return two_theta
    start = _optional_float(_first_child(positions, "startPosition"))
    end = _optional_float(_first_child(positions, "endPosition"))
    if start is None or end is None:
        raise ValueError(f"{file}: 2Theta <positions> lacks startPosition/endPosition or listPositions")
    if n_points < 2:
        raise ValueError(f"{file}: a pattern needs at least 2 points, got {n_points}")
    return np.linspace(start, end, n_points)


def _optional_float(element: ET.Element | None) -> float | None:
    if element is None or element.text is None:
        return None
    return _to_float(element.text.strip())
