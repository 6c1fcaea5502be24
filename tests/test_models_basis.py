"""`models.basis`: no answer without a basis, and `classify --task both` noticing a contradiction."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from cli.classify import classify_file
from cli.main import main
from models.basis import FULL_COVERAGE, MIN_COVERAGE, assess_basis
from models.classifier import Prediction
from patterns import SPACE_GROUP_TO_DIMENSIONALITY, read_pattern

REFERENCE = Path(__file__).resolve().parent / "data" / "field-cases" / "00-reference.xy"


@pytest.fixture(scope="module")
def reference():
    return read_pattern(REFERENCE)


def window(pattern, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    keep = (pattern.two_theta >= low) & (pattern.two_theta <= high)
    return pattern.two_theta[keep], pattern.intensity[keep]


def test_full_scan_has_a_basis(reference) -> None:
    basis = assess_basis(reference.two_theta, reference.intensity, reference.metadata)
    assert not basis.refused and basis.flags == [] and basis.coverage > 0.99


@pytest.mark.parametrize(("low", "high"), [(10.0, 15.0), (20.0, 31.5)])  # 9 % and 21 % of 5-60 deg
def test_a_file_covering_9_to_21_percent_is_refused_or_flagged(reference, low: float, high: float) -> None:
    basis = assess_basis(*window(reference, low, high))
    assert basis.coverage < 0.25
    if basis.coverage < MIN_COVERAGE:
        assert basis.refusal.startswith("too_little_coverage")
    else:
        assert "partial_coverage" in basis.flags


def test_half_a_scan_is_answered_with_a_partial_coverage_flag(reference) -> None:
    basis = assess_basis(*window(reference, 5.0, 30.0))
    assert MIN_COVERAGE < basis.coverage < FULL_COVERAGE
    assert not basis.refused and basis.flags == ["partial_coverage"]


def test_all_zero_and_constant_files_have_no_signal(reference) -> None:
    for level in (0.0, 7.0):
        basis = assess_basis(reference.two_theta, np.full(reference.two_theta.size, level))
        assert basis.refusal.startswith("no_signal")


def test_low_angle_only_scan_is_refused(reference) -> None:
    angles = np.arange(0.5, 7.0, 0.02)
    reflectivity = assess_basis(angles, 1e6 * np.exp(-angles * 2.5))
    assert reflectivity.refusal.startswith("not_diffraction_reflectivity")
    flat = assess_basis(angles, np.full(angles.size, 100.0) + (angles > 6.5))  # no fall: not reflectivity
    assert flat.refusal.startswith(("too_little_data", "too_little_coverage"))


def fixed(label: str, classes: tuple[str, ...]) -> Prediction:
    probabilities = np.full(len(classes), 0.1 / (len(classes) - 1))
    probabilities[classes.index(label)] = 0.9
    return Prediction(probabilities=probabilities, label=label, confidence=0.9, cam=np.zeros(1376, np.float32),
                      coverage=1.0, classes=classes)


class FixedAnswer:
    """A classifier head that always answers `label` (to put a known contradiction in front of classify)."""

    def __init__(self, task: str, label: str, classes: tuple[str, ...]) -> None:
        self.task, self.label, self.classes, self.version = task, label, classes, "fixed"

    def predict_pattern(self, pattern) -> Prediction:
        return fixed(self.label, self.classes)


@pytest.mark.parametrize(("space_group", "dimensionality"), [("Pm-3m", "0D"), ("Pm-3m", "3D"), ("P-3m1", "2D")])
def test_task_both_flags_heads_that_contradict(space_group: str, dimensionality: str) -> None:
    heads = [FixedAnswer("space_group", space_group, ("Fm-3m", "I4/mcm", "P2_1/a", "P-3m1", "P6_3/mmc", "Pc", "Pm-3m")),
             FixedAnswer("dimensionality", dimensionality, ("0D", "2D", "3D"))]
    args = argparse.Namespace(task="both", wavelength=None, anode=None, plot=None)
    result = classify_file(REFERENCE, heads, args)
    contradicts = SPACE_GROUP_TO_DIMENSIONALITY[space_group] != dimensionality
    assert ("tasks_disagree" in result["flags"]) == contradicts
    assert result["label"] == space_group and result["dimensionality"]["label"] == dimensionality


def test_classify_names_the_file_when_the_scan_misses_the_model_range(tmp_path: Path, capsys) -> None:
    path = tmp_path / "high-angle.xy"
    path.write_text("".join(f"{70 + 0.02 * i:.2f} {100 + i % 7}\n" for i in range(500)))
    assert main(["classify", "--json", str(path)]) == 2
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["label"] is None and result["coverage"] == 0.0
    assert str(path) in captured.err and "too_little_data" in captured.err


def test_the_agent_does_not_settle_on_a_scan_without_a_basis() -> None:
    """Live: an adaptive scan of 5-14 deg covers 16 % of the model's range (below MIN_COVERAGE), so the
    agent never settles, whatever its confidence, and its last decision says why."""
    import torch
    from bluesky import RunEngine

    import models
    from agent.callback import LocalAgent
    from plans.adaptive import adaptive_scan
    from plans.run_record import RunCollector
    from sim_devices import make_beamline

    torch.set_num_threads(1)
    beamline = make_beamline(sample="CsPbBr3", seed=0)
    RE, collector = RunEngine({}), RunCollector()
    RE.subscribe(collector)
    (uid,) = RE(adaptive_scan([beamline.detector], beamline.motor, start=5.0, stop=14.0,
                              agent=LocalAgent(models.load_default("space_group"))))
    decisions = collector.records[uid].decisions
    assert not any(str(reason).startswith("settled") for reason in decisions["reason"])
    assert "no basis for an answer (too_little_coverage)" in str(decisions["reason"][-1])
    assert float(decisions["coverage"][-1]) < MIN_COVERAGE
