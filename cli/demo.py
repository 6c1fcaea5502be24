"""`xrd-agent demo`: adaptive scans of a few simulated samples, stored in the embedded catalog.

By default (what `make demo` runs) each sample is measured with `plans.adaptive_scan` on the
simulated diffractometer, steered by the in-process agent with the configured model; the demo
prints class, confidence, points and simulated acquisition time against a uniform 0.04 deg scan of
the same sample, writes a report PNG per run, stores every run in the tiled catalog under
``XRD_AGENT_HOME`` and ends with the commands to read the runs back, label them, retrain and open
the Prefect UI (`storage.demo_epilogue`).

``--uniform`` runs the first demo instead: `bluesky.plans.scan` at 0.16 deg and at 0.04 deg of one
sample, with points, simulated and wall time, and a PNG of both scans (`plans.uniform`).
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
        help="adaptive scans of simulated samples vs a uniform 0.04 deg scan; runs go to tiled",
        description="Run adaptive scans of a few simulated samples (a replayed measured pattern and "
        "structure-simulated films), print class, confidence, points and simulated acquisition time "
        "against a uniform 0.04 deg scan, write report PNGs and store the runs in the tiled catalog. "
        "--uniform: scan one sample at a uniform 0.16 and 0.04 deg step instead.",
    )
    parser.add_argument("--uniform", action="store_true",
                        help="the uniform 0.16 vs 0.04 deg comparison of one sample instead")
    parser.add_argument("--samples", nargs="+", default=None, metavar="NAME",
                        help="samples of the adaptive demo (default: plans.demo.DEFAULT_DEMO_SAMPLES)")
    parser.add_argument("--no-store", action="store_true",
                        help="do not store the adaptive runs in the tiled catalog")
    parser.add_argument("--sample", default=DEFAULT_SAMPLE,
                        help=f"sample of --uniform (see sim_devices.list_samples()); default {DEFAULT_SAMPLE}")
    parser.add_argument("--seed", type=int, default=0, help="counting-noise seed (default 0)")
    parser.add_argument("--dwell", type=float, default=1.0, help="counting time per point, s (default 1)")
    parser.add_argument("--start", type=float, default=5.0, help="first angle, deg (default 5)")
    parser.add_argument("--stop", type=float, default=60.0, help="last angle, deg (default 60)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output folder for the PNG (default {DEFAULT_OUT}/)")
    parser.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    if args.uniform:
        return run_uniform_demo(args)
    return run_closed_loop_demo(args)


def run_closed_loop_demo(args: argparse.Namespace) -> int:
    """Adaptive scans of the demo samples, each against a uniform 0.04 deg scan."""
    from plans.demo import DEFAULT_DEMO_SAMPLES, run_adaptive_demo
    from storage.demo_epilogue import demo_epilogue

    from sim_devices import get_sample

    samples = args.samples or list(DEFAULT_DEMO_SAMPLES)
    for name in samples:
        get_sample(name)  # unknown names fail here, before the catalog opens
    catalog = None
    if not args.no_store:
        from storage.catalog import open_catalog

        catalog = open_catalog()
    print(f"Adaptive scans, {args.start:g}-{args.stop:g} deg, coarse 0.16 / fine 0.04 deg "
          f"(simulated beamline, in-process agent):", flush=True)
    results = run_adaptive_demo(samples, args.out, seed=args.seed, catalog=catalog,
                                start=args.start, stop=args.stop)
    total = sum(r.acq_time_s for r in results)
    uniform = sum(r.uniform_time_s for r in results)
    known = [r.correct for r in results if r.correct is not None]
    right = f"; {sum(known)} of {len(known)} answers right" if known else ""
    print(f"\nAll samples: {total:.0f} s of simulated acquisition against {uniform:.0f} s for uniform "
          f"0.04 deg scans ({100 * total / uniform:.0f} %){right}. Reports in {args.out}/.")
    if catalog is not None:
        true_labels = [r.true_label for r in results if r.true_label]
        print()
        print(demo_epilogue([r.uid for r in results], space_group=true_labels[0] if true_labels else "P-3m1"))
    return 0


def run_uniform_demo(args: argparse.Namespace) -> int:
    """The first demo: one sample at a uniform 0.16 and 0.04 deg step."""
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
