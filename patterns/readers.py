"""Read a diffraction pattern file of any supported format into a `Pattern`.

Formats, chosen by suffix (case-insensitive):

* two-column text ``.xy``, ``.xye``, ``.txt``, ``.csv``, ``.dat`` (`read_xy`; tokenising in
  `patterns.text_columns`, the meaning of the header text in `patterns.header_hints`);
* PANalytical ``.xrdml`` (`read_xrdml`, `patterns.xrdml`);
* Fit2D ``.chi``, Rigaku ``.ras``, Bruker ``.uxd`` (`patterns.vendor_text`);
* binary exports (Bruker ``.raw``/``.brml``, Philips ``.rd``/``.sd``, images) are refused with
  the export that works.

Every reader returns a `Pattern` on the model's axis: 2theta in degrees for Cu K-alpha1, converted
through d-spacings when the file holds another radiation or q/d (`patterns.radiation`), sorted,
with repeats averaged and a small background-subtraction offset lifted (`patterns.raw_scan`).
The wavelength is the file's when it states one, else the caller's (``wavelength_A`` / ``anode``),
else Cu K-alpha1, and ``metadata["wavelength_source"]`` says which. Every error is a `ValueError`
whose message starts with the file path and names the first bad line (or XRDML scan and point),
e.g. ``"/data/a.xy: line 12: x 10.02 goes back after 10.04, ..."``.
"""

from __future__ import annotations

from collections.abc import Callable
from os import PathLike
from pathlib import Path

from patterns.header_hints import (
    anode_mentioned,
    neutron_mentioned,
    wavelength_from_header,
    x_column_name,
    x_unit_from_name,
)
from patterns.pattern import Pattern
from patterns.radiation import MODEL_WAVELENGTH_A
from patterns.raw_scan import RawScan, to_pattern
from patterns.text_columns import decode_text, read_table
from patterns.vendor_text import read_chi, read_ras, read_uxd
from patterns.xrdml import read_xrdml_scans

PathArg = str | PathLike[str]

#: File suffixes (lower case) read as column text.
TEXT_SUFFIXES: tuple[str, ...] = (".xy", ".xye", ".txt", ".csv", ".dat")
#: File suffixes read as PANalytical XML.
XRDML_SUFFIXES: tuple[str, ...] = (".xrdml",)
#: Instrument text formats and their readers.
VENDOR_READERS: dict[str, Callable[[Path], RawScan]] = {".chi": read_chi, ".ras": read_ras, ".uxd": read_uxd}
_DETECTOR_IMAGE = ("a detector image; give its pyFAI calibration with --poni GEOMETRY.poni "
                   "(patterns.frames.read_frame integrates it), or integrate it to 2theta and give the .xy or .chi")
#: Binary formats we do not read, with what to do instead.
BINARY_FORMATS: dict[str, str] = {
    ".raw": "a binary Bruker/Siemens RAW file; export it as .uxd or .xy (DIFFRAC.EVA or FileExchange)",
    ".brml": "a Bruker BRML archive; export it as .uxd or .xy (DIFFRAC.EVA)",
    ".rd": "a binary Philips RD file; export it as .xrdml or .xy",
    ".sd": "a binary Philips SD file; export it as .xrdml or .xy",
    ".tif": _DETECTOR_IMAGE,
    ".tiff": _DETECTOR_IMAGE,
    ".edf": _DETECTOR_IMAGE,
    ".cbf": _DETECTOR_IMAGE,
}
SUFFIXES: tuple[str, ...] = TEXT_SUFFIXES + XRDML_SUFFIXES + tuple(VENDOR_READERS)


def read_pattern(path: PathArg, *, wavelength_A: float | None = None, anode: str | None = None) -> Pattern:
    """Read a pattern file, choosing the reader from the file suffix.

    Parameters
    ----------
    path : str or path-like
        A file with one of `SUFFIXES`.
    wavelength_A : float, optional
        The measurement wavelength in Angstrom when the file does not state it.
    anode : str, optional
        The X-ray tube anode (``"Co"``, ``"Mo"``, ...) instead of `wavelength_A`.

    Returns
    -------
    Pattern
        2theta in degrees for Cu K-alpha1; see `patterns.raw_scan.to_pattern` for the metadata.

    Raises
    ------
    ValueError
        Unknown or binary suffix, or a malformed or refused file (the message names the file and
        the first bad line and says why).
    FileNotFoundError
        If `path` does not exist.
    IsADirectoryError
        If `path` is a directory.
    """
    file = Path(path)
    suffix = file.suffix.lower()
    if file.is_dir():  # a folder (even one named like a pattern file) is never read as one
        example = file / f"*{suffix if suffix in SUFFIXES else '.xy'}"  # a folder named scans.xrdml: *.xrdml
        raise IsADirectoryError(f"{file}: is a directory; give the pattern files in it (e.g. {example})")
    if suffix in BINARY_FORMATS:
        raise ValueError(f"{file}: {BINARY_FORMATS[suffix]}")
    if suffix not in SUFFIXES:
        raise ValueError(f"{file}: unknown pattern file suffix {file.suffix!r} (known: {', '.join(SUFFIXES)})")
    if not file.exists():
        raise FileNotFoundError(f"{file}: no such file")
    if suffix in TEXT_SUFFIXES:
        raw = read_text_columns(file)
    elif suffix in XRDML_SUFFIXES:
        raw = read_xrdml_scans(file)
    else:
        raw = VENDOR_READERS[suffix](file)
    return to_pattern(file, raw, wavelength_A=wavelength_A, anode=anode)


