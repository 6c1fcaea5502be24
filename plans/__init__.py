"""xrd-agent plans: `adaptive_scan`, the configured default beamline, and the IPython start-up.

``RE(adaptive_scan())`` scans the configured (by default simulated) beamline with the configured
agent; see `plans.beamline` for the configuration and `plans.startup` for the session.
"""

from plans.adaptive import adaptive_scan

__all__ = ["adaptive_scan"]
