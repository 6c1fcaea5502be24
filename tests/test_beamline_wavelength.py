"""A live adaptive scan is refused on a beamline that measures at another wavelength than the model's."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "beamline.example.toml"


def _beamline_file(tmp_path: Path, beam: str) -> Path:
    text = EXAMPLE.read_text()
    path = tmp_path / "beamline.toml"
    path.write_text(text[: text.index("[beam]")] + beam)
    return path


@pytest.mark.parametrize("beam", ['[beam]\nwavelength_A = 0.7093\n', '[beam]\nanode = "Mo"\n'], ids=["wavelength", "anode"])
def test_an_adaptive_scan_at_mo_k_alpha_is_refused_before_anything_connects(tmp_path, monkeypatch, beam) -> None:
    from plans import beamline

    monkeypatch.setenv("XRD_AGENT_BEAMLINE_FILE", str(_beamline_file(tmp_path, beam)))
    monkeypatch.setattr(beamline, "_beamline", None)
    # no IOC runs here: connecting would fail with UnreachablePVError, so the refusal comes first
    with pytest.raises(ValueError, match=r"beamline.toml \[beam\]: this beamline measures at 0\.709\d* A"):
        beamline.configured_adaptive_scan()
    assert beamline._beamline is None


def test_cu_k_alpha_and_no_beam_table_pass_the_check(tmp_path, monkeypatch) -> None:
    from plans.beamline import _check_model_wavelength

    for beam in ("[beam]\nwavelength_A = 1.540598\n", ""):
        monkeypatch.setenv("XRD_AGENT_BEAMLINE_FILE", str(_beamline_file(tmp_path, beam)))
        _check_model_wavelength()
