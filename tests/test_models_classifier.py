"""Classifier: tiny training run, predictions, calibration, model files, registry."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from training.augment import AugmentConfig
from models.calibrate import fit_temperature, nll
from models.classifier import Classifier, Prediction
from models.grid import GRID, GRID_SIZE
from models.registry import ModelRegistry
from training.fit import TrainConfig, fit_member, prepare_training_data, train_classifier

CENTRES = {0: (12.0, 24.5, 37.0), 1: (15.0, 30.0, 45.0), 2: (20.0, 28.0, 51.0)}


def _toy_set(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three 'classes' of synthetic patterns distinguished by their peak positions."""
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for label, centres in CENTRES.items():
        for _ in range(n_per_class):
            shift = rng.normal(0, 0.05)
            peaks = sum(rng.uniform(300, 1000) * np.exp(-0.5 * ((GRID - c - shift) / 0.08) ** 2) for c in centres)
            rows.append(rng.poisson(50 + peaks).astype(np.float32))
            labels.append(label)
    return np.stack(rows), np.array(labels)


TINY = TrainConfig(n_members=2, width=8, steps=150, batch_size=32, lr=1e-2, seed=0, augment=AugmentConfig(p_coarsen=0.2))


@pytest.fixture(scope="module")
def toy_classifier() -> Classifier:
    torch.set_num_threads(1)
    values, labels = _toy_set(12, seed=0)
    # "dimensionality" has 3 classes: the toy labels stand in for 0D / 2D / 3D
    return train_classifier((values, np.ones_like(values, bool)), labels, task="dimensionality", config=TINY)


def test_tiny_model_learns_and_predicts(toy_classifier: Classifier):
    values, labels = _toy_set(5, seed=1)
    prediction = toy_classifier.predict(GRID, values[0])
    assert isinstance(prediction, Prediction)
    assert prediction.probabilities.shape == (3,) and prediction.probabilities.sum() == pytest.approx(1.0)
    assert prediction.label in ("0D", "2D", "3D") and prediction.confidence == pytest.approx(prediction.probabilities.max())
    assert prediction.cam.shape == (GRID_SIZE,) and prediction.cam.min() >= 0 and prediction.coverage == pytest.approx(1.0)
    assert [name for name, _ in prediction.top(3)][0] == prediction.label
    json.dumps(prediction.to_dict())
    from models.preprocess import preprocess

    features = preprocess(values, np.ones_like(values, bool))
    accuracy = (toy_classifier.predict_proba(features).argmax(1) == labels).mean()
    assert accuracy >= 0.8


def test_partial_scan_prediction_has_zero_cam_outside(toy_classifier: Classifier):
    values, _ = _toy_set(1, seed=2)
    keep = GRID <= 30.0
    prediction = toy_classifier.predict(GRID[keep][::4], values[0][keep][::4])  # partial and coarse
    assert prediction.coverage == pytest.approx(keep[: np.flatnonzero(keep)[-1] + 1].sum() / GRID_SIZE, abs=0.01)
    assert (prediction.cam[GRID > 30.0] == 0).all()


def test_scan_outside_the_grid_is_refused(toy_classifier: Classifier):
    with pytest.raises(ValueError, match="covers no point"):
        toy_classifier.predict(np.array([70.0, 71.0, 72.0]), np.array([1.0, 2.0, 3.0]))


def test_temperaturescaling_lowers_nll_on_miscalibrated_logits():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 2000)
    clean = rng.normal(0, 1, (2000, 4))
    clean[np.arange(2000), labels] += 1.5
    overconfident = 5.0 * clean
    temperature = fit_temperature(overconfident, labels)
    assert temperature > 2.0
    assert nll(overconfident, labels, temperature) < nll(overconfident, labels) - 0.1


def test_save_load_round_trip_gives_identical_predictions(toy_classifier: Classifier, tmp_path):
    path = toy_classifier.save(tmp_path / "model")
    loaded = Classifier.load(path)
    assert loaded.version == toy_classifier.version and loaded.task == "dimensionality"
    values, _ = _toy_set(2, seed=3)
    from models.preprocess import preprocess

    features = preprocess(values, np.ones_like(values, bool))
    assert np.array_equal(loaded.predict_proba(features), toy_classifier.predict_proba(features))
    assert np.array_equal(loaded.explain(features), toy_classifier.explain(features))
    meta = json.loads((path / "model.json").read_text())
    for key in ("task", "classes", "grid", "preprocessing_version", "training_data_hash", "seed", "temperature", "version"):
        assert key in meta


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.update(classes=["a", "b", "c"]), "classes"),
        (lambda m: m.update(grid={**m["grid"], "step": 0.02}), "grid"),
        (lambda m: m.update(task="space_group"), "classes"),
        (lambda m: m.update(preprocessing_version="other"), "preprocessing"),
        (lambda m: m.update(temperature=2.0), "version"),
    ],
)
def test_mismatched_model_files_are_refused(toy_classifier: Classifier, tmp_path, edit, message):
    path = toy_classifier.save(tmp_path / "model")
    meta = json.loads((path / "model.json").read_text())
    edit(meta)
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=message):
        Classifier.load(path)


