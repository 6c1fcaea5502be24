"""Instrument formats, encodings, units and refusals, on small files written by the tests.

Each test writes the layout a real instrument or integration program writes (Rigaku .ras with a
Shift-JIS header, Bruker .uxd, pyFAI and Fit2D headers, multi-scan / mapped XRDML) and checks the
reading against numbers computed here from Bragg's law, or the refusal against the real reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from patterns import read_pattern
from patterns.radiation import ANODE_WAVELENGTHS_A, MODEL_WAVELENGTH_A, d_spacing, to_model_two_theta


def write(tmp_path: Path, name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def cu_two_theta(two_theta: np.ndarray, wavelength: float) -> np.ndarray:
    """Bragg's law by hand: the same d-spacing at the Cu K-alpha1 wavelength."""
    d = wavelength / (2 * np.sin(np.radians(two_theta) / 2))
    with np.errstate(invalid="ignore"):  # NaN where d < lambda_Cu / 2: no Cu angle
        return np.degrees(2 * np.arcsin(MODEL_WAVELENGTH_A / (2 * d)))


ANGLES = np.round(np.arange(10.0, 30.0, 0.5), 4)  # 40 points
COUNTS = np.arange(40, dtype=float) * 10 + 100


# ------------------------------------------------------------------------ radiation and units


def test_conversion_through_d_spacing_matches_bragg() -> None:
    two_theta, kept = to_model_two_theta(ANGLES, "2th_deg", ANODE_WAVELENGTHS_A["Mo"])
    np.testing.assert_allclose(two_theta, cu_two_theta(ANGLES, ANODE_WAVELENGTHS_A["Mo"]))
    assert kept.all()
    q = 4 * np.pi * np.sin(np.radians(ANGLES) / 2) / MODEL_WAVELENGTH_A  # A^-1
    np.testing.assert_allclose(to_model_two_theta(q, "q_A^-1", 9.9)[0], ANGLES, atol=1e-9)
    np.testing.assert_allclose(to_model_two_theta(10 * q, "q_nm^-1", 9.9)[0], ANGLES, atol=1e-9)
    d = d_spacing(ANGLES, "2th_deg", MODEL_WAVELENGTH_A)
    np.testing.assert_allclose(to_model_two_theta(d, "d_A", 9.9)[0], ANGLES, atol=1e-9)


def test_points_beyond_the_cu_range_are_dropped_and_counted(tmp_path: Path) -> None:
    angles = np.linspace(20.0, 60.0, 81)  # Mo 2theta 60 deg: d = 0.709 A < lambda_Cu / 2
    text = "".join(f"{a} 100\n" for a in angles)
    pattern = read_pattern(write(tmp_path, "mo.xy", text), anode="Mo")
    expected = cu_two_theta(angles, ANODE_WAVELENGTHS_A["Mo"])
    assert pattern.metadata["n_unreachable_points"] == int(np.isnan(expected).sum()) > 0
    np.testing.assert_allclose(pattern.two_theta, expected[~np.isnan(expected)])


def test_pyfai_header_two_theta_with_its_wavelength(tmp_path: Path) -> None:
    header = "# == pyFAI calibration ==\n# Wavelength: 7.29e-11 m\n#       2th_deg             I\n"
    pattern = read_pattern(write(tmp_path, "int.dat", header + "".join(f"{a} {c}\n" for a, c in zip(ANGLES, COUNTS))))
    assert pattern.metadata["wavelength_source"] == "file" and pattern.wavelength_A == pytest.approx(0.729)
    np.testing.assert_allclose(pattern.two_theta, cu_two_theta(ANGLES, 0.729))


@pytest.mark.parametrize(
    ("column", "factor"), [("q_A^-1", 1.0), ("q (1/nm)", 10.0), ("Q (nm^-1)", 10.0)]
)
def test_q_columns_are_converted(tmp_path: Path, column: str, factor: float) -> None:
    q = 4 * np.pi * np.sin(np.radians(ANGLES) / 2) / MODEL_WAVELENGTH_A
    text = f"# {column}  I\n" + "".join(f"{float(v)!r} {c}\n" for v, c in zip(q * factor, COUNTS))
    pattern = read_pattern(write(tmp_path, "q.xy", text))
    np.testing.assert_allclose(pattern.two_theta, ANGLES, atol=1e-9)
    assert "q in" in pattern.metadata["converted_from"]