def read_xy(path: PathArg, *, wavelength_A: float | None = None, anode: str | None = None) -> Pattern:
    """Read a column text pattern (``.xy``, ``.xye``, ``.txt``, ``.csv``, ``.dat``).

    Layout: see `patterns.text_columns`; x unit and wavelength from the header text
    (`patterns.header_hints`), 2theta in degrees when the header says nothing.

    Returns
    -------
    Pattern
        Metadata adds ``format`` ("xy"), ``encoding``, ``n_columns`` (extra columns such as the
        sigma of ``.xye`` are ignored), ``n_fixed_width_lines``, ``n_decimal_comma_lines``,
        ``radiation_in_header`` (a tube anode named in a comment, or None).

    Raises
    ------
    ValueError
        See `read_pattern`.
    """
    file = Path(path)
    return to_pattern(file, read_text_columns(file), wavelength_A=wavelength_A, anode=anode)


def read_xrdml(path: PathArg, *, wavelength_A: float | None = None, anode: str | None = None) -> Pattern:
    """Read a PANalytical ``.xrdml`` file: all scans, counts per second (see `patterns.xrdml`)."""
    file = Path(path)
    return to_pattern(file, read_xrdml_scans(file), wavelength_A=wavelength_A, anode=anode)


def read_text_columns(file: Path) -> RawScan:
    """The numbers and header meaning of a column text file (see `read_xy`)."""
    text, encoding = decode_text(file, file.read_bytes())
    table = read_table(file, text.splitlines(), encoding=encoding)
    header_line = table.line_numbers[0] - 1
    if neutron_mentioned(table.header):
        raise ValueError(
            f"{file}: the header says neutron diffraction; the model knows X-ray patterns only"
        )
    unit, refusal = x_unit_from_name(x_column_name(table.column_names))
    if refusal is not None:
        raise ValueError(f"{file}: line {header_line}: {refusal}")
    metadata = {
        "format": "xy",
        "encoding": encoding,
        "n_columns": table.n_columns,
        "n_fixed_width_lines": table.n_fixed_width_lines,
        "n_decimal_comma_lines": table.n_decimal_comma_lines,
        "radiation_in_header": anode_mentioned(table.header),
    }
    where = [f"line {n}" for n in table.line_numbers]
    return RawScan(table.x, table.y, unit or "2th_deg", wavelength_from_header(table.header), where, metadata)


def write_xy(pattern: Pattern, path: PathArg, *, header: str | None = None) -> Path:
    """Write `pattern` as a two-column ``.xy`` text file that `read_xy` reads back exactly.

    Parameters
    ----------
    pattern : Pattern
        The pattern (2theta in degrees, intensity).
    path : str or path-like
        Output file; parent folders must exist.
    header : str, optional
        Comment text written first, each line prefixed with ``# ``. Then the wavelength of
        the angles, Cu K-alpha1, as pyFAI writes it (``# Wavelength: 1.540598e-10 m``), which the
        readers take as stated by the file.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    file = Path(path)
    lines = [f"# {line}" for line in (header.splitlines() if header else [])]
    # a Pattern's angles are for the model's Cu K-alpha1: say so in the form the reader trusts (pyFAI's),
    # so a converted pattern read back is not "assumed Cu" but stated (the original radiation is not
    # named: a comment naming another tube is what the readers flag as a mismatch)
    lines.append(f"# Wavelength: {MODEL_WAVELENGTH_A * 1e-10!r} m")
    lines.append("# 2theta_deg intensity")
    # repr() of a float round-trips exactly
    lines.extend(f"{a!r} {b!r}" for a, b in zip(pattern.two_theta.tolist(), pattern.intensity.tolist(), strict=True))
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return file
