"""`xrd-agent demo`: a coarse and a fine uniform scan of a simulated sample, side by side.

Runs `bluesky.plans.scan` at 0.16 deg and at 0.04 deg over 5-60 deg on the simulated
diffractometer (`sim_devices`), prints points, simulated acquisition time and wall time of
each, and writes a PNG of both scans. (The closed-loop demo replaces this with the adaptive
scan; the scan and plot functions live in `plans.uniform`.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_OUT = Path("demo-output")
DEFAULT_SAMPLE = "CsPbBr3-sharp"
STEPS_DEG: tuple[float, float] = (0.16, 0.04)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="uniform 0.16 and 0.04 deg scans of a simulated sample; prints times, writes a PNG",
        description="Scan a simulated sample at a coarse (0.16 deg) and a fine (0.04 deg) uniform "
        "step over 5-60 deg with a bluesky RunEngine; print points, simulated acquisition time "
        "and wall time per scan; write a PNG of both.",
    )
    parser.add_argument("--sample", default=DEFAULT_SAMPLE,
                        help=f"sample name (see sim_devices.list_samples()); default {DEFAULT_SAMPLE}")
    parser.add_argument("--seed", type=int, default=0, help="counting-noise seed (default 0)")
    parser.add_argument("--dwell", type=float, default=1.0, help="counting time per point, s (default 1)")
    parser.add_argument("--start", type=float, default=5.0, help="first angle, deg (default 5)")
    parser.add_argument("--stop", type=float, default=60.0, help="last angle, deg (default 60)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output folder for the PNG (default {DEFAULT_OUT}/)")
    parser.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from plans.uniform import plot_uniform_scans, run_uniform_scan
    from sim_devices import get_sample, make_beamline

    get_sample(args.sample)  # unknown names fail here with the list of known ones
    if not args.dwell > 0:
        raise ValueError(f"--dwell must be > 0 s, got {args.dwell}")
    scans = []
    for step in STEPS_DEG:
        # a fresh beamline per scan: each clock counts one scan, same noise seed
        beamline = make_beamline(sample=args.sample, seed=args.seed, dwell=args.dwell,
                                 position=args.start)
        scan = run_uniform_scan(beamline, args.start, args.stop, step, md={"purpose": "demo"})
        scans.append(scan)
        print(f"{args.sample}: step {step:.2f} deg: {scan.points:5d} points, "
              f"simulated acquisition {scan.acq_time_s:7.1f} s ({scan.acq_time_s / 60:5.1f} min), "
              f"wall {scan.wall_s:5.2f} s")
    safe_name = args.sample.replace("/", "_").replace(" ", "_")
    png = plot_uniform_scans(scans, args.out / f"uniform-scans-{safe_name}.png",
                             title=f"{args.sample}: uniform 0.16 deg vs 0.04 deg scan")
    print(f"wrote {png}")
    return 0