def test_a_declaration_that_contradicts_the_file_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "int.xy", "# Wavelength: 1.540598e-10 m\n" + "".join(f"{a} 5\n" for a in ANGLES))
    with pytest.raises(ValueError, match=r"int\.xy.*states a wavelength of 1\.540598 A but 1\.788965 A"):
        read_pattern(path, anode="Co")
    with pytest.raises(ValueError, match="unknown anode"):
        read_pattern(path, anode="Xx")


# ------------------------------------------------------------------------- vendor formats


def ras_text(axis: str = "TwoThetaOmega") -> str:
    header = [
        "*RAS_DATA_START", "*RAS_HEADER_START", '*FILE_COMMENT "薄膜試料|thin film"',
        '*HW_XG_TARGET_NAME "Cu"', '*HW_XG_WAVE_LENGTH_ALPHA1 "1.540593"', f'*MEAS_SCAN_AXIS_X "{axis}"',
        '*MEAS_SCAN_UNIT_X "deg"', '*MEAS_SCAN_SPEED "2.0"', '*MEAS_SCAN_SPEED_UNIT "deg/min"',
        '*MEAS_SCAN_STEP "0.5"', "*RAS_HEADER_END", "*RAS_INT_START",
    ]
    attenuation = np.where(COUNTS > 400, 10.0, 1.0)  # the attenuator in for the strongest points
    data = [f"{a:.4f} {c / f:.1f} {f:.4f}" for a, c, f in zip(ANGLES, COUNTS, attenuation)]
    return "\r\n".join(header + data + ["*RAS_INT_END", "*RAS_DATA_END", ""])


def test_rigaku_ras_with_a_shift_jis_header(tmp_path: Path) -> None:
    pattern = read_pattern(write(tmp_path, "film.ras", ras_text(), encoding="cp932"))
    assert pattern.metadata["encoding"] == "cp932" and pattern.metadata["format"] == "ras"
    assert pattern.wavelength_A == pytest.approx(1.540593) and pattern.metadata["converted_from"] is None
    np.testing.assert_allclose(pattern.two_theta, ANGLES)
    np.testing.assert_allclose(pattern.intensity, COUNTS / 15.0)  # x attenuator, / (0.5 deg at 2 deg/min)


def test_rigaku_rocking_curve_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"rock\.ras: line \d+: scan axis 'Omega': not a 2theta scan"):
        read_pattern(write(tmp_path, "rock.ras", ras_text("Omega")))


UXD_HEADER = "; Bruker UXD export\n_FILEVERSION=1\n_WL1=0.709317\n; range 1\n_DRIVE='COUPLED'\n_STEPTIME=2.0\n"


def test_bruker_uxd_counts_block_with_its_wavelength(tmp_path: Path) -> None:
    counts = " ".join(f"{c:.0f}" for c in COUNTS[:20]) + "\n" + " ".join(f"{c:.0f}" for c in COUNTS[20:]) + "\n"
    text = UXD_HEADER + "_STEPSIZE=0.5\n_START=10.0\n_COUNTS\n" + counts
    pattern = read_pattern(write(tmp_path, "mo.uxd", text))
    assert pattern.metadata["wavelength_source"] == "file" and pattern.metadata["radiation"] == "Mo K-alpha1"
    np.testing.assert_allclose(pattern.two_theta, cu_two_theta(ANGLES, 0.709317))
    np.testing.assert_allclose(pattern.intensity, COUNTS / 2.0)


def test_bruker_uxd_two_ranges_of_pairs_are_joined(tmp_path: Path) -> None:
    first = "".join(f"{a} {c}\n" for a, c in zip(ANGLES[:20], COUNTS[:20]))
    second = "".join(f"{a} {c}\n" for a, c in zip(ANGLES[20:], COUNTS[20:]))
    text = UXD_HEADER + "_2THETACPS\n" + first + "; range 2\n_DRIVE='COUPLED'\n_2THETACOUNTS\n" + second
    pattern = read_pattern(write(tmp_path, "two.uxd", text))
    assert pattern.metadata["n_scans"] == 2
    np.testing.assert_allclose(pattern.intensity, np.concatenate([COUNTS[:20], COUNTS[20:] / 2.0]))


