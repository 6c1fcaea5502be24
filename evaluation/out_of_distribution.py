"""Out-of-distribution patterns and the "I don't know" score (issue 9, item 4).

Patterns that are not thin films of the seven metal-halide classes of Oviedo et al. (2019), on
:data:`models.grid.GRID` (repository copy ``data/out-of-distribution``, see its README):

- **structures**: Si, Al2O3 (corundum), LaB6 and NaCl from ``structures.json``, simulated as films
  by the beamline's physics (:mod:`evaluation.beamline_films`);
- **cifs**: PyXtal CIFs whose spglib space group (symprec 0.1 A) is outside the seven classes,
  simulated the same way (the loader classifies every file and refuses one inside the classes);
- **measured**: oxide/carbonate powder patterns measured on other instruments (XRD-AutoAnalyzer
  spectra, dara A-Lab scans), read with :func:`patterns.read_pattern` and gridded (measured 10-60
  deg; the mask marks the part of the grid they cover).

LaB6 (Pm-3m) and NaCl (Fm-3m) share a class symbol without being metal-halide films, and the
measured MnO/LiF rock salts are Fm-3m like CIFs of the training library: such patterns are flagged
``in_class_space_group`` and :func:`score_ood` reports the AUROC with and without them.

Never train or tune on these patterns: they measure whether the model knows what it does not know.
"""

from __future__ import annotations

import functools
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from sklearn.metrics import roc_auc_score

from crystals.prototypes import SPACE_GROUP_NUMBERS
from evaluation.beamline_films import film_conditions, film_sample, measure_film
from evaluation.set_scoring import predict_set
from evaluation.unseen_materials import FilmSet, unseen_films
from models.grid import GRID_SIZE, to_grid
from patterns import read_pattern, repo_data_dir

__all__ = ["OOD_SOURCES", "OodSet", "ood_root", "ood_structures", "ood_cif_paths", "measured_paths", "ood_patterns", "score_ood"]

#: Rock-salt phases named in the measured files' names: Fm-3m, like CIFs of the training library.
_ROCK_SALT = re.compile(r"(^|[-+_])\d*(MnO|LiF|NiO|CoO)([-+_]|$)")
_CLASS_NUMBERS = set(SPACE_GROUP_NUMBERS.values())


@dataclass(frozen=True)
class OodSet:
    """Out-of-distribution patterns on the model grid.

    Attributes
    ----------
    values : numpy.ndarray
        float32 [N, 1376] raw intensities.
    masks : numpy.ndarray
        bool [N, 1376], True where measured.
    names : list of str
        ``"<source>:<name>|<condition>"`` (simulated) or ``"measured:<file>"``.
    sources : list of str
        ``"structure"``, ``"cif"`` or ``"measured"`` per pattern.
    in_class_space_group : numpy.ndarray
        bool [N], True where the phase's space group is one of the seven class symbols.
    """

    values: np.ndarray
    masks: np.ndarray
    names: list[str]
    sources: list[str]
    in_class_space_group: np.ndarray


def ood_root() -> Path:
    """``<repo>/data/out-of-distribution``."""
    return repo_data_dir() / "out-of-distribution"


@functools.cache
def ood_structures() -> tuple[tuple[str, Structure, bool, tuple[int, int, int]], ...]:
    """(name, structure, in_class_space_group, preferred_hkl) of ``structures.json``.

    Raises
    ------
    ValueError
        If a built structure's spglib space group differs from its record (names file and entry).
    """
    path = ood_root() / "structures.json"
    out = []
    for record in json.loads(path.read_text())["structures"]:
        lattice = Lattice.from_parameters(*(record["lattice"][k] for k in ("a", "b", "c", "alpha", "beta", "gamma")))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Structure.from_spacegroup(record["number"], lattice, [s["species"] for s in record["sites"]],
                                                  [s["xyz"] for s in record["sites"]])
        number = SpacegroupAnalyzer(structure, symprec=0.1).get_space_group_number()
        if number != record["number"]:
            raise ValueError(f"{path}: {record['name']} builds in space group {number}, not {record['number']}")
        out.append((record["name"], structure, bool(record["in_class_space_group"]), tuple(record["preferred_hkl"])))
    return tuple(out)


