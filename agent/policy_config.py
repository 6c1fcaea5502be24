"""The policy's thresholds: one dataclass, recorded in the start document of every adaptive run.

The one knob a scientist sets is ``risk`` (`agent.settling`); the coarse step, the background dwell
and the settling rule's evidence thresholds were chosen on the tuning films (`bench.loop_tuning`);
the rest are the rules' thresholds
(`agent.policy`'s module docstring says what each rule does with them).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from agent.settling import DEFAULT_RISK, confidence_for_risk

POSITION_TOLERANCE_STEPS = 0.25
"""Two positions closer than this many fine steps are one point (already measured, end reached).

Why a quarter: candidate positions lie whole fine steps away from measured ones and are rounded to
1e-6 degrees, so a true neighbour is one step away and a repeat is ~0 away; a quarter step sits
far from both.
"""

COARSE_GAP_STEPS = 1.5
"""An interval wider than this many fine steps was crossed at the coarse step (not the fine one).

Why 1.5: fine intervals are one step (up to rounding) and a coarse step is at least two (the
default is four); the threshold lies between one and two steps so that no rounded fine interval
counts as coarse.
"""

DEFAULT_COARSE_STEP = 0.16
"""The step over background, degrees.

Peaks are measured at the fine step whatever this is (rules 2-4), so it only has to land on every
peak's flank. Chosen by `bench.loop_tuning`'s rule on the prototype films, default and weak, never
on a set the loop benchmark reports (bench/results/loop_tuning.json): 0.16 (full path as accurate
as a uniform 0.04 scan in 35 % of its time); 0.32 steps over weak narrow peaks.
"""

DEFAULT_BACKGROUND_DWELL = 0.5
"""Fraction of the run's dwell spent on a coarse step over background.

Chosen by `bench.loop_tuning`'s rule on the same films (bench/results/loop_tuning.json): the
shortest fraction that keeps the full path within 0.01 of a uniform 0.04 scan's accuracy. Half the
dwell: 0.721 in 25 % of the fine scan's time (the full dwell: 0.709 in 35 %); a quarter and an
eighth: 0.686 (0.013 short of the margin, about one film; time saved on background is spent again
on fills of noise that clears the peak bar).
"""


DEFAULT_MIN_FRACTION = 0.2
"""Fraction of the range the frontier must have passed before a class may settle (`agent.settling`).