def test_wrong_task_and_corrupt_weights_are_refused(toy_classifier: Classifier, tmp_path):
    path = toy_classifier.save(tmp_path / "model")
    with pytest.raises(ValueError, match="not 'space_group'"):
        Classifier.load(path, task="space_group")
    (path / "weights.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError):
        Classifier.load(path)
    with pytest.raises(ValueError, match="not a model directory"):
        Classifier.load(tmp_path / "nowhere")


def test_fit_member_and_from_members_match_joint_shapes(toy_classifier: Classifier):
    values, labels = _toy_set(4, seed=4)
    config = replace(TINY, steps=5)
    data = prepare_training_data((values, np.ones_like(values, bool)), labels, task="dimensionality", config=config)
    assert set(np.unique(data.holdout_fold)) <= {0, 1}
    results = [fit_member(data, k, task="dimensionality", config=config) for k in range(2)]
    rows = np.concatenate([r.heldout_rows for r in results])
    assert np.array_equal(np.sort(rows), np.arange(len(labels)))  # each pattern held out exactly once
    clf = Classifier.from_members([r.state for r in results], task="dimensionality", config=config, temperature=1.5)
    assert len(clf.members()) == 2 and clf.temperature == 1.5


def test_registry_champion_pointer(toy_classifier: Classifier, tmp_path):
    registry = ModelRegistry(tmp_path / "registry")
    assert registry.champion("dimensionality") is None
    path = registry.register(toy_classifier, champion=True)
    assert path.name == toy_classifier.version
    assert registry.champion("dimensionality") == toy_classifier.version
    assert registry.load_champion("dimensionality").version == toy_classifier.version
    other = toy_classifier.with_temperature(3.0)
    registry.register(other)
    assert registry.champion("dimensionality") == toy_classifier.version
    registry.set_champion("dimensionality", other.version)
    pointer = json.loads((tmp_path / "registry" / "dimensionality" / "champion.json").read_text())
    assert pointer == {"version": other.version, "previous": toy_classifier.version}
    with pytest.raises(ValueError):
        registry.set_champion("dimensionality", "0000")


def _module_only(clf: Classifier) -> Classifier:
    """The same model answering through the module forward (the fused fast path switched off)."""
    slow = clf.with_temperature(clf.temperature)
    slow._fused = lambda: None  # instance attribute shadows the method
    return slow


def test_fast_path_matches_the_module_on_measured_partial_scans():
    from models import load_default
    from models.grid import to_grid
    from models.preprocess import preprocess
    from patterns import load_space_group_set

    clf = load_default("space_group", device="cpu")
    slow = _module_only(clf)
    patterns = load_space_group_set()[::11]
    fractions = (1.0, 0.6, 0.3)
    grids = []
    for i, p in enumerate(patterns):
        keep = p.two_theta <= p.two_theta[0] + fractions[i % 3] * (p.two_theta[-1] - p.two_theta[0])
        two_theta, intensity = p.two_theta[keep][:: 1 + 3 * (i % 2)], p.intensity[keep][:: 1 + 3 * (i % 2)]
        fast, ref = clf.predict(two_theta, intensity), slow.predict(two_theta, intensity)
        assert fast.label == ref.label
        np.testing.assert_allclose(fast.probabilities, ref.probabilities, atol=1e-5)
        np.testing.assert_allclose(fast.cam, ref.cam, atol=1e-4)
        grids.append(preprocess(*to_grid(two_theta, intensity)))
    x = np.stack(grids)
    np.testing.assert_allclose(clf.decision_logits(x), slow.decision_logits(x), atol=1e-4)
    np.testing.assert_allclose(clf.predict_proba(x), slow.predict_proba(x), atol=1e-5)
    np.testing.assert_allclose(clf.explain(x), slow.explain(x), atol=1e-4)
    np.testing.assert_allclose(clf.explain(x, class_index=2), slow.explain(x, class_index=2), atol=1e-4)


def test_fast_path_follows_in_place_weight_changes(toy_classifier: Classifier):
    clf = toy_classifier.with_temperature(toy_classifier.temperature)
    clf.network = type(clf.network)(3, n_members=2, width=8)
    clf.network.load_state_dict(toy_classifier.network.state_dict())
    clf.network.eval()
    x = np.stack([np.stack([np.random.default_rng(0).random(GRID_SIZE, dtype=np.float32) ** 8, np.ones(GRID_SIZE, np.float32)])])
    before = clf.decision_logits(x)
    with torch.no_grad():
        clf.network.head_bias.add_(1.0)  # shifts every logit by exactly 1
    np.testing.assert_allclose(clf.decision_logits(x), before + 1.0, atol=1e-5)
    np.testing.assert_allclose(clf.decision_logits(x), _module_only(clf).decision_logits(x), atol=1e-5)