@functools.cache
def ood_cif_paths() -> tuple[tuple[Path, Structure], ...]:
    """CIFs of ``cifs/`` with their structures, sorted; ValueError for a file inside the seven classes."""
    out = []
    for path in sorted((ood_root() / "cifs").rglob("*.cif")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen notes rounded occupancies
            structure = Structure.from_file(path)
        number = SpacegroupAnalyzer(structure, symprec=0.1).get_space_group_number()
        if number in _CLASS_NUMBERS:
            raise ValueError(f"{path}: spglib space group {number} is one of the seven classes")
        out.append((path, structure))
    return tuple(out)


def measured_paths() -> tuple[Path, ...]:
    """The measured pattern files (``.xy`` and ``.xrdml``) under ``measured/``, sorted."""
    root = ood_root() / "measured"
    return tuple(sorted(p for p in root.rglob("*") if p.suffix.lower() in (".xy", ".xrdml")))


#: The kinds of out-of-distribution pattern, in the order they are returned.
OOD_SOURCES: tuple[str, ...] = ("structure", "cif", "measured")


@functools.lru_cache(maxsize=4)
def _patterns(textures: tuple[str, ...], count_levels: tuple[str, ...], seed: int, kinds: tuple[str, ...]) -> OodSet:
    unknown = set(kinds) - set(OOD_SOURCES)
    if unknown or not kinds:
        raise ValueError(f"unknown out-of-distribution sources {sorted(unknown)}; known: {OOD_SOURCES}")
    conditions = film_conditions(textures, count_levels)
    rows, masks, names, sources, in_class = [], [], [], [], []
    simulated = [(f"structure:{n}", s, flag, hkl) for n, s, flag, hkl in ood_structures()]
    simulated += [(f"cif:{p.relative_to(ood_root() / 'cifs').as_posix()}", s, False, (0, 0, 1)) for p, s in ood_cif_paths()]
    for i, (name, structure, flag, hkl) in enumerate(simulated):
        if name.split(":")[0] not in kinds:
            continue
        samples: dict[str, Any] = {}
        for k, condition in enumerate(conditions):
            if condition.texture not in samples:
                samples[condition.texture] = film_sample(structure, name, condition.march_r, hkl)
            rng = np.random.default_rng([seed, 1_000 + i, k])  # streams apart from the unseen set's
            rows.append(measure_film(samples[condition.texture], condition.dwell_s, rng))
            masks.append(np.ones(GRID_SIZE, dtype=bool))
            names.append(f"{name}|{condition.texture}|{condition.count_level}")
            sources.append(name.split(":")[0])
            in_class.append(flag)
    for path in measured_paths() if "measured" in kinds else ():
        pattern = read_pattern(path)
        values, mask = to_grid(pattern.two_theta, pattern.intensity)
        rows.append(values)
        masks.append(mask)
        names.append(f"measured:{path.name}")
        sources.append("measured")
        in_class.append(bool(_ROCK_SALT.search(path.stem)))
    return OodSet(np.stack(rows).astype(np.float32), np.stack(masks), names, sources, np.asarray(in_class, dtype=bool))


def ood_patterns(
    textures: tuple[str, ...] = ("powder", "strong"),
    count_levels: tuple[str, ...] = ("low", "high"),
    seed: int = 0,
    sources: tuple[str, ...] = OOD_SOURCES,
) -> OodSet:
    """Every out-of-distribution pattern on the model grid (deterministic for a seed).

    Parameters
    ----------
    textures, count_levels : tuple of str
        Film conditions of the simulated patterns (see :mod:`evaluation.beamline_films`); the
        measured patterns are used as they are.
    seed : int
        Seed of the counting noise of the simulated films.
    sources : tuple of str
        Which kinds to include (:data:`OOD_SOURCES`; fewer for quick runs).

    Returns
    -------
    OodSet
        Cached; read-only arrays.

    Raises
    ------
    ValueError
        Unknown texture, count level or source.
    """
    result = _patterns(tuple(textures), tuple(count_levels), int(seed), tuple(sources))
    for array in (result.values, result.masks, result.in_class_space_group):
        array.setflags(write=False)
    return result


def score_ood(
    classifier: Any,
    task: str | None = None,
    *,
    in_distribution: FilmSet | None = None,
    ood: OodSet | None = None,
) -> dict[str, Any]:
    """How well the top-class confidence separates in-class films from out-of-distribution patterns.

    Parameters
    ----------
    classifier : models.classifier.Classifier or compatible
        ``classes`` and ``predict_proba(features[N, 2, 1376])``.
    task : str, optional
        Task of the in-class set; default ``classifier.task`` (else "space_group").
    in_distribution : FilmSet, optional
        In-class patterns; default :func:`evaluation.unseen_materials.unseen_films` of the task.
    ood : OodSet, optional
        Default :func:`ood_patterns`.

    Returns
    -------
    dict
        ``auroc`` (sklearn ``roc_auc_score``, in-class = positive, score = top-class confidence),
        ``auroc_strict`` (without the ``in_class_space_group`` patterns), ``max_confidence`` and
        ``fraction_above_half`` over the out-of-distribution patterns, ``n`` (out-of-distribution
        patterns), ``n_in_class``, ``mean_confidence_in_class``, ``per_source`` (n, mean and max
        confidence, most frequent predicted class) and ``most_confident`` (the five worst names).
    """
    task = task or getattr(classifier, "task", "space_group")
    inside = in_distribution if in_distribution is not None else unseen_films(task)
    outside = ood if ood is not None else ood_patterns()
    conf_in = predict_set(classifier, inside.values, inside.masks).confidence
    predicted = predict_set(classifier, outside.values, outside.masks)
    conf_out = predicted.confidence

    def auroc(keep: np.ndarray) -> float:
        labels = np.concatenate([np.ones(conf_in.size), np.zeros(int(keep.sum()))])
        return float(roc_auc_score(labels, np.concatenate([conf_in, conf_out[keep]])))

    sources = np.asarray(outside.sources, dtype=object)
    per_source = {}
    for source in sorted(set(outside.sources)):
        pick = sources == source
        labels, counts = np.unique(predicted.predicted[pick].astype(str), return_counts=True)
        per_source[source] = {"n": int(pick.sum()), "mean_confidence": float(conf_out[pick].mean()),
                              "max_confidence": float(conf_out[pick].max()), "most_predicted": str(labels[counts.argmax()])}
    worst = np.argsort(conf_out)[::-1][:5]
    return {
        "auroc": auroc(np.ones(conf_out.size, dtype=bool)),
        "auroc_strict": auroc(~outside.in_class_space_group),
        "max_confidence": float(conf_out.max()),
        "fraction_above_half": float((conf_out > 0.5).mean()),
        "n": int(conf_out.size),
        "n_in_class": int(conf_in.size),
        "mean_confidence_in_class": float(conf_in.mean()),
        "mean_confidence_ood": float(conf_out.mean()),
        "per_source": per_source,
        "most_confident": [{"name": outside.names[i], "confidence": float(conf_out[i]),
                            "predicted": str(predicted.predicted[i])} for i in worst],
    }
