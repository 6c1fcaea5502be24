"""The promotion gate's rule: paired, exact, in two parts (not worse overall, better on the new scans).

The rule is tested on fixed outcomes, then on real models of different quality scored on the
gate's own evaluation (held-out measured patterns, unseen-materials films, new beamline scans).
"""

from __future__ import annotations

import numpy as np
import pytest

from flows.gate import promotion_gate

BOTH = [True] * 20


def _new(n_old: int, n_new: int) -> list[bool]:
    return [False] * n_old + [True] * n_new


def test_not_worse_and_better_on_new_scans_promotes() -> None:
    # 3 old patterns only the champion gets right (p = 1/8: not significant), 2 new scans only the challenger
    challenger = BOTH + [False] * 3 + [True] * 2
    champion = BOTH + [True] * 3 + [False] * 2
    decision = promotion_gate(challenger, champion, _new(23, 2))
    assert decision.promote and decision.champion_only == 3 and decision.challenger_only == 2
    assert (decision.n_new, decision.new_challenger_only, decision.new_champion_only) == (2, 2, 0)
    assert decision.p_value == pytest.approx(0.5)  # 3 of 5 disagreements to the champion
    assert decision.reason.startswith("promoted") and "McNemar" in decision.reason
    # exact: the same outcomes give the same decision, bit for bit
    assert promotion_gate(challenger, champion, _new(23, 2)) == decision


def test_significantly_worse_overall_is_rejected_even_when_better_on_new_scans() -> None:
    # 8 of 9 disagreements to the champion: p = 10/512 < 0.05
    challenger = BOTH + [False] * 8 + [True]
    champion = BOTH + [True] * 8 + [False]
    decision = promotion_gate(challenger, champion, _new(28, 1))
    assert decision.new_challenger_only == 1 and decision.new_champion_only == 0
    assert not decision.promote and decision.p_value == pytest.approx(10 / 512)
    assert "the champion is better" in decision.reason and decision.reason.endswith("the champion stays")
    # at alpha 0.01 the same outcomes are not significant: promoted
    assert promotion_gate(challenger, champion, _new(28, 1), alpha=0.01).promote


def test_not_better_on_new_scans_is_rejected() -> None:
    # far better overall, but a tie on the new scans: nothing shows the new labels helped
    challenger = BOTH + [True] * 10 + [True, False]
    champion = BOTH + [False] * 10 + [False, True]
    decision = promotion_gate(challenger, champion, _new(30, 2))
    assert not decision.promote and decision.p_value > 0.99
    assert "the challenger is not better there" in decision.reason
    # with no new scan at all (nothing labelled since the champion's training, or one member)
    alone = promotion_gate(BOTH + [True], BOTH + [False], [False] * 21)
    assert not alone.promote and alone.n_new == 0 and "nothing to be better on" in alone.reason


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="same non-empty set"):
        promotion_gate([True], [True, False], [False, False])
    with pytest.raises(ValueError, match="same non-empty set"):
        promotion_gate([True], [True], [True, False])
    with pytest.raises(ValueError, match="same non-empty set"):
        promotion_gate([], [], [])
    with pytest.raises(ValueError, match="booleans"):
        promotion_gate([1, 0], [0, 1], [False, True])
    with pytest.raises(ValueError, match="alpha"):
        promotion_gate([True], [True], [True], alpha=float("nan"))


# ---------------------------------------------------------------- real models of different quality
#: Samples of the simulated beamline scanned as the "new scans" (several classes, none trained on).
NEW_SAMPLES = ("CsPbBr3", "Cs3Bi2Br9", "Cs2AgBiCl6", "MAPbI3", "PbI2", "Cs3Sb2I9-layered", "Cs2SnBr6")


def _new_scans(task: str):
    """Two 0.08-degree step scans of each new sample (Poisson counts, fixed seed), on the grid."""
    from flows.dataset import grid_scans
    from sim_devices import get_sample
    from sim_devices.physics import expected_counts
    from storage.scans import LabelledScan

    rng = np.random.default_rng(0)
    two_theta = np.arange(5.0, 60.0 + 1e-9, 0.08)
    scans = []
    for name in NEW_SAMPLES:
        sample = get_sample(name)
        for k in range(2):
            counts = rng.poisson(expected_counts(two_theta, 0.08, 1.0, sample)).astype(np.float64)
            scans.append(LabelledScan(f"{name}-{k}", two_theta, counts, sample.label, 1.0, name))
    return grid_scans(scans, task)


def _model(task: str, n_simulated: int, steps: int, width: int, measured: bool):
    """A one-member classifier on ``n_simulated`` simulated patterns per class (+ the measured training part)."""
    import torch

    from flows.dataset import measured_training_part
    from training.fit import TrainConfig, train_classifier
    from training.simulate import simulate_training_set

    torch.set_num_threads(1)
    values, labels, _ = simulate_training_set(n_simulated, seed=0, task=task)
    m_values, m_masks, m_labels, _ = measured_training_part(task)
    keep = slice(None) if measured else slice(0, 0)
    config = TrainConfig(n_members=1, steps=steps, width=width, batch_size=64, calibrate=False, seed=0)
    return train_classifier((m_values[keep], m_masks[keep]), m_labels[keep], task=task, config=config,
                            simulated=(values.astype(np.float32), labels))


def test_a_model_trained_on_more_data_is_promoted_and_the_one_on_less_rejected() -> None:
    """Two real models scored on the gate's evaluation: more data (40 simulated per class, the
    measured training part, 100 steps) against less (2 per class, 10 steps). Whichever is the
    challenger, the one trained on more data ends up champion."""
    from flows.dataset import heldout_dataset
    from flows.gate_evaluation import load_unseen_films

    task = "space_group"
    heldout, _ = heldout_dataset(task)
    unseen, new = load_unseen_films(task), _new_scans(task)
    sets = [(heldout.features, heldout.labels), (unseen.features, unseen.labels), (new.features(), new.labels)]
    is_new = np.concatenate([np.zeros(len(heldout) + len(unseen), bool), np.ones(len(new), bool)])

    def correct(model) -> np.ndarray:
        return np.concatenate([model.predict_proba(x).argmax(axis=1) == y for x, y in sets])

    more = correct(_model(task, 40, 100, 16, measured=True))
    less = correct(_model(task, 2, 10, 8, measured=False))
    print(f"accuracy on the {more.size} patterns: more data {more.mean():.3f}, less {less.mean():.3f}")
    assert more.mean() > less.mean() + 0.1  # the premise: more data made a clearly better model

    promoted = promotion_gate(more, less, is_new)
    assert promoted.promote, promoted.reason
    rejected = promotion_gate(less, more, is_new)
    assert not rejected.promote and rejected.p_value < 0.05, rejected.reason
    assert "the champion is better" in rejected.reason
