"""The unseen-materials evaluation set (issue 9, item 5): literature halides never used in training.

The table ``data/unseen-materials/structures.json`` holds metal-halide crystal structures in the
seven space-group classes of Oviedo et al. (2019), *npj Comput. Mater.* 5, 60, each with its
citation, as space group + lattice + asymmetric unit (standard ITA setting, built by pymatgen's
``Structure.from_spacegroup``), whose compositions are absent from everything the classifier is
trained on: the prototypes of :mod:`crystals.prototypes`, the impurity phases, the CIF library of
:mod:`crystals.cif_library` and the compositions of the measured training patterns
(:data:`MEASURED_TRAINING_COMPOSITIONS`); ``tests/test_evaluation_unseen.py`` checks that.

**These exact structures (literature lattice + coordinates) must never be used for training or
tuning** (thresholds, temperatures, budgets, architecture choices): they measure generalisation
to materials the model has not seen. A training generator that substitutes elements into the
prototypes with random lattice constants may produce the same chemistry; that is allowed (it
teaches symmetry), but never these structures or their films.

Families: cubic ABX3 fluoride and tin/germanium halide perovskites (Pm-3m); KCuF3, CsPb2Br5 and
Cs3CoCl5 (I4/mcm); elpasolites and K2PtCl6-type A2BX6 (Fm-3m); trigonal Cs3Sb2Cl9 and CdI2-type
MX2 layers (P-3m1); Cs3Cr2Cl9-type dimers (P6_3/mmc). No refined literature structure of an unseen
layered halide was at hand for Pc and P2_1/a, so those classes hold ``derived`` entries built the
way :mod:`crystals.prototypes` builds its own (a layered parent, symmetry-lowered by a seeded
displacive distortion): they are reported separately (``literature_accuracy`` leaves them out).
Entries flagged ``approx`` (31 of the 42 literature entries) quote lattice constants from memory of
the cited paper (about 0.5 %). The other 11 name in ``verified_from`` the readable public source
(abstracts of the cited papers, a database entry, encyclopedia pages) their lattice and space group
were checked against; six of them (CdI2-type MX2 layers) were flagged before, and MgBr2 and FeBr2
moved by under 0.2 % to the values of their source.

For the dimensionality task the label follows the project's space-group map
(:data:`patterns.SPACE_GROUP_TO_DIMENSIONALITY`); entries whose real dimensionality differs
(CsPb2Br5 is 2D, Cs3CoCl5 0D, both I4/mcm) are left out of that task.
"""

from __future__ import annotations

import functools
import json
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Composition, Lattice, Structure

from crystals.prototypes import (  # the prototypes' own builders: one way to build a structure
    FILM_TEXTURE,
    ORTHOHEXAGONAL,
    ORTHOHEXAGONAL_DOUBLE_C,
    SPACE_GROUP_NUMBERS,
    _from_spacegroup,
    _layered_a3b2x9,
    _lower_symmetry,
)
from evaluation.beamline_films import film_conditions, film_sample, measure_film
from evaluation.set_scoring import predict_set
from models.classifier import task_classes
from models.grid import GRID_SIZE
from patterns import SPACE_GROUP_TO_DIMENSIONALITY, repo_data_dir

__all__ = [
    "UnseenEntry",
    "FilmSet",
    "MEASURED_TRAINING_COMPOSITIONS",
    "table_path",
    "load_entries",
    "build_structure",
    "unseen_films",
    "score_unseen",
]

