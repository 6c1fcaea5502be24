"""The replayed loop (`agent.replay`) follows the agent's rules: here, only points on the model's range are evidence."""

from __future__ import annotations

import numpy as np

from agent.callback import MIN_POINTS_FOR_PREDICTION
from agent.policy import PolicyConfig
from agent.replay import replay


def test_a_scan_from_zero_is_classified_only_from_points_on_the_models_range() -> None:
    import torch

    import models

    torch.set_num_threads(1)
    classifier = models.load_default("space_group", device="cpu")
    config = PolicyConfig(start=0.0, stop=7.0)
    peaks = (5.6, 6.3)  # two peaks just inside the model's 5-60 deg range

    def measure(two_theta: float, exposure: float = 1.0) -> float:  # noiseless: the same on any dwell
        return 200.0 + sum(5000.0 * np.exp(-0.5 * ((two_theta - p) / 0.05) ** 2) for p in peaks)

    result = replay(measure, classifier, config)
    below = int(np.count_nonzero(result.scan.sorted()[0] < 5.0))
    assert below >= int(5.0 / config.coarse_step)  # the coarse steps from 0 to 5 deg were measured
    assert result.trail_points, "the model was never asked"
    # the first classification came once MIN_POINTS_FOR_PREDICTION points lay on 5-60 deg, not after 4 points at 0-0.5 deg
    assert result.trail_points[0] >= below + MIN_POINTS_FOR_PREDICTION
