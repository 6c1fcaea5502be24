"""`xrd-agent classify FILE...`: class, probability and top 3 per pattern file, or a refusal.

Every file is read into the model's axis (Cu K-alpha1 2theta; `patterns.read_pattern` converts
other radiations, q and d), checked for a basis for an answer (`models.basis`), then classified.
The output says which wavelength was used and where it came from, any conversion, the coverage of
the model's range, the flags and what the reader did to the numbers (`reading_notes`: sorted,
merged, lifted, per second, columns ignored, a tube named in the header). ``--json`` prints one
JSON object per file: ``{"file", "task", "label", "probability", "top3", "coverage",
"wavelength_A", "wavelength_source", "converted_from", "flags": [...], "refusal", "error",
"reading": [...]}``; with ``--task both`` the top level is the
space group and ``"dimensionality"`` holds the other head's ``label``, ``probability``, ``top3``.
The exit status is 2 when any file was unreadable or refused.

The wavelength of a file that states none: ``--wavelength``/``--anode``, else the ``[beam]`` table
of the beamline file (``$XRD_AGENT_BEAMLINE_FILE`` or ``$XRD_AGENT_HOME/beamline.toml``;
``wavelength_source`` "beamline"), else Cu K-alpha1 (``"default"``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from cli.errors import UserError

TASK_CHOICES = ("space_group", "dimensionality", "both")
ANODES = ("Cr", "Fe", "Co", "Cu", "Mo", "Ag")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "classify",
        help="classify XRD pattern files (.xy, .xye, .xrdml, .chi, .ras, .uxd, ...) with the default or a given model",
        description=(
            "Print the predicted class, its calibrated probability and the top 3 for each file, or why no "
            "answer is given. The model works on Cu K-alpha1 2theta: a file that states its wavelength (XRDML, "
            "pyFAI, Rigaku, Bruker headers) or its x unit (q, d) is converted through d-spacings; otherwise "
            "declare the radiation with --wavelength or --anode, or Cu K-alpha1 (1.540598 A) is assumed and said."
        ),
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="pattern files")
    parser.add_argument("--task", choices=TASK_CHOICES, default="space_group", help="what to predict (default: space_group)")
    parser.add_argument("--model", type=Path, default=None, help="model directory (default: the shipped default model)")
    parser.add_argument("--plot", type=Path, default=None, metavar="DIR", help="write the CAM over each pattern as PNG into DIR")
    radiation = parser.add_mutually_exclusive_group()
    radiation.add_argument("--wavelength", type=float, default=None, metavar="ANGSTROM",
                           help="measurement wavelength (A) for files that do not state one")
    radiation.add_argument("--anode", choices=ANODES, default=None, help="X-ray tube anode (its K-alpha1) for files that do not state one")
    parser.add_argument("--json", action="store_true", help="one JSON object per file on stdout")
    parser.add_argument("--poni", type=Path, default=None, metavar="PONI",
                        help="the FILEs are area-detector frames (any format fabio reads) with this pyFAI "
                             "geometry; each is integrated azimuthally to I(2theta) first")
    parser.set_defaults(func=run_classify)


def _load_models(args: argparse.Namespace) -> list:
    import models
    from models.classifier import Classifier

    tasks = ("space_group", "dimensionality") if args.task == "both" else (args.task,)
    if args.model is not None:
        if args.task == "both":
            raise UserError("--model takes one model; give --task space_group or dimensionality")
        return [Classifier.load(args.model, task=args.task)]
    return [models.load_default(task) for task in tasks]


def _plot_name(file: Path, task: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", file.stem).strip("_") or "pattern"
    return f"{stem}.{task}.cam.png"


def classify_file(file: Path, classifiers: list, args: argparse.Namespace) -> dict[str, Any]:
    """Read, check and classify one file; the result is the JSON object described in the module."""
    from models.basis import assess_basis
    from patterns import SPACE_GROUP_TO_DIMENSIONALITY, read_pattern

    result: dict[str, Any] = {"file": str(file), "task": args.task, "label": None, "probability": None,
                              "top3": None, "coverage": None, "wavelength_A": None, "wavelength_source": None,
                              "converted_from": None, "flags": [], "refusal": None, "error": None, "reading": []}
    try:
        if getattr(args, "poni", None) is not None:
            from patterns.frames import read_frame

            pattern = read_frame(file, args.poni)  # the PONI states the wavelength
        else:
            pattern = read_pattern(file, wavelength_A=args.wavelength, anode=args.anode)
        source = pattern.metadata["wavelength_source"]
        beamline = getattr(args, "beamline_wavelength", None)
        if beamline is not None and source == "default":  # measured at the configured beamline
            pattern, source = read_pattern(file, wavelength_A=beamline), "beamline"
    except (ValueError, OSError) as exc:
        result["error"] = str(exc)
        return result
    meta = pattern.metadata
    result["reading"] = reading_notes(meta)
    basis = assess_basis(pattern.two_theta, pattern.intensity, meta)
    result.update(coverage=round(basis.coverage, 4), wavelength_A=meta["wavelength_A"],
                  wavelength_source=source, converted_from=meta["converted_from"],
                  flags=list(basis.flags), refusal=basis.refusal)
    if basis.refused:
        return result
    answers = {}
    for clf in classifiers:
        try:
            prediction = clf.predict_pattern(pattern)
        except ValueError as exc:  # the model's own checks: say which file
            result["error"] = f"{file}: {exc}"
            return result
        answers[clf.task] = {"label": prediction.label, "probability": round(float(prediction.confidence), 4),
                             "top3": [[name, round(float(p), 4)] for name, p in prediction.top(3)]}
        if prediction.out_of_distribution and "out_of_distribution" not in result["flags"]:
            # the pattern is farther from every known one than the model's threshold: a guess
            result["flags"].append("out_of_distribution")
        if args.plot is not None:
            from models.cam import plot_cam

            title = f"{file.name}: {prediction.label} (p = {prediction.confidence:.2f}, model {clf.version})"
            result.setdefault("plots", []).append(str(plot_cam(pattern.two_theta, pattern.intensity, prediction.cam,
                                                                args.plot / _plot_name(file, clf.task), title=title)))
    first = "space_group" if "space_group" in answers else next(iter(answers))
    result.update(answers[first])
    if len(answers) == 2:
        result["dimensionality"] = answers["dimensionality"]
        if SPACE_GROUP_TO_DIMENSIONALITY[answers["space_group"]["label"]] != answers["dimensionality"]["label"]:
            result["flags"].append("tasks_disagree")
    return result


def reading_notes(meta: dict[str, Any]) -> list[str]:
    """What the reader did to the file's numbers, in words (empty for a plain ascending 2theta-counts file).

    Parameters
    ----------
    meta : dict
        `patterns.read_pattern` metadata.
    """
    from patterns import ANODE_WAVELENGTHS_A

    notes = []
    if meta.get("encoding", "utf-8") not in ("utf-8", "ascii"):
        notes.append(f"text in {meta['encoding'].upper()}: decoded")
    if meta.get("n_decimal_comma_lines"):
        notes.append(f"decimal commas on {meta['n_decimal_comma_lines']} lines: read as points")
    if meta.get("n_fixed_width_lines"):
        notes.append(f"{meta['n_fixed_width_lines']} lines of glued fixed-width fields: split")
    if meta.get("order") == "descending":
        notes.append("written high to low angle: sorted")
    if meta.get("n_repeated_angles"):
        notes.append(f"{meta['n_repeated_angles']} angles measured twice: merged (mean)")
    if meta.get("n_negative"):
        notes.append(f"{meta['n_negative']} negative intensities (background subtracted?): all lifted by "
                     f"{meta['intensity_offset']:g}")
    if meta.get("n_columns", 2) > 2:
        notes.append(f"{meta['n_columns']} columns: all after the second (e.g. sigma) ignored")
    if meta.get("n_scans", 1) > 1:
        notes.append(f"{meta['n_scans']} scans joined")
    if meta.get("attenuated_points"):
        notes.append(f"{meta['attenuated_points']} points multiplied by their attenuation factors")
    if meta.get("intensity_unit") == "counts/s":  # XRDML, RAS, UXD: the readers divide by the counting time
        time_s = meta.get("counting_time_s")
        notes.append("counts per second (divided by " + (f"the {time_s:g} s counting time)" if time_s else
                                                          "each point's counting time)"))
    anode = meta.get("radiation_in_header")
    if anode in ANODE_WAVELENGTHS_A and meta.get("wavelength_source") == "default" and anode != "Cu":
        notes.append(f"the header names {anode}: if it was measured with {anode} K-alpha1 "
                     f"({ANODE_WAVELENGTHS_A[anode]} A), give --anode {anode}")
    return notes


def _text_lines(result: dict[str, Any]) -> list[str]:
    """Tab-separated lines for one file: one per task, then the provenance of the reading."""
    answers = [(result["task"] if result["task"] != "both" else "space_group", result)]
    if "dimensionality" in result:
        answers.append(("dimensionality", result["dimensionality"]))
    lines = []
    for task, answer in answers:
        top = ", ".join(f"{name} {p:.3f}" for name, p in answer["top3"])
        lines.append(f"{result['file']}\t{task}\t{answer['label']}\tp={answer['probability']:.3f}\ttop3: {top}\t"
                     f"coverage={result['coverage']:.2f}")
    lines.append(_provenance(result))
    return lines


def _provenance(result: dict[str, Any]) -> str:
    source = {"file": "stated in the file", "user": "declared", "beamline": "the beamline file's [beam]",
              "default": "assumed: Cu K-alpha1 default"}
    text = f"{result['file']}\twavelength={result['wavelength_A']:.7g} A ({source[result['wavelength_source']]})"
    if result["converted_from"]:
        text += f"\tconverted from {result['converted_from']}"
    if result["flags"]:
        text += f"\tflags: {', '.join(result['flags'])}"
    if result.get("reading"):
        text += f"\tread: {'; '.join(result['reading'])}"
    if result.get("plots"):
        text += f"\tplot: {', '.join(result['plots'])}"
    return text


def _beamline_wavelength() -> float | None:
    """The ``[beam]`` wavelength of the configured beamline file, Angstrom (None: no file or no table).

    Raises
    ------
    UserError
        The file is malformed or names an unknown anode (the message names the file).
    """
    from epics_devices.beamline_file import configured_beamline_file, load_beamline_file
    from patterns.data_home import xrd_agent_home
    from patterns.radiation import anode_wavelength

    path = configured_beamline_file(xrd_agent_home())
    if path is None:
        return None
    beam = load_beamline_file(path).beam
    if beam.anode is None:
        return beam.wavelength_A
    try:
        return anode_wavelength(beam.anode)
    except ValueError as exc:
        raise UserError(f"{path} [beam] anode: {exc}") from exc


def run_classify(args: argparse.Namespace) -> int:
    """Classify every file; print answers (stdout) and refusals or errors (stderr, one line each)."""
    if args.poni is not None and (args.wavelength is not None or args.anode is not None):
        raise UserError("--poni states the wavelength of the frames; drop --wavelength/--anode")
    if args.poni is None and args.wavelength is None and args.anode is None:
        args.beamline_wavelength = _beamline_wavelength()
    classifiers = _load_models(args)
    failures = 0
    for file in args.files:
        result = classify_file(file, classifiers, args)
        problem = result["error"] or (f"{file}: no answer: {result['refusal']}" if result["refusal"] else None)
        if args.json:
            print(json.dumps(result))
        elif problem is None:
            print("\n".join(_text_lines(result)))
        if problem is not None:
            failures += 1
            # an unreadable file is an error; a readable one without a basis for an answer is not
            kind = "error: " if result["error"] else ""
            print(f"xrd-agent classify: {kind}{problem}", file=sys.stderr)
            if not args.json and result["wavelength_A"] is not None:
                print(_provenance(result))
    return 2 if failures else 0