#: Compositions of the 88 + 73 measured AUTO-XRD training patterns (from their file names; the
#: FAPbI3/MAPbBr3 series of data/auto-xrd/Experimental/pm-3m in steps of 0.1 included).
MEASURED_TRAINING_COMPOSITIONS: tuple[str, ...] = (
    "Cs2AgBiBr6", "CH3NH3PbI3", "CH3NH3SnI3", "CH3NH3Pb0.85Sn0.15I3", "CH3NH3Pb0.5Sn0.5I3",
    "CH3NH3Pb0.15Sn0.85I3", "Cs3Bi2Br9", "Cs3Sb2Br9", "K3Bi2I9", "K3Sb2I9", "Rb3Sb2Br9", "Rb3Sb2I9",
    "Cs3Bi2I9", "Cs3Sb2I9", "(CH3NH3)3Sb2I9", "Rb3Bi2Br9", "Rb3Bi2I9", "CH5N2PbI3", "CH3NH3PbBr3",
    "CH5N2PbBr3",
    *(f"(CH5N2){x / 10:g}(CH3NH3){1 - x / 10:g}Pb(I{x / 10:g}Br{1 - x / 10:g})3" for x in range(1, 10)),
)
_SUPERCELLS = {"orthohexagonal": ORTHOHEXAGONAL, "orthohexagonal_double_c": ORTHOHEXAGONAL_DOUBLE_C}
#: pymatgen symbol of each class symbol (P2_1/a is the b-unique P2_1/c setting family, No. 14)
_PYMATGEN_SYMBOL = {"P2_1/a": "P2_1/c"}
#: symbols the prototypes' spglib-database builder knows (15x faster than pymatgen's for Fm-3m)
_FAST_SYMBOLS = ("Pm-3m", "I4/mcm", "Fm-3m", "P-3m1", "P6_3/mmc")


@dataclass(frozen=True)
class UnseenEntry:
    """One structure of the table.

    Attributes
    ----------
    name, formula, space_group, family, dimensionality, citation : str
        As in the JSON (``formula`` is the real composition, molecular cations written out).
    doi : str or None
        Only where known with confidence.
    flags : tuple of str
        ``approx``, ``derived``, ``estimated``.
    record : dict
        The raw JSON record (lattice and sites, or the derivation; ``verified_from`` where checked).
    """

    name: str
    formula: str
    space_group: str
    family: str
    dimensionality: str
    citation: str
    doi: str | None
    flags: tuple[str, ...]
    record: dict[str, Any]

    @property
    def literature(self) -> bool:
        """True unless the structure is derived (symmetry-lowered) rather than published."""
        return "derived" not in self.flags


def table_path() -> Path:
    """``<repo>/data/unseen-materials/structures.json``."""
    return repo_data_dir() / "unseen-materials" / "structures.json"


@functools.cache
def load_entries() -> tuple[UnseenEntry, ...]:
    """Every entry of the table, literature structures first, then the derived ones.

    Raises
    ------
    ValueError
        If a record lacks a field or names an unknown class (the message names the file and entry).
    """
    path = table_path()
    table = json.loads(path.read_text())
    entries = []
    for record in [*table["structures"], *table["derived"]]:
        try:
            entry = UnseenEntry(
                record["name"], record["formula"], record["space_group"], record["family"],
                record["dimensionality"], record["citation"], record.get("doi"), tuple(record.get("flags", ())), record,
            )
        except KeyError as exc:
            raise ValueError(f"{path}: entry {record.get('name', '?')!r} lacks field {exc}") from exc
        if entry.space_group not in SPACE_GROUP_NUMBERS:
            raise ValueError(f"{path}: entry {entry.name!r} has unknown space_group {entry.space_group!r}")
        entries.append(entry)
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: duplicate names {[n for n, k in Counter(names).items() if k > 1]}")
    return tuple(entries)


def _entry(name: str) -> UnseenEntry:
    found = {e.name: e for e in load_entries()}.get(name)
    if found is None:
        raise ValueError(f"unknown unseen-materials entry {name!r}")
    return found