def test_bruker_uxd_omega_drive_is_refused(tmp_path: Path) -> None:
    text = UXD_HEADER.replace("COUPLED", "OMEGA") + "_STEPSIZE=0.5\n_START=10\n_COUNTS\n1 2 3\n"
    with pytest.raises(ValueError, match=r"om\.uxd: line 5: _DRIVE=OMEGA: not a 2theta scan"):
        read_pattern(write(tmp_path, "om.uxd", text))


@pytest.mark.parametrize(
    ("axis", "message"),
    [("Radial Distance (mm)", "radial distance"), ("Azimuthal angle (deg)", "azimuthal"), ("Counts", "not 2theta, q or d")],
)
def test_fit2d_chi_other_axes_are_refused(tmp_path: Path, axis: str, message: str) -> None:
    text = f"title\n{axis}\nIntensity\n   3\n 1.0 5\n 2.0 6\n 3.0 7\n"
    with pytest.raises(ValueError, match=rf"x\.chi: line 2: .*{message}"):
        read_pattern(write(tmp_path, "x.chi", text))


# ------------------------------------------------------------------------------- XRDML

XRDML = """<?xml version="1.0" encoding="UTF-8"?>
<xrdMeasurements xmlns="http://www.xrdml.com/XRDMeasurement/{version}">
  <xrdMeasurement measurementType="Scan"><usedWavelength intended="K-Alpha 1"/>
    <incidentBeamPath><xRayTube><anodeMaterial>Co</anodeMaterial></xRayTube></incidentBeamPath>
    {scans}
  </xrdMeasurement>
</xrdMeasurements>"""
SCAN = """<scan scanAxis="{axis}"><dataPoints>
  <positions axis="2Theta" unit="deg"><startPosition>{start}</startPosition><endPosition>{end}</endPosition></positions>
  <positions axis="Omega" unit="deg"><startPosition>{om_start}</startPosition><endPosition>{om_end}</endPosition></positions>
  <commonCountingTime unit="seconds">1</commonCountingTime><intensities unit="counts">{counts}</intensities>
</dataPoints></scan>"""


def scan(start: float, end: float, counts: np.ndarray, offset: float = 0.0, axis: str = "Gonio") -> str:
    return SCAN.format(axis=axis, start=start, end=end, om_start=start / 2 + offset, om_end=end / 2 + offset,
                       counts=" ".join(f"{c:g}" for c in counts))


def test_xrdml_schema_1_intensities_and_anode_wavelength(tmp_path: Path) -> None:
    text = XRDML.format(version="1.0", scans=scan(10.0, 29.5, COUNTS))
    pattern = read_pattern(write(tmp_path, "old.xrdml", text))
    assert pattern.metadata["schema"] == "1.0" and pattern.metadata["anode"] == "Co"
    assert pattern.metadata["wavelength_source"] == "file" and pattern.metadata["radiation"] == "Co K-alpha1"
    np.testing.assert_allclose(pattern.two_theta, cu_two_theta(ANGLES, ANODE_WAVELENGTHS_A["Co"]))


def test_xrdml_reciprocal_space_map_is_refused(tmp_path: Path) -> None:
    scans = "".join(scan(10.0, 29.5, COUNTS, offset) for offset in (-0.2, 0.0, 0.2))
    with pytest.raises(ValueError, match=r"rsm\.xrdml: 3 scans over the same 2theta range .*reciprocal-space map"):
        read_pattern(write(tmp_path, "rsm.xrdml", XRDML.format(version="2.1", scans=scans)))


def test_xrdml_repeated_scan_at_one_offset_is_averaged(tmp_path: Path) -> None:
    scans = scan(10.0, 29.5, COUNTS) + scan(10.0, 29.5, COUNTS + 10)
    pattern = read_pattern(write(tmp_path, "rep.xrdml", XRDML.format(version="2.1", scans=scans)))
    np.testing.assert_allclose(pattern.intensity, COUNTS + 5)
    assert pattern.metadata["n_repeated_angles"] == ANGLES.size


def test_xrdml_rocking_curve_is_refused(tmp_path: Path) -> None:
    text = XRDML.format(version="2.1", scans=scan(10.0, 29.5, COUNTS, axis="Omega"))
    with pytest.raises(ValueError, match=r"om\.xrdml: scan 1 has scanAxis='Omega' \(a rocking curve\)"):
        read_pattern(write(tmp_path, "om.xrdml", text))