With :data:`DEFAULT_STABLE_SPAN`, the guards against settling on too little evidence at any risk.
Chosen by `bench.loop_tuning`'s settling sweep on the same films (bench/results/loop_tuning.json):
the pair whose curve reaches a uniform 0.04 scan's accuracy minus 0.01 soonest with every risk's
promise kept; 0.1 and 0.2 tie (12.3 % of the fine scan's time; 0.35 with the same span: 12.7 %),
and the tie goes to more evidence. On those films the calibrated confidence and the stable span
bind far more often than this fraction does.
"""

DEFAULT_STABLE_SPAN = 4.0
"""Degrees of frontier travel over which every prediction must agree before a class settles.

Chosen with :data:`DEFAULT_MIN_FRACTION`: 4 degrees reached the fine scan's accuracy soonest of
1, 2, 3, 4 and 6 (shorter spans settle sooner but on labels that later change: at risk 0.5, 1-2
degrees gave 0.686 against 0.709).
"""


def check_risk_and_confidence(risk: float, confidence: float) -> None:
    """Refuse a risk and a confidence given together that disagree (``confidence != 1 - risk``):
    neither may silently win.

    Raises
    ------
    ValueError
        Naming both (10 digits, so two values never look equal).
    """
    if not math.isclose(confidence, 1.0 - risk):
        raise ValueError(f"give risk or confidence, not both: risk {risk:.10g} means confidence "
                         f"{1.0 - risk:.10g}, but confidence {confidence:.10g} was given")


@dataclass(frozen=True)
class PolicyConfig:
    """Thresholds of the policy; all recorded in the start document of every adaptive run.

    Parameters
    ----------
    start, stop : float
        Scan range, degrees 2-theta (``start < stop``).
    coarse_step : float
        Step where nothing is happening, degrees.
    fine_step : float
        Step inside peaks and for back-step fills, degrees (``0 < fine_step < coarse_step``).
    risk : float
        The knob: accepted calibrated probability of a wrong answer when the scan stops early,
        0-1 (`agent.settling`; default 0.02, "stop when P(wrong) < 2 %").
    confidence : float
        Calibrated probability the label needs to settle, 0-1: ``1 - risk``. Left at its default
        (``1 - DEFAULT_RISK``) it follows `risk`; set to any other value it wins over the default
        risk (then ``risk = 1 - confidence``), so ``adaptive_scan(confidence=0.9)`` keeps working.
        A `risk` other than the default and a `confidence` that disagree raise `ValueError` (the
        dataclass cannot tell a default typed in from one left alone: `plans.adaptive_scan`, which
        can, refuses any disagreeing pair).
    min_fraction : float
        Fraction of the range the frontier must have passed before the class may settle, 0-1.
    stable_span : float
        Degrees of frontier travel over which every prediction must agree for the class to settle.
    early_stop : bool
        Whether a settled class stops the scan (else the scan always runs to `stop`).
    peak_sigma : float
        A point is above background when it exceeds the local background by this many Poisson
        standard deviations (sqrt of the background counts) ...
    peak_relative : float
        ... and by at least this fraction of the background (guards against high-count
        backgrounds, where a few sigma is a tiny relative change).
    background_window : float
        Width of the window behind a point whose median counts is the local background, degrees.
    cam_fraction : float
        A coarse interval is "high-CAM" when its mean CAM is at least this fraction of the CAM
        maximum over the measured range, 0-1.
    cam_peak_sigma : float
        The weaker bar (Poisson standard deviations, no relative bar) a point of a high-CAM interval
        must clear to have the interval refined.
    backstep_window : float
        Only coarse intervals this close behind the frontier are filled because of the CAM, degrees
        (bounds the motor travel a back-step costs).
    background_dwell : float
        Fraction of the run's dwell a coarse step over background is counted for, (0, 1] (1: every
        point the same dwell). Chosen by `bench.loop_tuning` (:data:`DEFAULT_BACKGROUND_DWELL`).
    """

    start: float = 5.0
    stop: float = 60.0
    coarse_step: float = DEFAULT_COARSE_STEP
    fine_step: float = 0.04
    risk: float = DEFAULT_RISK
    confidence: float = 1.0 - DEFAULT_RISK  # follows risk unless set to another value
    min_fraction: float = DEFAULT_MIN_FRACTION
    stable_span: float = DEFAULT_STABLE_SPAN
    early_stop: bool = True
    peak_sigma: float = 5.0
    peak_relative: float = 0.25
    background_window: float = 2.0
    cam_fraction: float = 0.8
    cam_peak_sigma: float = 3.0
    backstep_window: float = 1.0
    background_dwell: float = DEFAULT_BACKGROUND_DWELL

    def __post_init__(self) -> None:
        if self.confidence == 1.0 - DEFAULT_RISK:
            object.__setattr__(self, "confidence", confidence_for_risk(self.risk))
        elif not math.isclose(self.confidence, 1.0 - self.risk):
            if not 0 < self.confidence <= 1:
                raise ValueError(f"confidence must be in (0, 1], got {self.confidence}")
            if self.risk != DEFAULT_RISK:  # both given (as far as a dataclass can tell): they must agree
                check_risk_and_confidence(self.risk, self.confidence)
            object.__setattr__(self, "risk", 1.0 - self.confidence)  # an explicit confidence wins over the default risk
        if not (math.isfinite(self.start) and math.isfinite(self.stop)) or self.stop <= self.start:
            raise ValueError(f"scan range must satisfy start < stop, got {self.start}..{self.stop} deg")
        if not 0 < self.fine_step < self.coarse_step:
            raise ValueError(
                f"steps must satisfy 0 < fine_step < coarse_step, got fine_step={self.fine_step}, "
                f"coarse_step={self.coarse_step} deg"
            )
        if self.coarse_step > self.stop - self.start:
            raise ValueError(f"coarse_step {self.coarse_step} deg exceeds the range {self.start}..{self.stop} deg")
        if not 0 < self.confidence <= 1:
            raise ValueError(f"confidence must be in (0, 1], got {self.confidence}")
        if not 0 <= self.min_fraction <= 1:
            raise ValueError(f"min_fraction must be in [0, 1], got {self.min_fraction}")
        for name in ("stable_span", "peak_sigma", "peak_relative", "background_window", "backstep_window", "cam_peak_sigma"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 < self.background_dwell <= 1:
            raise ValueError(f"background_dwell must be a fraction of the run's dwell in (0, 1], got {self.background_dwell}")
        if not 0 < self.cam_fraction <= 1:
            raise ValueError(f"cam_fraction must be in (0, 1], got {self.cam_fraction}")

    @property
    def position_tolerance(self) -> float:
        """Degrees within which two positions are one point (:data:`POSITION_TOLERANCE_STEPS` fine steps)."""
        return POSITION_TOLERANCE_STEPS * self.fine_step

    @property
    def coarse_gap(self) -> float:
        """Degrees above which an interval was crossed at the coarse step (:data:`COARSE_GAP_STEPS` fine steps)."""
        return COARSE_GAP_STEPS * self.fine_step

    def to_dict(self) -> dict[str, Any]:
        """The thresholds as a plain dictionary (start-document metadata)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> PolicyConfig:
        """Rebuild from :meth:`to_dict` output, ignoring unknown keys."""
        known = cls.__dataclass_fields__
        return cls(**{key: value for key, value in record.items() if key in known})