@functools.cache
def _built(name: str) -> Structure:
    entry = _entry(name)
    record = entry.record
    if entry.literature:
        lattice = Lattice.from_parameters(*(record["lattice"][k] for k in ("a", "b", "c", "alpha", "beta", "gamma")))
        species, coords = [s["species"] for s in record["sites"]], [s["xyz"] for s in record["sites"]]
        if entry.space_group in _FAST_SYMBOLS:
            return _from_spacegroup(entry.space_group, lattice, species, coords)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen notes merged sites of a disordered site
            return Structure.from_spacegroup(_PYMATGEN_SYMBOL.get(entry.space_group, entry.space_group),
                                             lattice, species, coords)
    if record.get("derived_from"):
        parent = build_structure(record["derived_from"])
    else:
        p = record["parent"]
        parent = _layered_a3b2x9(p["a_site"], p["b_site"], p["x_site"], p["a"], p["c"])
    return _lower_symmetry(parent, _SUPERCELLS[record["supercell"]], SPACE_GROUP_NUMBERS[entry.space_group],
                           seed=int(record["seed"]))


def build_structure(name: str) -> Structure:
    """A fresh copy of the pymatgen structure of entry ``name`` (built once, cached; ValueError if unknown)."""
    return _built(name).copy()


def real_composition(formula_or_name: str) -> Composition:
    """Composition of a formula or a prototype name, molecular cations written out.

    Prototype names use MA (methylammonium, CH6N) and FA (formamidinium, CH5N2) and may carry a
    suffix after "-" ("MAPbI3-cubic"); measured-set formulas are already real.
    """
    formula = formula_or_name.split("-")[0].replace("FA", "(CH5N2)").replace("MA", "(CH6N)")
    return Composition(formula)


@dataclass(frozen=True)
class FilmSet:
    """Films of an evaluation set on the model grid.

    Attributes
    ----------
    values : numpy.ndarray
        float32 [N, 1376] counts.
    masks : numpy.ndarray
        bool [N, 1376] (all True: full uniform scans).
    labels : numpy.ndarray
        int64 [N] indices into the task's classes (-1 for out-of-distribution patterns).
    names : list of str
        ``"<structure>|<texture>|<count level>"`` per pattern.
    structures, families : list of str
        Entry name and family per pattern.
    literature : numpy.ndarray
        bool [N], False for derived entries.
    """

    values: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    names: list[str]
    structures: list[str]
    families: list[str]
    literature: np.ndarray


def task_entries(task: str) -> list[UnseenEntry]:
    """Entries scored for ``task``: all for space groups; for dimensionality, those whose real
    dimensionality equals the space-group map's."""
    task_classes(task)
    entries = list(load_entries())
    if task == "dimensionality":
        entries = [e for e in entries if SPACE_GROUP_TO_DIMENSIONALITY[e.space_group] == e.dimensionality]
    return entries


@functools.lru_cache(maxsize=8)
def _films(task: str, textures: tuple[str, ...], count_levels: tuple[str, ...], seed: int,
           names: tuple[str, ...] | None) -> FilmSet:
    classes = task_classes(task)
    entries = task_entries(task)
    if names is not None:  # in the order asked for
        by_name = {e.name: e for e in entries}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise ValueError(f"unknown entries, or entries left out of task {task!r}: {missing}")
        entries = [by_name[n] for n in dict.fromkeys(names)]
    conditions = film_conditions(textures, count_levels)
    index = {e.name: i for i, e in enumerate(load_entries())}
    rows, labels, pattern_names, structures, families, literature = [], [], [], [], [], []
    for entry in entries:
        label = entry.space_group if task == "space_group" else SPACE_GROUP_TO_DIMENSIONALITY[entry.space_group]
        habit = FILM_TEXTURE[entry.space_group][0]
        samples: dict[str, Any] = {}
        for k, condition in enumerate(conditions):
            if condition.texture not in samples:  # count levels share the rendered sample
                samples[condition.texture] = film_sample(_built(entry.name), entry.name, condition.march_r, habit)
            # a stream per (structure, condition): a pattern does not change when the subset does
            rng = np.random.default_rng([seed, index[entry.name], k])
            rows.append(measure_film(samples[condition.texture], condition.dwell_s, rng))
            labels.append(classes.index(label))
            pattern_names.append(f"{entry.name}|{condition.texture}|{condition.count_level}")
            structures.append(entry.name)
            families.append(entry.family)
            literature.append(entry.literature)
    values = np.stack(rows) if rows else np.zeros((0, GRID_SIZE), np.float32)
    return FilmSet(values, np.ones(values.shape, dtype=bool), np.asarray(labels, dtype=np.int64), pattern_names,
                   structures, families, np.asarray(literature, dtype=bool))


