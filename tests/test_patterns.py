"""Pattern validation and the file readers, on small files written by the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from patterns import Pattern, read_pattern, read_xrdml, read_xy

# ------------------------------------------------------------------------------ Pattern


def test_pattern_keeps_float64_read_only_copies() -> None:
    source = [10.0, 10.5, 11.0]
    pattern = Pattern(source, [1, 2, 3], {"name": "p"})
    assert pattern.two_theta.dtype == np.float64 and pattern.intensity.dtype == np.float64
    assert len(pattern) == 3 and pattern.name == "p" and pattern.label is None
    with pytest.raises(ValueError):
        pattern.intensity[0] = 5.0  # read-only
    with pytest.raises(AttributeError):
        pattern.metadata = {}  # type: ignore[misc]  # frozen


@pytest.mark.parametrize(
    ("two_theta", "intensity", "message"),
    [
        ([10.0, 11.0], [1.0, np.nan], "finite"),
        ([10.0, np.inf], [1.0, 1.0], "finite"),
        ([10.0, 11.0], [1.0, -1.0], ">= 0"),
        ([10.0, 10.0], [1.0, 1.0], "strictly increasing"),
        ([11.0, 10.0], [1.0, 1.0], "strictly increasing"),
        ([-1.0, 10.0], [1.0, 1.0], "within"),
        ([170.0, 181.0], [1.0, 1.0], "within"),
        ([10.0], [1.0], "at least 2"),
        ([10.0, 11.0, 12.0], [1.0, 1.0], "points"),
        ([[10.0, 11.0]], [[1.0, 1.0]], "one-dimensional"),
    ],
)
def test_pattern_rejects_invalid_arrays_naming_the_source(
    two_theta: list, intensity: list, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as info:
        Pattern(np.array(two_theta), np.array(intensity), {"source": "sample-7.xy"})
    assert "sample-7.xy" in str(info.value)


def test_with_metadata_returns_an_updated_copy() -> None:
    pattern = Pattern([1.0, 2.0], [0.0, 1.0], {"name": "a"})
    updated = pattern.with_metadata(label="Pm-3m")
    assert updated.label == "Pm-3m" and pattern.label is None
    assert updated == Pattern([1.0, 2.0], [0.0, 1.0], {"name": "a", "label": "Pm-3m"})


# ------------------------------------------------------------------------------ text files


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode("utf-8"))
    return path


@pytest.mark.parametrize(
    "content",
    [
        "10 5\n10.5 6\n11 7\n",
        "10 5\r\n10.5 6\r\n11 7\r\n",
        "10\t5\n10.5\t6\n11\t7\n",
        "10,5\n10.5,6\n11,7\n",
        "2theta,intensity\n10,5\n10.5,6\n11,7\n",
        "# comment\n; another\n! and another\nAngle Counts\n\n10 5\n# inside\n10.5 6\n11 7\n",
        "\ufeff10 5\r10.5 6\r11 7",
        "10 5 4.9\n10.5 6 6.1\n11 7 7.0\n",
        "Winkel;Impulse\n10;5\n10,5;6\n11,0;7,0\n",
    ],
    ids=["spaces", "crlf", "tabs", "commas", "header", "comments", "bom-cr", "three-columns", "semicolons"],
)
def test_read_xy_layouts(tmp_path: Path, content: str) -> None:
    pattern = read_pattern(write(tmp_path, "ok.xy", content))
    np.testing.assert_array_equal(pattern.two_theta, [10.0, 10.5, 11.0])
    np.testing.assert_array_equal(pattern.intensity, [5.0, 6.0, 7.0])
    assert pattern.name == "ok" and pattern.metadata["source"].endswith("ok.xy")


@pytest.mark.parametrize("suffix", [".txt", ".csv", ".dat", ".XY"])
def test_read_pattern_dispatches_text_suffixes(tmp_path: Path, suffix: str) -> None:
    pattern = read_pattern(write(tmp_path, f"p{suffix}", "1,2\n3,4\n"))
    np.testing.assert_array_equal(pattern.two_theta, [1.0, 3.0])


def test_fixed_width_glued_lines_are_split_after_seven_characters(tmp_path: Path) -> None:
    # As in the AUTO-XRD "SnPerovskite ... dmftodmso.xy" files: counts overflow their field.
    content = "14.0192 216 \r\n14.0688 397 \r\n14.11851260\r\n14.168110228 \r\n79.96434 \r\n 80.0147 \r\n"
    pattern = read_xy(write(tmp_path, "glued.xy", content))
    np.testing.assert_allclose(pattern.two_theta, [14.0192, 14.0688, 14.1185, 14.1681, 79.9643, 80.014])
    np.testing.assert_allclose(pattern.intensity, [216, 397, 1260, 10228, 4, 7])
    assert pattern.metadata["n_fixed_width_lines"] == 4


BAD_TEXT_FILES: dict[str, tuple[str | bytes, str]] = {
    # name: (content, the line the error must name)
    "nan.xy": ("10 5\n10.5 nan\n11 7\n", "line 2"),
    "decreasing.xy": ("10 5\n10.5 6\n10.2 7\n11 8\n", "line 3"),
    "single-column.xy": ("10.000001\n10.500001\n11.000001\n", "line 1"),
    "empty.xy": ("", "empty"),
    "binary.xy": (bytes(range(256)) * 4, "line 1"),
    "binary-no-nul.xy": (b"10 5\n" + bytes(range(1, 32)) * 8, "line 2"),
    "negative.xy": ("10 5\n10.5 -6\n", "line 2"),
    "text-after-data.xy": ("10 5\n10.5 6\nend of data\n", "line 3"),
    "comments-only.xy": ("# nothing\n# here\n", "no data"),
    "one-point.xy": ("10 5\n", "at least 2"),
    "out-of-range.xy": ("100 5\n190 6\n", "line 2"),
}


@pytest.mark.parametrize("name", list(BAD_TEXT_FILES))
def test_bad_text_files_raise_value_error_naming_file_and_line(tmp_path: Path, name: str) -> None:
    content, where = BAD_TEXT_FILES[name]
    path = write(tmp_path, name, content)
    with pytest.raises(ValueError) as info:
        read_pattern(path)
    message = str(info.value)
    assert str(path) in message, message
    assert where in message, message


def test_unknown_suffix_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "scan.foo", "10 5\n11 6\n")
    with pytest.raises(ValueError, match=r"scan\.foo.*unknown pattern file suffix"):
        read_pattern(path)


def test_binary_export_is_refused_with_the_export_that_works(tmp_path: Path) -> None:
    path = write(tmp_path, "scan.raw", b"RAW1.01\x00\x00")
    with pytest.raises(ValueError, match=r"scan\.raw.*Bruker.*export it as \.uxd or \.xy"):
        read_pattern(path)


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_pattern(tmp_path / "absent.xy")


# ------------------------------------------------------------------------------ XRDML

XRDML_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<xrdMeasurements xmlns="http://www.xrdml.com/XRDMeasurement/2.1">
  <xrdMeasurement measurementType="Scan">
    <usedWavelength><kAlpha1 unit="Angstrom">1.5405980</kAlpha1></usedWavelength>
    <scan appendNumber="0" mode="Continuous" scanAxis="Gonio">
      <dataPoints>
        {positions}
        <positions axis="Omega" unit="deg"><startPosition>5</startPosition><endPosition>6</endPosition></positions>
        <commonCountingTime unit="seconds">2.5</commonCountingTime>
        {values}
      </dataPoints>
    </scan>
  </xrdMeasurement>
</xrdMeasurements>
"""
START_END = '<positions axis="2Theta" unit="deg"><startPosition>10</startPosition><endPosition>12</endPosition></positions>'


