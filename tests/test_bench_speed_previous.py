"""The speed benchmark's side-by-side timing of the shipped model and the one it replaced."""

from __future__ import annotations

import numpy as np

from bench.speed_previous import REFERENCE_DIR, compare_with_previous


def test_previous_model_is_the_replaced_recipe_and_is_timed_beside_the_new_one() -> None:
    import models
    from models.classifier import Classifier

    previous = Classifier.load(REFERENCE_DIR, device="cpu")
    assert (previous.n_members, previous.width, previous.memory) == (5, 16, None)
    clf = models.load_default("space_group", device="cpu")
    two_theta = np.arange(5.0, 38.0, 0.16)
    intensity = 100.0 + 1e4 * np.exp(-0.5 * ((two_theta - 15.0) / 0.05) ** 2)
    rng = np.random.default_rng(0)
    batch = np.zeros((64, 2, 1376), np.float32)
    batch[:, 0], batch[:, 1] = rng.random((64, 1376), dtype=np.float32) ** 8, 1.0
    result = compare_with_previous(clf, two_theta, intensity, batch, blocks=2, repeats=3)
    assert result["new_model"]["memory"] and not result["previous_model"]["memory"]
    ms, rate = result["single_partial_scan_ms_median"], result["batched_patterns_per_s_median"]
    assert all(v > 0 for v in (*ms.values(), *rate.values()))
    assert np.isclose(result["single_ratio_new_over_previous"], ms["new"] / ms["previous"])
    assert result["pass"]["single"] == (result["single_ratio_new_over_previous"] <= 1.25)
    assert result["pass"]["batched"] == (result["batched_ratio_new_over_previous"] >= 0.8)