def unseen_films(
    task: str = "space_group",
    textures: tuple[str, ...] = ("powder", "moderate", "strong"),
    count_levels: tuple[str, ...] = ("low", "high"),
    seed: int = 0,
    names: tuple[str, ...] | None = None,
) -> FilmSet:
    """Films of the unseen materials measured by the simulated beamline.

    Each entry is rendered under every (texture, count level) pair of
    :func:`evaluation.beamline_films.film_conditions`, textured along its class's film habit
    (:data:`crystals.prototypes.FILM_TEXTURE`, first direction), with Poisson noise from a stream
    seeded by ``(seed, entry, condition)``: the output is deterministic.

    Parameters
    ----------
    task : {"space_group", "dimensionality"}
    textures, count_levels : tuple of str
        Keys of :data:`evaluation.beamline_films.TEXTURE_MARCH_R` / ``COUNT_LEVELS_S``.
    seed : int
        Seed of the counting noise.
    names : tuple of str, optional
        Only these entries (for quick runs); default all entries of the task.

    Returns
    -------
    FilmSet
        Read-only cached arrays (copy before modifying).

    Raises
    ------
    ValueError
        Unknown task, texture, count level or entry name.
    """
    films = _films(task, tuple(textures), tuple(count_levels), int(seed), None if names is None else tuple(names))
    for array in (films.values, films.masks, films.labels, films.literature):
        array.setflags(write=False)
    return films


def score_unseen(classifier: Any, task: str = "space_group", films: FilmSet | None = None, **film_options: Any) -> dict[str, Any]:
    """Accuracy of ``classifier`` on the unseen-materials films.

    Parameters
    ----------
    classifier : models.classifier.Classifier or compatible
        ``classes`` and ``predict_proba(features[N, 2, 1376])`` (see :mod:`evaluation.set_scoring`).
    task : {"space_group", "dimensionality"}
    films : FilmSet, optional
        Precomputed :func:`unseen_films` output; else built with ``film_options``.

    Returns
    -------
    dict
        ``accuracy`` and ``n`` (patterns), ``n_structures``, ``literature_accuracy`` and
        ``n_literature`` (derived entries left out), ``mean_confidence``, ``per_class_recall``
        (None where a class has no pattern), ``per_family_accuracy``, ``per_condition_accuracy``
        (texture|count level) and ``confusion`` (true -> predicted -> count).
    """
    films = films if films is not None else unseen_films(task, **film_options)
    classes = task_classes(task)
    result = predict_set(classifier, films.values, films.masks)
    truth = np.asarray([classes[i] for i in films.labels], dtype=object)
    correct = result.predicted == truth

    def mean(mask: np.ndarray) -> float | None:
        return float(correct[mask].mean()) if mask.any() else None

    conditions = np.asarray(["|".join(n.split("|")[1:]) for n in films.names], dtype=object)
    families = np.asarray(films.families, dtype=object)
    confusion: dict[str, dict[str, int]] = {c: {} for c in classes}
    for t, p in zip(truth, result.predicted):
        confusion[t][p] = confusion[t].get(p, 0) + 1
    return {
        "accuracy": mean(np.ones(len(truth), dtype=bool)),
        "n": int(len(truth)),
        "n_structures": len(set(films.structures)),
        "literature_accuracy": mean(films.literature),
        "n_literature": int(films.literature.sum()),
        "mean_confidence": float(result.confidence.mean()) if len(truth) else None,
        "per_class_recall": {c: mean(truth == c) for c in classes},
        "per_family_accuracy": {f: mean(families == f) for f in sorted(set(films.families))},
        "per_condition_accuracy": {c: mean(conditions == c) for c in sorted(set(conditions))},
        "confusion": confusion,
    }