def test_read_xrdml_start_end_and_counts(tmp_path: Path) -> None:
    text = XRDML_TEMPLATE.format(positions=START_END, values='<counts unit="counts">5 6 7 8 9</counts>')
    pattern = read_pattern(write(tmp_path, "scan.xrdml", text))
    np.testing.assert_allclose(pattern.two_theta, [10.0, 10.5, 11.0, 11.5, 12.0])
    np.testing.assert_allclose(pattern.intensity, np.array([5, 6, 7, 8, 9]) / 2.5)  # counts per second
    assert pattern.metadata["counting_time_s"] == 2.5 and pattern.metadata["intensity_unit"] == "counts/s"
    assert pattern.metadata["wavelength_A"] == pytest.approx(1.540598)
    assert pattern.metadata["intensity_kind"] == "counts"


def test_read_xrdml_list_positions_and_intensities(tmp_path: Path) -> None:
    positions = '<positions axis="2Theta" unit="deg"><listPositions>10 10.2 10.7</listPositions></positions>'
    text = XRDML_TEMPLATE.format(positions=positions, values="<intensities>1.5 2 0</intensities>")
    pattern = read_xrdml(write(tmp_path, "list.xrdml", text))
    np.testing.assert_allclose(pattern.two_theta, [10.0, 10.2, 10.7])
    np.testing.assert_allclose(pattern.intensity, np.array([1.5, 2.0, 0.0]) / 2.5)
    assert pattern.metadata["intensity_kind"] == "intensities"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("broken.xrdml", "<xrdMeasurements>\n<scan>\n</xrdMeasurements>", "line 3"),
        ("noscan.xrdml", "<xrdMeasurements/>", "no <scan>"),
        ("nan.xrdml", XRDML_TEMPLATE.format(positions=START_END, values="<counts>1 2 nan</counts>"), "value 3"),
        ("text.xrdml", XRDML_TEMPLATE.format(positions=START_END, values="<counts>1 x 3</counts>"), "value 2"),
        ("nopos.xrdml", XRDML_TEMPLATE.format(positions="", values="<counts>1 2 3</counts>"), "2Theta"),
        ("empty.xrdml", "", "empty"),
        (
            "mismatch.xrdml",
            XRDML_TEMPLATE.format(
                positions='<positions axis="2Theta"><listPositions>1 2</listPositions></positions>',
                values="<counts>1 2 3</counts>",
            ),
            "2 values but the scan has 3 points",
        ),
    ],
)
def test_bad_xrdml_raises_value_error_naming_the_file(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(ValueError, match=message) as info:
        read_pattern(path)
    assert str(path) in str(info.value)


def test_write_xy_round_trips_exactly(tmp_path: Path) -> None:
    from patterns import write_xy

    pattern = Pattern(np.array([5.0, 5.04, 5.08]) + 1e-13, np.array([1.0, 2.5, 1.0 / 3.0]))
    path = write_xy(pattern, tmp_path / "out.xy", header="sample CsPbBr3\nsimulated")
    again = read_xy(path)
    np.testing.assert_array_equal(again.two_theta, pattern.two_theta)
    np.testing.assert_array_equal(again.intensity, pattern.intensity)
    assert path.read_text().startswith("# sample CsPbBr3\n# simulated\n# Wavelength: 1.540598e-10 m\n")
    assert again.metadata["wavelength_source"] == "file"  # the axis's radiation is stated, not assumed
