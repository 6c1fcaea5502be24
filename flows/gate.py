"""The promotion gate: a challenger replaces the champion unless it is worse on the same patterns.

Kept apart from the flow so the rule can be read and tested on its own.

The rule is paired. Both models answer the same held-out patterns; only the patterns where
they disagree about being right carry information: ``b`` patterns only the challenger gets
right, ``c`` only the champion. If the two were equally accurate, each such pattern would
go either way with probability 1/2, so the chance of the champion winning ``c`` or more of
the ``b + c`` is the one-sided exact McNemar p-value (scipy's ``binomtest``). The challenger
is **rejected when that p-value is below** ``alpha`` (default 0.05): the champion is then
better with 95 % confidence. Otherwise it is promoted: a challenger trained on more data is
not held back by a pattern or two of noise. The test is exact (no resampling), so the same
predictions always give the same decision; with fixed training seeds, so do the same inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Significance level: the champion must be better with this error probability to keep its place.
DEFAULT_ALPHA = 0.05


@dataclass(frozen=True)
class GateDecision:
    """Outcome of the gate.

    Attributes
    ----------
    promote : bool
        True when the challenger replaces the champion.
    challenger_accuracy, champion_accuracy : float
        Held-out accuracies, fractions in [0, 1].
    alpha : float
        Significance level of the paired test.
    n : int
        Held-out patterns both models answered.
    challenger_only, champion_only : int
        Patterns only the challenger / only the champion classified correctly.
    p_value : float
        One-sided exact McNemar p-value of "the champion is better" (1.0 when they never disagree).
    reason : str
        One sentence for the run's artifacts.
    """

    promote: bool
    challenger_accuracy: float
    champion_accuracy: float
    alpha: float
    n: int
    challenger_only: int
    champion_only: int
    p_value: float
    reason: str


def check_alpha(alpha: float) -> float:
    """``alpha`` if it is in (0, 0.5]; ValueError otherwise."""
    if not 0.0 < alpha <= 0.5:  # also rejects NaN
        raise ValueError(f"alpha must be in (0, 0.5], got {alpha}")
    return float(alpha)


def promotion_gate(challenger_correct: Sequence[bool], champion_correct: Sequence[bool],
                   alpha: float = DEFAULT_ALPHA) -> GateDecision:
    """Promote unless the champion is significantly better on the same patterns (exact McNemar, one-sided).

    Parameters
    ----------
    challenger_correct, champion_correct : sequence of bool, shape [N]
        Whether each model classified each held-out pattern correctly, the same patterns in
        the same order.
    alpha : float
        Significance level in (0, 0.5].

    Raises
    ------
    ValueError
        Sequences of different lengths or empty, or ``alpha`` outside (0, 0.5].
    """
    from scipy.stats import binomtest

    alpha = check_alpha(alpha)
    challenger, champion = np.asarray(challenger_correct, bool), np.asarray(champion_correct, bool)
    if challenger.shape != champion.shape or challenger.ndim != 1 or challenger.size == 0:
        raise ValueError(f"need the two models' results on the same non-empty set of patterns, got shapes "
                         f"{challenger.shape} and {champion.shape}")
    b, c = int((challenger & ~champion).sum()), int((champion & ~challenger).sum())
    p_value = float(binomtest(c, b + c, 0.5, alternative="greater").pvalue) if b + c else 1.0
    promote = p_value >= alpha
    acc_new, acc_old = float(challenger.mean()), float(champion.mean())
    paired = (f"on the same {challenger.size} held-out patterns the challenger alone is right on {b}, the champion "
              f"alone on {c} (exact McNemar p = {p_value:.3g}, alpha {alpha:g})")
    if promote:
        reason = (f"promoted: accuracy {acc_new:.4f} vs champion {acc_old:.4f}; {paired}: "
                  "the champion is not significantly better")
    else:
        reason = (f"rejected: accuracy {acc_new:.4f} vs champion {acc_old:.4f}; {paired}: "
                  "the champion is better; it stays")
    return GateDecision(promote, acc_new, acc_old, alpha, int(challenger.size), b, c, p_value, reason)
