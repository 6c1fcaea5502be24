"""The promotion gate: a challenger replaces the champion when it is not worse and better on the new scans.

Kept apart from the flow so the rule can be read and tested on its own; what the two models are
scored on is :mod:`flows.gate_evaluation`.

Both models answer the same patterns, every one of which neither trained on: the gate's held-out
measured patterns, the films of unseen materials and the new scans (the challenger answering each
from the member that held its sample's fold out). The rule has two parts, both paired:

1. **Not worse, with 95 % confidence.** Only the patterns where the two disagree about being right
   carry information: ``b`` only the challenger gets right, ``c`` only the champion. Were the two
   equally accurate, each would go either way with probability 1/2, so the chance of the champion
   winning ``c`` or more of the ``b + c`` is the one-sided exact McNemar p-value (scipy's
   ``binomtest``). The champion is better with confidence ``1 - alpha`` when that p-value is below
   ``alpha`` (default 0.05): then the challenger is rejected.
2. **Better on the new scans.** On the new scans alone the challenger must be right on more scans
   than the champion (``b_new > c_new``). A handful of scans cannot show this with confidence, so
   the count decides; part 1 guards everything else. With no new scan held out (nothing labelled
   since the champion's training, or a single member, which holds nothing out) there is nothing to
   be better on and the champion stays.

Both tests are exact (no resampling): the same predictions always give the same decision; with
fixed training seeds, so do the same inputs. The McNemar test takes the patterns as independent;
the films of one structure and the scans of one sample are not, so with many scans of few samples
its p-value overstates the confidence, for either model.
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
        Accuracies on all ``n`` patterns, fractions in [0, 1].
    alpha : float
        Significance level of the paired test.
    n : int
        Patterns both models answered (every one unseen by both).
    challenger_only, champion_only : int
        Patterns only the challenger / only the champion classified correctly.
    p_value : float
        One-sided exact McNemar p-value of "the champion is better" (1.0 when they never disagree).
    n_new : int
        Of the ``n``, the new scans (the challenger answering from their held-out fold).
    new_challenger_only, new_champion_only : int
        New scans only the challenger / only the champion classified correctly.
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
    n_new: int
    new_challenger_only: int
    new_champion_only: int
    reason: str


def check_alpha(alpha: float) -> float:
    """``alpha`` if it is in (0, 0.5]; ValueError otherwise."""
    if not 0.0 < alpha <= 0.5:  # also rejects NaN
        raise ValueError(f"alpha must be in (0, 0.5], got {alpha}")
    return float(alpha)


def _as_pairs(challenger_correct: Sequence[bool], champion_correct: Sequence[bool],
              is_new_scan: Sequence[bool]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arrays = tuple(np.asarray(a) for a in (challenger_correct, champion_correct, is_new_scan))
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1 or arrays[0].ndim != 1 or arrays[0].size == 0:
        raise ValueError("need the two models' results and the new-scan mask on the same non-empty set of patterns, "
                         f"got shapes {[a.shape for a in arrays]}")
    if any(a.dtype != bool for a in arrays):
        raise ValueError(f"results and mask must be booleans, got dtypes {[str(a.dtype) for a in arrays]}")
    return arrays


def promotion_gate(challenger_correct: Sequence[bool], champion_correct: Sequence[bool],
                   is_new_scan: Sequence[bool], alpha: float = DEFAULT_ALPHA) -> GateDecision:
    """Promote when the champion is not significantly better (exact McNemar) and the challenger wins the new scans.

    Parameters
    ----------
    challenger_correct, champion_correct : sequence of bool, shape [N]
        Whether each model classified each evaluation pattern correctly, the same patterns in
        the same order.
    is_new_scan : sequence of bool, shape [N]
        True for the new scans among the patterns.
    alpha : float
        Significance level in (0, 0.5].

    Raises
    ------
    ValueError
        Sequences of different lengths, empty or not boolean, or ``alpha`` outside (0, 0.5].
    """
    from scipy.stats import binomtest

    alpha = check_alpha(alpha)
    challenger, champion, new = _as_pairs(challenger_correct, champion_correct, is_new_scan)
    b, c = int((challenger & ~champion).sum()), int((champion & ~challenger).sum())
    p_value = float(binomtest(c, b + c, 0.5, alternative="greater").pvalue) if b + c else 1.0
    b_new, c_new = int((challenger & ~champion & new).sum()), int((champion & ~challenger & new).sum())
    not_worse, better_new = p_value >= alpha, b_new > c_new
    acc_new, acc_old = float(challenger.mean()), float(champion.mean())
    pooled = (f"on the {challenger.size} patterns neither trained on, accuracy {acc_new:.4f} vs champion {acc_old:.4f}, "
              f"the challenger alone right on {b}, the champion alone on {c} (exact McNemar p = {p_value:.3g}, "
              f"alpha {alpha:g}): the champion is {'not ' if not_worse else ''}better")
    n_new = int(new.sum())
    if n_new:
        scans = (f"on the {n_new} new scans (held-out folds) the challenger alone is right on {b_new}, the champion "
                 f"alone on {c_new}: the challenger is {'' if better_new else 'not '}better there")
    else:
        scans = "no new scan was held out (nothing labelled since the champion's training, or one member): nothing to be better on"
    promote = not_worse and better_new
    reason = f"{'promoted' if promote else 'rejected'}: {pooled}; {scans}" + ("" if promote else "; the champion stays")
    return GateDecision(promote, acc_new, acc_old, alpha, int(challenger.size), b, c, p_value, n_new, b_new, c_new,
                        reason)