# ----------------------------------------------------------- text layouts and real reasons


@pytest.mark.parametrize(
    "content",
    [
        "2theta;counts\n10,0;5\n10,5;6\n11,0;7\n",
        "10,0 5\n10,5 6\n11,0 7\n",
        "10.0, 5\n10.5, 6\n11.0, 7\n",
        "11.0 7\n10.5 6\n10.0 5\n",
        '"Angle","Counts"\n"10.0","5"\n"10.5","6"\n"11.0","7"\n',
    ],
    ids=["semicolon-decimal-comma", "space-decimal-comma", "comma-space", "descending", "quoted-csv"],
)
def test_separators_decimal_commas_and_order(tmp_path: Path, content: str) -> None:
    pattern = read_pattern(write(tmp_path, "p.xy", content))
    np.testing.assert_allclose(pattern.two_theta, [10.0, 10.5, 11.0])
    np.testing.assert_allclose(pattern.intensity, [5.0, 6.0, 7.0])


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-16"])
def test_utf16_with_or_without_byte_order_mark(tmp_path: Path, encoding: str) -> None:
    pattern = read_pattern(write(tmp_path, "u.xy", "# 2θ counts\n10 5\n10.5 6\n", encoding=encoding))
    np.testing.assert_allclose(pattern.intensity, [5.0, 6.0])


def test_time_of_flight_file_is_refused_for_its_axis_not_a_negative_count(tmp_path: Path) -> None:
    content = "1000.0 3.0\n1010.0 2.5\n1020.0 2.0\n1030.0 -0.4\n" + "".join(f"{1040 + 10 * i}.0 1.0\n" for i in range(30))
    with pytest.raises(ValueError, match=r"bank1\.dat: line \d+: x reaches 1330\.0, beyond 180: not 2theta in degrees") as info:
        read_pattern(write(tmp_path, "bank1.dat", content))
    assert "negative" not in str(info.value)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("# TOF(us)  Y  E\n", "time-of-flight"),
        ("# Energy (keV)  counts\n", "photon energy"),
        ("# D20 neutron powder diffraction, lambda 2.41 A\n# 2theta counts\n", "neutron"),
        ("# r(A)  G(r)\n", "pair distribution"),
    ],
)
def test_non_two_theta_files_are_refused_with_the_real_reason(tmp_path: Path, header: str, reason: str) -> None:
    with pytest.raises(ValueError, match=rf"f\.dat: .*{reason}"):
        read_pattern(write(tmp_path, "f.dat", header + "10 -5\n20 6\n30 7\n"))


def test_an_isolated_step_back_is_an_error_naming_the_line(tmp_path: Path) -> None:
    content = "".join(f"{10 + 0.1 * i:.1f} 5\n" for i in range(20)) + "11.55 5\n" + "".join(f"{12 + 0.1 * i:.1f} 5\n" for i in range(3))
    with pytest.raises(ValueError, match=r"p\.xy: line 21: x 11\.55 goes back after 11\.9.*not a merged range"):
        read_pattern(write(tmp_path, "p.xy", content))


def test_deep_negatives_are_not_a_background_residue(tmp_path: Path) -> None:
    content = "".join(f"{10 + 0.1 * i:.1f} {100 * np.sin(i):.1f}\n" for i in range(40))
    with pytest.raises(ValueError, match=r"diff\.xy: line 5: negative intensity .*not counts"):
        read_pattern(write(tmp_path, "diff.xy", content))


@pytest.mark.parametrize("line, decimal", [
    ("5,02\t1448", True), ("10,5;1200", True), ("10.5;1200", False), ("10.5,1200", False),  # CSV: a separator
    ("10, 5", False), ("10.5 1200", False), ('"10,5";"1200"', True), ("5.02 1,448e3", True),
])
def test_the_reader_counts_the_lines_it_read_decimal_commas_on(line, decimal) -> None:
    # `read: decimal commas on N lines` must follow the same rules as the field splitting itself
    from patterns.text_columns import has_decimal_comma, split_fields

    assert has_decimal_comma(line) is decimal
    if decimal:
        assert all("," not in f for f in split_fields(line))
