"""Every row of tests/data/field-cases/README.md: one measured pattern in the layouts users' files take.

The files hold the AUTO-XRD MASnI3 (I4/mcm) measurement; `00-reference.xy` is the plain form. Files
that hold the same measurement must read to the same pattern (same points within counting noise after
conversion) and `xrd-agent classify --json` must give the reference's label; the two inputs with no
basis for an answer must get no label.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli.main import main
from patterns import read_pattern

FIELD_CASES = Path(__file__).resolve().parent / "data" / "field-cases"

#: file -> (reader keyword arguments, metadata the reading must show)
SAME_AS_REFERENCE: dict[str, tuple[dict, dict]] = {
    "01-descending.xy": ({}, {"order": "descending"}),
    "02-overlapping-ranges.xy": ({}, {"order": "merged ranges", "n_repeated_angles": 100}),
    "04-tab-decimal-comma.txt": ({}, {"format": "xy"}),
    "05-utf16.xy": ({}, {"encoding": "utf-16-le"}),
    "06-q-units.xy": ({}, {"x_unit": "q_nm^-1", "wavelength_source": "file"}),
    "07-mo-radiation.xrdml": ({}, {"wavelength_A": 0.709317, "wavelength_source": "file", "radiation": "Mo K-alpha1"}),
    "08-two-scans.xrdml": ({}, {"n_scans": 2}),
    "09-attenuator.xrdml": ({}, {"intensity_kind": "counts"}),
    "10-counting-times.xrdml": ({}, {"counting_time_s": None, "intensity_unit": "counts/s"}),
    "11-fit2d.chi": ({}, {"format": "chi"}),
    "12-with-sigma.xye": ({}, {"n_columns": 3}),
    "13-co-radiation.xy": ({"anode": "Co"}, {"wavelength_source": "user", "radiation": "Co K-alpha1"}),
}


def rows_of_the_readme() -> list[str]:
    lines = (FIELD_CASES / "README.md").read_text(encoding="utf-8").splitlines()
    return [line.split("|")[1].strip() for line in lines if line.startswith("| ") and line[2:4].isdigit()]


@pytest.fixture(scope="module")
def reference():
    return read_pattern(FIELD_CASES / "00-reference.xy")


def test_every_readme_row_is_tested() -> None:
    tested = set(SAME_AS_REFERENCE) | {"00-reference.xy", "03-background-subtracted.xy", "14-two-points.xy", "15-reflectivity.xy"}
    assert set(rows_of_the_readme()) == tested
    assert all((FIELD_CASES / name).is_file() for name in tested)


@pytest.mark.parametrize("name", list(SAME_AS_REFERENCE))
def test_layout_reads_to_the_reference_pattern(name: str, reference) -> None:
    kwargs, expected_metadata = SAME_AS_REFERENCE[name]
    pattern = read_pattern(FIELD_CASES / name, **kwargs)
    for key, value in expected_metadata.items():
        assert pattern.metadata[key] == (pytest.approx(value) if isinstance(value, float) else value), key
    # the same points, within counting noise, over (almost) the reference's whole range
    low, high = max(pattern.two_theta[0], reference.two_theta[0]), min(pattern.two_theta[-1], reference.two_theta[-1])
    common = (reference.two_theta >= low) & (reference.two_theta <= high)
    assert common.mean() > 0.99
    ours = np.interp(reference.two_theta[common], pattern.two_theta, pattern.intensity)
    theirs = reference.intensity[common]
    z = np.abs(ours - theirs) / np.sqrt(np.maximum(theirs, 1.0))
    assert np.percentile(z, 99) < 3.0, f"99th percentile of |difference| / sqrt(counts) = {np.percentile(z, 99):.2f}"
    assert np.corrcoef(ours, theirs)[0, 1] > 0.999
    strongest = reference.two_theta[np.argmax(reference.intensity)]
    assert abs(pattern.two_theta[np.argmax(pattern.intensity)] - strongest) < 0.01


def test_conversions_are_recorded(reference) -> None:
    assert reference.metadata["converted_from"] is None and reference.metadata["wavelength_source"] == "default"
    mo = read_pattern(FIELD_CASES / "07-mo-radiation.xrdml").metadata["converted_from"]
    assert "Mo K-alpha1" in mo and "d-spacing" in mo and "Cu K-alpha1" in mo
    assert "q in nm^-1" in read_pattern(FIELD_CASES / "06-q-units.xy").metadata["converted_from"]


def test_attenuation_factors_and_counting_times_change_the_raw_numbers() -> None:
    """The raw counts differ from the reference; only the factors / times make them equal."""
    text = (FIELD_CASES / "09-attenuator.xrdml").read_text()
    assert "<beamAttenuationFactors>" in text
    assert read_pattern(FIELD_CASES / "09-attenuator.xrdml").metadata["attenuated_points"] > 0
    assert "<countingTimes" in (FIELD_CASES / "10-counting-times.xrdml").read_text()


def test_background_subtracted_file_is_accepted_and_the_shift_said(reference) -> None:
    pattern = read_pattern(FIELD_CASES / "03-background-subtracted.xy")
    raw_minimum = min(float(line.split()[1]) for line in (FIELD_CASES / "03-background-subtracted.xy").read_text().splitlines())
    assert raw_minimum < 0
    assert pattern.metadata["n_negative"] > 0
    assert pattern.metadata["intensity_offset"] == pytest.approx(-raw_minimum)
    assert pattern.intensity.min() == 0.0
    np.testing.assert_allclose(pattern.two_theta, reference.two_theta)


def test_cobalt_file_without_a_declaration_states_the_default_and_flags_the_comment() -> None:
    pattern = read_pattern(FIELD_CASES / "13-co-radiation.xy")
    assert pattern.metadata["wavelength_source"] == "default"
    assert pattern.metadata["radiation_in_header"] == "Co"


def run_json(capsys, *args: str) -> tuple[int, dict[str, dict]]:
    code = main(["classify", "--json", *args])
    objects = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    return code, {Path(o["file"]).name: o for o in objects}


def test_classify_json_every_row(capsys) -> None:
    names = ["00-reference.xy", "03-background-subtracted.xy", *[n for n in SAME_AS_REFERENCE if not n.startswith("13")],
             "14-two-points.xy", "15-reflectivity.xy"]
    code, results = run_json(capsys, *[str(FIELD_CASES / n) for n in names])
    assert code == 2  # two files refused
    assert set(results) == set(names)
    keys = {"file", "label", "probability", "top3", "coverage", "wavelength_A", "converted_from", "flags"}
    assert all(keys <= set(result) for result in results.values())
    expected = results["00-reference.xy"]["label"]
    assert expected == "I4/mcm"
    for name in names[:-2]:
        assert results[name]["label"] == expected, name
        assert results[name]["coverage"] > 0.95 and results[name]["refusal"] is None
    assert results["07-mo-radiation.xrdml"]["wavelength_A"] == pytest.approx(0.709317)
    assert "Mo K-alpha1" in results["07-mo-radiation.xrdml"]["converted_from"]
    for name in ("14-two-points.xy", "15-reflectivity.xy"):
        assert results[name]["label"] is None and results[name]["probability"] is None
    assert results["14-two-points.xy"]["refusal"].startswith("too_little_data")
    assert results["15-reflectivity.xy"]["refusal"].startswith("not_diffraction_reflectivity")


def test_classify_cobalt_declared_or_default_stated(capsys) -> None:
    file = str(FIELD_CASES / "13-co-radiation.xy")
    code, declared = run_json(capsys, file, "--anode", "Co")
    result = declared["13-co-radiation.xy"]
    assert code == 0 and result["label"] == "I4/mcm" and result["wavelength_source"] == "user"
    assert result["wavelength_A"] == pytest.approx(1.788965) and "Co K-alpha1" in result["converted_from"]
    _, assumed = run_json(capsys, file)
    result = assumed["13-co-radiation.xy"]
    assert result["wavelength_source"] == "default" and result["converted_from"] is None
    assert "radiation_mismatch" in result["flags"]


def test_classify_text_output_names_the_wavelength_and_refusals(capsys) -> None:
    code = main(["classify", str(FIELD_CASES / "07-mo-radiation.xrdml"), str(FIELD_CASES / "14-two-points.xy")])
    captured = capsys.readouterr()
    assert code == 2
    assert "wavelength=0.709317 A (stated in the file)" in captured.out and "converted from" in captured.out
    error_lines = captured.err.strip().splitlines()
    assert len(error_lines) == 1 and "14-two-points.xy" in error_lines[0] and "too_little_data" in error_lines[0]
    assert error_lines[0].startswith("xrd-agent classify: ") and "error:" not in error_lines[0]  # no answer is not an error
    assert main(["classify", str(FIELD_CASES / "README.md")]) == 2
    assert capsys.readouterr().err.startswith("xrd-agent classify: error: ")  # an unreadable file is


def test_classify_text_output_says_what_the_reader_did(capsys) -> None:
    expected = {"00-reference.xy": None, "01-descending.xy": "written high to low angle: sorted",
                "02-overlapping-ranges.xy": "100 angles measured twice: merged (mean)",
                "03-background-subtracted.xy": "negative intensities (background subtracted?): all lifted by",
                "12-with-sigma.xye": "3 columns: all after the second (e.g. sigma) ignored",
                "10-counting-times.xrdml": "counts per second (divided by each point's counting time)",
                "09-attenuator.xrdml": "points multiplied by their attenuation factors",
                "13-co-radiation.xy": "the header names Co: if it was measured with Co K-alpha1 (1.788965 A), give --anode Co",
                "04-tab-decimal-comma.txt": "decimal commas on 3247 lines: read as points",
                "05-utf16.xy": "text in UTF-16-LE: decoded"}
    assert main(["classify", *(str(FIELD_CASES / name) for name in expected)]) == 0
    lines = {line.split("\t")[0]: line for line in capsys.readouterr().out.splitlines() if "\twavelength=" in line}
    for name, note in expected.items():
        line = lines[str(FIELD_CASES / name)]
        assert ("\tread: " not in line) if note is None else (note in line.split("\tread: ")[1]), line
    main(["classify", "--anode", "Co", str(FIELD_CASES / "13-co-radiation.xy")])  # declared: nothing left to say
    assert "read:" not in capsys.readouterr().out


def test_task_both_reports_both_heads(capsys) -> None:
    _, results = run_json(capsys, str(FIELD_CASES / "00-reference.xy"), "--task", "both")
    result = results["00-reference.xy"]
    assert result["label"] == "I4/mcm" and result["dimensionality"]["label"] == "3D"
    assert "tasks_disagree" not in result["flags"]


def test_an_out_of_distribution_answer_is_flagged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A model whose memory knows only far-away patterns flags the reference file; without one it does not."""
    import models
    from models.memory import EmbeddingMemory

    shipped = models.load_default("space_group")
    width = shipped.n_members * shipped.width
    far = np.eye(7, width)  # seven unit embeddings unlike any pattern's (one channel each)
    memory = EmbeddingMemory(7).fit(far, np.arange(7), reference=far)
    memory.threshold_ = 1e-6  # nothing real is that close: everything is flagged
    shipped.with_memory(memory).save(tmp_path / "novel")
    shipped.with_memory(None).save(tmp_path / "plain")
    for name, expected in (("novel", True), ("plain", False)):
        code = main(["classify", "--json", "--model", str(tmp_path / name), str(FIELD_CASES / "00-reference.xy")])
        out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert code == 0 and ("out_of_distribution" in out["flags"]) is expected
        if expected:
            assert out["probability"] < 0.5  # pulled towards uniform, never a confident guess
