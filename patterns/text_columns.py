"""Column text as instruments and users write it: encodings, separators, decimal commas, headers.

One job: turn the bytes of a text pattern file into numbered rows of (x, y) plus the header text
before the data, so the format readers (two-column ``.xy``, Fit2D ``.chi``, Rigaku ``.ras``,
Bruker ``.uxd``) share one tokenizer. What the numbers *mean* (unit, radiation) is decided by the
caller from the header text (`patterns.header_hints`).

Encodings
    UTF-8 (with or without byte-order mark), UTF-16/UTF-32 with a byte-order mark, UTF-16 without
    one (detected by its NUL bytes in alternate positions), Shift-JIS (cp932: Japanese Rigaku
    headers) and finally Latin-1. A NUL byte or a control character in any other file means binary
    data; the error names the line.
Separators and decimal marks, decided per line
    ``;`` separates fields and ``,`` is then the decimal mark (``10,5;1200``); otherwise fields
    are separated by white space (spaces, tabs), a trailing comma on a field is a separator
    (``10, 5``), and a comma *inside* a field is a decimal comma (``5,02<TAB>1448``); a line with
    one white-space field is split on commas (CSV, ``10.5,1200``).
Comments and headers
    Blank lines and lines starting with ``#``, ``;``, ``!`` or ``*`` are comments anywhere; other
    non-numeric lines are headers, allowed only before the first data line.
Fixed-width glued lines
    Some exports write 2theta in a 7-character field and counts right after it, so the two touch
    when the counts overflow (``14.11851260`` = 14.1185 deg, 1260 counts; the AUTO-XRD
    "SnPerovskite at 0.5M 4to1 dmftodmso.xy" files). A single-field line is split after its 7th
    character only when the file also has ordinary two-field lines and the line matches
    ``^[ 0-9.]{7}[0-9]+(\\.[0-9]*)?$``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

COMMENT_PREFIXES: tuple[str, ...] = ("#", ";", "!", "*")
#: Width of the 2theta field in fixed-width exports whose counts can touch the angle.
FIXED_WIDTH_ANGLE_CHARS: int = 7
_FIXED_WIDTH_LINE = re.compile(r"^[ 0-9.]{%d}[0-9]+(?:\.[0-9]*)?$" % FIXED_WIDTH_ANGLE_CHARS)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)


@dataclass
class TextTable:
    """Numeric rows of a text file and the text before them.

    Attributes
    ----------
    x, y : numpy.ndarray
        float64[N], the first two columns of each data line, in file order.
    line_numbers : numpy.ndarray
        int64[N], the 1-based line of each row (for errors).
    header : list of str
        Comment and header lines before the first data line, stripped.
    column_names : str or None
        The last header line before the data (a column-name row such as ``2Theta<TAB>Intensity``
        or pyFAI's ``# q_nm^-1 I``), without its comment prefix.
    n_columns : int
        Most fields on a data line (3 for ``.xye``: 2theta, counts, sigma).
    n_fixed_width_lines : int
        Lines split as fixed-width glued fields.
    encoding : str
        The text encoding used.
    n_decimal_comma_lines : int
        Data lines whose numbers were written with a decimal comma (``5,02``), read as points.
    """

    x: np.ndarray
    y: np.ndarray
    line_numbers: np.ndarray
    header: list[str] = field(default_factory=list)
    column_names: str | None = None
    n_columns: int = 2
    n_fixed_width_lines: int = 0
    encoding: str = "utf-8"
    n_decimal_comma_lines: int = 0


def decode_text(file: Path, raw: bytes) -> tuple[str, str]:
    """Decode the bytes of a text pattern file.

    Parameters
    ----------
    file : pathlib.Path
        For error messages.
    raw : bytes
        The file content.

    Returns
    -------
    text : str
    encoding : str

    Raises
    ------
    ValueError
        Empty file, or binary data (a NUL or control byte; the message names the line).
    """
    if not raw.strip():
        raise ValueError(f"{file}: file is empty")
    encoding = next((name for bom, name in _BOMS if raw.startswith(bom)), None)
    if encoding is None and b"\x00" in raw:
        encoding = _bomless_utf16(raw)
        if encoding is None:
            line = raw[: raw.index(b"\x00")].count(b"\n") + 1
            raise ValueError(f"{file}: line {line}: binary data (NUL byte); not a text pattern file")
    candidates = (encoding,) if encoding else ("utf-8", "cp932", "latin-1")
    for name in candidates:
        try:
            text = raw.decode(name)
        except UnicodeDecodeError:
            continue
        text = text.lstrip("\ufeff")
        control = _CONTROL.search(text)
        if control is not None:
            line = text.count("\n", 0, control.start()) + 1
            raise ValueError(f"{file}: line {line}: binary data (control character); not a text pattern file")
        return text, name
    raise ValueError(f"{file}: not decodable as {encoding} text")  # only reachable with a BOM


def _bomless_utf16(raw: bytes) -> str | None:
    """``"utf-16-le"``/``"-be"`` when NULs sit in alternate bytes (ASCII text in UTF-16), else None."""
    even, odd = raw[0::2], raw[1::2]
    if odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


def split_fields(line: str) -> list[str]:
    """Fields of one line with decimal commas turned into points (see the module docstring).

    Quotes around fields (spreadsheet CSV exports: ``"10.5","1200"``) are removed first.
    """
    return _split(line)[0]


def has_decimal_comma(line: str) -> bool:
    """Whether `split_fields` reads a comma of this line as a decimal mark."""
    return _split(line)[1]


def _split(line: str) -> tuple[list[str], bool]:
    """`split_fields`'s fields and whether a comma in them was a decimal mark (one set of rules for both)."""
    line = line.replace('"', " ").replace("'", " ")
    if ";" in line:
        fields = [f.strip() for f in line.split(";") if f.strip()]
    else:
        fields = [f for f in (f.rstrip(",") for f in line.split()) if f]
        if len(fields) == 1 and "," in fields[0]:  # one comma-separated field: CSV, the commas separate
            return [f.strip() for f in fields[0].split(",") if f.strip()], False
    return [f.replace(",", ".") for f in fields], any("," in f for f in fields)


def to_float(text: str) -> float | None:
    """`float(text)` or None when it is not a number."""
    try:
        return float(text)
    except ValueError:
        return None


def read_table(file: Path, lines: list[str], first_line_number: int = 1, *, encoding: str = "utf-8") -> TextTable:
    """Parse numbered data rows out of text lines.

    Parameters
    ----------
    file : pathlib.Path
        For error messages.
    lines : list of str
        The lines to parse (a whole file, or the data block of a vendor format).
    first_line_number : int
        File line number of ``lines[0]``.
    encoding : str
        Recorded in the result.

    Returns
    -------
    TextTable

    Raises
    ------
    ValueError
        No data lines, only one column, or a non-numeric line after the data started; the
        message names the file and the line.
    """
    header: list[str] = []
    rows: list[tuple[int, float, float, int]] = []
    singles: list[tuple[int, str]] = []
    decimal_commas = 0
    for offset, line in enumerate(lines):
        number = first_line_number + offset
        stripped = line.strip()
        if not stripped or stripped.startswith(COMMENT_PREFIXES):
            if stripped and not rows and not singles:
                header.append(stripped.lstrip("#;!* \t"))
            continue
        fields, decimal_comma = _split(stripped)
        values = [to_float(f) for f in fields[:2]]
        if len(fields) >= 2 and values[0] is not None and values[1] is not None:
            rows.append((number, values[0], values[1], len(fields)))
            decimal_commas += decimal_comma
        elif len(fields) == 1 and values[0] is not None:
            singles.append((number, line))
        elif not rows and not singles:
            header.append(stripped)
        else:
            raise ValueError(
                f"{file}: line {number}: expected numbers (2theta, intensity), got {stripped[:60]!r}"
            )
    if not rows and not singles:
        raise ValueError(f"{file}: no data lines (only blank, comment or header lines)")
    if not rows:
        raise ValueError(f"{file}: line {singles[0][0]}: only one column; expected 2theta and intensity")
    n_columns = max(row[3] for row in rows)
    rows.extend((number, *_split_fixed_width(file, number, line), 2) for number, line in singles)
    rows.sort(key=lambda row: row[0])
    table = np.array([row[:3] for row in rows], dtype=np.float64)
    return TextTable(
        x=table[:, 1],
        y=table[:, 2],
        line_numbers=table[:, 0].astype(np.int64),
        header=header,
        column_names=header[-1] if header else None,
        n_columns=n_columns,
        n_fixed_width_lines=len(singles),
        encoding=encoding,
        n_decimal_comma_lines=decimal_commas,
    )


def _split_fixed_width(file: Path, number: int, line: str) -> tuple[float, float]:
    line = line.rstrip()
    angle = to_float(line[:FIXED_WIDTH_ANGLE_CHARS])
    value = to_float(line[FIXED_WIDTH_ANGLE_CHARS:])
    if _FIXED_WIDTH_LINE.match(line) is None or angle is None or value is None:
        raise ValueError(
            f"{file}: line {number}: only one column ({line.strip()[:60]!r}); expected 2theta and intensity"
        )
    return angle, value
