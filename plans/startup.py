"""IPython start-up for the beamline: ``ipython -i -m plans.startup`` or ``xrd-agent shell``.

Builds the session namespace a beamline scientist expects:

* ``RE`` -- a `bluesky.RunEngine` with a `BestEffortCallback` subscribed (it prints a LiveTable
  of the hinted fields, ``tth`` and ``det_counts``, for every run; plots are off unless
  ``XRD_AGENT_PLOTS=1``) and, when the tiled catalog opens, a TiledWriter (`storage.catalog`),
  so every run is stored with its ``decisions`` stream;
* ``adaptive_scan`` -- the plan, bound to the configured beamline (`plans.beamline`);
* ``bl``, ``tth``, ``det`` -- the configured beamline, its motor and its detector;
* ``catalog`` -- the tiled catalog of runs (None when it could not be opened);
* ``bp``, ``bps`` -- bluesky's plans and plan stubs.

Then ``RE(adaptive_scan())`` runs an adaptive scan of the configured sample.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def build_session(*, plots: bool | None = None, store: bool = True) -> dict[str, Any]:
    """Make the RunEngine, callbacks, devices and plan of an interactive session.

    Parameters
    ----------
    plots : bool, optional
        Live plots from the BestEffortCallback; default from ``XRD_AGENT_PLOTS`` (off).
    store : bool
        Subscribe a TiledWriter to the embedded (or configured) tiled catalog.

    Returns
    -------
    dict
        The namespace (``RE``, ``adaptive_scan``, ``bl``, ``tth``, ``det``, ``catalog``, ``bec``,
        ``bp``, ``bps``).
    """
    import bluesky.plan_stubs as bps
    import bluesky.plans as bp
    from bluesky import RunEngine
    from bluesky.callbacks.best_effort import BestEffortCallback

    from plans.beamline import configured_adaptive_scan, get_beamline

    RE = RunEngine({})
    bec = BestEffortCallback()
    if not (plots if plots is not None else os.environ.get("XRD_AGENT_PLOTS") == "1"):
        bec.disable_plots()
    RE.subscribe(bec)
    catalog = None
    if store:
        try:
            from storage.catalog import open_catalog, subscribe_writer

            catalog = open_catalog()
            subscribe_writer(RE, catalog)
        except Exception as exc:  # noqa: BLE001 - a session without storage still scans; say why
            print(f"xrd-agent: runs will not be stored ({type(exc).__name__}: {exc})", file=sys.stderr)
            catalog = None
    beamline = get_beamline()
    return {
        "RE": RE,
        "bec": bec,
        "catalog": catalog,
        "adaptive_scan": configured_adaptive_scan,
        "bl": beamline,
        "tth": beamline.motor,
        "det": beamline.detector,
        "bp": bp,
        "bps": bps,
    }


BANNER = "xrd-agent session: RE, adaptive_scan, bl, tth, det, catalog.  Try: RE(adaptive_scan())"

if __name__ == "__main__":
    globals().update(build_session())
    print(BANNER)
