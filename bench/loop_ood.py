"""No early stop on a pattern the model does not know: the out-of-distribution set replayed through the policy.

Every pattern of `evaluation.out_of_distribution.ood_patterns` is scanned by the agent's policy
with the shipped model (`agent.replay`, no RunEngine): at the default risk the scan must run to the
end. Because the positions never depend on the risk, the same replay says at which other risks
the scan would have stopped early, and whether the out-of-distribution flag or the confidence
bar is what kept it going.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from agent.policy import PolicyConfig
from agent.replay import replay_recording
from agent.settling import confidence_for_risk, first_settled

QUICK_PATTERNS = 4


def ood_early_stops(classifier: Any, risks: tuple[float, ...], quick: bool) -> dict[str, Any]:
    """Replay the out-of-distribution set; count early stops per risk.

    Parameters
    ----------
    classifier : Classifier
        The shipped model.
    risks : tuple of float
        Settings of the knob to evaluate (the default, `agent.settling.DEFAULT_RISK`, is added).
    quick : bool
        Only `QUICK_PATTERNS` patterns (spread over the set).

    Returns
    -------
    dict
        ``n``, ``default_risk``, ``early_stops_at_default_risk`` (names), ``per_risk`` ({risk:
        {"early_stops", "early_stops_without_flag"}}: the second counts what the scans would do if
        the flag were ignored) and ``per_pattern`` (points, last reason).
    """
    from evaluation.out_of_distribution import ood_patterns

    config = PolicyConfig()
    risks = tuple(sorted({*risks, config.risk}, reverse=True))
    patterns = ood_patterns()
    indices = list(range(len(patterns.names)))
    if quick:
        indices = indices[:: max(1, len(indices) // QUICK_PATTERNS)][:QUICK_PATTERNS]
    per_risk = {str(r): {"early_stops": 0, "early_stops_without_flag": 0} for r in risks}
    per_pattern, stopped_at_default = [], []
    for i in indices:
        result = replay_recording(patterns.values[i], patterns.masks[i], classifier, config)
        trail = result.trail
        unflagged = [replace(e, out_of_distribution=False) for e in trail]
        for risk in risks:
            for key, evidence in (("early_stops", trail), ("early_stops_without_flag", unflagged)):
                if first_settled(evidence, confidence=confidence_for_risk(risk), min_fraction=config.min_fraction,
                                 stable_span=config.stable_span) is not None:
                    per_risk[str(risk)][key] += 1
        if result.stopped_early:
            stopped_at_default.append(patterns.names[i])
        per_pattern.append({"name": patterns.names[i], "points": result.scan.n_points,
                            "reason": result.decisions[-1].reason})
    return {"n": len(indices), "default_risk": config.risk, "early_stops_at_default_risk": stopped_at_default,
            "per_risk": per_risk, "per_pattern": per_pattern}
