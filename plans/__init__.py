"""xrd-agent plans: `adaptive_scan`, the configured default beamline, and the IPython start-up.

``adaptive_scan(detectors, motor, agent=...)`` takes every device explicitly; in the IPython session
(`plans.startup`) ``RE(adaptive_scan())`` is `plans.beamline.configured_adaptive_scan`, which fills
in the configured (by default simulated) beamline and agent.
"""

from plans.adaptive import adaptive_scan

__all__ = ["adaptive_scan"]
