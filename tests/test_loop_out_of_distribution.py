"""No early stop on a pattern the model does not know (issue 10 item 2), replayed through the pure policy.

Three patterns of the out-of-distribution set in ``make test`` (two simulated structures of other
chemistries and one measured oxide powder; simulating the CIF source is what takes long); the
benchmark (`bench.loop_ood`) replays the whole set.
"""

from __future__ import annotations

import numpy as np
import pytest

from agent.decision import ActionKind
from agent.policy import PolicyConfig
from agent.replay import replay_recording


@pytest.fixture(scope="module")
def classifier():
    import torch

    import models

    torch.set_num_threads(1)
    return models.load_default("space_group")


def _subset():
    from evaluation.out_of_distribution import ood_patterns

    patterns = ood_patterns(textures=("powder",), count_levels=("high",), sources=("structure", "measured"))
    structures = [i for i, s in enumerate(patterns.sources) if s == "structure"]
    return patterns, [structures[0], structures[-1], patterns.sources.index("measured")]


def test_out_of_distribution_patterns_are_scanned_to_the_end(classifier) -> None:
    patterns, picks = _subset()
    config = PolicyConfig()  # the default risk, as a scientist would run it
    for i in picks:
        result = replay_recording(patterns.values[i], patterns.masks[i], classifier, config)
        last = result.decisions[-1]
        assert last.action is ActionKind.STOP and not result.stopped_early, patterns.names[i]
        assert last.reason.startswith("range complete; never settled: "), last.reason
        # to the end of the measured span, coarse where flat, fine over peaks (never a fine scan throughout)
        measured = np.flatnonzero(patterns.masks[i])
        positions, _ = result.scan.sorted()
        assert positions[-1] >= 5.0 + 0.04 * measured[-1] - 1e-6
        steps = np.diff(positions)
        coarse = np.isclose(steps, config.coarse_step, atol=1e-6)
        assert steps[coarse].sum() > 0.5 * (positions[-1] - positions[0])  # most of the range crossed coarse
        assert np.isclose(steps, 0.04, atol=1e-6).any()
