"""bench/accuracy.py end to end with stand-in models: every acceptance key, JSON and PNGs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench import accuracy
from cli.main import main
from evaluation.protocols import ModelSpec, nearest_neighbour_spec
from patterns.datasets import task_classes
from tests.test_evaluate_protocols import RecordingCentroidModel, synthetic_source


class ExplainingCentroidModel(RecordingCentroidModel):
    """The centroid stand-in plus a CAM: the class centroid weighted by the measured input."""

    def cam(self, features: np.ndarray, classes: np.ndarray) -> np.ndarray:
        return np.clip(self.centroids_[classes] * features[:, 0], 0, None)


def _spec(name: str) -> ModelSpec:
    return ModelSpec(name, lambda task, seed: ExplainingCentroidModel(len(task_classes(task))))


@pytest.mark.slow
def test_accuracy_bench_writes_every_acceptance_key(tmp_path) -> None:
    out = tmp_path / "accuracy.json"
    settings = accuracy.AccuracySettings(n_splits=3, n_repeats=2, grouped_repeats=1, case2_repeats=1,
                                         run_case1=True, n_simulated_per_class=4)
    result = accuracy.run(True, out, settings=settings,
                          specs=[_spec("ours"), _spec("acnn"), nearest_neighbour_spec()],
                          source=synthetic_source, progress=None)
    written = json.loads(out.read_text())
    keys = {"accuracy_mean", "accuracy_std", "f1_macro", "baseline_acnn_accuracy_mean",
            "nn_baseline_accuracy_mean"}
    for block in (written["space_group"], written["dimensionality"],
                  written["grouped"]["space_group"], written["grouped"]["dimensionality"]):
        assert keys <= set(block)
        assert all(0.0 <= block[k] <= 1.0 for k in keys)
    assert set(written["stepsize"]) == {"0.04", "0.08", "0.12", "0.16", "0.24", "0.32"}
    assert set(written["partial"]) == {"0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1.0"}
    assert 0.0 <= written["ece"] <= 1.0
    # the identical stand-ins for "ours" and "acnn" get identical figures: same folds, same data
    assert written["space_group"]["accuracy_mean"] == written["space_group"]["baseline_acnn_accuracy_mean"]
    for name in written["figures"]:
        assert (tmp_path / name).stat().st_size > 1000
    assert any(name.startswith("accuracy_cam_") for name in written["figures"])
    assert result["settings"]["n_repeats"] == 2
    cam_rows = written["protocols"]["space_group"]["case3"]["models"]["ours"]["confusion_matrix"]
    assert np.sum(cam_rows) == 2 * 88


def test_cli_bench_rejects_an_unknown_name_and_a_bad_out(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "nonsense"])
    assert main(["bench", "accuracy", "--out", "x.txt"]) == 2
    assert "--out must name a .json file" in capsys.readouterr().err


def test_stepsize_bench_writes_a_curve_per_model(tmp_path) -> None:
    from bench import stepsize

    out = tmp_path / "stepsize.json"
    settings = accuracy.AccuracySettings(n_splits=3, n_repeats=1, n_simulated_per_class=4)
    stepsize.run(True, out, settings=settings, specs=[_spec("ours"), nearest_neighbour_spec()],
                 source=synthetic_source, tasks=("space_group",))
    written = json.loads(out.read_text())
    block = written["space_group"]
    assert set(block["ours"]) == {"0.04", "0.08", "0.12", "0.16", "0.24", "0.32"}
    assert block["drop_0.16_vs_0.04"] == pytest.approx(block["ours"]["0.04"] - block["ours"]["0.16"])
    assert block["achieved_mean_step"]["0.32"] > block["achieved_mean_step"]["0.04"]
    assert (tmp_path / "stepsize.png").stat().st_size > 1000
