"""xrd-agent plans: `adaptive_scan`, the configured default beamline, and the IPython start-up.

``adaptive_scan(detectors, motor, agent=...)`` takes every device explicitly; in the IPython session
(`plans.startup`) ``RE(adaptive_scan())`` is `plans.beamline.configured_adaptive_scan`, which fills
in the configured (by default simulated) beamline and agent.

``adaptive_scan`` is imported on first use (PEP 562): importing a light module of this package
(``plans.startup``, ``plans.run_metadata``) must not import bluesky and ophyd, which every
``xrd-agent`` command would then pay for, ``--help`` included.
"""

from typing import Any

__all__ = ["adaptive_scan"]


def __getattr__(name: str) -> Any:
    if name == "adaptive_scan":
        from plans.adaptive import adaptive_scan

        return adaptive_scan
    raise AttributeError(f"module 'plans' has no attribute {name!r}")
