"""`xrd-agent ioc`: serve the simulated diffractometer over Channel Access on 127.0.0.1.

A caproto IOC (`sim_devices.ioc`) with the 2theta axis as a motor record (``PREFIX tth``:
.VAL .RBV .DMOV .HLM .LLM .VELO .STOP) and the point detector (``PREFIX det:AcquireTime``,
``det:Acquire``, ``det:Counts``), backed by the same physics as the ophyd simulation. It prints
one line ``xrd-agent ioc: serving ...`` once it listens, then serves until Ctrl-C. The
example beamline file (docs/beamline.example.toml) points the EPICS devices at it.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ioc", help="serve the simulated diffractometer as EPICS PVs (caproto, 127.0.0.1)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--prefix", default="XRD:", help="PV prefix (default 'XRD:')")
    parser.add_argument("--sample", default="CsPbBr3", help="sample in the beam, a library name (default CsPbBr3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the counting noise (default 0)")
    parser.add_argument("--port", type=int, default=None,
                        help="Channel Access port, TCP and UDP (default: EPICS_CA_SERVER_PORT, else 5064)")
    parser.add_argument("--speedup", type=float, default=1.0,
                        help="run this many times faster than the instrument (default 1: real time)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.speedup > 0:
        raise ValueError(f"--speedup must be > 0, got {args.speedup}")
    from sim_devices.ioc import serve

    serve(prefix=args.prefix, sample=args.sample, seed=args.seed, port=args.port, speedup=args.speedup)
    return 0
