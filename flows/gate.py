"""The promotion gate: a challenger replaces the champion only if it is not worse on the held-out set.

Kept apart from the flow so the rule can be read and tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

#: A challenger may be this much less accurate than the champion on the held-out
#: set (fraction, 0.005 = half a percentage point) and still be promoted: noise
#: of one pattern in 200 should not block a model trained on more data.
DEFAULT_TOLERANCE = 0.005


@dataclass(frozen=True)
class GateDecision:
    """Outcome of the gate.

    Attributes
    ----------
    promote : bool
        True when the challenger replaces the champion.
    challenger_accuracy, champion_accuracy : float
        Held-out accuracies, fractions in [0, 1].
    tolerance : float
        Allowed drop, fraction.
    reason : str
        One sentence for the run's artifacts.
    """

    promote: bool
    challenger_accuracy: float
    champion_accuracy: float
    tolerance: float
    reason: str


def promotion_gate(
    challenger_accuracy: float, champion_accuracy: float, tolerance: float = DEFAULT_TOLERANCE
) -> GateDecision:
    """Promote iff ``challenger_accuracy >= champion_accuracy - tolerance``.

    Parameters
    ----------
    challenger_accuracy, champion_accuracy : float
        Accuracies on the same fixed held-out set, fractions in [0, 1].
    tolerance : float
        Largest allowed drop, fraction in [0, 1).

    Raises
    ------
    ValueError
        An accuracy outside [0, 1] (or NaN), or a tolerance outside [0, 1).
    """
    for name, value in (("challenger_accuracy", challenger_accuracy), ("champion_accuracy", champion_accuracy)):
        if not 0.0 <= value <= 1.0:  # also rejects NaN
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    if not 0.0 <= tolerance < 1.0:
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance}")
    drop = champion_accuracy - challenger_accuracy
    # A small epsilon so that a drop of exactly the tolerance (in floating point) passes.
    promote = drop <= tolerance + 1e-12
    if promote:
        reason = (
            f"promoted: held-out accuracy {challenger_accuracy:.4f} vs champion {champion_accuracy:.4f} "
            f"(drop {max(drop, 0.0):.4f} <= {tolerance:.4f})"
        )
    else:
        reason = (
            f"rejected: held-out accuracy {challenger_accuracy:.4f} is {drop:.4f} below the champion's "
            f"{champion_accuracy:.4f} (allowed {tolerance:.4f}); the champion stays"
        )
    return GateDecision(promote, float(challenger_accuracy), float(champion_accuracy), float(tolerance), reason)
