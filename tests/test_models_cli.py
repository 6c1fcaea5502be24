"""The shipped default models and `xrd-agent classify` / `xrd-agent train` on the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import models
from cli.main import main
from patterns import load_space_group_set, repo_data_dir

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def measured_file() -> Path:
    files = sorted((repo_data_dir() / "auto-xrd" / "Experimental").rglob("*.xy"))
    assert files, "the repository copy of the measured data is missing"
    return next(f for f in files if "MAPbI3" in f.name or "MAPbBr3" in f.name) if any(
        "MAPb" in f.name for f in files) else files[0]


@pytest.mark.parametrize("task", ["space_group", "dimensionality"])
def test_default_models_load_and_classify_a_measured_pattern(task):
    clf = models.load_default(task)
    assert clf.task == task and len(clf.version) == 16
    # the shipped recipe: default_config's ensemble, a memory of measured patterns, the gate's split left out
    from models.gate_split import split_record
    from training.config import default_config

    assert clf.n_members == default_config().n_members and clf.width == default_config().width
    assert clf.memory is not None and np.isfinite(clf.memory.threshold_)
    assert clf.metadata["gate_split"] == split_record()
    pattern = load_space_group_set()[0]
    prediction = clf.predict(pattern.two_theta, pattern.intensity)
    assert prediction.label in clf.classes
    assert 0 < prediction.confidence <= 1 and np.isclose(prediction.probabilities.sum(), 1.0)
    # a partial scan (first 60 % of the range) is classified too
    keep = pattern.two_theta <= pattern.two_theta[0] + 0.6 * (pattern.two_theta[-1] - pattern.two_theta[0])
    partial = clf.predict(pattern.two_theta[keep], pattern.intensity[keep])
    assert partial.coverage < prediction.coverage


def test_classify_cli_prints_class_probability_and_top3(measured_file, tmp_path, capsys):
    code = main(["classify", str(measured_file), "--plot", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    line = out.strip().splitlines()[0]
    assert str(measured_file) in line and "p=" in line and "top3:" in line
    (png,) = tmp_path.glob("*.png")
    assert f"\tplot: {png}" in out  # says where the picture went


def test_classify_cli_malformed_file_one_line_nonzero_no_traceback(tmp_path):
    bad = tmp_path / "broken.xy"
    bad.write_text("10.0 100\nnot a number here\n11.0\n")
    proc = subprocess.run([sys.executable, "-m", "cli", "classify", str(bad)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "broken.xy" in lines[0]


def test_classify_cli_missing_file(tmp_path, capsys):
    assert main(["classify", str(tmp_path / "absent.xy")]) != 0
    assert "absent.xy" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["scans", "scans.xy"])
def test_classify_cli_names_a_directory_as_one(tmp_path, capsys, name):
    # a folder gave "unknown suffix ''" or a raw "[Errno 21]": say what it is and what to give instead
    folder = tmp_path / name
    folder.mkdir()
    assert main(["classify", str(folder)]) == 2
    err = capsys.readouterr().err
    assert f"{name}: is a directory; give the pattern files in it" in err and "Errno" not in err


def test_train_cli_writes_a_loadable_model(tmp_path, capsys):
    out = tmp_path / "model"
    code = main(["train", "--task", "dimensionality", "--steps", "3", "--members", "2", "--simulated-per-class", "3", "--out", str(out), "--register", "--champion"])
    assert code == 0
    from models.classifier import Classifier
    from models.registry import ModelRegistry

    clf = Classifier.load(out)
    assert ModelRegistry().champion("dimensionality") == clf.version
